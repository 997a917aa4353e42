//! Printing: human text on stdout, `--json` machine output on stdout, logs and
//! errors on stderr. Errors carry the stable code of `mdc_types::ErrorCode`.

use std::process::ExitCode;

use mdc_store::StoreError;
use mdc_types::ErrorCode;
use serde::Serialize;

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MDC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Prints `value` as JSON when `--json`, else calls `human`.
pub fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}

pub fn report_error(err: &anyhow::Error, json: bool) -> ExitCode {
    let code = err
        .downcast_ref::<StoreError>()
        .map(StoreError::code)
        .or_else(|| {
            err.downcast_ref::<mdc_query::QueryError>()
                .map(mdc_query::QueryError::code)
        })
        .unwrap_or(ErrorCode::Internal);
    let message = format!("{err:#}");
    if json {
        println!(
            "{}",
            serde_json::json!({"error": {"code": code.as_str(), "message": message}})
        );
    }
    eprintln!("error: {message}");
    ExitCode::from(1)
}
