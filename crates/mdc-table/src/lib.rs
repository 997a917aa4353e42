//! Tables on disk: Parquet and CSV reading and writing, and file digests.
//!
//! This is the only crate that links arrow/parquet (pinned to the major that
//! DataFusion uses, so the two compile once). Callers see small summaries and
//! record batches; writes go to a temporary name in the target folder and are
//! renamed at the end, so a crash never leaves a half-written file.

pub mod columns;

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod structured;

pub use arrow_array;
pub use arrow_schema;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a readable Parquet file ({reason})")]
    NotParquet { path: PathBuf, reason: String },
    #[error("{path}: cannot write Parquet ({reason})")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: line {line}: {reason}")]
    Csv {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TableError + '_ {
    move |source| TableError::Io {
        path: path.to_owned(),
        source,
    }
}

/// SHA-256 of a file's bytes, lower-case hex, read in 1 MiB chunks.
pub fn sha256_file(path: &Path) -> Result<String, TableError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(data_encoding::HEXLOWER.encode(&hasher.finalize()))
}

/// One column of a table's schema, as recorded in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// What the catalog needs to know of a Parquet file without reading its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetSummary {
    pub rows: u64,
    pub columns: Vec<Column>,
}

/// Reads a Parquet file's footer: row count and Arrow schema.
pub fn parquet_summary(path: &Path) -> Result<ParquetSummary, TableError> {
    let file = File::open(path).map_err(io_err(path))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| TableError::NotParquet {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let rows = builder.metadata().file_metadata().num_rows();
    let columns = builder
        .schema()
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect();
    Ok(ParquetSummary {
        rows: u64::try_from(rows).unwrap_or(0),
        columns,
    })
}

/// Reads a whole Parquet file into record batches.
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, TableError> {
    let file = File::open(path).map_err(io_err(path))?;
    let not_parquet = |e: parquet::errors::ParquetError| TableError::NotParquet {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(not_parquet)?
        .build()
        .map_err(not_parquet)?;
    reader
        .map(|b| {
            b.map_err(|e| TableError::NotParquet {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Writes batches to `path` atomically: a temporary file in the same folder,
/// fsynced, then renamed over the target.
pub fn write_parquet_atomic(path: &Path, batches: &[RecordBatch]) -> Result<(), TableError> {
    let write_err = |reason: String| TableError::Write {
        path: path.to_owned(),
        reason,
    };
    let Some(first) = batches.first() else {
        return Err(write_err("no record batches to write".into()));
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".parquet")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let file = tmp.reopen().map_err(io_err(path))?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(first.schema_ref()), None)
        .map_err(|e| write_err(e.to_string()))?;
    for batch in batches {
        writer.write(batch).map_err(|e| write_err(e.to_string()))?;
    }
    let file = writer.into_inner().map_err(|e| write_err(e.to_string()))?;
    file.sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| TableError::Io {
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes bytes to `path` atomically: a temporary file in the same folder,
/// renamed over the target. `durable`: fsynced before the rename (released
/// files); without it a crash may lose the file but never leaves part of it.
pub fn write_file_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), TableError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    if durable {
        tmp.as_file().sync_all().map_err(io_err(path))?;
    }
    tmp.persist(path).map_err(|e| TableError::Io {
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// A CSV file read as a header plus string records, for small control files
/// (consent lists, policies). Errors name the line, never the value.
#[derive(Debug)]
pub struct CsvRows {
    pub header: Vec<String>,
    pub rows: Vec<(u64, Vec<String>)>,
}

pub fn read_csv_strings<R: Read>(source: R, path: &Path) -> Result<CsvRows, TableError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(source));
    let header = reader
        .headers()
        .map_err(|e| TableError::Csv {
            path: path.to_owned(),
            line: 1,
            reason: csv_reason(&e),
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            TableError::Csv {
                path: path.to_owned(),
                line,
                reason: csv_reason(&e),
            }
        })?;
        let line = rec.position().map_or(0, csv::Position::line);
        rows.push((line, rec.iter().map(str::to_owned).collect()));
    }
    Ok(CsvRows { header, rows })
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
        csv::ErrorKind::Io(_) => "read error".into(),
        _ => "malformed CSV".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("sex", DataType::Utf8, true),
        ]));
        let ids = Int64Array::from_iter_values(0..n);
        let sex = StringArray::from_iter_values((0..n).map(|i| if i % 2 == 0 { "F" } else { "M" }));
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(sex)]).unwrap()
    }

    #[test]
    fn parquet_written_atomically_reads_back_with_rows_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_parquet_atomic(&path, &[batch(5), batch(7)]).unwrap();
        let s = parquet_summary(&path).unwrap();
        assert_eq!(s.rows, 12);
        assert_eq!(
            s.columns[0],
            Column {
                name: "person_id".into(),
                data_type: "Int64".into(),
                nullable: false
            }
        );
        assert_eq!(
            read_parquet(&path)
                .unwrap()
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>(),
            12
        );
        // Only the target remains: no temporary files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn non_parquet_files_are_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        std::fs::write(&path, b"person_id,sex\n1,F\n").unwrap();
        let err = parquet_summary(&path).unwrap_err();
        assert!(matches!(err, TableError::NotParquet { .. }), "{err}");
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn csv_rows_carry_line_numbers_and_strip_a_bom() {
        let data = "\u{feff}patient_id,status\nA1,opt-out\n\"B,2\",opt-in\n";
        let rows = read_csv_strings(data.as_bytes(), Path::new("c.csv")).unwrap();
        assert_eq!(rows.header, vec!["patient_id", "status"]);
        assert_eq!(
            rows.rows[1],
            (3, vec!["B,2".to_owned(), "opt-in".to_owned()])
        );
    }
}
