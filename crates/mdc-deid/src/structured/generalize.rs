//! Generalisation hierarchies: ages, dates, Korean addresses, postal codes.
//!
//! Each function maps a value one step (or several) up its hierarchy. They
//! are the `generalize(…)` actions of a policy and also the levels that the
//! automatic k-anonymiser (`risk::anonymize`) climbs.

/// Age in years → 5-year band, with every age above 89 pooled into `90+`
/// (HIPAA Safe Harbor and the Korean guideline both pool the very old).
pub fn age_band(age: i64) -> String {
    if age >= 90 {
        "90+".to_owned()
    } else if age < 0 {
        "unknown".to_owned()
    } else {
        let lo = age / 5 * 5;
        format!("{lo}-{}", lo + 4)
    }
}

/// Age band of `width` years (5, 10, 20…), 90+ pooled; `width == 0` is the age itself.
pub fn age_band_width(age: i64, width: i64) -> String {
    if age >= 90 {
        return "90+".to_owned();
    }
    if width <= 1 {
        return age.to_string();
    }
    if age < 0 {
        return "unknown".to_owned();
    }
    let lo = age / width * width;
    format!("{lo}-{}", (lo + width - 1).min(89))
}

/// A birth year pooled so that nobody appears older than 90 at `reference_year`.
pub fn pooled_birth_year(year: i64, reference_year: i64) -> i64 {
    year.max(reference_year - 90)
}

/// Parses a number written as text (`"47"`, `"47.0"`, `" 47 "`).
pub fn parse_number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

const SIDO: &[(&str, &[&str])] = &[
    ("서울특별시", &["서울", "서울시", "서울특별시"]),
    ("부산광역시", &["부산", "부산시", "부산광역시"]),
    ("대구광역시", &["대구", "대구시", "대구광역시"]),
    ("인천광역시", &["인천", "인천시", "인천광역시"]),
    ("광주광역시", &["광주광역시"]),
    ("대전광역시", &["대전", "대전시", "대전광역시"]),
    ("울산광역시", &["울산", "울산시", "울산광역시"]),
    ("세종특별자치시", &["세종", "세종시", "세종특별자치시"]),
    ("경기도", &["경기", "경기도"]),
    ("강원특별자치도", &["강원", "강원도", "강원특별자치도"]),
    ("충청북도", &["충북", "충청북도"]),
    ("충청남도", &["충남", "충청남도"]),
    ("전북특별자치도", &["전북", "전라북도", "전북특별자치도"]),
    ("전라남도", &["전남", "전라남도"]),
    ("경상북도", &["경북", "경상북도"]),
    ("경상남도", &["경남", "경상남도"]),
    ("제주특별자치도", &["제주", "제주도", "제주특별자치도"]),
];

/// The 시/도 of a Korean address, in its official full name, or `None` when
/// the address does not start with one. (광주 alone is ambiguous with 경기도
/// 광주시, so only the full 광주광역시 is recognised.)
pub fn korean_sido(address: &str) -> Option<&'static str> {
    let first = address.split_whitespace().next()?;
    SIDO.iter()
        .find(|(_, forms)| forms.contains(&first))
        .map(|(full, _)| *full)
}

/// The 시/군/구 level of a Korean address: 시/도 plus the next unit, plus the
/// 구 of a 시 that has 구 (경기도 성남시 분당구). `None` if not recognised.
pub fn korean_sigungu(address: &str) -> Option<String> {
    let sido = korean_sido(address)?;
    let words: Vec<&str> = address.split_whitespace().collect();
    let mut out = sido.to_owned();
    let is_unit = |w: &str, ends: &[char]| w.chars().count() >= 2 && w.ends_with(ends);
    match words.get(1) {
        Some(w) if is_unit(w, &['시', '군', '구']) => {
            out.push(' ');
            out.push_str(w);
            if w.ends_with('시') {
                if let Some(g) = words.get(2).filter(|g| is_unit(g, &['구'])) {
                    out.push(' ');
                    out.push_str(g);
                }
            }
            Some(out)
        }
        // 세종특별자치시 has no 시/군/구 below it.
        _ if sido == "세종특별자치시" => Some(out),
        _ => None,
    }
}

/// A postal code cut to its first `keep` digits (Korean codes have five; the
/// first three name a 시/군/구 area, as the US ZIP3 does).
pub fn postal_prefix(code: &str, keep: usize) -> Option<String> {
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= keep && digits.len() >= 3).then(|| digits[..keep].to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ages_band_by_five_and_pool_above_89() {
        assert_eq!(age_band(0), "0-4");
        assert_eq!(age_band(47), "45-49");
        assert_eq!(age_band(89), "85-89");
        assert_eq!(age_band(90), "90+");
        assert_eq!(age_band(104), "90+");
        assert_eq!(age_band_width(47, 10), "40-49");
        assert_eq!(age_band_width(85, 20), "80-89");
        assert_eq!(pooled_birth_year(1920, 2025), 1935);
        assert_eq!(pooled_birth_year(1980, 2025), 1980);
    }

    #[test]
    fn korean_addresses_generalise_to_sido_and_sigungu() {
        let a = "서울특별시 강남구 테헤란로 123 4층";
        assert_eq!(korean_sido(a), Some("서울특별시"));
        assert_eq!(korean_sigungu(a).unwrap(), "서울특별시 강남구");
        let b = "경기 성남시 분당구 판교역로 235";
        assert_eq!(korean_sido(b), Some("경기도"));
        assert_eq!(korean_sigungu(b).unwrap(), "경기도 성남시 분당구");
        assert_eq!(
            korean_sigungu("세종특별자치시 한누리대로 2130").unwrap(),
            "세종특별자치시"
        );
        assert_eq!(korean_sido("221B Baker Street"), None);
        assert_eq!(korean_sigungu("부산 해운대"), None);
    }

    #[test]
    fn postal_codes_keep_three_digits() {
        assert_eq!(postal_prefix("06236", 3).unwrap(), "062");
        assert_eq!(postal_prefix("135-080", 3).unwrap(), "135");
        assert_eq!(postal_prefix("12", 3), None);
    }
}
