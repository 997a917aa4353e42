//! PostgreSQL-only SQL in catalog questions, made plannable by DataFusion.
//!
//! psql's `\d` family (and other clients' introspection) asks the catalog with
//! syntax and functions that only PostgreSQL has: `OPERATOR(pg_catalog.~)`,
//! `COLLATE pg_catalog.default`, `::pg_catalog.regclass`, `pg_catalog.`-qualified
//! function names, `ARRAY(SELECT …)`, scalar subqueries over catalogs that mdc
//! keeps empty (`pg_attrdef`, `pg_collation`, `pg_roles`, …). This module
//! rewrites the parsed query (never the text, so string literals are left
//! alone), names output columns the way PostgreSQL does, tells whether a query
//! can only return no rows, and provides the `pg_catalog` functions those
//! queries call as DataFusion scalar functions over the session's catalog.
//!
//! It sees catalog tables only: `catalog.rs` plans the result in a DataFusion
//! context that holds nothing else.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType as SqlType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, JoinOperator, ObjectName,
    ObjectNamePart, Query, Select, SelectItem, SetExpr, SetOperator, Statement, TableFactor,
    TableWithJoins, Value, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::QueryError;

/// A catalog question ready for DataFusion.
pub(super) struct Prepared {
    /// The rewritten query.
    pub statement: Statement,
    /// Output column names as PostgreSQL gives them (`None` with a `*`).
    pub names: Option<Vec<String>>,
    /// The query provably returns no rows (it reads a catalog mdc keeps empty).
    pub empty: bool,
}

/// What the rewrite needs to know about the session.
pub(super) struct Context<'a> {
    pub project: &'a str,
    pub user: &'a str,
    /// Catalog tables that have no rows (`pg_policy`, `pg_index`, …).
    pub empty_tables: &'a HashSet<&'static str>,
    /// Columns that are NULL in every row of the populated tables.
    pub null_columns: &'a [&'static str],
}

/// Parses and rewrites one catalog question.
pub(super) fn prepare(sql: &str, cx: &Context<'_>) -> Result<Prepared, QueryError> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| QueryError::Syntax(e.to_string().replace("sql parser error: ", "")))?;
    let (Some(mut statement @ Statement::Query(_)), true) =
        (statements.pop(), statements.is_empty())
    else {
        return Err(QueryError::Forbidden(
            "only one SELECT query is allowed here".into(),
        ));
    };
    let names = match &statement {
        Statement::Query(q) => leftmost_select(&q.body).and_then(output_names),
        _ => None,
    };
    let mut rewriter = Rewriter { cx, error: None };
    let _ = VisitMut::visit(&mut statement, &mut rewriter);
    if let Some(e) = rewriter.error {
        return Err(QueryError::Plan(e));
    }
    let empty = match &statement {
        Statement::Query(q) => query_is_empty(q, cx),
        _ => false,
    };
    Ok(Prepared {
        statement,
        names,
        empty,
    })
}

/// The last part of an object name, lower-cased (`pg_catalog.pg_class` → `pg_class`).
pub(super) fn last_part(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(i)) => i.value.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// The first part of a qualified name, lower-cased (empty for a bare name).
pub(super) fn schema_part(name: &ObjectName) -> String {
    if name.0.len() < 2 {
        return String::new();
    }
    match name.0.first() {
        Some(ObjectNamePart::Identifier(i)) => i.value.to_ascii_lowercase(),
        _ => String::new(),
    }
}

fn is_pg_catalog_or_bare(name: &ObjectName) -> bool {
    match name.0.len() {
        1 => true,
        2 => schema_part(name) == "pg_catalog",
        _ => false,
    }
}

fn null() -> Expr {
    Expr::value(Value::Null)
}

