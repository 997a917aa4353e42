-- Catalog, governance, consent and audit. Times are UTC ISO-8601 text, exactly
-- as hashed into the audit chain; booleans are 0/1 so SQLite and PostgreSQL agree.
CREATE TABLE write_lock (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);
INSERT INTO write_lock (id, n) VALUES (1, 0);

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    roles TEXT NOT NULL,
    display_name TEXT,
    disabled_at TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);

CREATE TABLE datasets (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE dataset_versions (
    dataset TEXT NOT NULL REFERENCES datasets(name),
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    manifest TEXT NOT NULL,
    schema_json TEXT NOT NULL,
    key_id TEXT,
    policy TEXT,
    use_codes TEXT NOT NULL,
    opt_in_only BIGINT NOT NULL,
    override_reason TEXT,
    row_count BIGINT NOT NULL,
    byte_count BIGINT NOT NULL,
    registered_at TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    PRIMARY KEY (dataset, version)
);

CREATE TABLE projects (
    name TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    purpose TEXT NOT NULL,
    commercial BIGINT NOT NULL,
    institution TEXT NOT NULL,
    country TEXT NOT NULL,
    pi TEXT NOT NULL REFERENCES users(name),
    status TEXT NOT NULL,
    approved_at TEXT,
    approved_by TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE irb_approvals (
    id BIGINT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(name),
    number TEXT NOT NULL,
    institution TEXT NOT NULL,
    approved_on TEXT NOT NULL,
    expires_on TEXT NOT NULL,
    scope TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);

CREATE TABLE project_members (
    project TEXT NOT NULL REFERENCES projects(name),
    user_name TEXT NOT NULL REFERENCES users(name),
    role TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (project, user_name)
);

CREATE TABLE grants (
    id BIGINT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(name),
    dataset TEXT NOT NULL,
    version BIGINT NOT NULL,
    level TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (project, dataset, version)
);

CREATE TABLE consent (
    id BIGINT PRIMARY KEY,
    pseudonym TEXT NOT NULL,
    purpose TEXT NOT NULL,
    status TEXT NOT NULL,
    effective TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX consent_by_pseudonym ON consent (pseudonym);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    project TEXT,
    outcome TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit_log (time);

CREATE TABLE audit_checkpoints (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    time TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- Append-only tables refuse changes from the application's own connections.
-- Someone with the file can drop these triggers; the hash chain catches that.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER consent_no_update BEFORE UPDATE ON consent BEGIN SELECT RAISE(ABORT, 'consent is append-only'); END;
CREATE TRIGGER consent_no_delete BEFORE DELETE ON consent BEGIN SELECT RAISE(ABORT, 'consent is append-only'); END;
CREATE TRIGGER versions_no_update BEFORE UPDATE ON dataset_versions BEGIN SELECT RAISE(ABORT, 'dataset versions are immutable'); END;
