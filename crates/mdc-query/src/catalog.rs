//! Catalog answers for SQL clients (psql, psycopg, DBeaver, R DBI): the
//! `information_schema` and `pg_catalog` tables they ask about, built from the
//! project's *granted* tables only and queried with DataFusion. They hold
//! names and types, never data, so they are not outputs.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::disclosure::Value;
use crate::engine::Session;
use crate::QueryError;

/// Names a catalog question uses; such text is answered here, not as data.
const CATALOG_WORDS: &[&str] = &[
    "pg_catalog",
    "information_schema",
    "pg_class",
    "pg_namespace",
    "pg_type",
    "pg_attribute",
    "pg_tables",
    "pg_database",
    "pg_settings",
    "version()",
    "current_database",
    "current_schema",
    "current_user",
    "session_user",
];

pub fn is_catalog_query(sql: &str) -> bool {
    let l = sql.to_ascii_lowercase();
    CATALOG_WORDS.iter().any(|w| l.contains(w))
}

/// A catalog answer: column names and types, and rows.
pub type Answer = (Vec<(String, DataType)>, Vec<Vec<Value>>);

fn text(rows: &[Vec<String>], names: &[&str]) -> Result<RecordBatch, QueryError> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let cols: Vec<ArrayRef> = (0..names.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.get(i).cloned().unwrap_or_default()),
            )) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(schema, cols).map_err(|e| QueryError::Internal(e.to_string()))
}

fn pg_type_name(dt: &str) -> &'static str {
    match dt {
        "Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64" => "bigint",
        "Float16" | "Float32" | "Float64" => "double precision",
        "Boolean" => "boolean",
        d if d.starts_with("Decimal") => "double precision",
        d if d.starts_with("Date") => "date",
        d if d.starts_with("Timestamp") => "timestamp",
        _ => "text",
    }
}

/// (schema, table, columns as (name, arrow type, nullable)).
type Relation = (String, String, Vec<(String, String, bool)>);

/// Every visible relation of the session, aliases included.
fn relations(session: &Session) -> Vec<Relation> {
    let mut out = Vec::new();
    for t in &session.tables {
        out.push((t.schema.clone(), t.table.clone(), t.columns.clone()));
        for a in &t.aliases {
            out.push(("public".to_owned(), a.clone(), t.columns.clone()));
        }
    }
    out
}

fn register(
    ctx: &SessionContext,
    schema: &str,
    name: &str,
    batch: RecordBatch,
) -> Result<(), QueryError> {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    ctx.register_table(
        datafusion::common::TableReference::partial(schema.to_owned(), name.to_owned()),
        Arc::new(table),
    )
    .map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(())
}