fn text_lit(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.to_owned()))
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn cast_to(expr: Expr, data_type: SqlType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

struct Rewriter<'a, 'b> {
    cx: &'a Context<'b>,
    error: Option<String>,
}

impl VisitorMut for Rewriter<'_, '_> {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        // DataFusion wants distinct output names; PostgreSQL does not. Name
        // every computed column as PostgreSQL would, made unique here (the
        // names the client sees are restored by `catalog.rs`).
        let mut used: HashSet<String> = HashSet::new();
        for item in &select.projection {
            match item {
                SelectItem::ExprWithAlias { alias, .. } => {
                    used.insert(alias.value.clone());
                }
                SelectItem::UnnamedExpr(Expr::Identifier(i)) => {
                    used.insert(i.value.to_ascii_lowercase());
                }
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                    if let Some(i) = parts.last() {
                        used.insert(i.value.to_ascii_lowercase());
                    }
                }
                _ => {}
            }
        }
        for item in &mut select.projection {
            let SelectItem::UnnamedExpr(expr) = item else {
                continue;
            };
            if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                continue;
            }
            let base = figure_name(expr).0;
            let mut name = base.clone();
            let mut n = 1;
            while used.contains(&name) {
                n += 1;
                name = format!("{base}_{n}");
            }
            used.insert(name.clone());
            let expr = std::mem::replace(expr, null());
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', name),
            };
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match self.rewrite(expr) {
            Ok(Some(new)) => *expr = new,
            Ok(None) => {}
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

impl Rewriter<'_, '_> {
    fn rewrite(&self, expr: &Expr) -> Result<Option<Expr>, String> {
        Ok(match expr {
            // `x OPERATOR(pg_catalog.~) y` → `x ~ y`.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::PGCustomBinaryOperator(parts),
                right,
            } => {
                let symbol = parts.last().map(String::as_str).unwrap_or_default();
                let op = plain_operator(symbol).ok_or_else(|| {
                    format!(
                        "operator OPERATOR({}) is not supported here",
                        parts.join(".")
                    )
                })?;
                Some(Expr::BinaryOp {
                    left: left.clone(),
                    op,
                    right: right.clone(),
                })
            }
            // `… COLLATE pg_catalog.default`: mdc compares names byte-wise.
            Expr::Collate { expr, .. } => Some((**expr).clone()),
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } => cast_rewrite(inner, data_type),
            Expr::Function(f) => self.function_rewrite(f),
            Expr::Subquery(q) if query_is_empty(q, self.cx) => Some(null()),
            Expr::Subquery(q) => one_row(q).map(|q| Expr::Subquery(Box::new(q))),
            Expr::Exists { subquery, negated } if query_is_empty(subquery, self.cx) => {
                Some(Expr::value(Value::Boolean(*negated)))
            }
            Expr::InSubquery {
                subquery, negated, ..
            } if query_is_empty(subquery, self.cx) => Some(Expr::value(Value::Boolean(*negated))),
            _ => None,
        })
    }

    fn function_rewrite(&self, f: &Function) -> Option<Expr> {
        let name = last_part(&f.name);
        if !is_pg_catalog_or_bare(&f.name) {
            return None;
        }
        let no_args = match &f.args {
            FunctionArguments::None => true,
            FunctionArguments::List(l) => l.args.is_empty(),
            FunctionArguments::Subquery(_) => false,
        };
        // Session facts, as literals.
        if no_args {
            match name.as_str() {
                "version" => return Some(text_lit(super::VERSION)),
                "current_database" | "current_catalog" => return Some(text_lit(self.cx.project)),
                "current_schema" => return Some(text_lit("public")),
                "current_user" | "session_user" | "user" | "current_role" => {
                    return Some(text_lit(self.cx.user))
                }
                _ => {}
            }
        }
        // `ARRAY(SELECT … FROM <empty catalog>)` is NULL here (PostgreSQL
        // gives an empty array; every client shows both as nothing).
        if let FunctionArguments::Subquery(q) = &f.args {
            if name == "array" && query_is_empty(q, self.cx) {
                return Some(null());
            }
            return None;
        }
        if f.name.0.len() == 2 {
            let mut f = f.clone();
            f.name = ObjectName::from(vec![Ident::new(name)]);
            return Some(Expr::Function(f));
        }
        None
    }
}

