//! The PostgreSQL wire-protocol endpoint (issue 6): psql, psycopg, DBeaver and
//! R DBI connect with their own tools. The user is the mdc user name, the
//! password is their API token, and the database is the project. Every query
//! runs through `mdc_query::run` (the same governance, consent filtering,
//! disclosure control and pending output as the CLI and HTTP); catalog
//! questions are answered from the project's granted tables only; masked cells
//! come back as NULL. Served inside the secure zone, without TLS.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::{stream, Sink};
use mdc_query::disclosure::Value;
use mdc_query::{DataType, Limits, QueryError, Session};
use mdc_store::{Credential, Store};
use pgwire::api::auth::cleartext::CleartextPasswordAuth;
use pgwire::api::auth::driver::{AuthDriver, AuthOutcome};
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, AuthSource,
    DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::TcpListener;

/// Where the authenticated token is kept for the connection (never sent back).
const TOKEN_KEY: &str = "mdc.token";

/// Accepts connections until the listener fails.
pub async fn serve(store: Arc<Store>, listener: TcpListener) {
    let handlers = Arc::new(Handlers {
        backend: Arc::new(Backend {
            store: store.clone(),
            parser: Arc::new(NoopQueryParser::new()),
        }),
        startup: Arc::new(Startup {
            driver: AuthDriver::new(parameters()),
            auth: CleartextPasswordAuth::new(Arc::new(TokenSource { store })),
        }),
    });
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let h = handlers.clone();
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, None, h).await {
                tracing::debug!(error = %e, "pg connection ended");
            }
        });
    }
}

fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = "16.0 (mdc governed SQL)".into();
    p
}

struct Handlers {
    backend: Arc<Backend>,
    startup: Arc<Startup>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.backend.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.backend.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
}

/// The password is an mdc token; it must belong to the user named at login.
#[derive(Debug)]
struct TokenSource {
    store: Arc<Store>,
}

fn bad_password(login: &LoginInfo) -> PgWireError {
    PgWireError::InvalidPassword(login.user().unwrap_or_default().to_owned())
}

#[async_trait]
impl AuthSource<String> for TokenSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Err(bad_password(login))
    }

    async fn verify_password(
        &self,
        login: &LoginInfo,
        presented: &[u8],
    ) -> PgWireResult<Option<String>> {
        let token = std::str::from_utf8(presented)
            .map_err(|_| bad_password(login))?
            .trim_end_matches('\0')
            .to_owned();
        let actor = self
            .store
            .actor(
                &Credential::Token(token.clone()),
                &format!("pg:{}", login.host()),
            )
            .await
            .map_err(|_| bad_password(login))?;
        let user_ok = login.user().is_none_or(|u| u == actor.name);
        if actor.blocked.is_some() || !user_ok {
            return Err(bad_password(login));
        }
        Ok(Some(token))
    }
}

