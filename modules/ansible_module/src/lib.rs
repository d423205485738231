//! What every module of this project shares: Ansible's binary-module protocol, an argument spec declared as
//! data and validated as `AnsibleModule` validates it, results with no_log masking, safe file writes,
//! external commands run without a shell. (What the modules know about a node lives in `node_facts`.)
//!
//! A module's `main` is one line:
//!
//! ```no_run
//! use ansible_module::{Module, ModuleSpec, Opt, Response};
//! fn spec() -> ModuleSpec { ModuleSpec::new(vec![Opt::str("name").required()]).supports_check_mode() }
//! fn run(m: &mut Module) -> anyhow::Result<Response> { Ok(Response::new(false).msg(m.str("name").unwrap_or("")) ) }
//! fn main() { ansible_module::main("example", spec(), run) }
//! ```

pub mod arguments;
pub mod choice;
pub mod convert;
pub mod process;
pub mod protocol;
pub mod pyfmt;
pub mod pyliteral;
pub mod response;
pub mod safe_file;
pub mod spec;

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub use choice::Choice;
pub use protocol::Context;
pub use response::{Diff, Response};
pub use spec::{Kind, ModuleSpec, Opt};

/// A module's validated parameters and its run context, handed to the module's `run` function.
#[derive(Debug)]
pub struct Module {
    pub name: String,
    pub params: Map<String, Value>,
    pub ctx: Context,
    pub warnings: Vec<String>,
    no_log_values: BTreeSet<String>,
}

impl Module {
    /// Builds a module from an args object the way the binary does: split context, validate.
    /// `Err` is the failure message (validation errors included).
    pub fn from_args(
        default_name: &str,
        spec: &ModuleSpec,
        args: Map<String, Value>,
    ) -> Result<Module, String> {
        match Module::prepare(default_name, spec, args) {
            (m, None) => Ok(m),
            (_, Some(msg)) => Err(msg),
        }
    }

    /// Like `from_args`, but always returns the module (its parameters as far as validation got, for a
    /// failure's `invocation`) together with the validation error, if any.
    pub fn prepare(
        default_name: &str,
        spec: &ModuleSpec,
        args: Map<String, Value>,
    ) -> (Module, Option<String>) {
        let (own, ctx) = protocol::split_args(args);
        let name = ctx
            .module_name
            .clone()
            .unwrap_or_else(|| default_name.to_string());
        let outcome = arguments::check(spec, &own);
        let error = outcome.first_error(&name, ctx.ignore_unknown_opts);
        let module = Module {
            name,
            params: outcome.params,
            ctx,
            warnings: outcome.warnings,
            no_log_values: outcome.no_log_values,
        };
        remember_secrets(&module.no_log_values);
        (module, error)
    }

    pub fn check_mode(&self) -> bool {
        self.ctx.check_mode
    }
    pub fn diff_mode(&self) -> bool {
        self.ctx.diff
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.params.get(key).filter(|v| !v.is_null())
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }
    /// A string parameter whose spec has a default: validation has filled it in, so the default lives in the
    /// spec alone. An error (never expected) names a spec that lacks the default.
    pub fn given_str(&self, key: &str) -> anyhow::Result<&str> {
        self.str(key).ok_or_else(|| {
            anyhow::anyhow!(
                "parameter {} has no value (its spec default is missing)",
                key
            )
        })
    }
    /// A choice parameter (a string whose spec's choices are [`Choice::names`]) as its enum. Validation has
    /// checked the word against the same list and filled in the spec's default, so an error (never expected)
    /// means the option has no default or its spec lists other words than the enum.
    pub fn choice<C: Choice>(&self, key: &str) -> anyhow::Result<C> {
        choice::parse(key, self.given_str(key)?)
    }
    /// [`Module::given_str`] for an integer parameter.
    pub fn given_int(&self, key: &str) -> anyhow::Result<i64> {
        self.int(key).ok_or_else(|| {
            anyhow::anyhow!(
                "parameter {} has no value (its spec default is missing)",
                key
            )
        })
    }
    pub fn float(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }
    /// A list of strings (elements converted by the spec); missing is empty.
    pub fn str_list(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| pyfmt::py_str(v))
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    /// A list of dicts (validated sub-options); missing is empty.
    pub fn dict_list(&self, key: &str) -> Vec<Map<String, Value>> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_object().cloned())
                .collect(),
            _ => Vec::new(),
        }
    }
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(msg.into());
    }
    /// Adds a value to mask in the result (a secret the module learned while running).
    pub fn add_no_log_value(&mut self, value: impl Into<String>) {
        let v = value.into();
        if !v.is_empty() {
            remember_secrets(&BTreeSet::from([v.clone()]));
            self.no_log_values.insert(v);
        }
    }

    /// The final JSON object: the response plus warnings gathered on the way and the masked invocation.
    pub fn finish(&self, mut response: Response) -> Value {
        let mut warnings = self.warnings.clone();
        warnings.append(&mut response.warnings);
        response.warnings = warnings;
        let invocation = self
            .ctx
            .inject_invocation
            .then(|| serde_json::json!({ "module_args": Value::Object(self.params.clone()) }));
        let mut out = response.to_json(self.ctx.diff, invocation);
        response::mask(&mut out, &self.no_log_values);
        out
    }
}