/// DataFusion plans a correlated scalar subquery only when it aggregates.
/// psql's look up one row by oid (`(SELECT c.relkind = 'c' FROM pg_class c
/// WHERE c.oid = t.typrelid)`), so `max(…)` of it is the same value.
fn one_row(q: &Query) -> Option<Query> {
    if q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() || q.with.is_some() {
        return None;
    }
    let SetExpr::Select(select) = &*q.body else {
        return None;
    };
    let grouped = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => !exprs.is_empty(),
        GroupByExpr::All(_) => true,
    };
    if grouped || select.distinct.is_some() || select.projection.len() != 1 || aggregates(select) {
        return None;
    }
    let mut q = q.clone();
    let SetExpr::Select(select) = &mut *q.body else {
        return None;
    };
    let item = select.projection.first_mut()?;
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            let inner = std::mem::replace(e, null());
            *e = call("max", vec![inner]);
        }
        _ => return None,
    }
    Some(q)
}

fn plain_operator(symbol: &str) -> Option<BinaryOperator> {
    Some(match symbol {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "~~*" => BinaryOperator::PGILikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "!~~*" => BinaryOperator::PGNotILikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "||" => BinaryOperator::StringConcat,
        _ => return None,
    })
}

/// The PostgreSQL object-identifier types and a few names DataFusion lacks.
fn cast_rewrite(inner: &Expr, data_type: &SqlType) -> Option<Expr> {
    let type_name = match data_type {
        SqlType::Regclass => "regclass".to_owned(),
        SqlType::Custom(name, modifiers) if modifiers.is_empty() && is_pg_catalog_or_bare(name) => {
            last_part(name)
        }
        _ => return None,
    };
    let inner = inner.clone();
    Some(match type_name.as_str() {
        "regclass" => call(FN_REGCLASS, vec![inner]),
        "regtype" => call("format_type", vec![inner, null()]),
        "regnamespace" => call(FN_REGNAMESPACE, vec![inner]),
        "regrole" => call("pg_get_userbyid", vec![inner]),
        "regproc" | "regprocedure" | "regoper" | "regoperator" | "regconfig" | "regdictionary" => {
            cast_to(inner, SqlType::Text)
        }
        "oid" | "xid" | "cid" | "tid" | "int2" | "int4" | "int8" => {
            cast_to(inner, SqlType::BigInt(None))
        }
        "float4" | "float8" => cast_to(inner, SqlType::DoublePrecision),
        "bool" => cast_to(inner, SqlType::Boolean),
        "text" | "name" | "char" | "bpchar" | "varchar" => cast_to(inner, SqlType::Text),
        _ => return None,
    })
}

/// PostgreSQL's name for an unnamed output column (its `FigureColname`), and
/// whether the name is strong (an identifier or function) or a fallback.
fn figure_name(expr: &Expr) -> (String, bool) {
    match expr {
        Expr::Identifier(i) => (i.value.to_ascii_lowercase(), true),
        Expr::CompoundIdentifier(parts) => (
            parts
                .last()
                .map_or_else(|| "?column?".to_owned(), |i| i.value.to_ascii_lowercase()),
            true,
        ),
        Expr::Function(f) => (last_part(&f.name), true),
        Expr::Cast {
            expr, data_type, ..
        } => {
            let (n, strong) = figure_name(expr);
            if strong {
                (n, true)
            } else {
                let t = match data_type {
                    SqlType::Custom(name, _) => last_part(name),
                    other => other.to_string().to_ascii_lowercase(),
                };
                (t, false)
            }
        }
        Expr::Nested(e) | Expr::Collate { expr: e, .. } => figure_name(e),
        Expr::Case { .. } => ("case".into(), false),
        Expr::Exists { .. } => ("exists".into(), true),
        Expr::Subquery(q) => leftmost_select(&q.body)
            .and_then(|s| s.projection.first())
            .map_or_else(
                || ("?column?".into(), false),
                |item| match item {
                    SelectItem::ExprWithAlias { alias, .. } => (alias.value.clone(), true),
                    SelectItem::UnnamedExpr(e) => figure_name(e),
                    _ => ("?column?".into(), false),
                },
            ),
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => ("bool".into(), false),
        _ => ("?column?".into(), false),
    }
}

