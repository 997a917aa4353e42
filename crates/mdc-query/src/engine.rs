//! Governed SQL: one DataFusion session per query, holding only the tables of
//! the dataset versions granted to the project, each already filtered by the
//! consent registry as of today; every dataset the query touches goes through
//! `Store::access_check` (authorised and audited) before a row is read; the
//! result is checked by the project's disclosure-control rules and held as a
//! pending output. Errors before any data is read are audited as denied.
//!
//! Table names (documented in docs/query.md): a dataset `sepsis-cohort` with a
//! table `person` is visible as `sepsis_cohort.person` (a schema per dataset)
//! and `sepsis_cohort_person`; a dataset with a single table also as
//! `sepsis_cohort`. When several versions are granted, the latest is used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListArray, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, TableReference};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::cache::cache_manager::{CacheManager, CacheManagerConfig};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::logical_expr::{lit, Expr, LogicalPlan, TableScanBuilder, TableSource};
use datafusion::prelude::{col, ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use mdc_store::{Actor, CellPatients, NewOutput, OutputInfo, PolicyRecord, Store, TableStats};
use mdc_types::GrantLevel;
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use crate::consent::{Consent, ConsentedTable};
use crate::differencing;
use crate::disclosure::{
    self, AggTable, Checked, Column as DcColumn, ColumnKind, Reason, RowStats, Value,
};
use crate::plan::{self, Shape};
use crate::policy::{Policy, RULES_VERSION};
use crate::{guard, QueryError};

/// Per-query limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most rows a result may have (before disclosure control).
    pub max_rows: usize,
    pub timeout: Duration,
    /// Memory DataFusion may use for this query.
    pub memory_bytes: usize,
    pub target_partitions: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_rows: 10_000,
            timeout: Duration::from_secs(300),
            memory_bytes: 4 << 30,
            target_partitions: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

/// One table visible to the project's SQL.
#[derive(Debug, Clone, Serialize)]
pub struct VisibleTable {
    /// Schema (per dataset) and table name: `sepsis_cohort`, `person`.
    pub schema: String,
    pub table: String,
    /// Other names of the same table in the default schema.
    pub aliases: Vec<String>,
    pub dataset: String,
    pub version: i64,
    pub patient_column: Option<String>,
    /// (name, arrow type, nullable)
    pub columns: Vec<(String, String, bool)>,
    #[serde(skip)]
    pub arrow_types: Vec<DataType>,
}

/// A project's governed SQL session (nothing authorised or read yet).
pub struct Session {
    pub project: String,
    pub policy: Policy,
    pub tables: Vec<VisibleTable>,
    ctx: SessionContext,
    /// Registered name → (dataset, version).
    names: HashMap<String, (String, i64)>,
    patients: HashSet<String>,
    /// Registered name → the table behind it, for tables with a patient
    /// column (the bound on contributors, `plan::Hidden::patient_rows`).
    sources: HashMap<String, Arc<SourceTable>>,
}

/// A granted table with a patient column, unfiltered, for its statistics.
struct SourceTable {
    dataset: String,
    version: i64,
    table: String,
    patient: String,
    scan: LogicalPlan,
}

impl SourceTable {
    fn key(&self) -> (String, i64, String) {
        (self.dataset.clone(), self.version, self.table.clone())
    }

    /// Its statistics if this process already knows them.
    fn cached_stats(&self) -> Option<TableStats> {
        per_patient_cache().lock().ok()?.get(&self.key()).copied()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("project", &self.project)
            .field("tables", &self.tables.len())
            .finish_non_exhaustive()
    }
}

/// A shown column.
#[derive(Debug, Clone, Serialize)]
pub struct ShownColumn {
    pub name: String,
    pub kind: Option<ColumnKind>,
    pub data_type: String,
}

/// What a query returns inside the secure zone: the checked result and the
/// pending output that holds it.
#[derive(Debug, Clone, Serialize)]
pub struct QueryOutcome {
    pub output: OutputInfo,
    /// `aggregate` or `record`.
    pub shape: String,
    pub columns: Vec<ShownColumn>,
    /// Masked cells are `null`; see `checks.masks`.
    pub rows: Vec<Vec<Option<Value>>>,
    pub masked: Vec<(usize, usize)>,
    pub checks: Json,
    pub elapsed_ms: u64,
}

fn sql_name(dataset: &str) -> String {
    dataset.replace('-', "_")
}

/// The project's rules: its own settings, else the root's preset.
pub async fn project_policy(store: &Store, project: &str) -> Result<(Policy, bool), QueryError> {
    match store.disclosure_settings(project).await? {
        Some(s) => {
            let p: Policy = serde_json::from_value(s.policy)
                .map_err(|e| QueryError::Internal(format!("stored disclosure policy: {e}")))?;
            p.validate()?;
            Ok((p, s.two_reviews))
        }
        None => Ok((Policy::preset(&store.config().disclosure_preset)?, false)),
    }
}

type Sources = HashMap<Vec<String>, Arc<dyn TableSource>>;

/// Table sources (listed files, inferred schema) of registered dataset
/// versions, keyed by their files and shared by every session: a version's
/// files never change, so listing and schema inference happen once per
/// process. Bounded; cleared when full.
fn sources() -> &'static Mutex<Sources> {
    static SOURCES: OnceLock<Mutex<Sources>> = OnceLock::new();
    SOURCES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cached_source(files: &[String]) -> Option<Arc<dyn TableSource>> {
    sources().lock().ok()?.get(files).cloned()
}

/// Statistics of (dataset, version, table), once known: kept in the catalog
/// too (`Store::table_stats`), here to skip the lookup.
type PerPatient = HashMap<(String, i64, String), TableStats>;

fn per_patient_cache() -> &'static Mutex<PerPatient> {
    static CACHE: OnceLock<Mutex<PerPatient>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn remember_source(files: Vec<String>, source: Arc<dyn TableSource>) {
    if let Ok(mut m) = sources().lock() {
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(files, source);
    }
}

/// DataFusion's caches of Parquet footers and file statistics, shared by every
/// session of the process. A registered dataset version never changes (its
/// manifest pins each file's SHA-256), and the caches check each file's size
/// and modification time, so a shared entry is never stale. Each query still
/// gets its own memory pool.
fn shared_caches() -> CacheManagerConfig {
    static CACHES: OnceLock<Option<Arc<CacheManager>>> = OnceLock::new();
    let config = CacheManagerConfig::default();
    match CACHES.get_or_init(|| CacheManager::try_new(&CacheManagerConfig::default()).ok()) {
        Some(cm) => config
            .with_file_statistics_cache(cm.get_file_statistic_cache())
            .with_list_files_cache(cm.get_list_files_cache())
            .with_file_metadata_cache(Some(cm.get_file_metadata_cache())),
        None => config,
    }
}

/// DataFusion settings of every governed session (the benchmark's raw
/// baseline uses the same). Parquet filters are evaluated while decoding, so
/// a selective `WHERE` skips decoding the other columns of rows it drops
/// (measured: 10–25 % faster on the benchmark's queries than without).
pub fn session_config(limits: &Limits) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_target_partitions(limits.target_partitions.max(1))
        .with_parquet_pruning(true)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.execution.parquet.reorder_filters", true)
        .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
    // Person counts group by (cell, patient): nearly one group per row, so
    // the partial aggregation only copies. Decide after 8 Ki rows instead of
    // 100 Ki (a whole person table of a mid-sized cohort) and give up on it
    // below a 2:1 reduction. Raw DataFusion on benches/query: age bands
    // 13.9 → 9.5 ms, prevalence 25 → 15 ms.
    let execution = &mut config.options_mut().execution;
    execution.skip_partial_aggregation_probe_rows_threshold = 8192;
    execution.skip_partial_aggregation_probe_ratio_threshold = 0.5;
    // A hash join's dynamic filter checks every probe-side row against the
    // build side inside the scan. Pseudonymised ids are spread at random, so
    // it prunes no row group, and it cost more than it saved on every join
    // of benches/query, the selective sepsis cohort included (raw
    // DataFusion, 1 M patients: 287 → 196 ms; 100 000: 198 → 138 ms).
    config
        .options_mut()
        .optimizer
        .enable_join_dynamic_filter_pushdown = false;
    config
}

