//! Test-only: validates argument sets against argument specs written as AnsibleModule takes them, and prints
//! what our library answers, so `tests/ansible/conformance.py` can compare it with Python's AnsibleModule.
//!
//! stdin: a JSON list of cases, each `{"spec": {"argument_spec": {...}, "mutually_exclusive": [...],
//! "required_together": [...], "required_one_of": [...], "required_if": [...], "required_by": {...},
//! "supports_check_mode": bool}, "args": {...}, "changed": bool}`.
//! stdout: a JSON list with one module result per case (what the module would print).

use std::cell::Cell;
use std::io::Read;

use ansible_module::{Kind, Module, ModuleSpec, Opt, Response};
use serde_json::{Map, Value};

thread_local! {
    /// What the probe's `run` reports as `changed` for the current case.
    static CHANGED: Cell<bool> = const { Cell::new(false) };
}

fn main() {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .expect("read stdin");
    let cases: Vec<Value> = serde_json::from_str(&input).expect("stdin holds a JSON list");
    let results: Vec<Value> = cases.iter().map(run_case).collect();
    println!("{}", Value::Array(results));
}

fn run_case(case: &Value) -> Value {
    let spec = match module_spec(&case["spec"]) {
        Ok(s) => s,
        Err(e) => return serde_json::json!({ "probe_error": e }),
    };
    CHANGED.with(|c| c.set(case["changed"].as_bool().unwrap_or(false)));
    let args = case["args"].as_object().cloned().unwrap_or_default();
    ansible_module::execute_args("probe", &spec, args, run)
}

fn run(_m: &mut Module) -> anyhow::Result<Response> {
    Ok(Response::new(CHANGED.with(Cell::get)))
}

/// Our spec's names are `&'static str`: a test binary may leak the few strings it reads.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn names(v: &Value) -> Vec<&'static str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(leak).collect())
        .unwrap_or_default()
}

fn kind(name: Option<&str>) -> Result<Kind, String> {
    Ok(match name.unwrap_or("str") {
        "str" => Kind::Str,
        "bool" => Kind::Bool,
        "int" => Kind::Int,
        "float" => Kind::Float,
        "list" => Kind::List,
        "dict" => Kind::Dict,
        "path" => Kind::Path,
        "raw" => Kind::Raw,
        other => return Err(format!("type {} is not supported", other)),
    })
}

/// The module-level keys, or an option's own rule keys for its sub-options.
fn module_spec(v: &Value) -> Result<ModuleSpec, String> {
    let empty = Map::new();
    let options = v["argument_spec"].as_object().unwrap_or(&empty);
    rules(v, ModuleSpec::new(opts(options)?))
}

fn rules(v: &Value, mut spec: ModuleSpec) -> Result<ModuleSpec, String> {
    for g in v["mutually_exclusive"].as_array().into_iter().flatten() {
        spec = spec.mutually_exclusive(&names(g));
    }
    for g in v["required_together"].as_array().into_iter().flatten() {
        spec = spec.required_together(&names(g));
    }
    for g in v["required_one_of"].as_array().into_iter().flatten() {
        spec = spec.required_one_of(&names(g));
    }
    for r in v["required_if"].as_array().into_iter().flatten() {
        let key = r[0].as_str().ok_or("required_if key")?;
        let one_of = r.get(3).and_then(Value::as_bool).unwrap_or(false);
        spec = spec.required_if(leak(key), r[1].clone(), &names(&r[2]), one_of);
    }
    for (k, reqs) in v["required_by"].as_object().into_iter().flatten() {
        let reqs = match reqs {
            Value::String(s) => vec![leak(s)],
            other => names(other),
        };
        spec = spec.required_by(leak(k), &reqs);
    }
    if v["supports_check_mode"].as_bool() == Some(true) {
        spec = spec.supports_check_mode();
    }
    Ok(spec)
}

fn opts(options: &Map<String, Value>) -> Result<Vec<Opt>, String> {
    let mut out = Vec::new();
    for (name, o) in options {
        let mut opt = Opt::new(leak(name), kind(o["type"].as_str())?);
        if let Some(el) = o.get("elements") {
            opt.elements = Some(kind(el.as_str())?);
        }
        if o["required"].as_bool() == Some(true) {
            opt = opt.required();
        }
        if let Some(d) = o.get("default") {
            opt = opt.default(d.clone());
        }
        if let Some(c) = o["choices"].as_array() {
            opt = opt.choices(c);
        }
        opt = opt.aliases(&names(&o["aliases"]));
        if o["no_log"].as_bool() == Some(true) {
            opt = opt.no_log();
        }
        if o["apply_defaults"].as_bool() == Some(true) {
            opt = opt.apply_defaults();
        }
        if let Some(sub) = o["options"].as_object() {
            opt = opt.suboptions(rules(o, ModuleSpec::new(opts(sub)?))?);
        }
        out.push(opt);
    }
    Ok(out)
}
