//! Type conversion of one value, as ansible-core 2.19's `check_type_*` functions do it, with their messages.
//!
//! JSON cannot hold what Python can (integers beyond 64 bits, infinities): where Python would produce one,
//! we return a clear error instead.

use serde_json::{Map, Number, Value};

use crate::pyfmt::{py_class, py_str};
use crate::pyliteral;
use crate::spec::Kind;

/// Converts one value to `kind`. `Err` is the checker's message (the caller adds the option's context).
pub fn convert(kind: Kind, value: &Value) -> Result<Value, String> {
    match kind {
        Kind::Raw => Ok(value.clone()),
        Kind::Str => Ok(Value::String(to_str(value))),
        Kind::Path => Ok(Value::String(expand_path(&to_str(value)))),
        Kind::Bool => to_bool(value).map(Value::Bool),
        Kind::Int => to_int(value),
        Kind::Float => to_float(value),
        Kind::List => to_list(value),
        Kind::Dict => to_dict(value).map(Value::Object),
    }
}

/// `check_type_str`: a string stays, null becomes `''`, anything else is Python's `str()` of it.
fn to_str(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        other => py_str(other),
    }
}

fn to_list(value: &Value) -> Result<Value, String> {
    match value {
        Value::Array(_) => Ok(value.clone()),
        // No trimming: "a, b" gives "a" and " b", as Python's split does.
        Value::String(s) => Ok(Value::Array(
            s.split(',').map(|p| Value::String(p.into())).collect(),
        )),
        // bool is an int in Python: True becomes ['True'].
        Value::Number(_) | Value::Bool(_) => Ok(Value::Array(vec![Value::String(py_str(value))])),
        other => Err(format!("{} cannot be converted to a list", py_class(other))),
    }
}

/// `check_type_dict`: a dict stays; a string starting with `{` is JSON (or a Python dict literal);
/// a string with `=` is `k=v` pairs split on commas and spaces, honouring quotes and backslashes.
pub fn to_dict(value: &Value) -> Result<Map<String, Value>, String> {
    let s = match value {
        Value::Object(m) => return Ok(m.clone()),
        Value::String(s) => s,
        other => return Err(format!("{} cannot be converted to a dict", py_class(other))),
    };
    if s.starts_with('{') {
        return match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            // json.loads of a string starting with `{` yields a dict or fails; a failure tries literal_eval.
            _ => match pyliteral::parse(s) {
                Some(Value::Object(m)) => Ok(m),
                _ => Err("unable to evaluate string as dictionary".into()),
            },
        };
    }
    if !s.contains('=') {
        return Err("dictionary requested, could not parse JSON or key=value".into());
    }
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quote: Option<char> = None;
    let mut escape = false;
    for c in s.trim().chars() {
        if escape {
            field.push(c);
            escape = false;
        } else if c == '\\' {
            escape = true;
        } else if quote.is_none() && (c == '\'' || c == '"') {
            quote = Some(c);
        } else if quote == Some(c) {
            quote = None;
        } else if quote.is_none() && (c == ',' || c == ' ') {
            if !field.is_empty() {
                fields.push(std::mem::take(&mut field));
            }
        } else {
            field.push(c);
        }
    }
    if !field.is_empty() {
        fields.push(field);
    }
    let mut out = Map::new();
    for f in fields {
        let Some((k, v)) = f.split_once('=') else {
            return Err(
                "unable to evaluate string in the \"key=value\" format as dictionary".into(),
            );
        };
        out.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(out)
}

/// The valid booleans, in the order our message lists them (Python lists a set, in hash order).
const TRUE_WORDS: [&str; 6] = ["y", "yes", "on", "1", "true", "t"];
const FALSE_WORDS: [&str; 6] = ["n", "no", "off", "0", "false", "f"];

fn to_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => {
            let t = s.trim().to_lowercase();
            if TRUE_WORDS.contains(&t.as_str()) {
                Ok(true)
            } else if FALSE_WORDS.contains(&t.as_str()) {
                Ok(false)
            } else {
                Err(not_a_boolean(value))
            }
        }
        // 1 and 1.0 are true, 0 and 0.0 false (Python compares them equal).
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Ok(true),
            Some(0.0) => Ok(false),
            _ => Err(not_a_boolean(value)),
        },
        other => Err(format!("{} cannot be converted to a bool", py_class(other))),
    }
}

fn not_a_boolean(value: &Value) -> String {
    let words = |ws: &[&str]| ws.iter().map(|w| format!("'{}'", w)).collect::<Vec<_>>();
    let mut valid = words(&TRUE_WORDS);
    valid.push("1".into());
    valid.extend(words(&FALSE_WORDS));
    valid.push("0".into());
    format!(
        "The value '{}' is not a valid boolean. Valid booleans include: {}",
        py_str(value),
        valid.join(", ")
    )
}

