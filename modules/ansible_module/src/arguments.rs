//! A module's arguments checked against its argument spec (what AnsibleModule calls validation), in
//! ansible-core 2.19's order (`ArgumentSpecValidator.validate`), with its messages.
//!
//! Every check runs and records its errors; the first error is what the user sees. Per level (the module,
//! then each sub-option dict): aliases, no_log values, unknown parameters, mutually exclusive, defaults,
//! required, types (then list elements), choices, required_together/one_of/if/by, defaults for the rest
//! (null), then sub-options. Unknown parameters are reported last, after every other error.
//!
//! Like AnsibleModule, the validated parameters keep what the user gave under an alias and (with
//! `_ansible_ignore_unknown_opts`) unknown keys; `invocation.module_args` shows them.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub use crate::convert::convert;
use crate::convert::to_dict;
use crate::pyfmt::{py_eq, py_in, py_str, py_type_name};
use crate::spec::{Kind, ModuleSpec, Opt};

/// Everything validation found, errors included: what a failed module still reports (its masked
/// `invocation`) comes from here too.
#[derive(Debug, Default)]
pub struct Outcome {
    pub params: Map<String, Value>,
    pub warnings: Vec<String>,
    pub no_log_values: BTreeSet<String>,
    /// Errors in the order found (unknown parameters not included).
    pub errors: Vec<String>,
    /// Unknown parameters, `parent.child` for sub-options, sorted and unique.
    pub unsupported: Vec<String>,
    /// `backup, name, path, state (dest, runtime_name)` for the level of the first unknown parameter.
    pub supported: String,
}

impl Outcome {
    /// The message a failed validation returns, or `None` when the parameters are valid.
    pub fn first_error(&self, module_name: &str, ignore_unknown: bool) -> Option<String> {
        if let Some(e) = self.errors.first() {
            return Some(e.clone());
        }
        (!self.unsupported.is_empty() && !ignore_unknown).then(|| {
            format!(
                "Unsupported parameters for ({}) module: {}. Supported parameters include: {}.",
                module_name,
                self.unsupported.join(", "),
                self.supported
            )
        })
    }
}

/// Checks `raw` (the module's own arguments, `_ansible_*` keys removed) against `spec`: runs every check and
/// returns all it found, the converted parameters and the errors ([`Outcome::first_error`] is what the user sees).
pub fn check(spec: &ModuleSpec, raw: &Map<String, Value>) -> Outcome {
    let mut st = State::default();
    let mut params = raw.clone();
    let top_warnings = check_level(spec, &mut params, &[], "", &mut st);
    let mut unsupported: Vec<String> = st.unsupported.iter().map(|(n, _)| n.clone()).collect();
    unsupported.sort();
    unsupported.dedup();
    // Python names the supported options of one level only (the last unknown one it iterates, in hash
    // order); we name the level of the first one found.
    let supported = st
        .unsupported
        .first()
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let mut warnings = st.nested_warnings;
    warnings.extend(top_warnings);
    Outcome {
        params,
        warnings,
        no_log_values: st.no_log,
        errors: st.errors,
        unsupported,
        supported,
    }
}

#[derive(Default)]
struct State {
    errors: Vec<String>,
    /// (flattened name, supported list of its level)
    unsupported: Vec<(String, String)>,
    no_log: BTreeSet<String>,
    /// Alias warnings of sub-options go out at once in Python; the module level's come after them.
    nested_warnings: Vec<String>,
}

/// `found in a -> b`, the suffix most messages take in sub-options.
fn found_in(ctx: &[String]) -> String {
    if ctx.is_empty() {
        String::new()
    } else {
        format!(" found in {}", ctx.join(" -> "))
    }
}

/// `found in 'a -> b'.`: the quoted form the type messages use.
fn found_in_quoted(ctx: &[String], period: bool) -> String {
    if ctx.is_empty() {
        String::new()
    } else {
        format!(
            " found in '{}'{}",
            ctx.join(" -> "),
            if period { "." } else { "" }
        )
    }
}

fn has_sub_spec(opt: &Opt) -> bool {
    opt.options.is_some()
        && (opt.kind == Kind::Dict || (opt.kind == Kind::List && opt.elements == Some(Kind::Dict)))
}

