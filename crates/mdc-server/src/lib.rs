//! The HTTP API (`/v1`, DESIGN §9). The only crate that knows HTTP.
//!
//! Handlers parse, call the same `Store` operations as the CLI (which decide
//! access and write the audit log), and serialise. Errors go through one table
//! (`error.rs`) to `{code, message}` with a stable code; internal details are
//! logged, never returned.

mod error;
mod openapi;
pub mod pg;
mod query_routes;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use mdc_store::Store;

pub use error::ApiError;
pub use openapi::{openapi_document, ROUTES};
pub use routes::router;

/// Largest request body accepted (consent CSVs included).
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Serves until Ctrl-C or SIGTERM. Prints the bound address on stdout, so
/// `--addr 127.0.0.1:0` can be used by tests and scripts.
pub async fn serve(store: Arc<Store>, addr: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("mdc API listening on http://{local}");
    let app = router(store).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
