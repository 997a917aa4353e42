//! Batches in and out: CSV and Parquet read in bounded batches and converted
//! to the engines' plain `Column`s, and a streaming Parquet writer that
//! writes to a temporary name and renames on `finish` (a dropped writer
//! leaves nothing behind).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mdc_deid::structured::value::{parse_date, parse_datetime, Column, ColumnKind, MICROS_PER_DAY};
use mdc_deid::structured::Reject;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::TableError;

/// Rows per batch: memory stays bounded whatever the input size.
pub const BATCH_ROWS: usize = 65_536;

/// The arrow type of a plain column kind (DESIGN §11: microsecond UTC timestamps).
pub fn arrow_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Int => DataType::Int64,
        ColumnKind::Float => DataType::Float64,
        ColumnKind::Bool => DataType::Boolean,
        ColumnKind::Str => DataType::Utf8,
        ColumnKind::Date => DataType::Date32,
        ColumnKind::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The plain kind of an arrow type, if supported.
pub fn kind_of(dt: &DataType) -> Option<ColumnKind> {
    Some(match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => ColumnKind::Int,
        DataType::Float32 | DataType::Float64 => ColumnKind::Float,
        DataType::Boolean => ColumnKind::Bool,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnKind::Str,
        DataType::Date32 | DataType::Date64 => ColumnKind::Date,
        DataType::Timestamp(_, _) => ColumnKind::DateTime,
        _ => return None,
    })
}

fn prim<T: arrow_array::ArrowPrimitiveType>(
    a: &dyn Array,
    f: impl Fn(T::Native) -> i64,
) -> Vec<Option<i64>> {
    let p = a.as_primitive::<T>();
    (0..p.len())
        .map(|i| (!p.is_null(i)).then(|| f(p.value(i))))
        .collect()
}

/// Converts an arrow array to a plain column (`None` for unsupported types).
pub fn from_arrow(a: &dyn Array) -> Option<Column> {
    Some(match a.data_type() {
        DataType::Int8 => Column::Int(prim::<Int8Type>(a, i64::from)),
        DataType::Int16 => Column::Int(prim::<Int16Type>(a, i64::from)),
        DataType::Int32 => Column::Int(prim::<Int32Type>(a, i64::from)),
        DataType::Int64 => Column::Int(prim::<Int64Type>(a, |x| x)),
        DataType::UInt8 => Column::Int(prim::<UInt8Type>(a, i64::from)),
        DataType::UInt16 => Column::Int(prim::<UInt16Type>(a, i64::from)),
        DataType::UInt32 => Column::Int(prim::<UInt32Type>(a, i64::from)),
        DataType::Float32 => {
            let p = a.as_primitive::<Float32Type>();
            Column::Float(
                (0..p.len())
                    .map(|i| (!p.is_null(i)).then(|| f64::from(p.value(i))))
                    .collect(),
            )
        }
        DataType::Float64 => {
            let p = a.as_primitive::<Float64Type>();
            Column::Float(
                (0..p.len())
                    .map(|i| (!p.is_null(i)).then(|| p.value(i)))
                    .collect(),
            )
        }
        DataType::Boolean => {
            let p = a.as_boolean();
            Column::Bool(
                (0..p.len())
                    .map(|i| (!p.is_null(i)).then(|| p.value(i)))
                    .collect(),
            )
        }
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            Column::Str(
                (0..s.len())
                    .map(|i| (!s.is_null(i)).then(|| s.value(i).to_owned()))
                    .collect(),
            )
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            Column::Str(
                (0..s.len())
                    .map(|i| (!s.is_null(i)).then(|| s.value(i).to_owned()))
                    .collect(),
            )
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            Column::Str(
                (0..s.len())
                    .map(|i| (!s.is_null(i)).then(|| s.value(i).to_owned()))
                    .collect(),
            )
        }
        DataType::Date32 => Column::Date(
            prim::<Date32Type>(a, i64::from)
                .into_iter()
                .map(|x| x.map(|v| v as i32))
                .collect(),
        ),
        DataType::Date64 => Column::Date(
            prim::<Date64Type>(a, |ms| ms.div_euclid(86_400_000))
                .into_iter()
                .map(|x| x.map(|v| v as i32))
                .collect(),
        ),
        DataType::Timestamp(unit, _) => Column::DateTime(match unit {
            TimeUnit::Second => prim::<TimestampSecondType>(a, |s| s.saturating_mul(1_000_000)),
            TimeUnit::Millisecond => {
                prim::<TimestampMillisecondType>(a, |s| s.saturating_mul(1000))
            }
            TimeUnit::Microsecond => prim::<TimestampMicrosecondType>(a, |s| s),
            TimeUnit::Nanosecond => prim::<TimestampNanosecondType>(a, |s| s.div_euclid(1000)),
        }),
        _ => return None,
    })
}

