//! Argument validation in AnsibleModule's order, with AnsibleModule's messages and type coercions.
//!
//! The order matters because the first error is the message a user sees: aliases, mutually exclusive,
//! defaults, required, types, choices, the cross-option rules, sub-options, and unknown parameters last.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::pyfmt::{py_repr, py_str, py_type_name};
use crate::spec::{Kind, ModuleSpec, Opt};

/// What validation produced: converted parameters, warnings, and every value that must be masked.
#[derive(Debug, Default)]
pub struct Validated {
    pub params: Map<String, Value>,
    pub warnings: Vec<String>,
    pub no_log_values: BTreeSet<String>,
}

/// Validates `raw` (the module's own arguments, `_ansible_*` keys removed) against `spec`.
/// `Err` carries the first error message, exactly as AnsibleModule would report it.
pub fn validate(
    module_name: &str,
    spec: &ModuleSpec,
    raw: &Map<String, Value>,
    ignore_unknown: bool,
) -> Result<Validated, String> {
    let mut out = Validated::default();
    let mut errors = Vec::new();
    let mut unsupported = Vec::new();
    let params = validate_level(spec, raw, None, &mut out, &mut errors, &mut unsupported);
    if !unsupported.is_empty() && !ignore_unknown {
        errors.push(unsupported_message(module_name, spec, &unsupported));
    }
    match errors.into_iter().next() {
        Some(first) => Err(first),
        None => {
            out.params = params;
            Ok(out)
        }
    }
}

fn unsupported_message(module_name: &str, spec: &ModuleSpec, unsupported: &[String]) -> String {
    let mut names: Vec<&String> = unsupported.iter().collect();
    names.sort();
    let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    format!(
        "Unsupported parameters for ({}) module: {}. Supported parameters include: {}.",
        module_name,
        names.join(", "),
        supported_list(spec)
    )
}

