"""The peer: DuckDB doing the same transform in SQL on the same Parquet.

person_id -> keyed hash (SHA-256 of key || id, first 60 bits as BIGINT),
measurement_id -> keyed hash, visit_occurrence_id -> keyed hash,
dates -> shifted by a per-patient offset in [-180, 180] derived from a keyed
hash of the person, all other columns copied; written to Parquet (snappy).
"""
import sys
import time

import duckdb

src, dst, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute(f"PRAGMA threads={threads}")
key = "bench-key-0123456789abcdef"
cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{src}')").fetchall()]


def h(expr):
    return f"CAST(('0x' || substr(sha256('{key}' || CAST({expr} AS VARCHAR)), 1, 15)) AS BIGINT)"


off = f"(CAST(('0x' || substr(sha256('{key}ds' || CAST(person_id AS VARCHAR)), 1, 8)) AS BIGINT) % 361 - 180)"
sel = []
for c in cols:
    if c in ("person_id", "measurement_id", "visit_occurrence_id", "provider_id", "visit_detail_id", "measurement_event_id"):
        sel.append(f"{h(c)} AS {c}")
    elif c.endswith("_date"):
        sel.append(f"{c} + CAST({off} AS INTEGER) AS {c}")
    elif c.endswith("_datetime"):
        sel.append(f"{c} + to_days(CAST({off} AS INTEGER)) AS {c}")
    else:
        sel.append(c)
t = time.time()
con.execute(f"COPY (SELECT {', '.join(sel)} FROM read_parquet('{src}')) TO '{dst}' (FORMAT PARQUET, COMPRESSION SNAPPY)")
print(f"{time.time() - t:.3f}")