/// Converts a plain column to an arrow array.
pub fn to_arrow(c: &Column) -> ArrayRef {
    match c {
        Column::Int(v) => {
            let mut b = Int64Builder::with_capacity(v.len());
            b.extend(v.iter().copied());
            Arc::new(b.finish())
        }
        Column::Float(v) => {
            let mut b = Float64Builder::with_capacity(v.len());
            b.extend(v.iter().copied());
            Arc::new(b.finish())
        }
        Column::Bool(v) => {
            let mut b = BooleanBuilder::with_capacity(v.len());
            b.extend(v.iter().copied());
            Arc::new(b.finish())
        }
        Column::Str(v) => {
            let mut b =
                StringBuilder::with_capacity(v.len(), v.iter().flatten().map(String::len).sum());
            for x in v {
                b.append_option(x.as_deref());
            }
            Arc::new(b.finish())
        }
        Column::Date(v) => {
            let mut b = Date32Builder::with_capacity(v.len());
            b.extend(v.iter().copied());
            Arc::new(b.finish())
        }
        Column::DateTime(v) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(v.len()).with_timezone("UTC");
            b.extend(v.iter().copied());
            Arc::new(b.finish())
        }
    }
}

/// Why a text value does not fit a kind (never the value itself).
pub fn type_reason(kind: ColumnKind) -> String {
    format!("not a valid {}", kind.as_str())
}

/// Coerces a column to `kind`; rows whose value does not convert are
/// returned in `bad` (the value becomes null).
pub fn coerce(c: Column, kind: ColumnKind, bad: &mut Vec<usize>) -> Column {
    if c.kind() == kind {
        return c;
    }
    let n = c.len();
    let text: Vec<Option<String>> = match c {
        Column::Str(v) => v,
        Column::Int(v) if kind == ColumnKind::Float => {
            return Column::Float(v.into_iter().map(|x| x.map(|x| x as f64)).collect())
        }
        Column::Date(v) if kind == ColumnKind::DateTime => {
            return Column::DateTime(
                v.into_iter()
                    .map(|x| x.map(|d| i64::from(d) * MICROS_PER_DAY))
                    .collect(),
            )
        }
        Column::DateTime(v) if kind == ColumnKind::Date => {
            return Column::Date(
                v.into_iter()
                    .map(|x| x.map(|t| t.div_euclid(MICROS_PER_DAY) as i32))
                    .collect(),
            )
        }
        other => (0..n).map(|i| other.text_at(i)).collect(),
    };
    let mut check = |i: usize, ok: bool| {
        if !ok {
            bad.push(i);
        }
    };
    match kind {
        ColumnKind::Str => Column::Str(text),
        ColumnKind::Int => Column::Int(
            text.into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = s?;
                    let t = s.trim();
                    let v = t
                        .parse::<i64>()
                        .ok()
                        .or_else(|| t.strip_suffix(".0").and_then(|x| x.parse().ok()));
                    check(i, v.is_some());
                    v
                })
                .collect(),
        ),
        ColumnKind::Float => Column::Float(
            text.into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let v = s?.trim().parse::<f64>().ok().filter(|x| x.is_finite());
                    check(i, v.is_some());
                    v
                })
                .collect(),
        ),
        ColumnKind::Bool => Column::Bool(
            text.into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let v = match s?.trim().to_ascii_lowercase().as_str() {
                        "true" | "t" | "1" | "yes" | "y" => Some(true),
                        "false" | "f" | "0" | "no" | "n" => Some(false),
                        _ => None,
                    };
                    check(i, v.is_some());
                    v
                })
                .collect(),
        ),
        ColumnKind::Date => Column::Date(
            text.into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = s?;
                    let v = parse_date(&s).or_else(|| {
                        parse_datetime(&s).map(|t| t.div_euclid(MICROS_PER_DAY) as i32)
                    });
                    check(i, v.is_some());
                    v
                })
                .collect(),
        ),
        ColumnKind::DateTime => Column::DateTime(
            text.into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let v = parse_datetime(&s?);
                    check(i, v.is_some());
                    v
                })
                .collect(),
        ),
    }
}

