//! The SQL guard: before anything is planned, the text must parse as exactly
//! one read-only query. DataFusion's own `SQLOptions` (no DDL, DML, COPY or
//! statements) is applied again at planning, and the planned scans are checked
//! against the granted tables, so the guard is the first of three walls.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::QueryError;

/// Longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// Accepts one `SELECT`/`WITH`/`VALUES` query; refuses everything else with a
/// clear message (and the parser's line and column for syntax errors).
pub fn check(sql: &str) -> Result<(), QueryError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::Forbidden(format!(
            "the query is {} bytes; the limit is {MAX_SQL_BYTES}",
            sql.len()
        )));
    }
    if sql.trim().is_empty() {
        return Err(QueryError::Syntax("empty query".into()));
    }
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| QueryError::Syntax(e.to_string().replace("sql parser error: ", "")))?;
    match statements.as_slice() {
        [] => Err(QueryError::Syntax("empty query".into())),
        [Statement::Query(_)] => Ok(()),
        [other] => Err(QueryError::Forbidden(format!(
            "only SELECT queries are allowed here (got {})",
            statement_kind(other)
        ))),
        _ => Err(QueryError::Forbidden(
            "one query at a time: the text holds several statements".into(),
        )),
    }
}

fn statement_kind(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let kind = words.join(" ").to_ascii_uppercase();
    if kind.is_empty() {
        "an empty statement".into()
    } else {
        kind.chars().take(40).collect()
    }
}

/// Line and column (1-based) of the first occurrence of `needle` in `sql`,
/// for planner errors that name an object but not a place.
pub fn position_of(sql: &str, needle: &str) -> Option<(usize, usize)> {
    let lower = sql.to_ascii_lowercase();
    let at = lower.find(&needle.to_ascii_lowercase())?;
    let before = &sql[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_one_select_passes() {
        assert!(check("SELECT 1").is_ok());
        assert!(check("WITH a AS (SELECT 1 AS x) SELECT x FROM a").is_ok());
        for bad in [
            "DROP TABLE person",
            "COPY person TO '/tmp/x.csv'",
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'",
            "INSERT INTO person VALUES (1)",
            "SET datafusion.execution.batch_size = 1",
            "SELECT 1; SELECT 2",
            "EXPLAIN SELECT 1",
        ] {
            let e = check(bad).unwrap_err();
            assert!(matches!(e, QueryError::Forbidden(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = check("SELECT count(* FROM person").unwrap_err().to_string();
        assert!(e.contains("Line: 1"), "{e}");
        assert_eq!(position_of("SELECT *\nFROM nope", "nope"), Some((2, 6)));
    }

    proptest! {
        // Fuzz: arbitrary text never panics, and whatever passes is a query.
        #[test]
        fn the_guard_never_panics_and_passes_only_queries(s in "\\PC{0,200}") {
            if check(&s).is_ok() {
                let st = Parser::parse_sql(&PostgreSqlDialect {}, &s).unwrap();
                prop_assert!(matches!(st.as_slice(), [Statement::Query(_)]));
            }
        }

        #[test]
        fn statements_glued_after_a_select_are_refused(tail in "(DROP TABLE x|DELETE FROM x|COPY x TO 'y'|CREATE TABLE x (a INT))") {
            let sql = format!("SELECT 1; {tail}");
            prop_assert!(check(&sql).is_err());
        }
    }
}
