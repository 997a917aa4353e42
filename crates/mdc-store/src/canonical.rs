//! Canonical JSON (RFC 8785, JCS) for the values the audit log hashes.
//!
//! Audit entries hold strings, integers, booleans, nulls, arrays and objects;
//! floats are refused so that no number formatting question arises. Object keys
//! are sorted by their UTF-16 code units, as the RFC requires; strings use the
//! minimal escaping that serde_json already produces.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("audit parameters may not contain floating-point numbers")]
pub struct FloatInAudit;

pub fn canonical_json(value: &Value) -> Result<String, FloatInAudit> {
    let mut out = String::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut String) -> Result<(), FloatInAudit> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(FloatInAudit);
            }
            out.push_str(&n.to_string());
        }
        Value::String(s) => push_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(k, out);
                out.push(':');
                write(v, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn push_string(s: &str, out: &mut String) {
    // serde_json escapes exactly `"`, `\`, and control characters (\b \f \n \r \t,
    // others as lower-case \u00xx), which is RFC 8785's rule.
    out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sort_by_utf16_code_units_and_whitespace_is_dropped() {
        // The example of RFC 8785 §3.2.3: U+1F600 is the surrogate pair D83D DE00,
        // so it sorts before U+FB33 although its code point is larger.
        let v = json!({"\u{20ac}": 1, "\r": 2, "\u{1f600}": 3, "1": 4, "\u{80}": 5, "\u{fb33}": 6, "\u{e9}": 7});
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"\\r\":2,\"1\":4,\"\u{80}\":5,\"\u{e9}\":7,\"\u{20ac}\":1,\"\u{1f600}\":3,\"\u{fb33}\":6}"
        );
    }

    #[test]
    fn strings_use_minimal_escapes_and_floats_are_refused() {
        let v = json!({"b": "a\"\\\u{1}\n/한", "a": [true, null, -5]});
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"a\":[true,null,-5],\"b\":\"a\\\"\\\\\\u0001\\n/한\"}"
        );
        assert!(canonical_json(&json!({"x": 1.5})).is_err());
    }
}