/// Output names of a SELECT list, or `None` when it has a `*`.
fn output_names(select: &Select) -> Option<Vec<String>> {
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(figure_name(e).0),
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::ExprWithAliases { aliases, .. } => aliases.first().map(|a| a.value.clone()),
            _ => None,
        })
        .collect()
}

fn leftmost_select(body: &SetExpr) -> Option<&Select> {
    match body {
        SetExpr::Select(s) => Some(s),
        SetExpr::Query(q) => leftmost_select(&q.body),
        SetExpr::SetOperation { left, .. } => leftmost_select(left),
        _ => None,
    }
}

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "string_agg",
    "array_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "bit_and",
    "bit_or",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
];

/// Whether a SELECT without GROUP BY aggregates (and so returns one row even
/// over no input). Aggregates inside subqueries of the SELECT list do not count.
fn aggregates(select: &Select) -> bool {
    if select.having.is_some() {
        return true;
    }
    let mut finder = AggregateFinder { depth: 0 };
    select
        .projection
        .iter()
        .any(|item| Visit::visit(item, &mut finder).is_break())
}

struct AggregateFinder {
    depth: usize,
}

impl Visitor for AggregateFinder {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            if self.depth == 0
                && f.over.is_none()
                && AGGREGATES.contains(&last_part(&f.name).as_str())
            {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// True when the query can only return no rows because it reads (by inner
/// join) a catalog that mdc keeps empty. Conservative: false when unsure.
pub(super) fn query_is_empty(q: &Query, cx: &Context<'_>) -> bool {
    set_is_empty(&q.body, cx)
}

fn set_is_empty(body: &SetExpr, cx: &Context<'_>) -> bool {
    match body {
        SetExpr::Select(s) => select_is_empty(s, cx),
        SetExpr::Query(q) => query_is_empty(q, cx),
        SetExpr::SetOperation {
            op, left, right, ..
        } => match op {
            SetOperator::Union => set_is_empty(left, cx) && set_is_empty(right, cx),
            SetOperator::Intersect => set_is_empty(left, cx) || set_is_empty(right, cx),
            SetOperator::Except | SetOperator::Minus => set_is_empty(left, cx),
        },
        _ => false,
    }
}

fn select_is_empty(s: &Select, cx: &Context<'_>) -> bool {
    let grouped = match &s.group_by {
        GroupByExpr::Expressions(exprs, _) => !exprs.is_empty(),
        GroupByExpr::All(_) => true,
    };
    if !grouped && aggregates(s) {
        return false;
    }
    let mut conjuncts = Vec::new();
    if let Some(w) = &s.selection {
        and_terms(w, &mut conjuncts);
    }
    let never = conjuncts.iter().any(|c| match c {
        Expr::IsNotNull(e) => match &**e {
            Expr::Identifier(i) => cx.null_columns.contains(&i.value.as_str()),
            Expr::CompoundIdentifier(p) => p
                .last()
                .is_some_and(|i| cx.null_columns.contains(&i.value.as_str())),
            _ => false,
        },
        _ => false,
    });
    never || s.from.iter().any(|t| joins_are_empty(t, cx))
}

fn and_terms<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            and_terms(left, out);
            and_terms(right, out);
        }
        Expr::Nested(inner) => and_terms(inner, out),
        other => out.push(other),
    }
}

