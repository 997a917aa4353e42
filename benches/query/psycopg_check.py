"""psycopg 3 against mdc's PostgreSQL endpoint (issue 6).

Usage: psycopg_check.py PORT USER TOKEN PROJECT [--load N]
Checks: login with the token as password; an aggregate query returns rows with
masked cells as None; information_schema lists only granted tables; row-level
SQL and writes are refused with the server's message. With --load N, N
researchers query at once (one connection each) and every query must succeed.
Set-up: python3 -m venv target/venv-query && target/venv-query/bin/pip install 'psycopg[binary]'
(crates/mdc-server/tests/query_http.rs runs this when that venv exists)."""
import sys, threading
import psycopg

port, user, token, project = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
dsn = f"host=127.0.0.1 port={port} dbname={project} user={user} password={token} sslmode=disable"

def check():
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT region, COUNT(DISTINCT person_id) AS n FROM cohort_person GROUP BY region ORDER BY region"
        ).fetchall()
        assert rows, "no rows"
        assert any(r[1] is None for r in rows), f"expected a masked cell: {rows}"
        assert all(r[1] is None or r[1] >= 5 for r in rows), rows
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
        ).fetchall()
        assert ("cohort", "person") in tables, tables
        for bad, msg in [
            ("SELECT * FROM cohort_person", "row-level results are refused"),
            ("DELETE FROM cohort_person", "only SELECT"),
        ]:
            try:
                conn.execute(bad).fetchall()
                raise AssertionError(f"{bad} was not refused")
            except psycopg.Error as e:
                assert msg in str(e), str(e)
    # Transactions as psycopg opens them by default.
    with psycopg.connect(dsn) as conn:
        n = conn.execute("SELECT COUNT(DISTINCT person_id) FROM cohort.person").fetchone()[0]
        assert n and n > 5, n
    print("psycopg: ok")

def load(n):
    errors = []
    def one(i):
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    f"SELECT measurement_concept_id, COUNT(*) AS n FROM cohort.measurement WHERE measurement_year >= {2015 + i % 5} GROUP BY 1"
                ).fetchall()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert not errors, errors
    print(f"psycopg load: {n} concurrent researchers, 0 errors")

check()
if "--load" in sys.argv:
    load(int(sys.argv[sys.argv.index("--load") + 1]))
