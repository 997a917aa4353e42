-- Outputs that may leave the center (DESIGN §8, issue 6): results computed
-- inside, checked by the project's disclosure-control rules, held pending, and
-- released only after review by someone other than the author.
CREATE TABLE outputs (
    id BIGINT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(name),
    author TEXT NOT NULL,
    -- `query` (mdc query), or another producer such as `validation-report`.
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    -- pending → submitted → (changes_requested → submitted)* → released | rejected
    status TEXT NOT NULL,
    round BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    -- The checked (masked) content, relative to the data root.
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    byte_count BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    policy_name TEXT NOT NULL,
    policy_version BIGINT NOT NULL,
    policy_sha256 TEXT NOT NULL,
    policy_json TEXT NOT NULL,
    checks_json TEXT NOT NULL,
    -- 1 when the checks could not decide everything and a human must look.
    needs_review BIGINT NOT NULL,
    masked_cells BIGINT NOT NULL,
    source_text TEXT,
    context TEXT,
    created_at TEXT NOT NULL,
    submitted_at TEXT,
    decided_at TEXT,
    decided_by TEXT,
    decision_reason TEXT,
    released_path TEXT,
    released_sha256 TEXT
);
CREATE INDEX outputs_by_project ON outputs (project, id);

CREATE TABLE output_reviews (
    id BIGINT PRIMARY KEY,
    output_id BIGINT NOT NULL REFERENCES outputs(id),
    round BIGINT NOT NULL,
    reviewer TEXT NOT NULL,
    -- approve | changes
    decision TEXT NOT NULL,
    comment TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (output_id, round, reviewer)
);

-- Differencing control: the pseudonymised patients behind each person-count
-- cell, as a base64 roaring bitmap, kept for every output so a new cell can be
-- compared with those released before.
CREATE TABLE output_cells (
    output_id BIGINT NOT NULL REFERENCES outputs(id),
    cell TEXT NOT NULL,
    patients BIGINT NOT NULL,
    bitmap TEXT NOT NULL,
    PRIMARY KEY (output_id, cell)
);

-- Per-project disclosure-control settings (preset plus overrides, as JSON).
CREATE TABLE project_disclosure (
    project TEXT PRIMARY KEY REFERENCES projects(name),
    policy_json TEXT NOT NULL,
    two_reviews BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
