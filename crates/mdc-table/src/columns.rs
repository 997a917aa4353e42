//! Named columns of a CSV or Parquet table as plain vectors: numeric columns
//! as `f64` (missing = NaN, counted by the caller) and text columns as
//! `Option<String>`. Model validation reads features, the label and subgroup
//! columns through this, so it never sees arrow types.
//!
//! Errors name the file, the column and the line, never a cell's value (a
//! cell could hold an identifier).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::TableError;

/// How a column is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Numeric,
    Text,
}

#[derive(Debug, Clone)]
pub enum Values {
    /// Missing cells are NaN.
    Numeric(Vec<f64>),
    Text(Vec<Option<String>>),
}

/// The requested columns, in request order, all of length `rows`.
#[derive(Debug, Clone)]
pub struct Columns {
    pub rows: usize,
    pub columns: Vec<(String, Values)>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnsError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{path}: no column {column:?} (columns: {available})")]
    MissingColumn {
        path: PathBuf,
        column: String,
        available: String,
    },
    #[error("{path}: column {column:?}, line {line}: not a number")]
    NotNumeric {
        path: PathBuf,
        column: String,
        line: u64,
    },
    #[error("{path}: column {column:?} has type {data_type}, which cannot be read as {wanted}")]
    Unsupported {
        path: PathBuf,
        column: String,
        data_type: String,
        wanted: &'static str,
    },
    #[error("{path}: unsupported table format (expected .csv or .parquet)")]
    Format { path: PathBuf },
}

/// Cells that mean "missing" in a numeric CSV column.
fn is_missing(s: &str) -> bool {
    matches!(
        s,
        "" | "NA" | "N/A" | "NaN" | "nan" | "NAN" | "null" | "NULL" | "None" | "."
    )
}

/// Reads the requested columns of a `.csv` or `.parquet` file.
pub fn read_columns(path: &Path, want: &[(String, Want)]) -> Result<Columns, ColumnsError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => read_csv(path, want),
        Some("parquet" | "pq") => read_parquet_files(&[path.to_owned()], want),
        _ => Err(ColumnsError::Format {
            path: path.to_owned(),
        }),
    }
}

fn read_csv(path: &Path, want: &[(String, Want)]) -> Result<Columns, ColumnsError> {
    let file = File::open(path).map_err(|source| TableError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(file));
    let csv_err = |e: &csv::Error| TableError::Csv {
        path: path.to_owned(),
        line: e.position().map_or(1, csv::Position::line),
        reason: match e.kind() {
            csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
            csv::ErrorKind::UnequalLengths { .. } => "wrong number of fields".into(),
            _ => "malformed CSV".into(),
        },
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_err(&e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let mut idx = Vec::with_capacity(want.len());
    for (name, _) in want {
        let i =
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| ColumnsError::MissingColumn {
                    path: path.to_owned(),
                    column: name.clone(),
                    available: header.join(", "),
                })?;
        idx.push(i);
    }
    let mut cols: Vec<Values> = want
        .iter()
        .map(|(_, w)| match w {
            Want::Numeric => Values::Numeric(Vec::new()),
            Want::Text => Values::Text(Vec::new()),
        })
        .collect();
    let mut rows = 0usize;
    let mut rec = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_err(&e).into()),
        }
        let line = rec.position().map_or(0, csv::Position::line);
        for ((col, &i), (name, _)) in cols.iter_mut().zip(&idx).zip(want) {
            let cell = rec.get(i).unwrap_or("");
            match col {
                Values::Numeric(v) => {
                    if is_missing(cell) {
                        v.push(f64::NAN);
                    } else {
                        let x: f64 = cell.parse().map_err(|_| ColumnsError::NotNumeric {
                            path: path.to_owned(),
                            column: name.clone(),
                            line,
                        })?;
                        // "nan"/"inf" spellings parse; treat NaN as missing, keep inf (refused later).
                        v.push(x);
                    }
                }
                Values::Text(v) => v.push((!cell.is_empty()).then(|| cell.to_owned())),
            }
        }
        rows += 1;
    }
    Ok(Columns {
        rows,
        columns: want.iter().map(|(n, _)| n.clone()).zip(cols).collect(),
    })
}