struct Startup {
    driver: AuthDriver<DefaultServerParameterProvider, String>,
    auth: CleartextPasswordAuth<TokenSource>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let mechanism = self.auth.create();
                if let AuthOutcome::Authenticated { final_message, .. } =
                    self.driver.begin_authentication(client, mechanism).await?
                {
                    self.driver
                        .complete_authentication(client, final_message)
                        .await?;
                }
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(m) => {
                match self.driver.advance_authentication(client, m).await? {
                    AuthOutcome::Authenticated {
                        identity,
                        final_message,
                    } => {
                        let Some(token) = identity else {
                            return Err(PgWireError::InvalidPassword(String::new()));
                        };
                        client.metadata_mut().insert(TOKEN_KEY.into(), token);
                        self.driver
                            .complete_authentication(client, final_message)
                            .await
                    }
                    AuthOutcome::InProgress => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

struct Backend {
    store: Arc<Store>,
    parser: Arc<NoopQueryParser>,
}

fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

fn query_error(e: &QueryError) -> PgWireError {
    let code = match e {
        QueryError::Syntax(_) => "42601",
        QueryError::Forbidden(_) => "42501",
        QueryError::Plan(_) => "42P01",
        QueryError::Limit(_) => "54000",
        QueryError::Store(s) if s.code() == mdc_types::ErrorCode::Forbidden => "42501",
        QueryError::Store(_) => "XX000",
        _ => "XX000",
    };
    let msg = if e.code() == mdc_types::ErrorCode::Internal {
        tracing::error!(error = %e, "pg query failed");
        "internal error; the server log has details".to_owned()
    } else {
        e.to_string()
    };
    user_error(code, msg)
}

/// Arrow types travel as int8, float8, bool or text (the catalog describes
/// columns with the same types: `mdc_query::catalog::pg_type_for`).
fn pg_type(dt: &str) -> Type {
    match dt {
        "Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" | "UInt64" => {
            Type::INT8
        }
        "Float16" | "Float32" | "Float64" => Type::FLOAT8,
        d if d.starts_with("Decimal") => Type::FLOAT8,
        "Boolean" => Type::BOOL,
        _ => Type::TEXT,
    }
}

fn fields(cols: &[(String, String)], format: &Format) -> Vec<FieldInfo> {
    cols.iter()
        .enumerate()
        .map(|(i, (n, t))| FieldInfo::new(n.clone(), None, None, pg_type(t), format.format_for(i)))
        .collect()
}

fn encode(
    header: Arc<Vec<FieldInfo>>,
    rows: Vec<Vec<Option<Value>>>,
) -> PgWireResult<QueryResponse> {
    let mut out = Vec::with_capacity(rows.len());
    let mut enc = DataRowEncoder::new(header.clone());
    for row in rows {
        for (i, v) in row.into_iter().enumerate() {
            let ty = header.get(i).map_or(Type::TEXT, |f| f.datatype().clone());
            let v = v.unwrap_or(Value::Null);
            match (ty, v) {
                (_, Value::Null) => enc.encode_field(&None::<i64>)?,
                (Type::INT8, Value::Int(x)) => enc.encode_field(&x)?,
                (Type::INT8, Value::Float(x)) => enc.encode_field(&(x as i64))?,
                (Type::FLOAT8, Value::Float(x)) => enc.encode_field(&x)?,
                (Type::FLOAT8, Value::Int(x)) => enc.encode_field(&(x as f64))?,
                (Type::BOOL, Value::Bool(b)) => enc.encode_field(&b)?,
                (_, other) => enc.encode_field(&other.to_text())?,
            }
        }
        out.push(Ok(enc.take_row()));
    }
    Ok(QueryResponse::new(header, stream::iter(out)))
}

enum Kind {
    Empty,
    Begin,
    Commit,
    Rollback,
    Set,
    Show(String),
    Catalog,
    Data,
}

fn classify(sql: &str) -> Kind {
    let t = sql.trim().trim_end_matches(';').trim();
    let l = t.to_ascii_lowercase();
    let first = l.split_whitespace().next().unwrap_or("");
    match first {
        "" => Kind::Empty,
        "begin" | "start" => Kind::Begin,
        "commit" | "end" => Kind::Commit,
        "rollback" | "abort" => Kind::Rollback,
        "set" | "discard" | "reset" | "deallocate" | "close" => Kind::Set,
        "show" => Kind::Show(l.trim_start_matches("show").trim().to_owned()),
        _ if mdc_query::catalog::is_catalog_query(t) => Kind::Catalog,
        _ => Kind::Data,
    }
}

fn show_value(what: &str) -> String {
    match what {
        "transaction isolation level" | "transaction_isolation" => "read committed".into(),
        "server_version" => "16.0".into(),
        "standard_conforming_strings" => "on".into(),
        "client_encoding" | "server_encoding" => "UTF8".into(),
        "datestyle" => "ISO, MDY".into(),
        "timezone" => "UTC".into(),
        "search_path" => "\"$user\", public".into(),
        _ => String::new(),
    }
}

impl Backend {
    async fn session<C: ClientInfo>(
        &self,
        client: &C,
    ) -> PgWireResult<(mdc_store::Actor, Session)> {
        let token = client
            .metadata()
            .get(TOKEN_KEY)
            .cloned()
            .ok_or_else(|| user_error("28000", "not authenticated"))?;
        let project =
            client.metadata().get("database").cloned().ok_or_else(|| {
                user_error("3D000", "connect with the project as the database name")
            })?;
        let peer = client.socket_addr().ip().to_string();
        let actor = self
            .store
            .actor(&Credential::Token(token), &format!("pg:{peer}"))
            .await
            .map_err(|e| user_error("28000", e.to_string()))?;
        let session = Session::open(&self.store, &actor, &project, &Limits::default())
            .await
            .map_err(|e| query_error(&e))?;
        Ok((actor, session))
    }

    async fn respond<C: ClientInfo>(
        &self,
        client: &C,
        sql: &str,
        format: &Format,
    ) -> PgWireResult<Response> {
        match classify(sql) {
            Kind::Empty => Ok(Response::EmptyQuery),
            Kind::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Kind::Commit => Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
            Kind::Rollback => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            Kind::Set => Ok(Response::Execution(Tag::new("SET"))),
            Kind::Show(what) => {
                let header = Arc::new(fields(&[(what.clone(), "Utf8".into())], format));
                Ok(Response::Query(encode(
                    header,
                    vec![vec![Some(Value::Text(show_value(&what)))]],
                )?))
            }
            Kind::Catalog => {
                let (actor, session) = self.session(client).await?;
                let (cols, rows) = mdc_query::catalog::answer(&session, sql, &actor.name)
                    .await
                    .map_err(|e| query_error(&e))?;
                let cols: Vec<(String, String)> =
                    cols.into_iter().map(|(n, t)| (n, t.to_string())).collect();
                let header = Arc::new(fields(&cols, format));
                Ok(Response::Query(encode(
                    header,
                    rows.into_iter()
                        .map(|r| r.into_iter().map(Some).collect())
                        .collect(),
                )?))
            }
            Kind::Data => {
                let (actor, session) = self.session(client).await?;
                let started = Instant::now();
                let result = mdc_query::run_in(
                    &self.store,
                    &actor,
                    &session,
                    sql,
                    &Limits::default(),
                    started,
                )
                .await;
                let outcome = match result {
                    Ok(o) => o,
                    Err(e) => {
                        if e.is_refusal() {
                            let mut p = serde_json::Map::new();
                            p.insert(
                                "sql_sha256".into(),
                                mdc_store::audit::sha256_hex(&[sql.as_bytes()]).into(),
                            );
                            p.insert("via".into(), "pgwire".into());
                            let _ = self
                                .store
                                .audit_denied(
                                    &actor,
                                    "query.run",
                                    &session.project,
                                    &e.to_string(),
                                    p,
                                )
                                .await;
                        }
                        return Err(query_error(&e));
                    }
                };
                let cols: Vec<(String, String)> = outcome
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.data_type.clone()))
                    .collect();
                let header = Arc::new(fields(&cols, format));
                Ok(Response::Query(encode(header, outcome.rows)?))
            }
        }
    }

    async fn describe<C: ClientInfo>(
        &self,
        client: &C,
        sql: &str,
        format: &Format,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match classify(sql) {
            Kind::Show(what) => Ok(fields(&[(what, "Utf8".into())], format)),
            Kind::Catalog => {
                let (actor, session) = self.session(client).await?;
                let (cols, _) = mdc_query::catalog::answer(&session, sql, &actor.name)
                    .await
                    .map_err(|e| query_error(&e))?;
                let cols: Vec<(String, String)> =
                    cols.into_iter().map(|(n, t)| (n, t.to_string())).collect();
                Ok(fields(&cols, format))
            }
            Kind::Data => {
                let (_, session) = self.session(client).await?;
                let cols = mdc_query::describe(&session, sql)
                    .await
                    .map_err(|e| query_error(&e))?;
                let cols: Vec<(String, String)> = cols
                    .into_iter()
                    .map(|(n, t): (String, DataType)| (n, t.to_string()))
                    .collect();
                Ok(fields(&cols, format))
            }
            _ => Ok(vec![]),
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(vec![
            self.respond(client, query, &Format::UnifiedText).await?,
        ])
    }
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !portal.parameters.is_empty() {
            return Err(user_error(
                "0A000",
                "query parameters are not supported: inline literal values",
            ));
        }
        self.respond(
            client,
            &portal.statement.statement,
            &portal.result_column_format,
        )
        .await
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        stmt: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = stmt
            .parameter_types
            .iter()
            .map(|t| t.clone().unwrap_or(Type::UNKNOWN))
            .collect();
        let f = self
            .describe(client, &stmt.statement, &Format::UnifiedText)
            .await?;
        Ok(DescribeStatementResponse::new(params, f))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let f = self
            .describe(
                client,
                &portal.statement.statement,
                &portal.result_column_format,
            )
            .await?;
        Ok(DescribePortalResponse::new(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdc_query::catalog::pg_type_for;

    /// What `\d` and `information_schema` say a column is must be what the
    /// column's values are sent as; dates and times are sent in their text form.
    #[test]
    fn catalog_types_are_the_types_sent() {
        use mdc_query::DataType as D;
        for dt in [
            D::Int8,
            D::Int16,
            D::Int32,
            D::Int64,
            D::UInt32,
            D::UInt64,
            D::Float32,
            D::Float64,
            D::Decimal128(10, 2),
            D::Boolean,
            D::Utf8,
            D::LargeUtf8,
            D::Utf8View,
            D::Date32,
        ] {
            let sent = pg_type(&dt.to_string());
            let described = pg_type_for(&dt);
            if sent == Type::TEXT {
                assert!(
                    matches!(described.name, "text" | "date"),
                    "{dt}: {}",
                    described.name
                );
            } else {
                assert_eq!(i64::from(sent.oid()), described.oid, "{dt}");
            }
        }
    }
}