/// One batch as read: named columns (plain or still arrow), record numbers,
/// and the records the reader itself rejected (malformed CSV).
#[derive(Debug)]
pub struct InBatch {
    pub names: Vec<String>,
    pub columns: Vec<InCol>,
    pub records: Vec<u64>,
    pub rejects: Vec<Reject>,
}

#[derive(Debug, Clone)]
pub enum InCol {
    Arrow(ArrayRef),
    Plain(Column),
}

impl InCol {
    pub fn into_plain(self) -> Option<Column> {
        match self {
            InCol::Plain(c) => Some(c),
            InCol::Arrow(a) => from_arrow(a.as_ref()),
        }
    }
}

/// A table file read in batches.
pub enum TableReader {
    Csv {
        path: PathBuf,
        label: String,
        header: Vec<String>,
        reader: csv::Reader<std::io::BufReader<File>>,
        done: bool,
    },
    Parquet {
        reader: ParquetRecordBatchReader,
        path: PathBuf,
        row: u64,
    },
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableReader")
    }
}

impl TableReader {
    /// Opens `path` by extension: `.csv` (also `.tsv`, tab-separated) or `.parquet`.
    pub fn open(path: &Path, label: &str) -> Result<TableReader, TableError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let io = |source| TableError::Io {
            path: path.to_owned(),
            source,
        };
        if ext == "parquet" {
            let file = File::open(path).map_err(io)?;
            let np = |e: parquet::errors::ParquetError| TableError::NotParquet {
                path: path.to_owned(),
                reason: e.to_string(),
            };
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(np)?
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(np)?;
            return Ok(TableReader::Parquet {
                reader,
                path: path.to_owned(),
                row: 0,
            });
        }
        let file = File::open(path).map_err(io)?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(if ext == "tsv" { b'\t' } else { b',' })
            .flexible(false)
            .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
        let header = reader
            .headers()
            .map_err(|_| TableError::Csv {
                path: path.to_owned(),
                line: 1,
                reason: "unreadable header".into(),
            })?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
            .collect();
        Ok(TableReader::Csv {
            path: path.to_owned(),
            label: label.to_owned(),
            header,
            reader,
            done: false,
        })
    }

    pub fn column_names(&self) -> Vec<String> {
        match self {
            TableReader::Csv { header, .. } => header.clone(),
            TableReader::Parquet { reader, .. } => reader
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().to_ascii_lowercase())
                .collect(),
        }
    }

    /// The next batch, or `None` at the end. `kinds` gives CSV columns their
    /// types (a value that does not parse rejects its record); Parquet keeps its own.
    pub fn next_batch(&mut self, kinds: &[ColumnKind]) -> Result<Option<InBatch>, TableError> {
        match self {
            TableReader::Parquet { reader, path, row } => {
                let Some(b) = reader.next() else {
                    return Ok(None);
                };
                let b = b.map_err(|e| TableError::NotParquet {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let n = b.num_rows() as u64;
                let names = b
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().to_ascii_lowercase())
                    .collect();
                let records = (*row + 1..=*row + n).collect();
                *row += n;
                Ok(Some(InBatch {
                    names,
                    columns: b
                        .columns()
                        .iter()
                        .map(|a| InCol::Arrow(Arc::clone(a)))
                        .collect(),
                    records,
                    rejects: vec![],
                }))
            }
            TableReader::Csv {
                label,
                header,
                reader,
                done,
                ..
            } => {
                if *done {
                    return Ok(None);
                }
                let width = header.len();
                let mut cols: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(1024); width];
                let mut records = Vec::new();
                let mut rejects = Vec::new();
                let mut rec = csv::StringRecord::new();
                while records.len() < BATCH_ROWS {
                    match reader.read_record(&mut rec) {
                        Ok(false) => {
                            *done = true;
                            break;
                        }
                        Ok(true) => {
                            let line = rec.position().map_or(0, csv::Position::line);
                            for (i, col) in cols.iter_mut().enumerate() {
                                let v = rec.get(i).unwrap_or("");
                                col.push(if v.is_empty() {
                                    None
                                } else {
                                    Some(v.to_owned())
                                });
                            }
                            records.push(line);
                        }
                        Err(e) => {
                            let line = e.position().map_or(0, csv::Position::line);
                            let reason = match e.kind() {
                                csv::ErrorKind::UnequalLengths { .. } => {
                                    "malformed CSV: wrong number of fields".to_owned()
                                }
                                csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
                                _ => "malformed CSV".to_owned(),
                            };
                            rejects.push(Reject {
                                source: label.clone(),
                                record: line,
                                field: None,
                                reason,
                            });
                            if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                                *done = true;
                                break;
                            }
                        }
                    }
                }
                if records.is_empty() && rejects.is_empty() {
                    return Ok(None);
                }
                let mut columns = Vec::with_capacity(width);
                for (i, col) in cols.into_iter().enumerate() {
                    let kind = kinds.get(i).copied().unwrap_or(ColumnKind::Str);
                    let mut bad = Vec::new();
                    let c = coerce(Column::Str(col), kind, &mut bad);
                    for r in bad {
                        rejects.push(Reject {
                            source: label.clone(),
                            record: records[r],
                            field: Some(header[i].clone()),
                            reason: type_reason(kind),
                        });
                    }
                    columns.push(InCol::Plain(c));
                }
                Ok(Some(InBatch {
                    names: header.clone(),
                    columns,
                    records,
                    rejects,
                }))
            }
        }
    }
}

