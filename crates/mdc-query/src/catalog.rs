//! Catalog answers for SQL clients (psql, psycopg, DBeaver, R DBI): the
//! `information_schema` and `pg_catalog` tables they ask about, built from the
//! project's *granted* tables only and queried with DataFusion. They hold
//! names and types, never data, so they are not outputs.
//!
//! Every granted table (and each of its short names in `public`) is a table
//! (`relkind` 'r') with an oid derived from its schema and name, so that an oid
//! psql read in one query names the same relation in the next; `pg_class`,
//! `pg_attribute`, `pg_namespace` and `pg_type` agree on those oids. Catalogs
//! mdc has nothing for (indexes, constraints, policies, triggers, inheritance,
//! publications, extended statistics, …) exist with PostgreSQL's columns and no
//! rows. psql's own syntax and functions are handled in `pgsql.rs`.

mod pgsql;

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_relations, Expr, Query, Statement, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use sha2::{Digest, Sha256};

use crate::disclosure::Value;
use crate::engine::{Session, VisibleTable};
use crate::QueryError;

/// What `version()` says.
pub const VERSION: &str = "PostgreSQL 16.0 (mdc governed SQL)";

/// Owner shown for every catalog object.
const OWNER: &str = "mdc";

/// Names that make text a catalog question when it cannot be parsed.
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

/// Functions that make a query without tables a catalog question.
const CATALOG_FUNCTIONS: &[&str] = &[
    "version",
    "current_database",
    "current_catalog",
    "current_schema",
    "current_user",
    "session_user",
    "current_role",
    "format_type",
    "obj_description",
    "col_description",
    "shobj_description",
];

/// Table functions that are neither catalog nor data.
const NEUTRAL_RELATIONS: &[&str] = &["generate_series", "unnest", "range"];