/// `backup, name, path, state (runtime_name)`: sorted option names, each with its aliases in parentheses.
fn supported_list(spec: &ModuleSpec) -> String {
    let mut opts: Vec<&Opt> = spec.options.iter().collect();
    opts.sort_by_key(|o| o.name);
    opts.iter()
        .map(|o| {
            if o.aliases.is_empty() {
                o.name.to_string()
            } else {
                let mut aliases = o.aliases.clone();
                aliases.sort();
                format!("{} ({})", o.name, aliases.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn context_suffix(prefix: Option<&str>) -> String {
    match prefix {
        Some(p) => format!(" found in {}", p),
        None => String::new(),
    }
}

/// Validates one level (the module, or one sub-option dict). `prefix` names the parent option path.
fn validate_level(
    spec: &ModuleSpec,
    raw: &Map<String, Value>,
    prefix: Option<&str>,
    out: &mut Validated,
    errors: &mut Vec<String>,
    unsupported: &mut Vec<String>,
) -> Map<String, Value> {
    let mut params = raw.clone();

    // 1. Aliases: the alias's value moves to the option's own name.
    for opt in &spec.options {
        for alias in &opt.aliases {
            if let Some(v) = params.remove(*alias) {
                if params.contains_key(opt.name) {
                    out.warnings.push(format!(
                        "Both option {} and its alias {} are set.",
                        opt.name, alias
                    ));
                } else {
                    params.insert(opt.name.to_string(), v);
                }
            }
        }
    }
    for key in raw.keys() {
        let known = spec
            .options
            .iter()
            .any(|o| o.name == key || o.aliases.contains(&key.as_str()));
        if !known {
            unsupported.push(match prefix {
                Some(p) => format!("{}.{}", p, key),
                None => key.clone(),
            });
        }
    }

    // 2. Mutually exclusive.
    for group in &spec.mutually_exclusive {
        let set: Vec<&str> = group
            .iter()
            .copied()
            .filter(|k| is_set(&params, k))
            .collect();
        if set.len() > 1 {
            errors.push(format!(
                "parameters are mutually exclusive: {}{}",
                group.join("|"),
                context_suffix(prefix)
            ));
        }
    }

    // 3. Defaults for missing keys only (an explicit null counts as given).
    for opt in &spec.options {
        if !params.contains_key(opt.name) {
            if let Some(d) = &opt.default {
                params.insert(opt.name.to_string(), d.clone());
            }
        }
    }

    // 4. Required.
    let mut missing: Vec<&str> = spec
        .options
        .iter()
        .filter(|o| o.required && !params.contains_key(o.name))
        .map(|o| o.name)
        .collect();
    if !missing.is_empty() {
        missing.sort();
        errors.push(format!(
            "missing required arguments: {}{}",
            missing.join(", "),
            context_suffix(prefix)
        ));
    }

    // 5. Types, then list elements.
    for opt in &spec.options {
        let Some(value) = params.get(opt.name).cloned() else {
            continue;
        };
        if value.is_null() && !opt.required && opt.default.is_none() {
            continue;
        }
        match convert(opt.kind, &value) {
            Ok(v) => {
                let v = match (opt.elements, v) {
                    (Some(el), Value::Array(items)) => {
                        let mut conv = Vec::with_capacity(items.len());
                        for item in items {
                            match convert(el, &item) {
                                Ok(c) => conv.push(c),
                                Err(e) => {
                                    errors.push(format!(
                                        "Elements value for option '{}'{} is of type {} and we were unable to convert to {}: {}",
                                        opt.name,
                                        context_suffix(prefix),
                                        py_type_name(&item),
                                        el.name(),
                                        e
                                    ));
                                    conv.push(item);
                                }
                            }
                        }
                        Value::Array(conv)
                    }
                    (_, v) => v,
                };
                params.insert(opt.name.to_string(), v);
            }
            Err(e) => errors.push(format!(
                "argument '{}' is of type {}{} and we were unable to convert to {}: {}",
                opt.name,
                py_type_name(&value),
                context_suffix(prefix),
                opt.kind.name(),
                e
            )),
        }
    }

    // 6. Choices.
    for opt in &spec.options {
        if opt.choices.is_empty() {
            continue;
        }
        let Some(value) = params.get(opt.name) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let choices: Vec<String> = opt.choices.iter().map(py_str).collect();
        if let Value::Array(items) = value {
            let bad: Vec<String> = items
                .iter()
                .filter(|i| !opt.choices.contains(i))
                .map(py_str)
                .collect();
            if !bad.is_empty() {
                errors.push(format!(
                    "value of {} must be one or more of: {}. Got no match for: {}{}",
                    opt.name,
                    choices.join(", "),
                    bad.join(", "),
                    context_suffix(prefix)
                ));
            }
        } else if !opt.choices.contains(value) {
            errors.push(format!(
                "value of {} must be one of: {}, got: {}{}",
                opt.name,
                choices.join(", "),
                py_str(value),
                context_suffix(prefix)
            ));
        }
    }

    // 7. Cross-option rules.
    for group in &spec.required_together {
        let n = group.iter().filter(|k| is_set(&params, k)).count();
        if n > 0 && n < group.len() {
            errors.push(format!(
                "parameters are required together: {}{}",
                group.join(", "),
                context_suffix(prefix)
            ));
        }
    }
    for group in &spec.required_one_of {
        if !group.iter().any(|k| is_set(&params, k)) {
            errors.push(format!(
                "one of the following is required: {}{}",
                group.join(", "),
                context_suffix(prefix)
            ));
        }
    }
    for (key, value, reqs, is_one_of) in &spec.required_if {
        if params.get(*key) != Some(value) {
            continue;
        }
        let missing: Vec<&str> = reqs
            .iter()
            .copied()
            .filter(|k| !is_set(&params, k))
            .collect();
        let fails = if *is_one_of {
            missing.len() == reqs.len()
        } else {
            !missing.is_empty()
        };
        if fails {
            let kind = if *is_one_of { "any" } else { "all" };
            errors.push(format!(
                "{} is {} but {} of the following are missing: {}{}",
                key,
                py_str(value),
                kind,
                missing.join(", "),
                context_suffix(prefix)
            ));
        }
    }
    for (key, reqs) in &spec.required_by {
        if !is_set(&params, key) {
            continue;
        }
        let missing: Vec<&str> = reqs
            .iter()
            .copied()
            .filter(|k| !is_set(&params, k))
            .collect();
        if !missing.is_empty() {
            errors.push(format!(
                "missing parameter(s) required by '{}': {}{}",
                key,
                missing.join(", "),
                context_suffix(prefix)
            ));
        }
    }

    // Every option appears in the result; missing ones as null.
    for opt in &spec.options {
        params.entry(opt.name.to_string()).or_insert(Value::Null);
        if opt.no_log {
            collect_no_log(&params[opt.name], &mut out.no_log_values);
        }
    }

    // 8. Sub-options.
    for opt in &spec.options {
        let Some(sub) = &opt.options else { continue };
        let path = match prefix {
            Some(p) => format!("{}.{}", p, opt.name),
            None => opt.name.to_string(),
        };
        match params.get(opt.name).cloned() {
            Some(Value::Object(m)) => {
                let v = validate_level(sub, &m, Some(&path), out, errors, unsupported);
                params.insert(opt.name.to_string(), Value::Object(v));
            }
            Some(Value::Array(items)) => {
                let mut conv = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::Object(m) => {
                            let p = format!("{}[{}]", path, i);
                            let _ = p; // AnsibleModule names the option, not the index, in messages.
                            conv.push(Value::Object(validate_level(
                                sub,
                                &m,
                                Some(&path),
                                out,
                                errors,
                                unsupported,
                            )))
                        }
                        other => {
                            errors.push(format!(
                                "Elements value for option '{}'{} is of type {} and we were unable to convert to dict: dictionary requested, could not parse JSON or key=value",
                                opt.name,
                                context_suffix(prefix),
                                py_type_name(&other)
                            ));
                            conv.push(other);
                        }
                    }
                }
                params.insert(opt.name.to_string(), Value::Array(conv));
            }
            _ => {}
        }
    }
    params
}

fn is_set(params: &Map<String, Value>, key: &str) -> bool {
    matches!(params.get(key), Some(v) if !v.is_null())
}

fn collect_no_log(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Null | Value::Bool(_) => {}
        Value::String(s) if s.is_empty() => {}
        Value::Array(items) => items.iter().for_each(|v| collect_no_log(v, into)),
        Value::Object(m) => m.values().for_each(|v| collect_no_log(v, into)),
        other => {
            into.insert(py_str(other));
        }
    }
}

/// Converts one value to `kind`, as AnsibleModule's `check_type_*` functions do.
pub fn convert(kind: Kind, value: &Value) -> Result<Value, String> {
    match kind {
        Kind::Raw => Ok(value.clone()),
        Kind::Str => Ok(match value {
            Value::String(_) => value.clone(),
            other => Value::String(py_str(other)),
        }),
        Kind::Path => {
            let s = match value {
                Value::String(s) => s.clone(),
                other => py_str(other),
            };
            Ok(Value::String(expand_path(&s)))
        }
        Kind::Bool => to_bool(value).map(Value::Bool),
        Kind::Int => to_int(value),
        Kind::Float => to_float(value),
        Kind::List => Ok(match value {
            Value::Array(_) => value.clone(),
            Value::String(s) => {
                Value::Array(s.split(',').map(|p| Value::String(p.to_string())).collect())
            }
            Value::Number(_) => Value::Array(vec![Value::String(py_str(value))]),
            Value::Bool(_) | Value::Null | Value::Object(_) => {
                return Err(format!("{} cannot be converted to a list", py_repr(value)))
            }
        }),
        Kind::Dict => match value {
            Value::Object(_) => Ok(value.clone()),
            Value::String(s) if s.trim_start().starts_with('{') => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    "dictionary requested, could not parse JSON or key=value".to_string()
                }),
            Value::String(s) => parse_kv(s).map(Value::Object).ok_or_else(|| {
                "dictionary requested, could not parse JSON or key=value".to_string()
            }),
            other => Err(format!("{} cannot be converted to a dict", py_repr(other))),
        },
    }
}