fn joins_are_empty(t: &TableWithJoins, cx: &Context<'_>) -> bool {
    let mut is_empty = factor_is_empty(&t.relation, cx);
    for j in &t.joins {
        let right = factor_is_empty(&j.relation, cx);
        is_empty = match &j.join_operator {
            JoinOperator::Join(_)
            | JoinOperator::Inner(_)
            | JoinOperator::CrossJoin(_)
            | JoinOperator::Semi(_)
            | JoinOperator::LeftSemi(_)
            | JoinOperator::StraightJoin(_)
            | JoinOperator::CrossApply => is_empty || right,
            JoinOperator::Left(_)
            | JoinOperator::LeftOuter(_)
            | JoinOperator::Anti(_)
            | JoinOperator::LeftAnti(_)
            | JoinOperator::OuterApply => is_empty,
            JoinOperator::Right(_) | JoinOperator::RightOuter(_) => right,
            JoinOperator::FullOuter(_) => is_empty && right,
            _ => false,
        };
    }
    is_empty
}

fn factor_is_empty(f: &TableFactor, cx: &Context<'_>) -> bool {
    match f {
        TableFactor::Table { name, args, .. } => {
            let last = last_part(name);
            let catalog = matches!(schema_part(name).as_str(), "" | "pg_catalog");
            match args {
                None => catalog && cx.empty_tables.contains(last.as_str()),
                // Every array in mdc's catalog is NULL: unnesting one gives nothing.
                Some(a) => catalog && last == "unnest" && args_are_columns(&a.args),
            }
        }
        TableFactor::UNNEST { array_exprs, .. } => array_exprs
            .iter()
            .all(|e| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))),
        TableFactor::Derived { subquery, .. } => query_is_empty(subquery, cx),
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => joins_are_empty(table_with_joins, cx),
        _ => false,
    }
}

fn args_are_columns(args: &[FunctionArg]) -> bool {
    !args.is_empty()
        && args.iter().all(|a| {
            matches!(
                a,
                FunctionArg::Unnamed(FunctionArgExpr::Expr(
                    Expr::Identifier(_) | Expr::CompoundIdentifier(_)
                ))
            )
        })
}

// ---------------------------------------------------------------------------
// pg_catalog functions over the session's catalog.

/// `x::regclass` and `x::regnamespace` become these.
pub(super) const FN_REGCLASS: &str = "mdc_regclass";
pub(super) const FN_REGNAMESPACE: &str = "mdc_regnamespace";

/// What the functions look up: built once per question from the same rows as
/// `pg_class`, `pg_namespace` and `pg_type`.
#[derive(Debug, Default)]
pub(super) struct Lookup {
    /// Relation oids on the search path (`public`).
    pub visible: HashSet<i64>,
    /// Relation oid → the text of `oid::regclass` (schema-qualified unless visible).
    pub regclass: HashMap<i64, String>,
    /// `name` or `schema.name` → relation oid.
    pub by_name: HashMap<String, i64>,
    /// Namespace oid → name.
    pub namespaces: HashMap<i64, String>,
    /// Type oid → `format_type` text.
    pub types: HashMap<i64, &'static str>,
    /// Owner shown for every object.
    pub owner: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    TableIsVisible,
    FormatType,
    UserById,
    RegClass,
    RegNamespace,
    /// Always false (`pg_relation_is_publishable`).
    False,
    /// True for any object (`pg_type_is_visible`: everything else mdc lists
    /// lives in `pg_catalog`, which is always on the search path).
    True,
    /// Always NULL text: definitions, descriptions, sizes mdc does not show.
    NullText,
    /// `array_to_string`: every array here is NULL or already text.
    ArrayToString,
    EncodingToChar,
}