/// The secrets known so far, for the panic hook: a panic message may quote a parameter.
static PANIC_SECRETS: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());

fn remember_secrets(values: &BTreeSet<String>) {
    if let Ok(mut known) = PANIC_SECRETS.lock() {
        known.extend(values.iter().cloned());
    }
}

/// Installs a panic hook that still answers Ansible with one JSON failure (secrets masked), then exits 1.
pub fn install_panic_hook(module_name: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = format!("{} module crashed: {}{}", module_name, what, place);
        let mut out = serde_json::json!({ "failed": true, "msg": msg });
        // try_lock: the panic may have happened while the lock was held.
        if let Ok(secrets) = PANIC_SECRETS.try_lock() {
            response::mask(&mut out, &secrets);
        }
        response::print(&out);
        std::process::exit(1);
    }));
}

/// `MODULE --argument-spec` prints the module's argument spec as AnsibleModule's `argument_spec` in JSON
/// (Ansible always passes a file path, never this).
pub const ARGUMENT_SPEC_FLAG: &str = "--argument-spec";

/// Runs a whole module: read the args file named by argv[1], validate, call `run`, print one JSON object and
/// exit 0 (or 1 when failed). `run` errors become `failed: true` with the error chain as `msg`.
pub fn main(
    default_name: &'static str,
    spec: ModuleSpec,
    run: fn(&mut Module) -> anyhow::Result<Response>,
) -> ! {
    install_panic_hook(default_name);
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some(ARGUMENT_SPEC_FLAG) {
        // The spec the executable really validates with, for checking its sidecar docs against.
        response::print(&spec.argument_spec());
        std::process::exit(0)
    }
    let out = execute(default_name, &spec, arg.as_deref(), run);
    let failed = out.get("failed").and_then(Value::as_bool).unwrap_or(false);
    response::print(&out);
    std::process::exit(if failed { 1 } else { 0 })
}

/// The whole module run, from the args file's path to the JSON object, without printing: what tests call.
pub fn execute(
    default_name: &str,
    spec: &ModuleSpec,
    args_path: Option<&str>,
    run: fn(&mut Module) -> anyhow::Result<Response>,
) -> Value {
    let args = match protocol::read_args_file(args_path) {
        Ok(a) => a,
        Err(msg) => return Response::failure(msg).to_json(false, None),
    };
    execute_args(default_name, spec, args, run)
}

/// Like `execute`, from an args object already in memory.
pub fn execute_args(
    default_name: &str,
    spec: &ModuleSpec,
    args: Map<String, Value>,
    run: fn(&mut Module) -> anyhow::Result<Response>,
) -> Value {
    // Validation errors fail even in check mode; the result still carries the masked invocation.
    let (mut module, error) = Module::prepare(default_name, spec, args);
    if let Some(msg) = error {
        return module.finish(Response::failure(msg));
    }
    if module.check_mode() && !spec.supports_check_mode {
        let mut r = Response::new(false).msg(format!(
            "remote module ({}) does not support check mode",
            module.name
        ));
        r.skipped = true;
        return module.finish(r);
    }
    let response = match run(&mut module) {
        Ok(r) => r,
        Err(e) => Response::failure(format!("{:#}", e)),
    };
    module.finish(response)
}