fn df_err(e: &datafusion::error::DataFusionError) -> String {
    let s = e.to_string();
    s.replace("Error during planning: ", "")
        .replace("SQL error: ", "")
        .replace("Schema error: ", "")
}

impl Session {
    /// Builds the session: the project's granted dataset versions as views with
    /// the consent filter applied. Reads only Parquet footers.
    pub async fn open(
        store: &Store,
        actor: &Actor,
        project: &str,
        limits: &Limits,
    ) -> Result<Session, QueryError> {
        let info = store.project_show(actor, project).await?;
        let (policy, _) = project_policy(store, project).await?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(limits.memory_bytes, 1.0)
            .with_cache_manager(shared_caches())
            .build_arc()
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let config = session_config(limits);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let mut latest: BTreeMap<String, i64> = BTreeMap::new();
        for g in &info.grants {
            let e = latest.entry(g.dataset.clone()).or_insert(g.version);
            *e = (*e).max(g.version);
        }
        let mut tables = Vec::new();
        let mut names = HashMap::new();
        let mut patients = HashSet::new();
        let mut sources = HashMap::new();
        let at = mdc_store::today();
        for (dataset, version) in &latest {
            let v = store.version_info(dataset, *version).await?;
            if v.kind != "tables" {
                continue;
            }
            let manifest_tables: Vec<mdc_types::manifest::ManifestTable> =
                serde_json::from_value(v.tables.clone()).unwrap_or_default();
            if manifest_tables.is_empty() {
                continue;
            }
            let exclusion = store
                .patient_exclusion(dataset, *version, &info.purpose, at)
                .await?;
            let base = sql_name(dataset);
            let schema_provider = Arc::new(MemorySchemaProvider::new());
            if let Some(cat) = ctx.catalog("datafusion") {
                let _ = cat.register_schema(&base, schema_provider);
            }
            let single = manifest_tables.len() == 1;
            let dir = store.root().path().join(&v.path);
            for t in &manifest_tables {
                let files: Vec<String> = t
                    .files
                    .iter()
                    .filter(|f| f.path.ends_with(".parquet"))
                    .map(|f| dir.join(&f.path).display().to_string())
                    .collect();
                if files.is_empty() {
                    continue;
                }
                let source = match cached_source(&files) {
                    Some(s) => s,
                    None => {
                        let df = ctx
                            .read_parquet(files.clone(), ParquetReadOptions::default())
                            .await
                            .map_err(|e| {
                                QueryError::Internal(format!("{dataset}@{version}/{}: {e}", t.name))
                            })?;
                        let LogicalPlan::TableScan(ts) = df.logical_plan() else {
                            return Err(QueryError::Internal(format!(
                                "{dataset}@{version}/{}: not a table scan",
                                t.name
                            )));
                        };
                        remember_source(files, Arc::clone(&ts.source));
                        Arc::clone(&ts.source)
                    }
                };
                // The scan gets a name of ours that no catalog holds: the SQL can
                // reach the files only through the consent-filtered view, and the
                // inlined view's scan still says which dataset it reads.
                let internal = format!("mdc_source_{base}_{}", t.name.to_ascii_lowercase());
                let scan = |source: Arc<dyn TableSource>| {
                    TableScanBuilder::new(internal.clone(), source)
                        .build()
                        .map(LogicalPlan::TableScan)
                        .map_err(|e| QueryError::Internal(e.to_string()))
                };
                let plan = scan(Arc::clone(&source))?;
                names.insert(internal.clone(), (dataset.clone(), *version));
                let source_table = t.patient_column.as_ref().map(|pc| {
                    Arc::new(SourceTable {
                        dataset: dataset.clone(),
                        version: *version,
                        table: t.name.clone(),
                        patient: pc.clone(),
                        scan: plan.clone(),
                    })
                });
                let mut view_plan = plan;
                if let Some(pc) = &t.patient_column {
                    patients.insert(pc.to_ascii_lowercase());
                    let Some(field) = source.schema().fields().find(pc).map(|(_, f)| f.clone())
                    else {
                        return Err(QueryError::Internal(format!(
                            "{dataset}@{version}/{}: patient column {pc} is missing",
                            t.name
                        )));
                    };
                    // Opted-out rows are skipped by the Parquet reader (a row
                    // selection per file), not filtered after decoding.
                    if let Some(c) = Consent::new(&exclusion, field.data_type().is_integer()) {
                        let provider = source_as_provider(&source)
                            .map_err(|e| QueryError::Internal(e.to_string()))?;
                        let kept = store.root().cache_dir().join("consent");
                        let consented = ConsentedTable::new(provider, pc, c, kept);
                        view_plan = scan(provider_as_source(Arc::new(consented)))?;
                    }
                }
                let df = DataFrame::new(ctx.state(), view_plan);
                let schema = df.schema().clone();
                let view = df.into_view();
                let table_name = t.name.to_ascii_lowercase();
                let mut aliases = vec![format!("{base}_{table_name}")];
                if single {
                    aliases.push(base.clone());
                }
                let qualified = TableReference::partial(base.clone(), table_name.clone());
                ctx.register_table(qualified.clone(), view.clone())
                    .map_err(|e| QueryError::Internal(e.to_string()))?;
                names.insert(qualified.to_string(), (dataset.clone(), *version));
                for a in &aliases {
                    ctx.register_table(TableReference::bare(a.clone()), view.clone())
                        .map_err(|e| QueryError::Internal(e.to_string()))?;
                    names.insert(a.clone(), (dataset.clone(), *version));
                }
                if let Some(st) = source_table {
                    for n in aliases
                        .iter()
                        .cloned()
                        .chain([qualified.to_string(), internal])
                    {
                        sources.insert(n, Arc::clone(&st));
                    }
                }
                tables.push(VisibleTable {
                    schema: base.clone(),
                    table: table_name,
                    aliases,
                    dataset: dataset.clone(),
                    version: *version,
                    patient_column: t.patient_column.clone(),
                    columns: schema
                        .fields()
                        .iter()
                        .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
                        .collect(),
                    arrow_types: schema
                        .fields()
                        .iter()
                        .map(|f| f.data_type().clone())
                        .collect(),
                });
            }
        }
        Ok(Session {
            project: project.to_owned(),
            policy,
            tables,
            ctx,
            names,
            patients,
            sources,
        })
    }