const FUNCTIONS: &[(&str, Kind)] = &[
    ("pg_table_is_visible", Kind::TableIsVisible),
    ("format_type", Kind::FormatType),
    ("pg_get_userbyid", Kind::UserById),
    (FN_REGCLASS, Kind::RegClass),
    (FN_REGNAMESPACE, Kind::RegNamespace),
    ("pg_relation_is_publishable", Kind::False),
    ("pg_type_is_visible", Kind::True),
    ("pg_function_is_visible", Kind::True),
    ("pg_operator_is_visible", Kind::True),
    ("pg_opclass_is_visible", Kind::True),
    ("pg_opfamily_is_visible", Kind::True),
    ("pg_collation_is_visible", Kind::True),
    ("pg_conversion_is_visible", Kind::True),
    ("pg_statistics_obj_is_visible", Kind::True),
    ("pg_ts_config_is_visible", Kind::True),
    ("pg_ts_dict_is_visible", Kind::True),
    ("pg_ts_parser_is_visible", Kind::True),
    ("pg_ts_template_is_visible", Kind::True),
    ("pg_get_expr", Kind::NullText),
    ("pg_get_statisticsobjdef_columns", Kind::NullText),
    ("pg_get_viewdef", Kind::NullText),
    ("pg_get_indexdef", Kind::NullText),
    ("pg_get_constraintdef", Kind::NullText),
    ("pg_get_triggerdef", Kind::NullText),
    ("pg_get_ruledef", Kind::NullText),
    ("pg_get_partkeydef", Kind::NullText),
    ("pg_get_function_arguments", Kind::NullText),
    ("pg_get_function_result", Kind::NullText),
    ("pg_get_serial_sequence", Kind::NullText),
    ("obj_description", Kind::NullText),
    ("col_description", Kind::NullText),
    ("shobj_description", Kind::NullText),
    ("pg_table_size", Kind::NullText),
    ("pg_relation_size", Kind::NullText),
    ("pg_total_relation_size", Kind::NullText),
    ("pg_size_pretty", Kind::NullText),
    ("pg_tablespace_location", Kind::NullText),
    ("array_to_string", Kind::ArrayToString),
    ("pg_encoding_to_char", Kind::EncodingToChar),
];

/// The scalar functions to register in the catalog's DataFusion context.
pub(super) fn functions(lookup: &Arc<Lookup>) -> Vec<ScalarUDF> {
    FUNCTIONS
        .iter()
        .map(|(name, kind)| {
            ScalarUDF::new_from_impl(PgFunction {
                name,
                kind: *kind,
                signature: Signature::one_of(
                    vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                    Volatility::Immutable,
                ),
                lookup: lookup.clone(),
            })
        })
        .collect()
}

#[derive(Debug)]
struct PgFunction {
    name: &'static str,
    kind: Kind,
    signature: Signature,
    lookup: Arc<Lookup>,
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.lookup, &other.lookup)
    }
}

impl Eq for PgFunction {}

impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        (Arc::as_ptr(&self.lookup) as usize).hash(state);
    }
}

fn as_oids(a: &ArrayRef) -> DfResult<Int64Array> {
    let c = cast(a, &DataType::Int64)?;
    c.as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("oid cast".into()))
}

fn as_texts(a: &ArrayRef) -> DfResult<StringArray> {
    let c = cast(a, &DataType::Utf8)?;
    c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("text cast".into()))
}