const TRUE: [&str; 7] = ["y", "yes", "on", "1", "true", "t", "1.0"];
const FALSE: [&str; 7] = ["n", "no", "off", "0", "false", "f", "0.0"];

fn to_bool(value: &Value) -> Result<bool, String> {
    let text = match value {
        Value::Bool(b) => return Ok(*b),
        Value::String(s) => s.trim().to_lowercase(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if TRUE.contains(&text.as_str()) {
        return Ok(true);
    }
    if FALSE.contains(&text.as_str()) {
        return Ok(false);
    }
    Err(format!(
        "The value {} is not a valid boolean.  Valid booleans include: 0, 'off', 'yes', 1, 'y', 'no', 'n', 't', 'f', 'true', 'on', '0', '1.0', 'false', '1', '0.0'",
        py_repr(value)
    ))
}

fn to_int(value: &Value) -> Result<Value, String> {
    let bad = || format!("\"{}\" cannot be converted to an int", py_repr(value));
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        Value::Number(n) => {
            let f = n.as_f64().ok_or_else(bad)?;
            float_to_int(f).ok_or_else(bad)
        }
        Value::Bool(b) => Ok(Value::from(*b as i64)),
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Value::from(i));
            }
            let f: f64 = t.parse().map_err(|_| bad())?;
            float_to_int(f).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

fn float_to_int(f: f64) -> Option<Value> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then(|| Value::from(f as i64))
}

fn to_float(value: &Value) -> Result<Value, String> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match parsed.and_then(serde_json::Number::from_f64) {
        Some(n) => Ok(Value::Number(n)),
        None => Err(format!("{} cannot be converted to a float", py_repr(value))),
    }
}

/// `a=1 b=2` (or `a=1, b=2`) into a map of strings.
fn parse_kv(s: &str) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    for part in s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part.split_once('=')?;
        m.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
    }
    Some(m)
}

/// `~` and `$VAR` expansion, as `type='path'` does (`os.path.expanduser(os.path.expandvars(v))`).
fn expand_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let closed = !braced || chars.peek() == Some(&'}');
        if braced && closed {
            chars.next();
        }
        match std::env::var(&name) {
            Ok(v) if !name.is_empty() && closed => out.push_str(&v),
            _ => {
                out.push('$');
                if braced {
                    out.push('{');
                }
                out.push_str(&name);
                if braced && closed {
                    out.push('}');
                }
            }
        }
    }
    if out == "~" || out.starts_with("~/") {
        if let Ok(home) = std::env::var("HOME") {
            return format!("{}{}", home, &out[1..]);
        }
    }
    out
}