    /// Statistics of the table registered as `name` (most rows per patient,
    /// rows without one): from this process's cache, else the catalog, else
    /// derived now with one pass over the patient column and kept in the
    /// catalog (versions are immutable). `None` when they cannot be had; the
    /// caller then counts exactly.
    async fn table_stats(&self, store: &Store, name: &str, limit: Duration) -> Option<TableStats> {
        let src = self.sources.get(name)?;
        if let Some(t) = src.cached_stats() {
            return Some(t);
        }
        let known = store
            .table_stats(&src.dataset, src.version, &src.table)
            .await
            .ok()?;
        let stats = match known {
            Some(t) => t,
            None => {
                let patient = Expr::Column(Column::from_name(src.patient.clone()));
                // Per patient value: its rows (`k`; 0 for the empty value's
                // group) and all rows (`n`). Grouped counts, sums and maxima
                // only: they have DataFusion's fast grouped accumulators.
                let derive = DataFrame::new(self.ctx.state(), src.scan.clone())
                    .aggregate(
                        vec![patient.clone()],
                        vec![count(lit(1i64)).alias("n"), count(patient).alias("k")],
                    )
                    .and_then(|d| {
                        d.aggregate(
                            vec![],
                            vec![
                                max(col("k")).alias("m"),
                                sum(col("n")).alias("rows"),
                                sum(col("k")).alias("with_patient"),
                            ],
                        )
                    })
                    .ok()?
                    .collect();
                let batches = tokio::time::timeout(limit, derive)
                    .await
                    .map_err(|_| tracing::warn!("statistics of {name}: over the time limit"))
                    .ok()?
                    .map_err(|e| tracing::warn!("statistics of {name}: {e}"))
                    .ok()?;
                // Over no rows, MAX and SUM are NULL: zero.
                let value = |i: usize| {
                    batches
                        .first()
                        .filter(|b| b.num_columns() > i)
                        .and_then(|b| b.column(i).as_primitive_opt::<Int64Type>())
                        .and_then(|a| a.iter().next().flatten())
                        .unwrap_or(0)
                };
                let stats = TableStats {
                    max_rows_per_patient: value(0),
                    rows_without_patient: value(1).saturating_sub(value(2)),
                };
                store
                    .set_table_stats(&src.dataset, src.version, &src.table, stats)
                    .await
                    .ok()?;
                stats
            }
        };
        if let Ok(mut c) = per_patient_cache().lock() {
            c.insert(src.key(), stats);
        }
        Some(stats)
    }

