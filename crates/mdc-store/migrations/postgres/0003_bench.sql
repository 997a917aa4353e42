-- Accelerator testbed results (issue 8): one row per benchmark, sweep or
-- parity run, with the full result (system description, latencies, energy)
-- as JSON text. Depends only on 0001; written in the SQL both backends share.
CREATE TABLE bench_runs (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    scenario TEXT,
    model TEXT NOT NULL,
    model_sha256 TEXT,
    backend TEXT NOT NULL,
    valid BIGINT NOT NULL,
    headline TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX bench_runs_model ON bench_runs (model_sha256);
