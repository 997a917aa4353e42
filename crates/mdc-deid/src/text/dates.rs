//! Dates in the forms the detector finds, parsed just enough to check the
//! calendar and to shift them by whole days while keeping their written form
//! (`2024.03.05` stays `YYYY.MM.DD`, `March 5, 2024` stays a month name).

use std::fmt::Write as _;

const MONTH_FULL: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTH_ABBR: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Year,
    Month,
    Day,
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    Num {
        value: u32,
        width: usize,
        role: Role,
    },
    MonthWord {
        full: bool,
    },
}

/// A parsed date: the calendar fields present and how it was written.
#[derive(Debug, Clone)]
pub(crate) struct ParsedDate {
    year: Option<i64>,
    month: u32,
    day: Option<u32>,
    pieces: Vec<Piece>,
    /// Zero-padded numeric forms (`2024.03.05`) keep their widths; Korean and
    /// English forms write months and days without padding unless they had it.
    fixed_width: bool,
}

fn month_word(w: &str) -> Option<(u32, bool)> {
    for (i, full) in MONTH_FULL.iter().enumerate() {
        if w == *full {
            return Some((i as u32 + 1, true));
        }
    }
    if w == "Sept" {
        return Some((9, false));
    }
    MONTH_ABBR
        .iter()
        .position(|a| *a == w)
        .map(|i| (i as u32 + 1, false))
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a date span; `None` if it is not a real calendar date.
pub(crate) fn parse(s: &str) -> Option<ParsedDate> {
    // Tokenise into numbers, words and the literal text between them.
    let mut pieces: Vec<Piece> = Vec::new();
    let mut nums: Vec<usize> = Vec::new();
    let mut month_from_word = None;
    let mut lit = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_ascii_digit() || c.is_ascii_alphabetic() {
            let mut j = i + c.len_utf8();
            while let Some(&(k, d)) = chars.peek() {
                if d.is_ascii_digit() == c.is_ascii_digit() && d.is_ascii_alphanumeric() {
                    j = k + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let tok = &s[i..j];
            if c.is_ascii_digit() {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                nums.push(pieces.len());
                pieces.push(Piece::Num {
                    value: tok.parse().ok()?,
                    width: tok.len(),
                    role: Role::Day,
                });
            } else if let Some((m, full)) = month_word(tok) {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                month_from_word = Some(m);
                pieces.push(Piece::MonthWord { full });
            } else {
                lit.push_str(tok);
            }
        } else {
            lit.push(c);
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    let apostrophe = s.starts_with(['\'', '’']);
    // A compact YYYYMMDD is split into three numbers.
    if nums.len() == 1 && month_from_word.is_none() {
        if let Piece::Num {
            value, width: 8, ..
        } = pieces[nums[0]]
        {
            let (y, m, d) = (value / 10_000, value / 100 % 100, value % 100);
            pieces = vec![
                Piece::Num {
                    value: y,
                    width: 4,
                    role: Role::Year,
                },
                Piece::Num {
                    value: m,
                    width: 2,
                    role: Role::Month,
                },
                Piece::Num {
                    value: d,
                    width: 2,
                    role: Role::Day,
                },
            ];
            nums = vec![0, 1, 2];
        }
    }
    let suffix_after = |idx: usize| -> Option<char> {
        match pieces.get(idx + 1) {
            Some(Piece::Lit(l)) => l.trim_start().chars().next(),
            _ => None,
        }
    };
    let korean = s.contains(['년', '월', '일']);
    let roles: Vec<Role> = if korean {
        nums.iter()
            .map(|&i| match suffix_after(i) {
                Some('년') => Role::Year,
                Some('월') => Role::Month,
                _ => Role::Day,
            })
            .collect()
    } else if month_from_word.is_some() {
        nums.iter()
            .map(|&i| match pieces[i] {
                Piece::Num { width: 4, .. } => Role::Year,
                _ => Role::Day,
            })
            .collect()
    } else {
        let widths: Vec<usize> = nums
            .iter()
            .map(|&i| match pieces[i] {
                Piece::Num { width, .. } => width,
                _ => 0,
            })
            .collect();
        match widths.as_slice() {
            [4, _, _] => vec![Role::Year, Role::Month, Role::Day],
            [_, _, _] if apostrophe => vec![Role::Year, Role::Month, Role::Day],
            [_, _, _] if s.contains('.') => vec![Role::Day, Role::Month, Role::Year],
            [_, _, _] => vec![Role::Month, Role::Day, Role::Year],
            _ => return None,
        }
    };
    let (mut year, mut month, mut day) = (None, month_from_word, None);
    for (&i, role) in nums.iter().zip(&roles) {
        if let Piece::Num {
            value,
            width,
            role: r,
        } = &mut pieces[i]
        {
            *r = *role;
            match role {
                Role::Year => {
                    let v = i64::from(*value);
                    year = Some(if *width <= 2 {
                        if v < 70 {
                            2000 + v
                        } else {
                            1900 + v
                        }
                    } else {
                        v
                    });
                }
                Role::Month => month = Some(*value),
                Role::Day => day = Some(*value),
            }
        }
    }
    let month = month?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if let Some(d) = day {
        if d == 0 || d > days_in_month(year.unwrap_or(2000), month) {
            return None;
        }
    }
    if year.is_none() && day.is_none() {
        return None;
    }
    let fixed_width = (!korean && month_from_word.is_none())
        || pieces.iter().any(|p| matches!(p, Piece::Num { width: 2, value, role } if *value < 10 && *role != Role::Year));
    Some(ParsedDate {
        year,
        month,
        day,
        pieces,
        fixed_width,
    })
}

impl ParsedDate {
    /// The same date moved by `days`, written the same way.
    pub(crate) fn shifted(&self, days: i64) -> String {
        let y = self.year.unwrap_or(2000);
        let d = self.day.unwrap_or(15);
        let mut days = days;
        if self.day.is_none() && days.abs() < 31 {
            // A month-level date must still move: at least one month.
            days = if days < 0 { -31 } else { 31 };
        }
        let (ny, nm, nd) = civil_from_days(days_from_civil(y, self.month, d) + days);
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(l) => out.push_str(l),
                Piece::MonthWord { full } => out.push_str(if *full {
                    MONTH_FULL[nm as usize - 1]
                } else {
                    MONTH_ABBR[nm as usize - 1]
                }),
                Piece::Num { width, role, .. } => {
                    let v = match role {
                        Role::Year if *width <= 2 => ny.rem_euclid(100),
                        Role::Year => ny,
                        Role::Month => i64::from(nm),
                        Role::Day => i64::from(nd),
                    };
                    if *width >= 2 && (self.fixed_width || *role == Role::Year) {
                        let _ = write!(out, "{v:0width$}", width = *width);
                    } else {
                        out.push_str(&v.to_string());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_every_written_form_and_calendar_is_checked() {
        for s in [
            "2024년 3월 5일",
            "2024.03.05",
            "2024-03-05",
            "2024/3/5",
            "'24.3.5",
            "3월 5일",
            "03/05/2024",
            "3/5/24",
            "March 5, 2024",
            "Mar. 5",
            "5 March 2024",
            "March 2024",
            "2024년 3월",
            "20240305",
            "05.03.2024",
        ] {
            assert!(parse(s).is_some(), "{s}");
        }
        for s in [
            "2024.13.05",
            "2024.02.30",
            "13/45/2024",
            "20241399",
            "3월 32일",
        ] {
            assert!(parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn shifting_keeps_the_form_and_crosses_months_and_years() {
        assert_eq!(parse("2024.03.05").unwrap().shifted(-5), "2024.02.29");
        assert_eq!(
            parse("2024년 12월 30일").unwrap().shifted(3),
            "2025년 1월 2일"
        );
        assert_eq!(parse("March 5, 2024").unwrap().shifted(30), "April 4, 2024");
        assert_eq!(parse("'24.3.5").unwrap().shifted(1), "'24.3.6");
        assert_eq!(parse("03/05/2024").unwrap().shifted(-65), "12/31/2023");
        assert_eq!(parse("20240305").unwrap().shifted(1), "20240306");
        assert_eq!(parse("3월 5일").unwrap().shifted(30), "4월 4일");
        for z in [-800_000i64, -1, 0, 1, 19_000, 800_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