/// `check_type_int`: ints (and bools, which are ints in Python) stay; strings and floats convert when they
/// have no fractional part (`"4.0"`, `"1e3"`, `" 42 "`, `4.0`).
fn to_int(value: &Value) -> Result<Value, String> {
    let bad = || {
        format!(
            "\"{}\" cannot be converted to an int",
            crate::pyfmt::py_repr(value)
        )
    };
    match value {
        Value::Bool(_) => Ok(value.clone()),
        Value::Number(n) if n.is_i64() => Ok(value.clone()),
        // A JSON integer above i64::MAX (the args file allows up to u64::MAX for untyped options).
        Value::Number(n) if n.is_u64() => int_in_range(
            i128::from(n.as_u64().unwrap_or(u64::MAX)),
            true,
            &n.to_string(),
        )
        .map_err(|e| e.unwrap_or_else(bad)),
        Value::Number(n) => {
            let f = n.as_f64().ok_or_else(bad)?;
            if f.fract() != 0.0 {
                return Err(bad());
            }
            int_in_range(f as i128, f.abs() < 1.0e30, &py_str(value))
                .map_err(|e| e.unwrap_or_else(bad))
        }
        Value::String(s) => match parse_decimal_int(s) {
            DecimalInt::Int(i) => {
                int_in_range(i, true, s.trim()).map_err(|e| e.unwrap_or_else(bad))
            }
            DecimalInt::TooBig => {
                int_in_range(0, false, s.trim()).map_err(|e| e.unwrap_or_else(bad))
            }
            DecimalInt::NotInt => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// An integer the modules can read back (`Module::int` is an i64); beyond that a clear error, where Python
/// would keep a big int. Without this, 2^63..2^64 would pass here and then read as "not given".
fn int_in_range(i: i128, representable: bool, text: &str) -> Result<Value, Option<String>> {
    if representable {
        if let Ok(v) = i64::try_from(i) {
            return Ok(Value::from(v));
        }
        if u64::try_from(i.unsigned_abs()).is_ok() {
            // 64 bits of magnitude, one too many for a sign.
            return Err(Some(format!(
                "{} is beyond the signed 64-bit range: this module takes integers from {} to {}",
                text,
                i64::MIN,
                i64::MAX
            )));
        }
    }
    Err(Some(format!(
        "{} is beyond 64 bits: this module takes integers from {} to {}",
        text,
        i64::MIN,
        i64::MAX
    )))
}

enum DecimalInt {
    Int(i128),
    TooBig,
    NotInt,
}

/// Python's `int(Decimal(s))` when that is exact: optional sign, digits (underscores between them allowed),
/// optional fraction, optional exponent; surrounding whitespace ignored.
fn parse_decimal_int(s: &str) -> DecimalInt {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => match body[i + 1..].replace('_', "").parse::<i64>() {
            Ok(e) => (&body[..i], e),
            Err(_) => return DecimalInt::NotInt,
        },
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let valid = |p: &str| {
        !p.starts_with('_')
            && !p.ends_with('_')
            && !p.contains("__")
            && p.chars().all(|c| c.is_ascii_digit() || c == '_')
    };
    if !valid(int_part) || !valid(frac_part) || (int_part.is_empty() && frac_part.is_empty()) {
        return DecimalInt::NotInt;
    }
    let digits: String = format!("{}{}", int_part, frac_part).replace('_', "");
    // value = digits * 10^(exp - len(frac))
    let shift = exp - frac_part.replace('_', "").len() as i64;
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return DecimalInt::Int(0);
    }
    let (whole, dropped) = if shift >= 0 {
        if digits.len() as i64 + shift > 38 {
            return DecimalInt::TooBig;
        }
        (format!("{}{}", digits, "0".repeat(shift as usize)), "")
    } else {
        let cut = (-shift) as usize;
        if cut >= digits.len() {
            ("0".to_string(), digits)
        } else {
            (
                digits[..digits.len() - cut].to_string(),
                &digits[digits.len() - cut..],
            )
        }
    };
    if dropped.chars().any(|c| c != '0') {
        return DecimalInt::NotInt;
    }
    match whole.parse::<i128>() {
        Ok(v) => DecimalInt::Int(if neg { -v } else { v }),
        Err(_) => DecimalInt::TooBig,
    }
}

/// `check_type_float`: floats stay; ints, bools and numeric strings convert.
fn to_float(value: &Value) -> Result<Value, String> {
    let bad = || format!("{} cannot be converted to a float", py_class(value));
    let f = match value {
        Value::Number(n) if n.is_f64() => return Ok(value.clone()),
        Value::Number(n) => n.as_f64().ok_or_else(bad)?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => parse_py_float(s).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        format!(
            "{} is not a finite number, which JSON cannot carry",
            py_str(value)
        )
    })
}

/// Python's `float(str)`: whitespace trimmed, underscores between digits, `inf`/`nan` words.
fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let word = lower.trim_start_matches(['+', '-']);
    if matches!(word, "inf" | "infinity" | "nan") {
        return lower
            .parse::<f64>()
            .ok()
            .or(Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }));
    }
    if t.contains("__") || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    let cleaned = t.replace('_', "");
    if cleaned.is_empty()
        || !cleaned
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
    {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

/// `type='path'`: `os.path.expanduser(os.path.expandvars(v))`. Only `~` and `~/...` expand the home
/// directory (from `$HOME`); `~user` stays as written (looking users up would need NSS).
pub fn expand_path(s: &str) -> String {
    let out = expand_vars(s);
    if out == "~" || out.starts_with("~/") {
        if let Ok(home) = std::env::var("HOME") {
            let home = home.trim_end_matches('/');
            let joined = format!("{}{}", home, &out[1..]);
            return if joined.is_empty() {
                "/".into()
            } else {
                joined
            };
        }
    }
    out
}

/// `os.path.expandvars`: `$name` (ASCII word characters) and `${anything}`; unknown variables stay.
fn expand_vars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match std::env::var(name) {
            Ok(v) if consumed > 0 && !name.is_empty() => {
                out.push_str(&v);
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ints_follow_decimal_rules() {
        assert_eq!(to_int(&json!(" 42 ")), Ok(json!(42)));
        assert_eq!(to_int(&json!("4.0")), Ok(json!(4)));
        assert_eq!(to_int(&json!("1e3")), Ok(json!(1000)));
        assert_eq!(to_int(&json!("1_000")), Ok(json!(1000)));
        assert_eq!(to_int(&json!(4.0)), Ok(json!(4)));
        assert_eq!(to_int(&json!(true)), Ok(json!(true)));
        assert_eq!(
            to_int(&json!(4.5)),
            Err("\"4.5\" cannot be converted to an int".into())
        );
        assert_eq!(
            to_int(&json!("forty")),
            Err("\"'forty'\" cannot be converted to an int".into())
        );
        assert!(to_int(&json!("123456789012345678901234567890"))
            .unwrap_err()
            .contains("beyond 64 bits"));
        assert_eq!(to_int(&json!("9223372036854775807")), Ok(json!(i64::MAX)));
        assert_eq!(to_int(&json!("-9223372036854775808")), Ok(json!(i64::MIN)));
    }

    #[test]
    fn ints_beyond_i64_fail_instead_of_reading_as_missing() {
        let signed = "beyond the signed 64-bit range: this module takes integers from \
                      -9223372036854775808 to 9223372036854775807";
        // 2^63 as a JSON integer, a string, a float; 2^64 - 1; and just below i64::MIN.
        for (value, text) in [
            (json!(9223372036854775808u64), "9223372036854775808"),
            (json!("9223372036854775808"), "9223372036854775808"),
            (json!(2f64.powi(63)), "9.223372036854776e+18"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!("-9223372036854775809"), "-9223372036854775809"),
        ] {
            assert_eq!(
                to_int(&value),
                Err(format!("{} is {}", text, signed)),
                "{}",
                value
            );
        }
        assert_eq!(
            to_int(&json!("18446744073709551616")),
            Err(
                "18446744073709551616 is beyond 64 bits: this module takes integers from \
                 -9223372036854775808 to 9223372036854775807"
                    .into()
            )
        );
    }

    #[test]
    fn dicts_from_strings() {
        assert_eq!(
            to_dict(&json!("a=1, b='x y' c=\"2\"")).unwrap(),
            json!({"a": "1", "b": "x y", "c": "2"})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(
            to_dict(&json!("{'a': [1, None]}")).unwrap(),
            json!({"a": [1, null]}).as_object().unwrap().clone()
        );
        assert_eq!(
            to_dict(&json!("a=1, b")),
            Err("unable to evaluate string in the \"key=value\" format as dictionary".into())
        );
    }

    #[test]
    fn paths_expand_variables() {
        std::env::set_var("GPUNODE_TEST_VAR", "v");
        assert_eq!(
            expand_vars("/a/$GPUNODE_TEST_VAR/${GPUNODE_TEST_VAR}x"),
            "/a/v/vx"
        );
        assert_eq!(expand_vars("$NOPE_NOT_SET/${}"), "$NOPE_NOT_SET/${}");
    }
}