    /// Plans (without reading data) and returns the plan and the datasets it touches.
    async fn plan(&self, sql: &str) -> Result<(LogicalPlan, Vec<(String, i64)>), QueryError> {
        guard::check(sql)?;
        let options = datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = self.ctx.sql_with_options(sql, options).await.map_err(|e| {
            let msg = df_err(&e);
            // Point at the object the planner names, when it names one.
            let named = msg
                .split('\'')
                .nth(1)
                .map(|n| n.rsplit('.').next().unwrap_or(n).to_owned());
            match named.and_then(|n| guard::position_of(sql, &n)) {
                Some((l, c)) => QueryError::Plan(format!("{msg} (at Line: {l}, Column: {c})")),
                None => QueryError::Plan(msg),
            }
        })?;
        let plan = df.logical_plan().clone();
        let mut touched: Vec<(String, i64)> = Vec::new();
        let mut unknown: Option<String> = None;
        let _ = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let name = scan.table_name.to_string();
                match self.names.get(&name) {
                    Some(dv) => {
                        if !touched.contains(dv) {
                            touched.push(dv.clone());
                        }
                    }
                    None => unknown = Some(name),
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if let Some(name) = unknown {
            return Err(QueryError::Forbidden(format!(
                "{name} is not a table granted to this project"
            )));
        }
        Ok((plan, touched))
    }

    /// The SQL visible names and columns, for catalog answers (pgwire).
    pub fn table_names(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for t in &self.tables {
            out.push((t.schema.clone(), t.table.clone()));
            for a in &t.aliases {
                out.push(("public".to_owned(), a.clone()));
            }
        }
        out
    }

    /// Runs a query with raw DataFusion and no governance, for the benchmark's
    /// baseline only (same session, same files).
    pub async fn run_raw(&self, sql: &str) -> Result<usize, QueryError> {
        let df = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| QueryError::Plan(df_err(&e)))?;
        let batches = df
            .collect()
            .await
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        Ok(batches.iter().map(RecordBatch::num_rows).sum())
    }
}

/// Column names and types of a query's result, by planning only (no data is
/// read, nothing is audited): for the extended protocol's Describe.
pub async fn describe(session: &Session, sql: &str) -> Result<Vec<(String, DataType)>, QueryError> {
    let (plan, _) = session.plan(sql).await?;
    Ok(plan
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect())
}

/// Runs `sql` in `project` as `actor`: the whole governed path.
pub async fn run(
    store: &Store,
    actor: &Actor,
    project: &str,
    sql: &str,
    limits: &Limits,
) -> Result<QueryOutcome, QueryError> {
    let started = Instant::now();
    let session = Session::open(store, actor, project, limits).await?;
    let result = run_in(store, actor, &session, sql, limits, started).await;
    if let Err(e) = &result {
        if e.is_refusal() {
            let mut p = Map::new();
            p.insert(
                "sql_sha256".into(),
                mdc_store::audit::sha256_hex(&[sql.as_bytes()]).into(),
            );
            store
                .audit_denied(actor, "query.run", project, &e.to_string(), p)
                .await?;
        }
    }
    result
}

/// When the patient sets behind person counts are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sets {
    /// Not now: nothing released can conflict yet; built at submission.
    Defer,
    /// Now, masking cells that conflict with released ones.
    Mask,
    /// Now, for a submission: the result must come out as it was held.
    ForSubmit,
}

/// A checked result, before it is held.
struct Computed {
    shape_name: &'static str,
    names: Vec<String>,
    types: Vec<String>,
    checked: Checked,
    checks: Json,
    cells: Vec<CellPatients>,
    csv: Vec<u8>,
    /// Unmasked person counts, to decide whether sets are needed now.
    person_counts: Vec<i64>,
}