/// A Parquet file written in batches to a temporary name, renamed by `finish`.
pub struct ParquetSink {
    tmp: tempfile::NamedTempFile,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    path: PathBuf,
    rows: u64,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParquetSink({})", self.path.display())
    }
}

impl ParquetSink {
    pub fn create(path: &Path, fields: &[(String, ColumnKind)]) -> Result<ParquetSink, TableError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let io = |source| TableError::Io {
            path: path.to_owned(),
            source,
        };
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".parquet")
            .tempfile_in(dir)
            .map_err(io)?;
        let file = tmp.reopen().map_err(io)?;
        let schema = Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, k)| Field::new(n, arrow_type(*k), true))
                .collect::<Vec<_>>(),
        ));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).map_err(|e| {
            TableError::Write {
                path: path.to_owned(),
                reason: e.to_string(),
            }
        })?;
        Ok(ParquetSink {
            tmp,
            writer,
            schema,
            path: path.to_owned(),
            rows: 0,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), TableError> {
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| {
            TableError::Write {
                path: self.path.clone(),
                reason: e.to_string(),
            }
        })?;
        self.rows += batch.num_rows() as u64;
        self.writer.write(&batch).map_err(|e| TableError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// Closes, fsyncs and renames into place; returns the row count.
    pub fn finish(self) -> Result<u64, TableError> {
        let path = self.path.clone();
        let file = self.writer.into_inner().map_err(|e| TableError::Write {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        file.sync_all().map_err(|source| TableError::Io {
            path: path.clone(),
            source,
        })?;
        self.tmp.persist(&path).map_err(|e| TableError::Io {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(self.rows)
    }
}
