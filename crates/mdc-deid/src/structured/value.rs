//! Typed columns and calendar arithmetic, without arrow.
//!
//! The engines see a table as a few `Column`s of plain Rust values so that the
//! policy logic stays testable and free of arrow; `mdc-table` converts arrow
//! arrays to and from these types (and passes untouched columns straight
//! through). Dates are days since 1970-01-01 and date-times microseconds since
//! the epoch in UTC, the layout DESIGN §11 keeps for Parquet.

/// One column of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
    /// Days since 1970-01-01.
    Date(Vec<Option<i32>>),
    /// Microseconds since 1970-01-01T00:00:00Z.
    DateTime(Vec<Option<i64>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Int(v) | Column::DateTime(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Str(v) => v.len(),
            Column::Date(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kind(&self) -> ColumnKind {
        match self {
            Column::Int(_) => ColumnKind::Int,
            Column::Float(_) => ColumnKind::Float,
            Column::Bool(_) => ColumnKind::Bool,
            Column::Str(_) => ColumnKind::Str,
            Column::Date(_) => ColumnKind::Date,
            Column::DateTime(_) => ColumnKind::DateTime,
        }
    }

    pub fn is_null(&self, i: usize) -> bool {
        match self {
            Column::Int(v) | Column::DateTime(v) => v.get(i).is_none_or(Option::is_none),
            Column::Float(v) => v.get(i).is_none_or(Option::is_none),
            Column::Bool(v) => v.get(i).is_none_or(Option::is_none),
            Column::Str(v) => v.get(i).is_none_or(Option::is_none),
            Column::Date(v) => v.get(i).is_none_or(Option::is_none),
        }
    }

    /// The value of row `i` as text (for frequency counts and risk keys).
    pub fn text_at(&self, i: usize) -> Option<String> {
        match self {
            Column::Int(v) => v.get(i).copied().flatten().map(|x| x.to_string()),
            Column::Float(v) => v.get(i).copied().flatten().map(|x| x.to_string()),
            Column::Bool(v) => v.get(i).copied().flatten().map(|x| x.to_string()),
            Column::Str(v) => v.get(i).cloned().flatten(),
            Column::Date(v) => v.get(i).copied().flatten().map(format_date),
            Column::DateTime(v) => v.get(i).copied().flatten().map(format_datetime),
        }
    }

    /// Keeps the rows whose `keep` flag is set.
    pub fn filter(&self, keep: &[bool]) -> Column {
        fn f<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x.clone())
                .collect()
        }
        match self {
            Column::Int(v) => Column::Int(f(v, keep)),
            Column::Float(v) => Column::Float(f(v, keep)),
            Column::Bool(v) => Column::Bool(f(v, keep)),
            Column::Str(v) => Column::Str(f(v, keep)),
            Column::Date(v) => Column::Date(f(v, keep)),
            Column::DateTime(v) => Column::DateTime(f(v, keep)),
        }
    }
}

/// The type of a column, as the OMOP spec and the Parquet schema name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    Int,
    Float,
    Bool,
    Str,
    Date,
    DateTime,
}