/// Answers a catalog question for the session's project.
pub async fn answer(session: &Session, sql: &str, user: &str) -> Result<Answer, QueryError> {
    // The same wall as data queries: one SELECT, no DDL/DML/COPY at planning.
    crate::guard::check(sql)?;
    let lower = sql.to_ascii_lowercase();
    let rels = relations(session);
    // psql's \dt: answered directly (its SQL uses functions we do not provide).
    if lower.contains("pg_catalog.pg_class c")
        && lower.contains("relkind")
        && !lower.contains("attname")
    {
        let cols = ["Schema", "Name", "Type", "Owner"];
        let rows = rels
            .iter()
            .map(|(s, t, _)| {
                vec![
                    Value::Text(s.clone()),
                    Value::Text(t.clone()),
                    Value::Text("view".into()),
                    Value::Text("mdc".into()),
                ]
            })
            .collect();
        return Ok((
            cols.iter()
                .map(|c| ((*c).to_owned(), DataType::Utf8))
                .collect(),
            rows,
        ));
    }
    let ctx = SessionContext::new();
    let cat = ctx
        .catalog("datafusion")
        .ok_or_else(|| QueryError::Internal("no default catalog".into()))?;
    for s in ["pg_catalog", "information_schema"] {
        let _ = cat.register_schema(s, Arc::new(MemorySchemaProvider::new()));
    }
    let mut schemas: Vec<String> = rels.iter().map(|(s, _, _)| s.clone()).collect();
    schemas.sort();
    schemas.dedup();
    let tables: Vec<Vec<String>> = rels
        .iter()
        .map(|(s, t, _)| vec![session.project.clone(), s.clone(), t.clone(), "VIEW".into()])
        .collect();
    let mut columns = Vec::new();
    for (s, t, cs) in &rels {
        for (i, (c, dt, nullable)) in cs.iter().enumerate() {
            columns.push(vec![
                session.project.clone(),
                s.clone(),
                t.clone(),
                c.clone(),
                (i + 1).to_string(),
                pg_type_name(dt).to_owned(),
                if *nullable { "YES" } else { "NO" }.to_owned(),
            ]);
        }
    }
    let info_tables = text(
        &tables,
        &["table_catalog", "table_schema", "table_name", "table_type"],
    )?;
    let mut info_columns = text(
        &columns,
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "data_type",
            "is_nullable",
        ],
    )?;
    // ordinal_position is an integer in PostgreSQL.
    if let Ok(pos) = datafusion::arrow::compute::cast(info_columns.column(4), &DataType::Int32) {
        let mut cols: Vec<ArrayRef> = info_columns.columns().to_vec();
        cols[4] = pos;
        let mut fields: Vec<Field> = info_columns
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[4] = Field::new("ordinal_position", DataType::Int32, true);
        info_columns = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .map_err(|e| QueryError::Internal(e.to_string()))?;
    }
    let schemata = text(
        &schemas
            .iter()
            .map(|s| vec![session.project.clone(), s.clone()])
            .collect::<Vec<_>>(),
        &["catalog_name", "schema_name"],
    )?;
    register(&ctx, "information_schema", "tables", info_tables)?;
    register(&ctx, "information_schema", "columns", info_columns)?;
    register(&ctx, "information_schema", "schemata", schemata)?;
    // pg_catalog: namespaces, classes, attributes, tables; oids are positions.
    let ns_oid = |s: &str| 2200 + schemas.iter().position(|x| x == s).unwrap_or(0) as i64;
    let pg_namespace = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("oid", DataType::Int64, false),
            Field::new("nspname", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(
                schemas.iter().map(|s| ns_oid(s)),
            )),
            Arc::new(StringArray::from_iter_values(schemas.iter().cloned())),
        ],
    )
    .map_err(|e| QueryError::Internal(e.to_string()))?;
    let pg_class = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("oid", DataType::Int64, false),
            Field::new("relname", DataType::Utf8, false),
            Field::new("relnamespace", DataType::Int64, false),
            Field::new("relkind", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(
                (0..rels.len()).map(|i| 16384 + i as i64),
            )),
            Arc::new(StringArray::from_iter_values(
                rels.iter().map(|r| r.1.clone()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rels.iter().map(|r| ns_oid(&r.0)),
            )),
            Arc::new(StringArray::from_iter_values(
                rels.iter().map(|_| "v".to_owned()),
            )),
        ],
    )
    .map_err(|e| QueryError::Internal(e.to_string()))?;
    let mut att = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (_, _, cs)) in rels.iter().enumerate() {
        for (j, (c, dt, _)) in cs.iter().enumerate() {
            att.0.push(16384 + i as i64);
            att.1.push(c.clone());
            att.2.push(pg_type_name(dt).to_owned());
            att.3.push(j as i32 + 1);
        }
    }
    let pg_attribute = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("attrelid", DataType::Int64, false),
            Field::new("attname", DataType::Utf8, false),
            Field::new("atttypname", DataType::Utf8, false),
            Field::new("attnum", DataType::Int32, false),
        ])),
        vec![
            Arc::new(Int64Array::from(att.0)),
            Arc::new(StringArray::from(att.1)),
            Arc::new(StringArray::from(att.2)),
            Arc::new(Int32Array::from(att.3)),
        ],
    )
    .map_err(|e| QueryError::Internal(e.to_string()))?;
    let pg_tables = text(
        &rels
            .iter()
            .map(|(s, t, _)| vec![s.clone(), t.clone(), "mdc".into()])
            .collect::<Vec<_>>(),
        &["schemaname", "tablename", "tableowner"],
    )?;
    let pg_database = text(&[vec![session.project.clone()]], &["datname"])?;
    for (name, batch) in [
        ("pg_namespace", pg_namespace),
        ("pg_class", pg_class),
        ("pg_attribute", pg_attribute),
        ("pg_tables", pg_tables),
        ("pg_views", text(&[], &["schemaname", "viewname"])?),
        ("pg_database", pg_database),
    ] {
        register(&ctx, "pg_catalog", name, batch.clone())?;
        register(&ctx, "public", name, batch)?;
    }
    // A few session functions clients call, as literal text.
    let sql = sql
        .replace(
            "pg_catalog.version()",
            "'PostgreSQL 16.0 (mdc governed SQL)'",
        )
        .replace("version()", "'PostgreSQL 16.0 (mdc governed SQL)'")
        .replace("current_database()", &format!("'{}'", session.project))
        .replace("current_schema()", "'public'")
        .replace("current_user", &format!("'{}'", user.replace('\'', "")))
        .replace("session_user", &format!("'{}'", user.replace('\'', "")));
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(&sql, options)
        .await
        .map_err(|e| QueryError::Plan(format!("catalog query not supported here: {e}")))?;
    let schema = df.schema().clone();
    let batches = df
        .collect()
        .await
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    let names: Vec<(String, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let mut rows = Vec::new();
    for b in &batches {
        let cols: Vec<Vec<Value>> = b
            .columns()
            .iter()
            .map(crate::engine::column_values)
            .collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            rows.push(
                cols.iter()
                    .map(|c| c.get(r).cloned().unwrap_or(Value::Null))
                    .collect(),
            );
        }
    }
    Ok((names, rows))
}
