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
print(f"{spec['rows']} measurement rows; DuckDB {duckdb.__version__}, {os.cpu_count()} CPUs")
print(f"{'query':<36} {'raw DF ms':>10} {'mdc ms':>10} {'DuckDB ms':>10} {'gov/raw':>8} {'mdc/DuckDB':>10}")
for q in spec["queries"]:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        con.execute(q["sql"]).fetchall()
        best = min(best, (time.perf_counter() - t) * 1000)
    print(f"{q['name']:<36} {q['raw_ms']:>10.1f} {q['governed_ms']:>10.1f} {best:>10.1f} {q['governed_ms']/q['raw_ms']:>8.2f} {q['governed_ms']/best:>10.2f}")