/// Runs `sql` in an open session (pgwire keeps one per connection).
pub async fn run_in(
    store: &Store,
    actor: &Actor,
    session: &Session,
    sql: &str,
    limits: &Limits,
    started: Instant,
) -> Result<QueryOutcome, QueryError> {
    let policy = &session.policy;
    // Patient sets cost more than the query on person counts. They are built
    // now only when a cell's size is within the threshold of a released
    // cell's (only then can the two differ by fewer patients), else at
    // submission.
    let released = if policy.differencing {
        store.released_cell_sizes(&session.project).await?
    } else {
        Vec::new()
    };
    let mut computed =
        compute(store, actor, session, sql, limits, Sets::Defer, Pass::First).await?;
    let threshold = i64::try_from(policy.min_count).unwrap_or(i64::MAX);
    let close = computed.person_counts.iter().any(|n| {
        released
            .iter()
            .any(|m| n.saturating_sub(*m).saturating_abs() < threshold)
    });
    if close {
        computed = compute(store, actor, session, sql, limits, Sets::Mask, Pass::Again).await?;
    }
    let Computed {
        shape_name,
        names,
        types,
        checked,
        checks,
        cells,
        csv,
        ..
    } = computed;
    let masked: Vec<(usize, usize)> = checked
        .rows
        .iter()
        .enumerate()
        .flat_map(|(r, row)| {
            row.iter()
                .enumerate()
                .filter(|(_, v)| v.is_none())
                .map(move |(c, _)| (r, c))
        })
        .collect();
    let title: String = sql
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(120)
        .collect();
    let output = store
        .output_create(
            actor,
            NewOutput {
                project: session.project.clone(),
                kind: "query".into(),
                title,
                media_type: "text/csv".into(),
                content: csv,
                rows: checked.rows.len() as i64,
                policy: PolicyRecord {
                    name: policy.name.clone(),
                    version: RULES_VERSION,
                    sha256: policy.sha256(),
                    rules: serde_json::to_value(policy).unwrap_or(Json::Null),
                },
                checks: checks.clone(),
                needs_review: checked.needs_review,
                masked_cells: masked.len() as i64,
                source_text: Some(sql.chars().take(guard::MAX_SQL_BYTES).collect()),
                cells,
            },
        )
        .await?;
    let kinds: Vec<Option<ColumnKind>> = match shape_name {
        "aggregate" => checked.columns.iter().map(|c| Some(c.kind)).collect(),
        _ => vec![None; names.len()],
    };
    Ok(QueryOutcome {
        output,
        shape: shape_name.into(),
        columns: names
            .iter()
            .zip(types)
            .zip(kinds)
            .map(|((n, t), k)| ShownColumn {
                name: n.clone(),
                kind: k,
                data_type: t,
            })
            .collect(),
        rows: checked.rows,
        masked,
        checks,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// Contributors of a cell from its `n` rows with a patient and the table's
/// most rows per patient `m` (at least ⌈n / m⌉ patients), when that settles
/// the verdict: `cap` when the bound reaches it (what the exact count,
/// capped, says), `n` when `n` is below it (the exact count is no larger, so
/// both mask). `None`: only the exact count can tell.
pub fn bounded_contributors(n: i64, m: i64, cap: u64) -> Option<i64> {
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    if n <= 0 {
        return Some(0);
    }
    if m <= 0 {
        return None;
    }
    let at_least = n / m + i64::from(n % m != 0);
    if at_least >= cap {
        Some(cap)
    } else if n < cap {
        Some(n)
    } else {
        None
    }
}

/// Which try of a query this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Checks (and audits) access to every dataset touched.
    First,
    /// Access was checked by an earlier pass of the same request.
    Again,
    /// As `Again`, counting contributors per row even where the
    /// rows-per-patient bound could settle them (it could not).
    Exact,
}

async fn compute(
    store: &Store,
    actor: &Actor,
    session: &Session,
    sql: &str,
    limits: &Limits,
    sets: Sets,
    pass: Pass,
) -> Result<Computed, QueryError> {
    let policy = &session.policy;
    let (plan, touched) = session.plan(sql).await?;
    let want_tops = policy.dominance.is_some() || policy.p_percent.is_some();
    let want_sets = policy.differencing && sets != Sets::Defer;
    let cap = policy.min_count;
    let shape = plan::analyse(
        &plan,
        &session.patients,
        want_tops,
        want_sets,
        cap,
        &|name| {
            let src = session.sources.get(name)?;
            let lacking = src
                .cached_stats()
                .is_some_and(|t| t.rows_without_patient > 0);
            Some(if lacking {
                plan::PatientTable::SomeRowsLackAPatient
            } else {
                plan::PatientTable::NotKnownToLack
            })
        },
        pass != Pass::Exact,
    )?;
    let level = match &shape {
        Shape::Aggregate(_) => GrantLevel::Aggregate,
        Shape::Record { .. } => GrantLevel::Record,
    };
    for (dataset, version) in touched.iter().filter(|_| pass == Pass::First) {
        match store
            .access_check(actor, &session.project, dataset, Some(*version), level)
            .await
        {
            Ok(_) => {}
            Err(mdc_store::StoreError::Denied(d)) if level == GrantLevel::Record => {
                let why = match &shape {
                    Shape::Record { reason } => reason.clone(),
                    Shape::Aggregate(_) => String::new(),
                };
                return Err(QueryError::Store(mdc_store::StoreError::Denied(mdc_store::Denied {
                    gate: d.gate,
                    reason: format!(
                        "row-level results are refused without a record-level grant ({why}); aggregate with GROUP BY and COUNT instead. {}",
                        d.reason
                    ),
                })));
            }
            Err(e) => return Err(e.into()),
        }
    }
    // After the access checks: deriving it reads the table.
    let per_patient = match &shape {
        Shape::Aggregate(a) => match &a.hidden.patient_rows {
            Some(pr) => match session.table_stats(store, &pr.table, limits.timeout).await {
                // Counting all rows counts patients' rows only if every row
                // has a patient.
                Some(t) if !pr.all_rows || t.rows_without_patient == 0 => {
                    Some(t.max_rows_per_patient)
                }
                _ => {
                    return Box::pin(compute(
                        store,
                        actor,
                        session,
                        sql,
                        limits,
                        sets,
                        Pass::Exact,
                    ))
                    .await
                }
            },
            None => None,
        },
        Shape::Record { .. } => None,
    };
    let exec_plan = match &shape {
        Shape::Aggregate(a) => a.plan.clone(),
        Shape::Record { .. } => plan.clone(),
    };
    let batches = execute(session, exec_plan, limits).await?;
    let schema = plan.schema();
    let visible = schema.fields().len();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().to_string())
        .collect();
    let mut raw_rows: Vec<Vec<Value>> = Vec::new();
    let mut stats: Vec<RowStats> = Vec::new();
    let mut person_sets: Vec<BTreeMap<usize, differencing::IdSet>> = Vec::new();
    let mut unsettled = false;
    for b in &batches {
        let cols: Vec<Vec<Value>> = (0..visible.min(b.num_columns()))
            .map(|i| column_values(b.column(i)))
            .collect::<Result<_, _>>()?;
        let n = b.num_rows();
        for r in 0..n {
            raw_rows.push(
                cols.iter()
                    .map(|c| c.get(r).cloned().unwrap_or(Value::Null))
                    .collect(),
            );
        }
        if let Shape::Aggregate(a) = &shape {
            let contrib = match (a.hidden.contributors, &a.hidden.patient_rows, per_patient) {
                (Some(i), _, _) if i < b.num_columns() => column_values(b.column(i))?,
                (_, Some(pr), Some(m)) if pr.column < b.num_columns() => {
                    let mut out = Vec::with_capacity(n);
                    for v in column_values(b.column(pr.column))? {
                        let rows = v.as_f64().map_or(0, |x| x as i64);
                        match bounded_contributors(rows, m, cap) {
                            Some(c) => out.push(Value::Int(c)),
                            None => unsettled = true,
                        }
                    }
                    out
                }
                _ => vec![Value::Null; n],
            };
            let mut tops = Vec::new();
            for &(v, t1, t2, s) in &a.hidden.tops {
                tops.push((
                    v,
                    column_values(b.column(t1))?,
                    column_values(b.column(t2))?,
                    column_values(b.column(s))?,
                ));
            }
            let mut persons = Vec::new();
            for &(v, h) in &a.hidden.persons {
                persons.push((v, patient_lists(b.column(h))?));
            }
            for r in 0..n {
                let mut st = RowStats {
                    contributors: contrib.get(r).and_then(Value::as_f64).map(|x| x as u64),
                    ..RowStats::default()
                };
                for (v, a1, a2, s) in &tops {
                    let g = |c: &Vec<Value>| c.get(r).and_then(Value::as_f64).unwrap_or(0.0);
                    st.tops.insert(*v, (g(a1), g(a2), g(s)));
                }
                stats.push(st);
                let mut sets = BTreeMap::new();
                for (v, lists) in &persons {
                    if let Some(set) = lists.get(r) {
                        sets.insert(*v, set.clone());
                    }
                }
                person_sets.push(sets);
            }
        }
    }
    if unsettled {
        return Box::pin(compute(
            store,
            actor,
            session,
            sql,
            limits,
            sets,
            Pass::Exact,
        ))
        .await;
    }
    let total_rows = raw_rows.len();
    let mut person_counts = Vec::new();
    let (shape_name, checked, checks, cells) = match &shape {
        Shape::Aggregate(a) => {
            let table = AggTable {
                columns: names
                    .iter()
                    .zip(&a.kinds)
                    .map(|(n, k)| DcColumn {
                        name: n.clone(),
                        kind: *k,
                    })
                    .collect(),
                rows: raw_rows,
                stats,
                grouping_sets: a.grouping_sets,
            };
            let (pre, diff_flags, cells) = differencing_check(
                store,
                session,
                policy,
                &table,
                &person_sets,
                sets == Sets::Mask,
            )
            .await?;
            let mut checked = disclosure::check_aggregate(policy, &table, &pre);
            // Only cells that are shown can be subtracted from later ones:
            // keep the sets of visible person counts only.
            let sets_built = !cells.is_empty();
            let cells: Vec<CellPatients> = cells
                .into_iter()
                .filter(|(r, v, _)| {
                    checked
                        .rows
                        .get(*r)
                        .and_then(|row| row.get(*v))
                        .is_some_and(Option::is_some)
                })
                .map(|(_, _, c)| c)
                .collect();
            if a.having {
                checked.needs_review = true;
                checked.review_reasons.push(
                    "HAVING filters on aggregates can reveal masked values; a reviewer must look"
                        .into(),
                );
            }
            if table.columns.iter().any(|c| c.kind == ColumnKind::Count) {
                checked.needs_review = true;
                checked.review_reasons.push(
                    "row counts (not COUNT(DISTINCT patient)) are not covered by differencing control".into(),
                );
            }
            for (ci, c) in table.columns.iter().enumerate() {
                if c.kind == ColumnKind::PersonCount {
                    person_counts.extend(table.rows.iter().filter_map(|r| match r.get(ci) {
                        Some(Value::Int(n)) => Some(*n),
                        Some(v) => v.as_f64().map(|f| f as i64),
                        None => None,
                    }));
                }
            }
            let has_person_counts = table
                .columns
                .iter()
                .any(|c| c.kind == ColumnKind::PersonCount);
            let person_sets_state = if sets_built {
                "stored"
            } else if policy.differencing && has_person_counts {
                "deferred"
            } else {
                "none"
            };
            let checks = json!({
                "shape": "aggregate",
                "policy": policy.name,
                "rules_version": RULES_VERSION,
                "rows": total_rows,
                "masks": checked.masks,
                "flags": checked.flags,
                "differencing": diff_flags,
                "person_sets": person_sets_state,
                "rounded_cells": checked.rounded_cells,
                "needs_review": checked.needs_review,
                "review_reasons": checked.review_reasons,
                "column_kinds": checked.columns,
            });
            ("aggregate", checked, checks, cells)
        }
        Shape::Record { reason } => {
            let (kept, report) = disclosure::check_records(policy, &names, raw_rows);
            let checked = Checked {
                columns: names
                    .iter()
                    .map(|n| DcColumn {
                        name: n.clone(),
                        kind: ColumnKind::Other,
                    })
                    .collect(),
                rows: kept
                    .into_iter()
                    .map(|r| r.into_iter().map(Some).collect())
                    .collect(),
                masks: vec![],
                flags: vec![],
                rounded_cells: 0,
                needs_review: true,
                review_reasons: vec![
                    "record-level result: a reviewer must look at every release".into()
                ],
            };
            let checks = json!({
                "shape": "record",
                "why_record": reason,
                "policy": policy.name,
                "rules_version": RULES_VERSION,
                "rows": total_rows,
                "k_anonymity": report,
                "needs_review": true,
                "review_reasons": checked.review_reasons,
            });
            ("record", checked, checks, vec![])
        }
    };
    let csv = render_csv(&names, &checked)?;
    Ok(Computed {
        shape_name,
        names,
        types,
        checked,
        checks,
        cells,
        csv,
        person_counts,
    })
}

/// Submits a held query result for review (the author only). When its
/// person sets were deferred, the query runs again now to build them: the
/// result must come out exactly as it was held (else the data changed: consent
/// withdrawn, grants changed, and the researcher runs it again), and no cell
/// may differ from a released one by fewer patients than the threshold.
pub async fn submit(
    store: &Store,
    actor: &Actor,
    id: i64,
    context: &str,
    limits: &Limits,
) -> Result<OutputInfo, QueryError> {
    let (info, held) = store.output_for_submit(actor, id).await?;
    let deferred = info.kind == "query"
        && info.status == "pending"
        && info.checks.get("person_sets").and_then(Json::as_str) == Some("deferred");
    let Some(sql) = info.source_text.as_deref().filter(|_| deferred) else {
        return Ok(store.output_submit(actor, id, context).await?);
    };
    let conflict = |m: String| QueryError::Store(mdc_store::StoreError::Conflict(m));
    let session = Session::open(store, actor, &info.project, limits).await?;
    let again = compute(
        store,
        actor,
        &session,
        sql,
        limits,
        Sets::ForSubmit,
        Pass::First,
    )
    .await?;
    if !same_result(&again.csv, &held) {
        return Err(conflict(format!(
            "output {id}: the data behind it changed since it was computed (consent withdrawn or grants changed); run the query again and submit the new output"
        )));
    }
    let threshold = session.policy.min_count;
    let sizes: Vec<i64> = again.cells.iter().map(|c| c.patients).collect();
    let released = store
        .released_sets_near(&info.project, &sizes, threshold)
        .await?;
    let mine: Vec<(i64, String, differencing::IdSet)> = again
        .cells
        .iter()
        .filter_map(|c| differencing::decode(&c.bitmap).map(|set| (id, c.cell.clone(), set)))
        .collect();
    if let Some(why) = differencing::refusal(id, &mine, &released, threshold) {
        return Err(conflict(why));
    }
    Ok(store
        .output_submit_with_cells(actor, id, context, Some(&again.cells))
        .await?)
}

/// Whether two held CSV results are the same table: rows in any order (the
/// SQL may not sort them), and fractional numbers equal to 1e-9 relative
/// (a parallel SUM or AVG adds in another order on every run).
fn same_result(a: &[u8], b: &[u8]) -> bool {
    fn read(csv_bytes: &[u8]) -> Option<Vec<Vec<String>>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(csv_bytes);
        r.records()
            .map(|rec| rec.ok().map(|r| r.iter().map(str::to_owned).collect()))
            .collect()
    }
    fn fraction(s: &str) -> Option<f64> {
        if s.contains(['.', 'e', 'E']) {
            s.parse::<f64>().ok()
        } else {
            None
        }
    }
    fn key(row: &[String]) -> Vec<&str> {
        row.iter()
            .map(|f| {
                if fraction(f).is_some() {
                    ""
                } else {
                    f.as_str()
                }
            })
            .collect()
    }
    let (Some(mut a), Some(mut b)) = (read(a), read(b)) else {
        return false;
    };
    if a.len() != b.len() || a.first() != b.first() {
        return false;
    }
    let header = 1.min(a.len());
    a[header..].sort_by(|x, y| key(x).cmp(&key(y)));
    b[header..].sort_by(|x, y| key(x).cmp(&key(y)));
    a.iter().zip(&b).all(|(x, y)| {
        x.len() == y.len()
            && x.iter().zip(y).all(|(u, v)| {
                u == v
                    || match (fraction(u), fraction(v)) {
                        (Some(p), Some(q)) => {
                            (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1e-300)
                        }
                        _ => false,
                    }
            })
    })
}