/// Validates one level in place. `ctx` names the parent options; `prefix` is the warning prefix
/// (`items[0].`). Returns this level's alias warnings (the caller decides when they go out).
fn check_level(
    spec: &ModuleSpec,
    params: &mut Map<String, Value>,
    ctx: &[String],
    prefix: &str,
    st: &mut State,
) -> Vec<String> {
    // Aliases: the alias's value is copied to the option (it wins over the option's own value).
    let mut warnings = Vec::new();
    for opt in &spec.options {
        if opt.required && opt.default.as_ref().is_some_and(|d| !d.is_null()) {
            st.errors.push(format!(
                "internal error: required and default are mutually exclusive for {}",
                opt.name
            ));
        }
        for alias in &opt.aliases {
            if let Some(v) = params.get(*alias).cloned() {
                if params.contains_key(opt.name) {
                    warnings.push(format!(
                        "Both option {p}{} and its alias {p}{} are set.",
                        opt.name,
                        alias,
                        p = prefix
                    ));
                }
                params.insert(opt.name.to_string(), v);
            }
        }
    }

    let (values, error) = list_no_log_values(spec, params);
    st.no_log.extend(values);
    if let Some(e) = error {
        st.errors.push(e);
    }

    // Unknown parameters.
    let known = |k: &str| {
        spec.options
            .iter()
            .any(|o| o.name == k || o.aliases.contains(&k))
    };
    let unknown: Vec<String> = params.keys().filter(|k| !known(k)).cloned().collect();
    if !unknown.is_empty() {
        let supported = supported_list(spec);
        for k in unknown {
            let name = ctx
                .iter()
                .cloned()
                .chain(std::iter::once(k))
                .collect::<Vec<_>>()
                .join(".");
            st.unsupported.push((name, supported.clone()));
        }
    }

    // Mutually exclusive: a key counts when present, even as null.
    let present = |p: &Map<String, Value>, k: &str| p.contains_key(k);
    let exclusive: Vec<String> = spec
        .mutually_exclusive
        .iter()
        .filter(|g| g.iter().filter(|k| present(params, k)).count() > 1)
        .map(|g| g.join("|"))
        .collect();
    if !exclusive.is_empty() {
        st.errors.push(format!(
            "parameters are mutually exclusive: {}{}",
            exclusive.join(", "),
            found_in(ctx)
        ));
    }

    set_defaults(spec, params, false, st);

    let mut missing: Vec<&str> = spec
        .options
        .iter()
        .filter(|o| o.required && !params.contains_key(o.name))
        .map(|o| o.name)
        .collect();
    if !missing.is_empty() {
        missing.sort();
        st.errors.push(format!(
            "missing required arguments: {}{}",
            missing.join(", "),
            found_in(ctx)
        ));
    }

    for opt in &spec.options {
        convert_option(opt, params, ctx, st);
    }
    for opt in &spec.options {
        check_choices(opt, params, ctx, st);
    }
    check_rules(spec, params, ctx, st);

    set_defaults(spec, params, true, st);

    for opt in spec.options.iter().filter(|o| has_sub_spec(o)) {
        let sub = opt.options.as_deref().expect("has_sub_spec");
        let value = params.get(opt.name).cloned().unwrap_or(Value::Null);
        let value = match value {
            Value::Null if opt.apply_defaults => Value::Object(Map::new()),
            Value::Null => continue,
            v => v,
        };
        let mut sub_ctx = ctx.to_vec();
        sub_ctx.push(opt.name.to_string());
        let was_list = value.is_array();
        let mut elements = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for (idx, element) in elements.iter_mut().enumerate() {
            let Value::Object(sub_params) = element else {
                st.errors.push(format!(
                    "value of '{}' must be of type dict or list of dicts",
                    opt.name
                ));
                continue;
            };
            let sub_prefix = if opt.kind == Kind::List {
                format!("{}{}[{}].", prefix, opt.name, idx)
            } else {
                format!("{}{}.", prefix, opt.name)
            };
            let w = check_level(sub, sub_params, &sub_ctx, &sub_prefix, st);
            st.nested_warnings.extend(w);
        }
        let value = if was_list {
            Value::Array(elements)
        } else {
            elements.pop().unwrap_or(Value::Null)
        };
        params.insert(opt.name.to_string(), value);
    }
    warnings
}

/// `name, other (alias1, alias2)`: this level's option names, then all its aliases, each sorted.
fn supported_list(spec: &ModuleSpec) -> String {
    let mut names: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
    names.sort();
    let mut aliases: Vec<&str> = spec
        .options
        .iter()
        .flat_map(|o| o.aliases.iter().copied())
        .collect();
    aliases.sort();
    let mut s = names.join(", ");
    if !aliases.is_empty() {
        s.push_str(&format!(" ({})", aliases.join(", ")));
    }
    s
}

