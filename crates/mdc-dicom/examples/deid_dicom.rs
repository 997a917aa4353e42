//! The batch runner of `mdc deid dicom` without the rest of the CLI, for the
//! benchmark (benches/dicom): a release build of this example takes minutes,
//! a release build of `mdc` (DataFusion, sqlx) much longer on small machines.
//!
//! Usage: deid_dicom deid dicom --input DIR --output DIR [--jobs N]
//!        [--allow-modality M]… [--option NAME]…
//! It reads the 32-byte keyed-mode key from $MDC_ROOT/keys/pseudonym.key
//! (or uses a fixed demo key when MDC_ROOT is unset).

use std::path::PathBuf;
use std::process::ExitCode;

use mdc_deid::{KeyedPseudonymizer, PseudonymKey};
use mdc_dicom::{batch, Config, Deidentifier, Options, Paths, ProfileOption, UidMapper};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    // Accept (and skip) the CLI's `deid dicom` words so the two are interchangeable.
    while args.peek().is_some_and(|a| a == "deid" || a == "dicom") {
        args.next();
    }
    let (mut input, mut output, mut jobs) = (None, None, 1usize);
    let mut allow = Vec::new();
    let mut opts = vec![ProfileOption::RetainLongitudinalModifiedDates];
    while let Some(a) = args.next() {
        let v = args.next();
        match (a.as_str(), v) {
            ("--input", Some(v)) => input = Some(PathBuf::from(v)),
            ("--output", Some(v)) => output = Some(PathBuf::from(v)),
            ("--jobs", Some(v)) => jobs = v.parse().unwrap_or(1),
            ("--allow-modality", Some(v)) => allow.push(v),
            ("--option", Some(v)) => match ProfileOption::parse(&v) {
                Some(o) => opts.push(o),
                None => {
                    eprintln!("error: unknown option {v}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("error: usage: deid_dicom --input DIR --output DIR [--jobs N]");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(input), Some(output)) = (input, output) else {
        eprintln!("error: --input and --output are required");
        return ExitCode::from(2);
    };
    let key = match std::env::var_os("MDC_ROOT") {
        Some(root) => {
            let path = PathBuf::from(root).join("keys/pseudonym.key");
            match std::fs::read(&path)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                Some(k) => k,
                None => {
                    eprintln!("error: cannot read a 32-byte key from {}", path.display());
                    return ExitCode::from(1);
                }
            }
        }
        None => [7; 32],
    };
    let p = KeyedPseudonymizer::new(PseudonymKey::from_bytes(key), 180);
    let config = Config {
        options: Options::new(opts),
        allow_modalities: allow,
        text_cleaner: None,
    };
    let deid = Deidentifier::new(config, &p, UidMapper::new(PseudonymKey::from_bytes(key)));
    let paths = Paths::with_defaults(input, output, None, None);
    match batch::run(&deid, &p, &paths, jobs, &|_, _| {}) {
        Ok(s) => {
            println!(
                "{} files: {} done, {} quarantined, {} rejected in {:.3} s",
                s.counts.files, s.counts.done, s.counts.quarantined, s.counts.rejected, s.seconds
            );
            ExitCode::from(if s.counts.done == 0 {
                1
            } else if s.counts.rejected + s.counts.quarantined > 0 {
                3
            } else {
                0
            })
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
