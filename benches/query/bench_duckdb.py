"""DuckDB side of the governed-SQL benchmark (issue 6): the same queries on the
same Parquet files that bench_query.rs wrote, same machine; prints DuckDB times
next to mdc's and the ratio governed/DuckDB. Usage: bench_duckdb.py results.json"""
import json, sys, time, glob, os
import duckdb

spec = json.load(open(sys.argv[1]))
d = spec["dir"]
con = duckdb.connect()
con.execute("CREATE SCHEMA cohort")
con.execute(f"CREATE VIEW cohort.person AS SELECT * FROM read_parquet('{d}/person.parquet')")
con.execute(f"CREATE VIEW cohort.condition_occurrence AS SELECT * FROM read_parquet('{d}/condition_occurrence.parquet')")
con.execute(f"CREATE VIEW cohort.measurement AS SELECT * FROM read_parquet('{d}/measurement-*.parquet')")
print(f"{spec['rows']} measurement rows, {spec.get('persons', 100000)} patients; DuckDB {duckdb.__version__}, {os.cpu_count()} CPUs")
print(f"{'query':<36} {'raw DF':>8} {'mdc':>8} {'session':>8} {'DuckDB':>8} {'mdc/raw':>8} {'mdc/DuckDB':>10} {'session/DuckDB':>14}")
for q in spec["queries"]:
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        con.execute(q["sql"]).fetchall()
        best = min(best, (time.perf_counter() - t) * 1000)
    print(f"{q['name']:<36} {q['raw_ms']:>8.1f} {q['governed_ms']:>8.1f} {q['session_ms']:>8.1f} {best:>8.1f} "
          f"{q['governed_ms']/q['raw_ms']:>8.2f} {q['governed_ms']/best:>10.2f} {q['session_ms']/best:>14.2f}")
print("ms, best of 5; mdc = one-shot governed query (mdc query / HTTP); session = an open pgwire session")
f = spec.get("fixed_ms")
if f:
    print(f"fixed governance cost per query (no rows read): one-shot +{f['governed'] - f['raw']:.2f} ms, session +{f['session'] - f['raw']:.2f} ms over raw DataFusion's {f['raw']:.2f} ms")