/// Defaults for missing keys: only real defaults first (`all == false`), then null for every other
/// missing option. A no_log option's default is a secret too.
fn set_defaults(spec: &ModuleSpec, params: &mut Map<String, Value>, all: bool, st: &mut State) {
    for opt in &spec.options {
        if params.contains_key(opt.name) {
            continue;
        }
        let default = opt.default.clone().unwrap_or(Value::Null);
        if default.is_null() && !all {
            continue;
        }
        if opt.no_log && truthy(&default) {
            st.no_log.insert(py_str(&default));
        }
        params.insert(opt.name.to_string(), default);
    }
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// The values of no_log options at this level and, through sub-options, below it. Python gives up on the
/// first sub-option value that is not a dict (that is its error); we report the same error but keep every
/// secret found, so that nothing leaks into the failure's output.
fn list_no_log_values(
    spec: &ModuleSpec,
    params: &Map<String, Value>,
) -> (BTreeSet<String>, Option<String>) {
    let mut values = BTreeSet::new();
    let mut error = None;
    for opt in &spec.options {
        let value = params.get(opt.name).unwrap_or(&Value::Null);
        if opt.no_log && truthy(value) {
            collect_secrets(value, &mut values);
        }
        if !has_sub_spec(opt) || value.is_null() {
            continue;
        }
        let sub = opt.options.as_deref().expect("has_sub_spec");
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            let parsed;
            let map = match item {
                Value::Object(m) => m,
                Value::String(_) => match to_dict(item) {
                    Ok(m) => {
                        parsed = m;
                        &parsed
                    }
                    // Python gives the bare message; for a list of dicts we name the option and the value,
                    // since "dictionary requested" alone does not say where (a dict option keeps Python's text).
                    Err(e) if opt.kind == Kind::List => {
                        error.get_or_insert(format!(
                            "Value '{}' in the sub parameter field '{}' must be a dict (or a JSON or key=value \
                             string): {}",
                            py_str(item),
                            opt.name,
                            e
                        ));
                        continue;
                    }
                    Err(e) => {
                        error.get_or_insert(e);
                        continue;
                    }
                },
                other => {
                    error.get_or_insert(format!(
                        "Value '{}' in the sub parameter field '{}' must be a {}, not '{}'",
                        py_str(other),
                        opt.name,
                        opt.kind.name(),
                        py_type_name(other)
                    ));
                    continue;
                }
            };
            let (v, e) = list_no_log_values(sub, map);
            values.extend(v);
            if let Some(e) = e {
                error.get_or_insert(e);
            }
        }
    }
    (values, error)
}

/// Every scalar inside a secret value, as text (booleans, nulls and empty strings are not secrets).
fn collect_secrets(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Null | Value::Bool(_) => {}
        Value::String(s) if s.is_empty() => {}
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, into)),
        Value::Object(m) => m.values().for_each(|v| collect_secrets(v, into)),
        other => {
            into.insert(py_str(other));
        }
    }
}

/// Type conversion of one option, then of its list elements.
fn convert_option(opt: &Opt, params: &mut Map<String, Value>, ctx: &[String], st: &mut State) {
    let Some(value) = params.get(opt.name).cloned() else {
        return;
    };
    if value.is_null() && !opt.required && opt.default.as_ref().map_or(true, Value::is_null) {
        return;
    }
    let converted = match convert(opt.kind, &value) {
        Ok(v) => v,
        Err(e) => {
            st.errors.push(format!(
                "argument '{}' is of type {}{} and we were unable to convert to {}: {}",
                opt.name,
                py_type_name(&value),
                found_in_quoted(ctx, true),
                opt.kind.name(),
                e
            ));
            return;
        }
    };
    let Some(el) = opt.elements else {
        params.insert(opt.name.to_string(), converted);
        return;
    };
    let items = match &converted {
        Value::Array(items) => items.clone(),
        other => {
            st.errors.push(format!(
                "Invalid type {} for option '{}'{}, elements value check is supported only with 'list' type",
                opt.kind.name(),
                py_str(other),
                found_in_quoted(ctx, true)
            ));
            // Python then iterates the value anyway: a string by characters, a dict by keys.
            match other {
                Value::String(s) => s.chars().map(|c| Value::String(c.into())).collect(),
                Value::Object(m) => m.keys().map(|k| Value::String(k.clone())).collect(),
                scalar => {
                    st.errors.push(format!(
                        "argument '{}' is of type {}{} and we were unable to convert to {}: '{}' object is not iterable",
                        opt.name,
                        py_type_name(&value),
                        found_in_quoted(ctx, true),
                        opt.kind.name(),
                        py_type_name(scalar)
                    ));
                    params.insert(opt.name.to_string(), converted);
                    return;
                }
            }
        }
    };
    // Elements that fail are left out of the list (and reported).
    let mut good = Vec::with_capacity(items.len());
    for item in items {
        match convert(el, &item) {
            Ok(c) => good.push(c),
            Err(e) => st.errors.push(format!(
                "Elements value for option '{}'{} is of type {} and we were unable to convert to {}: {}",
                opt.name,
                found_in_quoted(ctx, false),
                py_type_name(&item),
                el.name(),
                e
            )),
        }
    }
    params.insert(opt.name.to_string(), Value::Array(good));
}