impl PgFunction {
    fn first_text_input(arg_types: &[DataType]) -> bool {
        matches!(
            arg_types.first(),
            Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        )
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            Kind::TableIsVisible | Kind::False | Kind::True => DataType::Boolean,
            // 'name'::regclass is an oid; oid::regclass reads as a name.
            Kind::RegClass if Self::first_text_input(arg_types) => DataType::Int64,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let text_input = args
            .arg_fields
            .first()
            .is_some_and(|f| Self::first_text_input(&[f.data_type().clone()]));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let first = arrays.first();
        let l = &self.lookup;
        let out: ArrayRef = match self.kind {
            Kind::TableIsVisible => {
                let oids = first.map(as_oids).transpose()?;
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let o = oids.as_ref()?;
                            (!o.is_null(i)).then(|| l.visible.contains(&o.value(i)))
                        })
                        .collect::<BooleanArray>(),
                )
            }
            Kind::False => Arc::new((0..rows).map(|_| Some(false)).collect::<BooleanArray>()),
            Kind::True => {
                let oids = first.map(as_oids).transpose()?;
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let o = oids.as_ref()?;
                            (!o.is_null(i)).then_some(true)
                        })
                        .collect::<BooleanArray>(),
                )
            }
            Kind::FormatType => {
                let oids = first.map(as_oids).transpose()?;
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let o = oids.as_ref()?;
                            (!o.is_null(i)).then(|| {
                                l.types
                                    .get(&o.value(i))
                                    .copied()
                                    .unwrap_or("???")
                                    .to_owned()
                            })
                        })
                        .collect::<StringArray>(),
                )
            }
            Kind::UserById => {
                let oids = first.map(as_oids).transpose()?;
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let o = oids.as_ref()?;
                            (!o.is_null(i)).then(|| l.owner.clone())
                        })
                        .collect::<StringArray>(),
                )
            }
            Kind::RegClass if text_input => {
                let names = first.map(as_texts).transpose()?;
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let n = names.as_ref()?;
                            if n.is_null(i) {
                                return None;
                            }
                            let key = n.value(i).replace('"', "").to_ascii_lowercase();
                            l.by_name.get(&key).copied()
                        })
                        .collect::<Int64Array>(),
                )
            }
            Kind::RegClass => {
                let oids = first.map(as_oids).transpose()?;
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let o = oids.as_ref()?;
                            if o.is_null(i) {
                                return None;
                            }
                            let v = o.value(i);
                            Some(l.regclass.get(&v).cloned().unwrap_or_else(|| v.to_string()))
                        })
                        .collect::<StringArray>(),
                )
            }
            Kind::RegNamespace => {
                let oids = first.map(as_oids).transpose()?;
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let o = oids.as_ref()?;
                            if o.is_null(i) {
                                return None;
                            }
                            let v = o.value(i);
                            Some(
                                l.namespaces
                                    .get(&v)
                                    .cloned()
                                    .unwrap_or_else(|| v.to_string()),
                            )
                        })
                        .collect::<StringArray>(),
                )
            }
            Kind::NullText => Arc::new((0..rows).map(|_| None::<String>).collect::<StringArray>()),
            Kind::ArrayToString => match first {
                Some(a) if matches!(a.data_type(), DataType::Utf8 | DataType::Null) => {
                    let t = as_texts(a)?;
                    Arc::new(t)
                }
                _ => Arc::new((0..rows).map(|_| None::<String>).collect::<StringArray>()),
            },
            Kind::EncodingToChar => {
                Arc::new((0..rows).map(|_| Some("UTF8")).collect::<StringArray>())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn empty() -> HashSet<&'static str> {
        [
            "pg_policy",
            "pg_attrdef",
            "pg_collation",
            "pg_roles",
            "pg_inherits",
        ]
        .into_iter()
        .collect()
    }

    fn rewrite(sql: &str) -> Prepared {
        let e = empty();
        prepare(
            sql,
            &Context {
                project: "study",
                user: "kim",
                empty_tables: &e,
                null_columns: &["relacl"],
            },
        )
        .unwrap()
    }

    #[test]
    fn psql_syntax_becomes_plain_sql() {
        let p = rewrite(
            "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c \
             LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname OPERATOR(pg_catalog.~) '^(person)$' COLLATE pg_catalog.default \
             AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3",
        );
        let sql = p.statement.to_string();
        assert!(sql.contains("c.relname ~ '^(person)$'"), "{sql}");
        assert!(sql.contains(" pg_table_is_visible(c.oid)"), "{sql}");
        assert!(!sql.contains("COLLATE"), "{sql}");
        assert_eq!(p.names.unwrap(), ["oid", "nspname", "relname"]);
        assert!(!p.empty);
    }

    #[test]
    fn casts_literals_and_session_functions() {
        let p = rewrite(
            "SELECT c.oid::pg_catalog.regclass, 'pg_catalog.text'::pg_catalog.text, \
             x::pg_catalog.regtype::pg_catalog.text, current_user, pg_catalog.version(), \
             current_database() FROM pg_catalog.pg_class c",
        );
        let sql = p.statement.to_string();
        assert!(sql.contains("mdc_regclass(c.oid)"), "{sql}");
        assert!(
            sql.contains("'pg_catalog.text'"),
            "a literal is left alone: {sql}"
        );
        assert!(sql.contains("CAST(format_type(x, NULL) AS TEXT)"), "{sql}");
        assert!(sql.contains("'kim'") && sql.contains("'study'"), "{sql}");
        assert!(sql.contains("'PostgreSQL"), "{sql}");
        assert_eq!(
            p.names.unwrap(),
            [
                "oid",
                "text",
                "x",
                "current_user",
                "version",
                "current_database"
            ]
        );
    }

    #[test]
    fn subqueries_over_empty_catalogs_are_null_and_queries_over_them_empty() {
        let p = rewrite(
            "SELECT a.attname, (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) \
             FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid), \
             (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t \
             WHERE c.oid = a.attcollation) AS attcollation FROM pg_catalog.pg_attribute a",
        );
        let sql = p.statement.to_string();
        assert!(
            !sql.contains("pg_attrdef") && !sql.contains("pg_collation"),
            "{sql}"
        );
        assert_eq!(p.names.unwrap(), ["attname", "pg_get_expr", "attcollation"]);
        assert!(!p.empty);
        let p = rewrite(
            "SELECT pol.polname, CASE WHEN pol.polroles = '{0}' THEN NULL ELSE \
             pg_catalog.array_to_string(array(select rolname from pg_catalog.pg_roles \
             where oid = any (pol.polroles) order by 1),',') END \
             FROM pg_catalog.pg_policy pol WHERE pol.polrelid = '16386' ORDER BY 1",
        );
        assert!(p.empty);
        assert!(!p.statement.to_string().contains("pg_roles"));
        // Inner joins and unions of empty catalogs are empty; outer joins and
        // aggregates are not.
        assert!(
            rewrite(
                "SELECT c.oid FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i \
                 WHERE c.oid = i.inhparent UNION SELECT 1 FROM pg_policy"
            )
            .empty
        );
        assert!(!rewrite("SELECT c.oid FROM pg_class c LEFT JOIN pg_inherits i ON true").empty);
        assert!(!rewrite("SELECT count(*) FROM pg_policy").empty);
        assert!(rewrite("SELECT polname, count(*) FROM pg_policy GROUP BY 1").empty);
        assert!(rewrite("SELECT (SELECT count(*) FROM pg_class) FROM pg_policy").empty);
    }

    #[test]
    fn duplicate_and_odd_names_are_made_unique_for_datafusion() {
        let p = rewrite("SELECT NULL, NULL, 1 AS x, 2 FROM pg_class");
        let sql = p.statement.to_string();
        assert!(
            sql.contains("NULL AS \"?column?\", NULL AS \"?column?_2\""),
            "{sql}"
        );
        assert_eq!(p.names.unwrap(), ["?column?", "?column?", "x", "?column?"]);
    }

    proptest::proptest! {
        #[test]
        fn odd_text_never_panics(
            head in proptest::sample::select(vec![
                "", "SELECT ", "SELECT c.oid::pg_catalog.regclass FROM pg_class c WHERE ",
                "SELECT (SELECT ", "SELECT array(SELECT ", "WITH x AS (",
            ]),
            tail in "[ -~]{0,80}",
        ) {
            let e = empty();
            let sql = format!("{head}{tail}");
            let cx = Context { project: "p", user: "u", empty_tables: &e, null_columns: &["relacl"] };
            let _ = prepare(&sql, &cx);
            let _ = crate::catalog::is_catalog_query(&sql);
        }
    }

    #[test]
    fn unknown_operators_and_other_statements_are_refused() {
        let e = empty();
        let cx = Context {
            project: "p",
            user: "u",
            empty_tables: &e,
            null_columns: &[],
        };
        assert!(prepare("SELECT 1 OPERATOR(pg_catalog.@@) 2", &cx).is_err());
        assert!(prepare("DROP TABLE pg_class", &cx).is_err());
        assert!(prepare("SELECT 1; SELECT 2", &cx).is_err());
        assert!(prepare("SELECT (((", &cx).is_err());
    }
}