async fn execute(
    session: &Session,
    plan: LogicalPlan,
    limits: &Limits,
) -> Result<Vec<RecordBatch>, QueryError> {
    let max_rows = limits.max_rows;
    let work = async {
        let df = session
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| QueryError::Plan(df_err(&e)))?;
        let mut stream = df
            .execute_stream()
            .await
            .map_err(|e| QueryError::Internal(e.to_string()))?;
        let mut out = Vec::new();
        let mut rows = 0usize;
        while let Some(b) = stream.next().await {
            let b = b.map_err(|e| {
                let s = e.to_string();
                if s.contains("Resources exhausted") {
                    QueryError::Limit(format!(
                        "the query needs more memory than the {} MiB allowed",
                        limits.memory_bytes >> 20
                    ))
                } else {
                    QueryError::Internal(s)
                }
            })?;
            rows += b.num_rows();
            if rows > max_rows {
                return Err(QueryError::Limit(format!(
                    "the result has more than {max_rows} rows; aggregate further or add a LIMIT"
                )));
            }
            out.push(b);
        }
        Ok(out)
    };
    match tokio::time::timeout(limits.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(QueryError::Limit(format!(
            "the query ran longer than {} s and was stopped",
            limits.timeout.as_secs()
        ))),
    }
}

/// Differencing control: compares each person-count cell with the project's
/// released ones; returns pre-masks, the findings, and the cells to store.
async fn differencing_check(
    store: &Store,
    session: &Session,
    policy: &Policy,
    table: &AggTable,
    sets: &[BTreeMap<usize, differencing::IdSet>],
    mask: bool,
) -> Result<
    (
        Vec<(usize, usize, Reason)>,
        Vec<Json>,
        Vec<(usize, usize, CellPatients)>,
    ),
    QueryError,