/// Reads the requested columns from one or more Parquet files (the files of
/// one table, concatenated in order).
pub fn read_parquet_files(
    paths: &[PathBuf],
    want: &[(String, Want)],
) -> Result<Columns, ColumnsError> {
    let mut cols: Vec<Values> = want
        .iter()
        .map(|(_, w)| match w {
            Want::Numeric => Values::Numeric(Vec::new()),
            Want::Text => Values::Text(Vec::new()),
        })
        .collect();
    let mut rows = 0usize;
    for path in paths {
        let batches = crate::read_parquet(path)?;
        for batch in &batches {
            append_batch(path, batch, want, &mut cols)?;
            rows += batch.num_rows();
        }
        if batches.is_empty() {
            // Still check that the columns exist.
            let s = crate::parquet_summary(path)?;
            for (name, _) in want {
                if !s.columns.iter().any(|c| &c.name == name) {
                    return Err(ColumnsError::MissingColumn {
                        path: path.clone(),
                        column: name.clone(),
                        available: s
                            .columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
    }
    Ok(Columns {
        rows,
        columns: want.iter().map(|(n, _)| n.clone()).zip(cols).collect(),
    })
}

fn append_batch(
    path: &Path,
    batch: &RecordBatch,
    want: &[(String, Want)],
    cols: &mut [Values],
) -> Result<(), ColumnsError> {
    let schema = batch.schema();
    for ((name, _), out) in want.iter().zip(cols.iter_mut()) {
        let Ok(i) = schema.index_of(name) else {
            return Err(ColumnsError::MissingColumn {
                path: path.to_owned(),
                column: name.clone(),
                available: schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let col = batch.column(i);
        let unsupported = |wanted| ColumnsError::Unsupported {
            path: path.to_owned(),
            column: name.clone(),
            data_type: col.data_type().to_string(),
            wanted,
        };
        match out {
            Values::Numeric(v) => {
                append_numeric(col.as_ref(), v).ok_or_else(|| unsupported("numbers"))?;
            }
            Values::Text(v) => {
                append_text(col.as_ref(), v).ok_or_else(|| unsupported("text"))?;
            }
        }
    }
    Ok(())
}

macro_rules! prim {
    ($col:expr, $ty:ty, $out:expr) => {{
        let a = $col.as_primitive::<$ty>();
        for i in 0..a.len() {
            $out.push(if a.is_null(i) {
                f64::NAN
            } else {
                a.value(i) as f64
            });
        }
        Some(())
    }};
}

// One macro for every numeric Arrow type: some of its casts are lossless, i64/u64 are not.
#[allow(clippy::cast_lossless)]
fn append_numeric(col: &dyn Array, out: &mut Vec<f64>) -> Option<()> {
    match col.data_type() {
        DataType::Int8 => prim!(col, Int8Type, out),
        DataType::Int16 => prim!(col, Int16Type, out),
        DataType::Int32 => prim!(col, Int32Type, out),
        DataType::Int64 => prim!(col, Int64Type, out),
        DataType::UInt8 => prim!(col, UInt8Type, out),
        DataType::UInt16 => prim!(col, UInt16Type, out),
        DataType::UInt32 => prim!(col, UInt32Type, out),
        DataType::UInt64 => prim!(col, UInt64Type, out),
        DataType::Float32 => prim!(col, Float32Type, out),
        DataType::Float64 => prim!(col, Float64Type, out),
        DataType::Boolean => {
            let a = col.as_boolean();
            for i in 0..a.len() {
                out.push(if a.is_null(i) {
                    f64::NAN
                } else {
                    f64::from(u8::from(a.value(i)))
                });
            }
            Some(())
        }
        _ => None,
    }
}

fn append_text(col: &dyn Array, out: &mut Vec<Option<String>>) -> Option<()> {
    match col.data_type() {
        DataType::Utf8 => {
            let a = col.as_string::<i32>();
            out.extend((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned())));
            Some(())
        }
        DataType::LargeUtf8 => {
            let a = col.as_string::<i64>();
            out.extend((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned())));
            Some(())
        }
        _ => {
            let mut nums = Vec::new();
            append_numeric(col, &mut nums)?;
            out.extend(
                nums.into_iter()
                    .map(|x| (!x.is_nan()).then(|| format!("{x}"))),
            );
            Some(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    fn want(n: &[(&str, Want)]) -> Vec<(String, Want)> {
        n.iter().map(|(a, w)| ((*a).to_owned(), *w)).collect()
    }

    #[test]
    fn csv_columns_read_with_missing_as_nan() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, "a,b,s\n1,2.5,x\n,NA,\n3,4,y\n").unwrap();
        let c = read_columns(&p, &want(&[("b", Want::Numeric), ("s", Want::Text)])).unwrap();
        assert_eq!(c.rows, 3);
        let Values::Numeric(b) = &c.columns[0].1 else {
            panic!()
        };
        assert!((b[0] - 2.5).abs() < 1e-12);
        assert!(b[1].is_nan());
        let Values::Text(s) = &c.columns[1].1 else {
            panic!()
        };
        assert_eq!(s[1], None);
    }

    #[test]
    fn csv_errors_name_the_column_and_line_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, "a\n1\nSECRET-MRN-123\n").unwrap();
        let e = read_columns(&p, &want(&[("a", Want::Numeric)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("\"a\""), "{e}");
        assert!(!e.contains("SECRET"), "{e}");
        let e = read_columns(&p, &want(&[("zz", Want::Numeric)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no column \"zz\""), "{e}");
    }

    #[test]
    fn parquet_columns_read_as_numbers_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("f", DataType::Float64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(Float64Array::from(vec![0.5, 1.5])),
                Arc::new(StringArray::from(vec![Some("F"), None])),
            ],
        )
        .unwrap();
        crate::write_parquet_atomic(&p, &[b]).unwrap();
        let c = read_columns(
            &p,
            &want(&[("i", Want::Numeric), ("f", Want::Text), ("s", Want::Text)]),
        )
        .unwrap();
        let Values::Numeric(i) = &c.columns[0].1 else {
            panic!()
        };
        assert!((i[0] - 1.0).abs() < 1e-12);
        assert!(i[1].is_nan());
        let Values::Text(f) = &c.columns[1].1 else {
            panic!()
        };
        assert_eq!(f[1].as_deref(), Some("1.5"));
        assert!(matches!(
            read_columns(&p, &want(&[("s", Want::Numeric)])),
            Err(ColumnsError::Unsupported { .. })
        ));
    }
}