impl ColumnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::Int => "integer",
            ColumnKind::Float => "float",
            ColumnKind::Bool => "boolean",
            ColumnKind::Str => "string",
            ColumnKind::Date => "date",
            ColumnKind::DateTime => "datetime",
        }
    }
}

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// The calendar date of a day number.
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD` (also `YYYYMMDD` and `YYYY/MM/DD`) into a day number.
pub fn parse_date(s: &str) -> Option<i32> {
    let s = s.trim();
    if !s.is_ascii() {
        return None;
    }
    let (y, m, d) = if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        (&s[0..4], &s[4..6], &s[6..8])
    } else if s.len() == 10 && matches!(&s[4..5], "-" | "/" | ".") && s[7..8] == s[4..5] {
        (&s[0..4], &s[5..7], &s[8..10])
    } else {
        return None;
    };
    let (y, m, d) = (digits(y)? as i32, digits(m)?, digits(d)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parses `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|±HH:MM]` (or a bare date) into
/// microseconds since the epoch, UTC.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_ascii() {
        return None;
    }
    if s.len() < 10 || !s.is_char_boundary(10) {
        return None;
    }
    let day = parse_date(&s[..10])?;
    let mut rest = &s[10..];
    if rest.is_empty() {
        return Some(i64::from(day) * MICROS_PER_DAY);
    }
    rest = rest.strip_prefix(['T', ' '])?;
    let mut offset_secs: i64 = 0;
    if let Some(r) = rest.strip_suffix('Z') {
        rest = r;
    } else if rest.len() > 6 {
        let tail = &rest[rest.len() - 6..];
        if (tail.starts_with('+') || tail.starts_with('-')) && &tail[3..4] == ":" {
            let h = i64::from(digits(&tail[1..3])?);
            let m = i64::from(digits(&tail[4..6])?);
            offset_secs = (h * 3600 + m * 60) * if tail.starts_with('-') { -1 } else { 1 };
            rest = &rest[..rest.len() - 6];
        }
    }
    let (hms, frac) = match rest.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let h = digits(parts[0])?;
    let mi = digits(parts[1])?;
    let sec = if parts.len() == 3 {
        digits(parts[2])?
    } else {
        0
    };
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut micros = 0i64;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 {
            return None;
        }
        let v = i64::from(digits(f)?);
        micros = v * 10i64.pow(6u32.saturating_sub(f.len() as u32))
            / 10i64.pow((f.len() as u32).saturating_sub(6));
    }
    let secs = i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec) - offset_secs;
    Some(i64::from(day) * MICROS_PER_DAY + secs * 1_000_000 + micros)
}

pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn format_datetime(micros: i64) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rem = micros.rem_euclid(MICROS_PER_DAY) / 1_000_000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(days as i32),
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Year of a day number.
pub fn year_of(days: i32) -> i32 {
    civil_from_days(days).0
}

/// Shifts a date written as text by `days`, keeping its written form: a
/// date stays a date, a date-time keeps its time and zone suffix. `None`
/// when the text is not a date.
pub fn shift_date_text(s: &str, days: i32) -> Option<String> {
    let t = s.trim();
    if !t.is_ascii() {
        return None;
    }
    if t.len() >= 10 && t.is_char_boundary(10) {
        let head = &t[..10];
        if let Some(d) = parse_date(head) {
            let rest = &t[10..];
            if rest.is_empty() || parse_datetime(t).is_some() {
                let shifted = format_date(d + days);
                let shifted = if head.contains('/') {
                    shifted.replace('-', "/")
                } else if head.contains('.') {
                    shifted.replace('-', ".")
                } else {
                    shifted
                };
                return Some(format!("{shifted}{rest}"));
            }
        }
    }
    if t.len() == 8 {
        let d = parse_date(t)?;
        return Some(format_date(d + days).replace('-', ""));
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_over_centuries() {
        for z in (-200_000..200_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn dates_and_datetimes_parse_strictly() {
        assert_eq!(parse_date("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("20240105"), Some(days_from_civil(2024, 1, 5)));
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("hello"), None);
        let t = parse_datetime("2024-01-05T10:30:00+09:00").unwrap();
        assert_eq!(format_datetime(t), "2024-01-05T01:30:00Z");
        assert_eq!(
            parse_datetime("2024-01-05 10:30"),
            Some(i64::from(days_from_civil(2024, 1, 5)) * MICROS_PER_DAY + 37_800_000_000)
        );
        assert!(parse_datetime("2024-01-05T25:00:00").is_none());
    }

    #[test]
    fn shifting_text_keeps_its_form() {
        assert_eq!(shift_date_text("2024-01-05", 3).unwrap(), "2024-01-08");
        assert_eq!(shift_date_text("2024/12/30", 3).unwrap(), "2025/01/02");
        assert_eq!(
            shift_date_text("2024-01-05T10:30:00+09:00", -5).unwrap(),
            "2023-12-31T10:30:00+09:00"
        );
        assert_eq!(shift_date_text("20240105", 1).unwrap(), "20240106");
        assert!(shift_date_text("soon", 1).is_none());
        // Multi-byte text never panics (issue 4 regression: byte slicing).
        for s in [
            "홍길동0",
            "2024ㄱ",
            "2024-0ㄱ",
            "2024-01-0가",
            "가나다라마바사아자차",
        ] {
            assert!(
                parse_date(s).is_none()
                    && parse_datetime(s).is_none()
                    && shift_date_text(s, 1).is_none()
            );
        }
    }
}
