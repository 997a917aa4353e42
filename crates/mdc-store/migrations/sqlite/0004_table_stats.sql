-- Statistics of a dataset version's tables that the query engine derives once
-- and keeps (issue 6): the most rows any one patient has in the table, which
-- bounds the distinct patients behind a cell from below (rows / max) so most
-- cells need no per-row patient count, and the rows without a patient (when
-- none, a cell's rows are all patients' rows). Versions are immutable, so a
-- value never changes. Written in the SQL both backends share.
CREATE TABLE table_stats (
    dataset TEXT NOT NULL,
    version BIGINT NOT NULL,
    table_name TEXT NOT NULL,
    max_rows_per_patient BIGINT NOT NULL,
    rows_without_patient BIGINT NOT NULL,
    computed_at TEXT NOT NULL,
    PRIMARY KEY (dataset, version, table_name)
);