> {
    let mut pre = Vec::new();
    let mut findings = Vec::new();
    let mut cells = Vec::new();
    if sets.iter().all(BTreeMap::is_empty) {
        return Ok((pre, findings, cells));
    }
    let released = if mask {
        let sizes: Vec<i64> = sets
            .iter()
            .flat_map(|row| row.values().map(|s| s.len() as i64))
            .collect();
        store
            .released_sets_near(&session.project, &sizes, policy.min_count)
            .await?
    } else {
        Vec::new()
    };
    let dims: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == ColumnKind::Dimension)
        .map(|(i, _)| i)
        .collect();
    for (r, row_sets) in sets.iter().enumerate() {
        for (&v, set) in row_sets {
            let col = table
                .columns
                .get(v)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let key: Vec<String> = dims
                .iter()
                .map(|&d| {
                    table
                        .rows
                        .get(r)
                        .and_then(|row| row.get(d))
                        .map(Value::to_text)
                        .unwrap_or_default()
                })
                .collect();
            let label = format!("{col}|{}", key.join("|"));
            if policy.differencing {
                if let Some((id, cell, d)) =
                    differencing::closest_conflict(set, &released, policy.min_count)
                {
                    pre.push((r, v, Reason::Differencing));
                    findings.push(json!({
                        "row": r, "column": col,
                        "earlier_output": id, "earlier_cell": cell,
                        "patients_differing": d,
                        "note": "the cell differs from a released one by fewer patients than the threshold",
                    }));
                }
            }
            cells.push((
                r,
                v,
                CellPatients {
                    cell: label,
                    patients: set.len() as i64,
                    bitmap: differencing::encode(set),
                },
            ));
        }
    }
    Ok((pre, findings, cells))
}