/// Whether `sql` is a question about the catalog (answered here) rather than
/// about data (answered by the governed path). A query that names any table
/// other than a catalog table is data, whatever words it contains; one that
/// names only catalog tables, or no table but a catalog function, is catalog.
pub fn is_catalog_query(sql: &str) -> bool {
    if sql.len() > crate::guard::MAX_SQL_BYTES {
        // Refused by the guard either way; not worth parsing.
        return words_say_catalog(sql);
    }
    let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return words_say_catalog(sql);
    };
    let [statement] = statements.as_slice() else {
        return words_say_catalog(sql);
    };
    let Statement::Query(_) = statement else {
        return words_say_catalog(sql);
    };
    let mut ctes = CteNames::default();
    let _ = Visit::visit(statement, &mut ctes);
    let (mut catalog, mut data) = (false, false);
    let _ = visit_relations(statement, |name| {
        let schema = pgsql::schema_part(name);
        let last = pgsql::last_part(name);
        let bare = name.0.len() == 1;
        let cte = bare && ctes.0.contains(&last);
        if schema == "pg_catalog"
            || schema == "information_schema"
            || (bare && !cte && is_pg_catalog_table(&last))
        {
            catalog = true;
        } else if !(cte || bare && NEUTRAL_RELATIONS.contains(&last.as_str())) {
            data = true;
        }
        ControlFlow::<()>::Continue(())
    });
    if data {
        return false;
    }
    if catalog {
        return true;
    }
    let mut function = false;
    let _ = visit_expressions(statement, |e| {
        let hit = match e {
            Expr::Function(f) => {
                let n = pgsql::last_part(&f.name);
                n.starts_with("pg_") || CATALOG_FUNCTIONS.contains(&n.as_str())
            }
            Expr::Cast { data_type, .. } => {
                let t = data_type.to_string().to_ascii_lowercase();
                t.contains("regclass") || t.contains("regtype") || t.contains("regnamespace")
            }
            _ => false,
        };
        if hit {
            function = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    function
}

/// Names of the common table expressions anywhere in a query.
#[derive(Default)]
struct CteNames(HashSet<String>);

impl Visitor for CteNames {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            for c in &w.cte_tables {
                self.0.insert(c.alias.name.value.to_ascii_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

fn words_say_catalog(sql: &str) -> bool {
    let l = sql.to_ascii_lowercase();
    CATALOG_WORDS.iter().any(|w| l.contains(w))
}

fn is_pg_catalog_table(name: &str) -> bool {
    POPULATED.contains(&name) || EMPTY_TABLES.iter().any(|(n, _)| *n == name)
}

/// A catalog answer: column names and types, and rows.
pub type Answer = (Vec<(String, DataType)>, Vec<Vec<Value>>);

/// A PostgreSQL type as the catalog shows it.
#[derive(Debug, Clone, Copy)]
pub struct PgType {
    pub oid: i64,
    /// `pg_type.typname` (`int8`).
    pub typname: &'static str,
    /// `format_type` and `information_schema` (`bigint`).
    pub name: &'static str,
    len: i64,
    byval: bool,
    align: &'static str,
    storage: &'static str,
    collation: i64,
    category: &'static str,
    array: i64,
}

const fn ty(
    oid: i64,
    typname: &'static str,
    name: &'static str,
    len: i64,
    align: &'static str,
    storage: &'static str,
    collation: i64,
    category: &'static str,
    array: i64,
) -> PgType {
    PgType {
        oid,
        typname,
        name,
        len,
        byval: len > 0 && len <= 8,
        align,
        storage,
        collation,
        category,
        array,
    }
}

const BOOL: PgType = ty(16, "bool", "boolean", 1, "c", "p", 0, "B", 1000);
const BYTEA: PgType = ty(17, "bytea", "bytea", -1, "i", "x", 0, "U", 1001);
const INT8: PgType = ty(20, "int8", "bigint", 8, "d", "p", 0, "N", 1016);
const TEXT: PgType = ty(25, "text", "text", -1, "i", "x", 100, "S", 1009);
const FLOAT8: PgType = ty(701, "float8", "double precision", 8, "d", "p", 0, "N", 1022);
const DATE: PgType = ty(1082, "date", "date", 4, "i", "p", 0, "D", 1182);
const TIME: PgType = ty(
    1083,
    "time",
    "time without time zone",
    8,
    "d",
    "p",
    0,
    "D",
    1183,
);
const TIMESTAMP: PgType = ty(
    1114,
    "timestamp",
    "timestamp without time zone",
    8,
    "d",
    "p",
    0,
    "D",
    1115,
);
const TIMESTAMPTZ: PgType = ty(
    1184,
    "timestamptz",
    "timestamp with time zone",
    8,
    "d",
    "p",
    0,
    "D",
    1185,
);
const INTERVAL: PgType = ty(1186, "interval", "interval", 16, "d", "p", 0, "T", 1187);

/// Every type `pg_type` lists: the ones columns can have, and a few that
/// catalog queries name.
const TYPES: &[PgType] = &[
    BOOL,
    BYTEA,
    ty(18, "char", "\"char\"", 1, "c", "p", 0, "Z", 1002),
    ty(19, "name", "name", 64, "c", "p", 950, "S", 1003),
    INT8,
    ty(21, "int2", "smallint", 2, "s", "p", 0, "N", 1005),
    ty(23, "int4", "integer", 4, "i", "p", 0, "N", 1007),
    TEXT,
    ty(26, "oid", "oid", 4, "i", "p", 0, "N", 1028),
    ty(700, "float4", "real", 4, "i", "p", 0, "N", 1021),
    FLOAT8,
    ty(
        1043,
        "varchar",
        "character varying",
        -1,
        "i",
        "x",
        100,
        "S",
        1015,
    ),
    DATE,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    INTERVAL,
    ty(1700, "numeric", "numeric", -1, "i", "m", 0, "N", 1231),
];

/// The PostgreSQL type of a column of this arrow type. Integers and floats are
/// `bigint` and `double precision` and booleans `boolean`, exactly what the
/// PostgreSQL endpoint sends them as; dates and times keep their own type
/// names (they travel in PostgreSQL's text form); anything else is `text`.
pub fn pg_type_for(dt: &DataType) -> PgType {
    match dt {
        d if d.is_integer() => INT8,
        d if d.is_floating() => FLOAT8,
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => FLOAT8,
        DataType::Boolean => BOOL,
        DataType::Date32 | DataType::Date64 => DATE,
        DataType::Timestamp(_, None) => TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => TIMESTAMPTZ,
        DataType::Time32(_) | DataType::Time64(_) => TIME,
        DataType::Interval(_) | DataType::Duration(_) => INTERVAL,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => BYTEA,
        _ => TEXT,
    }
}

/// A column: name, arrow type, nullable.
type Column = (String, DataType, bool);

/// A granted relation as the catalog shows it.
struct Rel {
    oid: i64,
    ns: i64,
    schema: String,
    name: String,
    columns: Vec<Column>,
}

const NS_PG_CATALOG: i64 = 11;
const NS_PUBLIC: i64 = 2200;
const NS_INFORMATION_SCHEMA: i64 = 13_183;
const OWNER_OID: i64 = 10;
const AM_HEAP: i64 = 2;
/// First oid PostgreSQL gives to user objects.
const FIRST_USER_OID: i64 = 16_384;

/// An oid from a name: the same relation gets the same oid in every query and
/// connection, whatever else is granted; collisions move to the next free one.
fn name_oid(key: &str, used: &mut HashSet<i64>) -> i64 {
    let d = Sha256::digest(key.as_bytes());
    let x = i64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
    let mut oid = FIRST_USER_OID + x % (1 << 30);
    while !used.insert(oid) {
        oid += 1;
    }
    oid
}

/// The session's catalog: namespaces and relations with their oids.
struct Catalog {
    namespaces: Vec<(i64, String)>,
    rels: Vec<Rel>,
}

impl Catalog {
    fn new(tables: &[VisibleTable]) -> Self {
        let mut named: Vec<(String, String, Vec<Column>)> = Vec::new();
        for t in tables {
            let columns: Vec<Column> = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, (c, dt, nullable))| {
                    let arrow = t
                        .arrow_types
                        .get(i)
                        .cloned()
                        .or_else(|| dt.parse().ok())
                        .unwrap_or(DataType::Utf8);
                    (c.clone(), arrow, *nullable)
                })
                .collect();
            named.push((t.schema.clone(), t.table.clone(), columns.clone()));
            for a in &t.aliases {
                named.push(("public".to_owned(), a.clone(), columns.clone()));
            }
        }
        // Sorted, so that oid collisions (if any) resolve the same way every time.
        named.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        named.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        let mut schemas: Vec<String> = named.iter().map(|r| r.0.clone()).collect();
        schemas.push("public".into());
        schemas.sort();
        schemas.dedup();
        let mut used_ns: HashSet<i64> = [NS_PG_CATALOG, NS_PUBLIC, NS_INFORMATION_SCHEMA]
            .into_iter()
            .collect();
        let mut namespaces = vec![
            (NS_PG_CATALOG, "pg_catalog".to_owned()),
            (NS_INFORMATION_SCHEMA, "information_schema".to_owned()),
        ];
        let mut ns_oid: HashMap<String, i64> = HashMap::new();
        for s in schemas {
            let oid = match s.as_str() {
                "public" => NS_PUBLIC,
                "pg_catalog" => NS_PG_CATALOG,
                "information_schema" => NS_INFORMATION_SCHEMA,
                _ => name_oid(&format!("namespace:{s}"), &mut used_ns),
            };
            ns_oid.insert(s.clone(), oid);
            if !namespaces.iter().any(|(o, _)| *o == oid) {
                namespaces.push((oid, s));
            }
        }
        let mut used: HashSet<i64> = HashSet::new();
        let rels = named
            .into_iter()
            .map(|(schema, name, columns)| Rel {
                oid: name_oid(&format!("relation:{schema}.{name}"), &mut used),
                ns: ns_oid.get(&schema).copied().unwrap_or(NS_PUBLIC),
                schema,
                name,
                columns,
            })
            .collect();
        Catalog { namespaces, rels }
    }

    fn lookup(&self) -> pgsql::Lookup {
        let mut l = pgsql::Lookup {
            owner: OWNER.to_owned(),
            ..Default::default()
        };
        for (oid, name) in &self.namespaces {
            l.namespaces.insert(*oid, name.clone());
        }
        for r in &self.rels {
            let visible = r.schema == "public";
            if visible {
                l.visible.insert(r.oid);
                l.by_name.insert(r.name.clone(), r.oid);
            }
            l.by_name.insert(format!("{}.{}", r.schema, r.name), r.oid);
            let shown = if visible {
                quote_ident(&r.name)
            } else {
                format!("{}.{}", quote_ident(&r.schema), quote_ident(&r.name))
            };
            l.regclass.insert(r.oid, shown);
        }
        for t in TYPES {
            l.types.insert(t.oid, t.name);
        }
        l
    }
}

/// An identifier as PostgreSQL prints it: quoted unless plain lower case.
fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// One cell of a catalog table.
#[derive(Clone)]
enum Cell {
    I(i64),
    T(String),
    B(bool),
    Null,
}

fn t(s: &str) -> Cell {
    Cell::T(s.to_owned())
}

/// A table from a column spec (`name:i`, `name:b`, or text) and rows.
fn table(spec: &str, rows: &[Vec<Cell>]) -> Result<RecordBatch, QueryError> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (j, col) in spec.split_whitespace().enumerate() {
        let (name, kind) = col.split_once(':').unwrap_or((col, "t"));
        let cells = rows.iter().map(|r| r.get(j).unwrap_or(&Cell::Null));
        let (dt, array): (DataType, ArrayRef) = match kind {
            "i" => (
                DataType::Int64,
                Arc::new(
                    cells
                        .map(|c| match c {
                            Cell::I(v) => Some(*v),
                            _ => None,
                        })
                        .collect::<Int64Array>(),
                ),
            ),
            "b" => (
                DataType::Boolean,
                Arc::new(
                    cells
                        .map(|c| match c {
                            Cell::B(v) => Some(*v),
                            _ => None,
                        })
                        .collect::<BooleanArray>(),
                ),
            ),
            _ => (
                DataType::Utf8,
                Arc::new(
                    cells
                        .map(|c| match c {
                            Cell::T(v) => Some(v.clone()),
                            _ => None,
                        })
                        .collect::<StringArray>(),
                ),
            ),
        };
        fields.push(Field::new(name, dt, true));
        columns.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| QueryError::Internal(e.to_string()))
}

/// Populated `pg_catalog` tables (built in `Catalog::tables`).
const POPULATED: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_am",
    "pg_database",
    "pg_tables",
];

/// `pg_catalog` tables that mdc has nothing for: PostgreSQL's columns, no rows.
const EMPTY_TABLES: &[(&str, &str)] = &[
    ("pg_views", "schemaname viewname viewowner definition"),
    ("pg_matviews", "schemaname matviewname matviewowner tablespace hasindexes:b ispopulated:b definition"),
    ("pg_indexes", "schemaname tablename indexname tablespace indexdef"),
    ("pg_attrdef", "oid:i adrelid:i adnum:i adbin"),
    ("pg_collation", "oid:i collname collnamespace:i collowner:i collprovider collisdeterministic:b collencoding:i collcollate collctype"),
    ("pg_constraint", "oid:i conname connamespace:i contype condeferrable:b condeferred:b convalidated:b conrelid:i contypid:i conindid:i conparentid:i confrelid:i confupdtype confdeltype confmatchtype conislocal:b coninhcount:i connoinherit:b conkey confkey conbin"),
    ("pg_index", "indexrelid:i indrelid:i indnatts:i indnkeyatts:i indisunique:b indnullsnotdistinct:b indisprimary:b indisexclusion:b indimmediate:b indisclustered:b indisvalid:b indcheckxmin:b indisready:b indislive:b indisreplident:b indkey indcollation indclass indoption indexprs indpred"),
    ("pg_inherits", "inhrelid:i inhparent:i inhseqno:i inhdetachpending:b"),
    ("pg_partitioned_table", "partrelid:i partstrat partnatts:i partdefid:i partattrs partclass partcollation partexprs"),
    ("pg_policy", "oid:i polname polrelid:i polcmd polpermissive:b polroles polqual polwithcheck"),
    ("pg_statistic_ext", "oid:i stxrelid:i stxname stxnamespace:i stxowner:i stxstattarget:i stxkeys stxkind stxexprs"),
    ("pg_publication", "oid:i pubname pubowner:i puballtables:b pubinsert:b pubupdate:b pubdelete:b pubtruncate:b pubviaroot:b"),
    ("pg_publication_rel", "oid:i prpubid:i prrelid:i prqual prattrs"),
    ("pg_publication_namespace", "oid:i pnpubid:i pnnspid:i"),
    ("pg_trigger", "oid:i tgrelid:i tgparentid:i tgname tgfoid:i tgtype:i tgenabled tgisinternal:b tgconstrrelid:i tgconstrindid:i tgconstraint:i tgdeferrable:b tginitdeferred:b tgnargs:i tgattr tgargs tgqual tgoldtable tgnewtable"),
    ("pg_rewrite", "oid:i rulename ev_class:i ev_type ev_enabled is_instead:b ev_qual ev_action"),
    ("pg_description", "objoid:i classoid:i objsubid:i description"),
    ("pg_depend", "classid:i objid:i objsubid:i refclassid:i refobjid:i refobjsubid:i deptype"),
    ("pg_sequence", "seqrelid:i seqtypid:i seqstart:i seqincrement:i seqmax:i seqmin:i seqcache:i seqcycle:b"),
    ("pg_foreign_table", "ftrelid:i ftserver:i ftoptions"),
    ("pg_proc", "oid:i proname pronamespace:i proowner:i prolang:i prokind prosecdef:b proretset:b provolatile pronargs:i prorettype:i proargtypes prosrc"),
    ("pg_roles", "oid:i rolname rolsuper:b rolinherit:b rolcreaterole:b rolcreatedb:b rolcanlogin:b rolreplication:b rolconnlimit:i rolvaliduntil rolbypassrls:b rolconfig"),
    ("pg_extension", "oid:i extname extowner:i extnamespace:i extrelocatable:b extversion"),
    ("pg_tablespace", "oid:i spcname spcowner:i spcacl spcoptions"),
    ("pg_enum", "oid:i enumtypid:i enumsortorder:i enumlabel"),
    ("pg_settings", "name setting unit category short_desc extra_desc context vartype source"),
    ("pg_auth_members", "oid:i roleid:i member:i grantor:i admin_option:b"),
    ("pg_user", "usename usesysid:i usecreatedb:b usesuper:b userepl:b usebypassrls:b passwd valuntil useconfig"),
    ("pg_db_role_setting", "setdatabase:i setrole:i setconfig"),
    ("pg_default_acl", "oid:i defaclrole:i defaclnamespace:i defaclobjtype defaclacl"),
    ("pg_language", "oid:i lanname lanowner:i lanispl:b lanpltrusted:b lanplcallfoid:i laninline:i lanvalidator:i lanacl"),
    ("pg_aggregate", "aggfnoid:i aggkind aggnumdirectargs:i aggtransfn aggfinalfn"),
    ("pg_operator", "oid:i oprname oprnamespace:i oprowner:i oprkind oprcanmerge:b oprcanhash:b oprleft:i oprright:i oprresult:i oprcom:i oprnegate:i oprcode oprrest oprjoin"),
    ("pg_opclass", "oid:i opcmethod:i opcname opcnamespace:i opcowner:i opcfamily:i opcintype:i opcdefault:b opckeytype:i"),
    ("pg_opfamily", "oid:i opfmethod:i opfname opfnamespace:i opfowner:i"),
    ("pg_cast", "oid:i castsource:i casttarget:i castfunc:i castcontext castmethod"),
    ("pg_conversion", "oid:i conname connamespace:i conowner:i conforencoding:i contoencoding:i conproc condefault:b"),
    ("pg_event_trigger", "oid:i evtname evtevent evtowner:i evtfoid:i evtenabled evttags"),
    ("pg_ts_config", "oid:i cfgname cfgnamespace:i cfgowner:i cfgparser:i"),
    ("pg_ts_dict", "oid:i dictname dictnamespace:i dictowner:i dicttemplate:i dictinitoption"),
    ("pg_ts_parser", "oid:i prsname prsnamespace:i prsstart prstoken prsend prsheadline prslextype"),
    ("pg_ts_template", "oid:i tmplname tmplnamespace:i tmplinit tmpllexize"),
    ("pg_foreign_server", "oid:i srvname srvowner:i srvfdw:i srvtype srvversion srvacl srvoptions"),
    ("pg_foreign_data_wrapper", "oid:i fdwname fdwowner:i fdwhandler:i fdwvalidator:i fdwacl fdwoptions"),
    ("pg_user_mappings", "umid:i srvid:i srvname umuser:i usename umoptions"),
    ("pg_subscription", "oid:i subdbid:i subname subowner:i subenabled:b subconninfo subslotname subpublications"),
    ("pg_largeobject_metadata", "oid:i lomowner:i lomacl"),
];

/// Columns of the populated tables that are NULL in every row (privileges,
/// options): `WHERE x IS NOT NULL` on them selects nothing.
const NULL_COLUMNS: &[&str] = &[
    "relacl",
    "reloptions",
    "relpartbound",
    "attacl",
    "attoptions",
    "attfdwoptions",
    "nspacl",
    "datacl",
];

const PG_CLASS: &str = "oid:i relname relnamespace:i reltype:i reloftype:i relowner:i relam:i \
    relfilenode:i reltablespace:i relpages:i reltuples:i relallvisible:i reltoastrelid:i \
    relhasindex:b relisshared:b relpersistence relkind relnatts:i relchecks:i relhasrules:b \
    relhastriggers:b relhassubclass:b relrowsecurity:b relforcerowsecurity:b relispopulated:b \
    relreplident relispartition:b relrewrite:i relacl reloptions relpartbound";

const PG_ATTRIBUTE: &str = "attrelid:i attname atttypid:i attstattarget:i attlen:i attnum:i \
    attndims:i attcacheoff:i atttypmod:i attbyval:b attalign attstorage attcompression \
    attnotnull:b atthasdef:b atthasmissing:b attidentity attgenerated attisdropped:b \
    attislocal:b attinhcount:i attcollation:i attacl attoptions attfdwoptions";

const PG_TYPE: &str = "oid:i typname typnamespace:i typowner:i typlen:i typbyval:b typtype \
    typcategory typisdefined:b typdelim typrelid:i typelem:i typarray:i typnotnull:b \
    typbasetype:i typtypmod:i typndims:i typcollation:i typdefault typacl";

impl Catalog {
    /// Every catalog table: (schema, name, rows).
    fn tables(
        &self,
        project: &str,
    ) -> Result<Vec<(&'static str, &'static str, RecordBatch)>, QueryError> {
        let ns_name = |oid: i64| {
            self.namespaces
                .iter()
                .find(|(o, _)| *o == oid)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        let namespaces: Vec<Vec<Cell>> = self
            .namespaces
            .iter()
            .map(|(oid, name)| vec![Cell::I(*oid), t(name), Cell::I(OWNER_OID), Cell::Null])
            .collect();
        out.push((
            "pg_catalog",
            "pg_namespace",
            table("oid:i nspname nspowner:i nspacl", &namespaces)?,
        ));
        let classes: Vec<Vec<Cell>> = self
            .rels
            .iter()
            .map(|r| {
                vec![
                    Cell::I(r.oid),
                    t(&r.name),
                    Cell::I(r.ns),
                    Cell::I(0),
                    Cell::I(0),
                    Cell::I(OWNER_OID),
                    Cell::I(AM_HEAP),
                    Cell::I(0),
                    Cell::I(0),
                    Cell::I(0),
                    Cell::I(-1),
                    Cell::I(0),
                    Cell::I(0),
                    Cell::B(false),
                    Cell::B(false),
                    t("p"),
                    t("r"),
                    Cell::I(r.columns.len() as i64),
                    Cell::I(0),
                    Cell::B(false),
                    Cell::B(false),
                    Cell::B(false),
                    Cell::B(false),
                    Cell::B(false),
                    Cell::B(true),
                    t("d"),
                    Cell::B(false),
                    Cell::I(0),
                    Cell::Null,
                    Cell::Null,
                    Cell::Null,
                ]
            })
            .collect();
        out.push(("pg_catalog", "pg_class", table(PG_CLASS, &classes)?));
        let mut attributes = Vec::new();
        let mut info_columns = Vec::new();
        for r in &self.rels {
            for (i, (name, dt, nullable)) in r.columns.iter().enumerate() {
                let ty = pg_type_for(dt);
                attributes.push(vec![
                    Cell::I(r.oid),
                    t(name),
                    Cell::I(ty.oid),
                    Cell::I(-1),
                    Cell::I(ty.len),
                    Cell::I(i as i64 + 1),
                    Cell::I(0),
                    Cell::I(-1),
                    Cell::I(-1),
                    Cell::B(ty.byval),
                    t(ty.align),
                    t(ty.storage),
                    t(""),
                    Cell::B(!nullable),
                    Cell::B(false),
                    Cell::B(false),
                    t(""),
                    t(""),
                    Cell::B(false),
                    Cell::B(true),
                    Cell::I(0),
                    Cell::I(ty.collation),
                    Cell::Null,
                    Cell::Null,
                    Cell::Null,
                ]);
                info_columns.push(vec![
                    t(project),
                    t(&r.schema),
                    t(&r.name),
                    t(name),
                    Cell::I(i as i64 + 1),
                    Cell::Null,
                    t(if *nullable { "YES" } else { "NO" }),
                    t(ty.name),
                    t(project),
                    t("pg_catalog"),
                    t(ty.typname),
                    t("NO"),
                ]);
            }
        }
        out.push((
            "pg_catalog",
            "pg_attribute",
            table(PG_ATTRIBUTE, &attributes)?,
        ));
        let types: Vec<Vec<Cell>> = TYPES
            .iter()
            .map(|ty| {
                vec![
                    Cell::I(ty.oid),
                    t(ty.typname),
                    Cell::I(NS_PG_CATALOG),
                    Cell::I(OWNER_OID),
                    Cell::I(ty.len),
                    Cell::B(ty.byval),
                    t("b"),
                    t(ty.category),
                    Cell::B(true),
                    t(","),
                    Cell::I(0),
                    Cell::I(0),
                    Cell::I(ty.array),
                    Cell::B(false),
                    Cell::I(0),
                    Cell::I(-1),
                    Cell::I(0),
                    Cell::I(ty.collation),
                ]
            })
            .collect();
        out.push(("pg_catalog", "pg_type", table(PG_TYPE, &types)?));
        out.push((
            "pg_catalog",
            "pg_am",
            table(
                "oid:i amname amhandler amtype",
                &[
                    vec![
                        Cell::I(AM_HEAP),
                        t("heap"),
                        t("heap_tableam_handler"),
                        t("t"),
                    ],
                    vec![Cell::I(403), t("btree"), t("bthandler"), t("i")],
                ],
            )?,
        ));
        let mut used = HashSet::new();
        out.push((
            "pg_catalog",
            "pg_database",
            table(
                "oid:i datname datdba:i encoding:i datlocprovider datistemplate:b datallowconn:b \
                 datconnlimit:i dattablespace:i datcollate datctype daticulocale daticurules \
                 datcollversion datacl",
                &[vec![
                    Cell::I(name_oid(&format!("database:{project}"), &mut used)),
                    t(project),
                    Cell::I(OWNER_OID),
                    Cell::I(6),
                    t("c"),
                    Cell::B(false),
                    Cell::B(true),
                    Cell::I(-1),
                    Cell::I(1663),
                    t("C.UTF-8"),
                    t("C.UTF-8"),
                    Cell::Null,
                    Cell::Null,
                    Cell::Null,
                    Cell::Null,
                ]],
            )?,
        ));
        let pg_tables: Vec<Vec<Cell>> = self
            .rels
            .iter()
            .map(|r| {
                vec![
                    t(&r.schema),
                    t(&r.name),
                    t(OWNER),
                    Cell::Null,
                    Cell::B(false),
                    Cell::B(false),
                    Cell::B(false),
                    Cell::B(false),
                ]
            })
            .collect();
        out.push((
            "pg_catalog",
            "pg_tables",
            table(
                "schemaname tablename tableowner tablespace hasindexes:b hasrules:b hastriggers:b rowsecurity:b",
                &pg_tables,
            )?,
        ));
        for (name, spec) in EMPTY_TABLES {
            out.push(("pg_catalog", name, table(spec, &[])?));
        }
        // information_schema: the granted tables and their columns.
        let info_tables: Vec<Vec<Cell>> = self
            .rels
            .iter()
            .map(|r| {
                vec![
                    t(project),
                    t(&r.schema),
                    t(&r.name),
                    t("BASE TABLE"),
                    t("NO"),
                    t("NO"),
                ]
            })
            .collect();
        out.push((
            "information_schema",
            "tables",
            table(
                "table_catalog table_schema table_name table_type is_insertable_into is_typed",
                &info_tables,
            )?,
        ));
        out.push((
            "information_schema",
            "columns",
            table(
                "table_catalog table_schema table_name column_name ordinal_position:i \
                 column_default is_nullable data_type udt_catalog udt_schema udt_name is_updatable",
                &info_columns,
            )?,
        ));
        let schemata: Vec<Vec<Cell>> = self
            .namespaces
            .iter()
            .filter(|(oid, _)| *oid != NS_PG_CATALOG && *oid != NS_INFORMATION_SCHEMA)
            .filter(|(oid, _)| self.rels.iter().any(|r| r.ns == *oid))
            .map(|(oid, _)| vec![t(project), t(&ns_name(*oid)), t(OWNER)])
            .collect();
        out.push((
            "information_schema",
            "schemata",
            table("catalog_name schema_name schema_owner", &schemata)?,
        ));
        Ok(out)
    }
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
    answer_for(&session.project, &session.tables, sql, user).await
}

/// Answers a catalog question about these tables of `project`.
async fn answer_for(
    project: &str,
    tables: &[VisibleTable],
    sql: &str,
    user: &str,
) -> Result<Answer, QueryError> {
    // The same wall as data queries: one SELECT, no DDL/DML/COPY at planning.
    crate::guard::check(sql)?;
    let catalog = Catalog::new(tables);
    let ctx = SessionContext::new();
    let cat = ctx
        .catalog("datafusion")
        .ok_or_else(|| QueryError::Internal("no default catalog".into()))?;
    for s in ["pg_catalog", "information_schema"] {
        let _ = cat.register_schema(s, Arc::new(MemorySchemaProvider::new()));
    }
    for (schema, name, batch) in catalog.tables(project)? {
        if schema == "pg_catalog" {
            // On the search path too, as in PostgreSQL.
            register(&ctx, "public", name, batch.clone())?;
        }
        register(&ctx, schema, name, batch)?;
    }
    for f in pgsql::functions(&Arc::new(catalog.lookup())) {
        ctx.register_udf(f);
    }
    let empty: HashSet<&'static str> = EMPTY_TABLES.iter().map(|(n, _)| *n).collect();
    let prepared = pgsql::prepare(
        sql,
        &pgsql::Context {
            project,
            user,
            empty_tables: &empty,
            null_columns: NULL_COLUMNS,
        },
    )?;
    let (mut columns, rows) = match run(&ctx, prepared.statement).await {
        Ok(r) => r,
        // A query over catalogs mdc keeps empty: no rows, whatever DataFusion
        // thinks of PostgreSQL-only expressions in it.
        Err(_) if prepared.empty && prepared.names.is_some() => {
            let names = prepared.names.unwrap_or_default();
            return Ok((
                names.into_iter().map(|n| (n, DataType::Utf8)).collect(),
                vec![],
            ));
        }
        Err(e) => return Err(e),
    };
    if let Some(names) = prepared.names {
        if names.len() == columns.len() {
            for (c, n) in columns.iter_mut().zip(names) {
                c.0 = n;
            }
        }
    }
    Ok((columns, rows))
}

async fn run(ctx: &SessionContext, statement: Statement) -> Result<Answer, QueryError> {
    let not_supported = |e: datafusion::error::DataFusionError| {
        QueryError::Plan(format!("catalog query not supported here: {e}"))
    };
    let plan = ctx
        .state()
        .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
            statement,
        )))
        .await
        .map_err(not_supported)?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| QueryError::Forbidden(e.to_string()))?;
    let df = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(not_supported)?;
    let schema = df.schema().clone();
    let batches = df.collect().await.map_err(not_supported)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimeUnit;

    fn tables() -> Vec<VisibleTable> {
        let columns: Vec<(String, DataType, bool)> = vec![
            ("person_id".into(), DataType::Int64, false),
            ("sex".into(), DataType::Utf8, false),
            ("birth".into(), DataType::Date32, true),
            ("weight".into(), DataType::Float64, true),
            ("alive".into(), DataType::Boolean, true),
            (
                "seen".into(),
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            ("n".into(), DataType::Int32, true),
        ];
        vec![VisibleTable {
            schema: "cohort".into(),
            table: "person".into(),
            aliases: vec!["cohort_person".into()],
            dataset: "cohort".into(),
            version: 1,
            patient_column: Some("person_id".into()),
            columns: columns
                .iter()
                .map(|(n, t, null)| (n.clone(), t.to_string(), *null))
                .collect(),
            arrow_types: columns.iter().map(|c| c.1.clone()).collect(),
        }]
    }

    fn text(v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::Bool(b) => if *b { "t" } else { "f" }.into(),
            other => other.to_text(),
        }
    }

    /// Rows as psql's unaligned output would print them.
    async fn ask(sql: &str) -> Vec<String> {
        let (_, rows) = answer_for("study", &tables(), sql, "kim")
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
        rows.iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join("|"))
            .collect()
    }

    async fn names(sql: &str) -> Vec<String> {
        let (cols, _) = answer_for("study", &tables(), sql, "kim").await.unwrap();
        cols.into_iter().map(|c| c.0).collect()
    }

    /// Every query psql 15 sends for its `\\d…` commands (`psql -E` against
    /// PostgreSQL 15 with the same tables), oids and names as they were there.
    const PSQL15: &str = include_str!("catalog/psql15.sql");

    /// (command, query) in the order psql sent them.
    fn psql15() -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut cmd = String::new();
        let mut sql = String::new();
        for line in PSQL15.lines() {
            if let Some(c) = line.strip_prefix("-- psql ") {
                cmd = c.to_owned();
                sql.clear();
            } else if line == "-- end" {
                out.push((cmd.clone(), sql.clone()));
            } else {
                sql.push_str(line);
                sql.push('\n');
            }
        }
        out
    }

    /// The queries psql sent for one command.
    fn sent(cmd: &str) -> Vec<String> {
        psql15()
            .into_iter()
            .filter(|(c, _)| c == cmd)
            .map(|(_, q)| q)
            .collect()
    }

    fn first(cmd: &str) -> String {
        sent(cmd).into_iter().next().unwrap()
    }

    /// The oid PostgreSQL had for cohort.person when the queries were taken.
    const PG_OID: &str = "'16386'";

    /// psql's look-up of `\\d schema.name`.
    fn find(schema: &str, name: &str) -> String {
        first("\\d cohort.person")
            .replace("'^(person)$'", &format!("'^({name})$'"))
            .replace("'^(cohort)$'", &format!("'^({schema})$'"))
    }

    /// psql's look-up of `\\d name` (visible relations only).
    const FIND_VISIBLE: &str = r"SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(NAME)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;";

    #[tokio::test]
    async fn psql_lists_relations_and_schemas() {
        assert_eq!(ask(&first("\\d")).await, ["public|cohort_person|table|mdc"]);
        assert_eq!(
            ask(&first("\\dt")).await,
            ["public|cohort_person|table|mdc"]
        );
        assert_eq!(
            ask(&first("\\d+")).await,
            ["public|cohort_person|table|mdc|permanent|heap||"]
        );
        assert!(ask(&first("\\dv")).await.is_empty());
        assert!(ask(&first("\\di")).await.is_empty());
        assert_eq!(ask(&first("\\dn")).await, ["cohort|mdc", "public|mdc"]);
        assert_eq!(ask(&first("\\dn+")).await, ["cohort|mdc||", "public|mdc||"]);
        assert_eq!(
            names(&first("\\d")).await,
            ["Schema", "Name", "Type", "Owner"],
            "psql's quoted headers survive"
        );
    }

    #[tokio::test]
    async fn psql_describes_one_table_with_stable_oids() {
        let found = ask(&find("cohort", "person")).await;
        let [row] = found.as_slice() else {
            panic!("{found:?}")
        };
        let oid = row.split('|').next().unwrap().to_owned();
        assert_eq!(row, &format!("{oid}|cohort|person"));
        // Same oid in the next query, and from another question's view.
        assert_eq!(ask(&find("cohort", "person")).await, found);
        assert_eq!(
            ask(&format!(
                "SELECT relname FROM pg_catalog.pg_class WHERE oid = {oid}"
            ))
            .await,
            ["person"]
        );
        let mut detail = Vec::new();
        for q in &sent("\\d cohort.person")[1..] {
            detail.push(ask(&q.replace(PG_OID, &format!("'{oid}'"))).await);
        }
        let mut verbose = Vec::new();
        for q in &sent("\\d+ cohort.person")[1..] {
            verbose.push(ask(&q.replace(PG_OID, &format!("'{oid}'"))).await);
        }
        assert_eq!(detail.len(), 7, "pg_class, pg_attribute and five footers");
        assert_eq!(detail[0], ["0|r|f|f|f|f|f|f|f||0||p|d|heap"]);
        assert_eq!(verbose[0], ["0|r|f|f|f|f|f|f|f||0||p|d|heap"]);
        assert_eq!(
            detail[1],
            [
                "person_id|bigint||t|||",
                "sex|text||t|||",
                "birth|date||f|||",
                "weight|double precision||f|||",
                "alive|boolean||f|||",
                "seen|timestamp without time zone||f|||",
                "n|bigint||f|||",
            ]
        );
        assert_eq!(verbose[1][0], "person_id|bigint||t||||p|||");
        assert_eq!(verbose[1][1], "sex|text||t||||x|||");
        for d in detail[2..].iter().chain(&verbose[2..]) {
            assert!(d.is_empty(), "{d:?}");
        }
        // The short name in public is visible; the qualified one is not.
        let visible = ask(&FIND_VISIBLE.replace("NAME", "cohort_person")).await;
        assert_eq!(visible.len(), 1);
        assert!(ask(&FIND_VISIBLE.replace("NAME", "person"))
            .await
            .is_empty());
        let public_oid = visible[0].split('|').next().unwrap().to_owned();
        assert_ne!(public_oid, oid);
        assert_eq!(
            ask(&format!(
                "SELECT {oid}::regclass, {public_oid}::pg_catalog.regclass, 'cohort.person'::regclass"
            ))
            .await,
            [format!("cohort.person|cohort_person|{oid}")]
        );
    }

    #[tokio::test]
    async fn nothing_but_granted_tables_and_no_data() {
        assert!(ask(&find("cohort", "secret")).await.is_empty());
        assert!(ask(&find("secret", "person")).await.is_empty());
        assert!(ask(&find("pg_catalog", "pg_class")).await.is_empty());
        assert_eq!(
            ask("SELECT table_schema, table_name, table_type FROM information_schema.tables ORDER BY 1, 2")
                .await,
            ["cohort|person|BASE TABLE", "public|cohort_person|BASE TABLE"]
        );
        assert_eq!(
            ask("SELECT data_type, is_nullable FROM information_schema.columns \
                 WHERE table_schema = 'cohort' AND column_name IN ('person_id', 'birth') ORDER BY ordinal_position")
                .await,
            ["bigint|NO", "date|YES"]
        );
        // Catalog tables only: a data table is not there to be read.
        let e = answer_for(
            "study",
            &tables(),
            "SELECT count(*) FROM cohort.person WHERE 'pg_class' <> ''",
            "kim",
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
        for bad in [
            "COPY (SELECT * FROM pg_class) TO '/tmp/x'",
            "SELECT 1; SELECT 2",
            "SELECT 1 OPERATOR(pg_catalog.%%) 2",
            "SELECT pg_catalog.nonexistent_fn(1)",
            "SELECT ((((",
        ] {
            assert!(
                answer_for("study", &tables(), bad, "kim").await.is_err(),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn session_functions_and_counts() {
        assert_eq!(
            ask("SELECT current_database(), current_user, current_schema(), version()").await,
            [format!("study|kim|public|{VERSION}")]
        );
        assert_eq!(
            ask("SELECT count(*) FROM pg_catalog.pg_policy").await,
            ["0"]
        );
        assert_eq!(
            ask(
                "SELECT upper(relkind), count(*) FROM pg_class GROUP BY upper(relkind) \
                 ORDER BY count(*) DESC"
            )
            .await,
            ["R|2"]
        );
        assert_eq!(
            names("SELECT upper(relkind), count(*), relkind::text FROM pg_class GROUP BY 1, 3")
                .await,
            ["upper", "count", "relkind"]
        );
        assert_eq!(
            ask(
                "SELECT count(*) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c \
                 ON a.attrelid = c.oid WHERE c.relname = 'person'"
            )
            .await,
            ["7"]
        );
    }

    #[test]
    fn catalog_questions_and_data_questions_are_told_apart() {
        for (_, q) in psql15() {
            assert!(is_catalog_query(&q), "{q}");
        }
        for q in [
            "SELECT version()",
            "select current_database()",
            "SELECT * FROM information_schema.tables",
            "SELECT 'person'::regclass",
            "WITH x AS (SELECT relname FROM pg_class) SELECT * FROM x",
            "SELECT * FROM (WITH x AS (SELECT 1 FROM pg_class) SELECT * FROM x) y",
            "WITH cohort_person AS (SELECT relname FROM pg_class) SELECT * FROM cohort_person",
        ] {
            assert!(is_catalog_query(q), "{q}");
        }
        for q in [
            "SELECT count(*) FROM cohort_person",
            "SELECT 1",
            "SELECT count(*) FROM cohort.person WHERE 'pg_class' <> ''",
            "SELECT count(*) FROM cohort_person p JOIN pg_catalog.pg_class c ON true",
            "SELECT (SELECT count(*) FROM cohort_person) FROM pg_class",
            "SELECT version(), count(*) FROM cohort_person",
            "WITH x AS (SELECT * FROM cohort_person) SELECT count(*) FROM x, pg_class",
            "WITH pg_class AS (SELECT * FROM cohort_person) SELECT count(*) FROM pg_class",
            "SELECT count(*) FROM other.cohort.person",
        ] {
            assert!(!is_catalog_query(q), "{q}");
        }
    }

    #[tokio::test]
    async fn every_psql_describe_query_is_answered() {
        let all = psql15();
        assert!(all.len() > 50, "{}", all.len());
        for (cmd, sql) in &all {
            if let Err(e) = answer_for("study", &tables(), sql, "kim").await {
                panic!("psql {cmd}: {e}\n{sql}");
            }
        }
        assert!(ask(&first("\\dT")).await.is_empty());
        assert_eq!(
            ask(&first("\\l")).await,
            ["study|mdc|UTF8|C.UTF-8|C.UTF-8||libc|"]
        );
        assert_eq!(ask(&first("\\dp")).await, ["public|cohort_person|table|||"]);
        assert_eq!(
            ask(&first("\\dS")).await,
            ["public|cohort_person|table|mdc"]
        );
    }
}
