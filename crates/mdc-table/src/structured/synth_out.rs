//! Writing a synthetic OMOP extract (`mdc synth omop`) as CSV or Parquet.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use mdc_deid::structured::omop;
use mdc_deid::structured::synth::{generate, Planted, SynthConfig};
use mdc_deid::structured::value::{Column, ColumnKind};

use super::driver::DeidError;
use super::io::{coerce, to_arrow, ParquetSink, BATCH_ROWS};
use super::run::Staging;

enum W {
    Csv(csv::Writer<BufWriter<File>>, u64),
    Parquet {
        sink: ParquetSink,
        cols: Vec<Vec<Option<String>>>,
        kinds: Vec<ColumnKind>,
    },
}

fn flush(
    sink: &mut ParquetSink,
    cols: &mut [Vec<Option<String>>],
    kinds: &[ColumnKind],
) -> Result<(), DeidError> {
    if cols.first().is_none_or(Vec::is_empty) {
        return Ok(());
    }
    let mut arrays = Vec::with_capacity(cols.len());
    for (c, k) in cols.iter_mut().zip(kinds) {
        let mut bad = Vec::new();
        let col = coerce(Column::Str(std::mem::take(c)), *k, &mut bad);
        arrays.push(to_arrow(&col));
    }
    sink.write(arrays)?;
    Ok(())
}

/// Generates the extract into `dir` (which must not exist or be empty);
/// returns the planted identifiers and the row count of each table.
pub fn write_synth(
    cfg: &SynthConfig,
    dir: &Path,
    parquet: bool,
) -> Result<(Planted, BTreeMap<String, u64>), DeidError> {
    let staging = Staging::begin(dir)?;
    let mut writers: BTreeMap<String, W> = BTreeMap::new();
    let mut err: Option<DeidError> = None;
    let planted = generate::<DeidError>(cfg, &mut |table, header, row| {
        if !writers.contains_key(table) {
            let w = if parquet {
                let kinds: Vec<ColumnKind> = header
                    .iter()
                    .map(|h| {
                        omop::columns(table)
                            .and_then(|c| c.iter().find(|(n, _)| n == h))
                            .map_or(ColumnKind::Str, |(_, k)| *k)
                    })
                    .collect();
                let sink = ParquetSink::create(
                    &staging.dir.join(format!("{table}.parquet")),
                    &header
                        .iter()
                        .map(|h| (*h).to_owned())
                        .zip(kinds.iter().copied())
                        .collect::<Vec<_>>(),
                )?;
                W::Parquet {
                    sink,
                    cols: vec![Vec::with_capacity(BATCH_ROWS); header.len()],
                    kinds,
                }
            } else {
                let p = staging.dir.join(format!("{table}.csv"));
                let f = File::create(&p).map_err(|source| DeidError::Io {
                    path: p.clone(),
                    source,
                })?;
                let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, f));
                w.write_record(header)
                    .map_err(|e| DeidError::Invalid(format!("{}: {e}", p.display())))?;
                W::Csv(w, 0)
            };
            writers.insert(table.to_owned(), w);
        }
        match writers.get_mut(table) {
            Some(W::Csv(w, n)) => {
                *n += 1;
                w.write_record(row)
                    .map_err(|e| DeidError::Invalid(format!("{table}: {e}")))?;
            }
            Some(W::Parquet { sink, cols, kinds }) => {
                for (c, v) in cols.iter_mut().zip(row) {
                    c.push((!v.is_empty()).then(|| v.clone()));
                }
                if cols.first().is_some_and(|c| c.len() >= BATCH_ROWS) {
                    flush(sink, cols, kinds)?;
                }
            }
            None => {}
        }
        Ok(())
    });
    let planted = match planted {
        Ok(p) => p,
        Err(e) => {
            err = Some(e);
            Planted::default()
        }
    };
    if let Some(e) = err {
        return Err(e);
    }
    let mut rows = BTreeMap::new();
    for (t, w) in writers {
        match w {
            W::Csv(mut w, n) => {
                w.flush().map_err(|source| DeidError::Io {
                    path: dir.join(format!("{t}.csv")),
                    source,
                })?;
                rows.insert(t, n);
            }
            W::Parquet {
                mut sink,
                mut cols,
                kinds,
            } => {
                flush(&mut sink, &mut cols, &kinds)?;
                rows.insert(t, sink.finish()?);
            }
        }
    }
    staging.commit()?;
    Ok((planted, rows))
}