/// One column as engine values.
pub(crate) fn column_values(a: &ArrayRef) -> Result<Vec<Value>, QueryError> {
    let err = |e: datafusion::arrow::error::ArrowError| QueryError::Internal(e.to_string());
    let n = a.len();
    let dt = a.data_type();
    let mut out = Vec::with_capacity(n);
    if dt.is_integer() {
        let c = cast(a, &DataType::Int64).map_err(err)?;
        let c = c
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| QueryError::Internal("int cast".into()))?;
        for i in 0..n {
            out.push(if c.is_null(i) {
                Value::Null
            } else {
                Value::Int(c.value(i))
            });
        }
    } else if dt.is_floating() || matches!(dt, DataType::Decimal128(..) | DataType::Decimal256(..))
    {
        let c = cast(a, &DataType::Float64).map_err(err)?;
        let c = c
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| QueryError::Internal("float cast".into()))?;
        for i in 0..n {
            out.push(if c.is_null(i) {
                Value::Null
            } else {
                Value::Float(c.value(i))
            });
        }
    } else if *dt == DataType::Boolean {
        let c = a.as_boolean();
        for i in 0..n {
            out.push(if c.is_null(i) {
                Value::Null
            } else {
                Value::Bool(c.value(i))
            });
        }
    } else {
        let c = cast(a, &DataType::Utf8).map_err(err)?;
        let c = c
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| QueryError::Internal(format!("cannot show a {dt} column")))?;
        for i in 0..n {
            out.push(if c.is_null(i) {
                Value::Null
            } else {
                Value::Text(c.value(i).to_owned())
            });
        }
    }
    Ok(out)
}

/// The hidden `array_agg(DISTINCT patient)` column as one id set per row.
fn patient_lists(a: &ArrayRef) -> Result<Vec<differencing::IdSet>, QueryError> {
    let list = a
        .as_any()
        .downcast_ref::<ListArray>()
        .ok_or_else(|| QueryError::Internal("patient list column".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        let mut set = Vec::new();
        if !list.is_null(i) {
            let values = list.value(i);
            if values.data_type().is_integer() {
                let c = cast(&values, &DataType::Int64)
                    .map_err(|e| QueryError::Internal(e.to_string()))?;
                set.extend(
                    c.as_primitive::<Int64Type>()
                        .iter()
                        .flatten()
                        .map(|v| v as u64),
                );
            } else {
                for v in column_values(&values)? {
                    if let Value::Text(s) = v {
                        set.push(differencing::text_id(&s));
                    }
                }
            }
        }
        out.push(differencing::IdSet::from_unsorted(set));
    }
    Ok(out)
}

fn render_csv(names: &[String], checked: &Checked) -> Result<Vec<u8>, QueryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(names)
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    for row in &checked.rows {
        let rec: Vec<String> = row
            .iter()
            .map(|v| match v {
                None => "[masked]".to_owned(),
                Some(v) => v.to_text(),
            })
            .collect();
        w.write_record(&rec)
            .map_err(|e| QueryError::Internal(e.to_string()))?;
    }
    w.into_inner()
        .map_err(|e| QueryError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::same_result;

    #[test]
    fn held_results_compare_in_any_row_order_and_to_rounding() {
        let a = b"sex,n,mean\nF,150,1.2345678901234567\nM,150,2.5\n";
        let b = b"sex,n,mean\nM,150,2.5000000000000004\nF,150,1.2345678901234565\n";
        assert!(same_result(a, b));
        // A count that changed, a row that went, a mean that moved: different.
        assert!(!same_result(
            a,
            b"sex,n,mean\nF,149,1.2345678901234567\nM,150,2.5\n"
        ));
        assert!(!same_result(a, b"sex,n,mean\nF,150,1.2345678901234567\n"));
        assert!(!same_result(a, b"sex,n,mean\nF,150,1.3\nM,150,2.5\n"));
        assert!(!same_result(
            a,
            b"sex,n,avg\nF,150,1.2345678901234567\nM,150,2.5\n"
        ));
    }
}
