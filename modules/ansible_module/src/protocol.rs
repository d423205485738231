//! Ansible's binary-module protocol: argv[1] names a JSON args file; `_ansible_*` keys carry the context.

use serde_json::{Map, Value};

/// What Ansible tells a module about the run, from the `_ansible_*` keys.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub check_mode: bool,
    pub diff: bool,
    pub no_log: bool,
    pub verbosity: u64,
    /// The name as the user wrote it (e.g. `gpunode.nvidia.containerd_runtime`); messages use it.
    pub module_name: Option<String>,
    pub ignore_unknown_opts: bool,
    /// `_ansible_inject_invocation` (2.21+): when false, no `invocation` key is returned.
    pub inject_invocation: bool,
    pub tmpdir: Option<String>,
}

/// Splits the args object into the module's own arguments and the context. Unknown `_ansible_*` keys are
/// ignored: their set changes between ansible-core versions.
pub fn split_args(args: Map<String, Value>) -> (Map<String, Value>, Context) {
    let mut ctx = Context {
        inject_invocation: true,
        ..Context::default()
    };
    let mut own = Map::new();
    for (key, value) in args {
        let Some(internal) = key.strip_prefix("_ansible_") else {
            own.insert(key, value);
            continue;
        };
        let flag = matches!(value, Value::Bool(true));
        match internal {
            "check_mode" => ctx.check_mode = flag,
            "diff" => ctx.diff = flag,
            "no_log" => ctx.no_log = flag,
            "verbosity" => ctx.verbosity = value.as_u64().unwrap_or(0),
            "module_name" => ctx.module_name = value.as_str().map(String::from),
            "ignore_unknown_opts" => ctx.ignore_unknown_opts = flag,
            "inject_invocation" => ctx.inject_invocation = !matches!(value, Value::Bool(false)),
            "tmpdir" => ctx.tmpdir = value.as_str().map(String::from),
            _ => {}
        }
    }
    (own, ctx)
}

/// Reads and parses the args file. Errors are messages for the user.
pub fn read_args_file(path: Option<&str>) -> Result<Map<String, Value>, String> {
    let path =
        path.ok_or("missing the arguments file: a binary module is run as `MODULE ARGS_FILE`")?;
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the arguments file {}: {}", path, e))?;
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "the arguments file {} must hold a JSON object, not {}",
            path,
            crate::pyfmt::py_type_name(&other)
        )),
        Err(e) => Err(format!(
            "the arguments file {} is not valid JSON: {}",
            path, e
        )),
    }
}
