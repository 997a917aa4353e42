//! The `mdc` binary: parse, dispatch, map errors to exit codes (DESIGN §9).
//! Everything else lives in the library crates.

mod cli;
mod cmd_bench;
mod cmd_deid_dicom;
mod cmd_deid_text;
mod cmd_query;
mod cmd_structured;
mod cmd_validate;
mod commands;
mod demo;
mod os_user;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.global.json;
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => output::report_error(&err, json),
    }
}