const BOOL_FALSE: [&str; 6] = ["n", "no", "off", "0", "false", "f"];
const BOOL_TRUE: [&str; 6] = ["y", "yes", "on", "1", "true", "t"];

fn check_choices(opt: &Opt, params: &mut Map<String, Value>, ctx: &[String], st: &mut State) {
    if opt.choices.is_empty() {
        return;
    }
    let Some(value) = params.get(opt.name).cloned() else {
        return;
    };
    let choices = opt
        .choices
        .iter()
        .map(py_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Value::Array(items) = &value {
        let bad: Vec<String> = items
            .iter()
            .filter(|i| !py_in(i, &opt.choices))
            .map(py_str)
            .collect();
        if !bad.is_empty() {
            st.errors.push(format!(
                "value of {} must be one or more of: {}. Got no match for: {}{}",
                opt.name,
                choices,
                bad.join(", "),
                found_in(ctx)
            ));
        }
        return;
    }
    if py_in(&value, &opt.choices) {
        return;
    }
    // YAML may have turned `no` into False and then into 'False': map it back when unambiguous.
    let mut value = value;
    for (word, set) in [("False", &BOOL_FALSE[..]), ("True", &BOOL_TRUE[..])] {
        if value.as_str() != Some(word) {
            continue;
        }
        let truth = Value::Bool(word == "True");
        let mut overlap: Vec<&Value> = Vec::new();
        for c in &opt.choices {
            let matches = py_eq(c, &truth) || c.as_str().is_some_and(|s| set.contains(&s));
            if matches && !overlap.iter().any(|o| py_eq(o, c)) {
                overlap.push(c);
            }
        }
        if overlap.len() == 1 {
            value = overlap[0].clone();
            params.insert(opt.name.to_string(), value.clone());
        }
    }
    if !py_in(&value, &opt.choices) {
        st.errors.push(format!(
            "value of {} must be one of: {}, got: {}{}",
            opt.name,
            choices,
            py_str(&value),
            found_in(ctx)
        ));
    }
}

/// required_together, required_one_of, required_if, required_by: each reports its first failing rule.
fn check_rules(spec: &ModuleSpec, params: &Map<String, Value>, ctx: &[String], st: &mut State) {
    let present = |k: &str| params.contains_key(k);
    let set = |k: &str| params.get(k).is_some_and(|v| !v.is_null());

    if let Some(g) = spec.required_together.iter().find(|g| {
        let n = g.iter().filter(|k| present(k)).count();
        n > 0 && n < g.len()
    }) {
        st.errors.push(format!(
            "parameters are required together: {}{}",
            g.join(", "),
            found_in(ctx)
        ));
    }
    if let Some(g) = spec
        .required_one_of
        .iter()
        .find(|g| !g.iter().any(|k| present(k)))
    {
        st.errors.push(format!(
            "one of the following is required: {}{}",
            g.join(", "),
            found_in(ctx)
        ));
    }
    for (key, value, reqs, is_one_of) in &spec.required_if {
        if !params.get(*key).is_some_and(|v| py_eq(v, value)) {
            continue;
        }
        let missing: Vec<&str> = reqs.iter().copied().filter(|k| !present(k)).collect();
        let limit = if *is_one_of { reqs.len() } else { 0 };
        if !missing.is_empty() && missing.len() >= limit {
            st.errors.push(format!(
                "{} is {} but {} of the following are missing: {}{}",
                key,
                py_str(value),
                if *is_one_of { "any" } else { "all" },
                missing.join(", "),
                found_in(ctx)
            ));
            break;
        }
    }
    for (key, reqs) in &spec.required_by {
        if !set(key) {
            continue;
        }
        let missing: Vec<&str> = reqs.iter().copied().filter(|k| !set(k)).collect();
        if !missing.is_empty() {
            st.errors.push(format!(
                "missing parameter(s) required by '{}': {}{}",
                key,
                missing.join(", "),
                found_in(ctx)
            ));
            break;
        }
    }
}
