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
        // AnsibleModule reads its flags with `boolean()`: "yes", 1 and true are all true.
        let flag = match &value {
            Value::Bool(b) => *b,
            Value::String(t) => matches!(
                t.trim().to_lowercase().as_str(),
                "y" | "yes" | "on" | "1" | "true" | "t"
            ),
            Value::Number(n) => n.as_f64() == Some(1.0),
            _ => false,
        };
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
        Ok(Value::Object(map)) => match find_big_int(&text) {
            // serde_json would silently turn such an integer into an inexact float.
            Some((at, literal)) => Err(format!(
                "argument '{}' holds the integer {}, which is beyond 64 bits: this module takes integers \
                 from {} to {} (quote the value to pass it as a string)",
                at,
                literal,
                i64::MIN,
                u64::MAX
            )),
            None => Ok(map),
        },
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

/// One step of a path into the JSON document.
enum Seg {
    Obj { key: String, expect_key: bool },
    Arr(usize),
}

/// The first integer literal in a valid JSON text that fits neither i64 nor u64: `(where, literal)`, where
/// `where` reads like `sub.items[2]`.
pub fn find_big_int(text: &[u8]) -> Option<(String, String)> {
    let mut stack: Vec<Seg> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'{' => stack.push(Seg::Obj {
                key: String::new(),
                expect_key: true,
            }),
            b'[' => stack.push(Seg::Arr(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Seg::Obj { expect_key, .. }) => *expect_key = true,
                Some(Seg::Arr(n)) => *n += 1,
                None => {}
            },
            b':' => {
                if let Some(Seg::Obj { expect_key, .. }) = stack.last_mut() {
                    *expect_key = false;
                }
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Seg::Obj {
                    key,
                    expect_key: true,
                }) = stack.last_mut()
                {
                    *key = serde_json::from_slice::<String>(&text[start..=i.min(text.len() - 1)])
                        .unwrap_or_default();
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < text.len()
                    && matches!(text[i + 1], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let lit = String::from_utf8_lossy(&text[start..=i]).into_owned();
                let integral = !lit.contains(['.', 'e', 'E']);
                if integral && lit.parse::<i64>().is_err() && lit.parse::<u64>().is_err() {
                    return Some((path_of(&stack), lit));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn path_of(stack: &[Seg]) -> String {
    let mut out = String::new();
    for seg in stack {
        match seg {
            Seg::Obj { key, .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Arr(n) => out.push_str(&format!("[{}]", n)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integers_are_found_with_their_place() {
        let text =
            br#"{"a": "99999999999999999999", "b": 18446744073709551615, "c": -9223372036854775808,
                        "sub": {"items": [1, 2, 123456789012345678901234567890]}}"#;
        assert_eq!(
            find_big_int(text),
            Some((
                "sub.items[2]".into(),
                "123456789012345678901234567890".into()
            ))
        );
        assert_eq!(find_big_int(br#"{"x": 1.5e300, "y": [-1, 2]}"#), None);
    }

    #[test]
    fn a_big_integer_in_the_args_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("args");
        std::fs::write(&path, br#"{"count": 123456789012345678901234567890}"#).unwrap();
        let err = read_args_file(path.to_str()).unwrap_err();
        assert!(err.starts_with("argument 'count' holds the integer 123456789012345678901234567890, which is beyond 64 bits"), "{}", err);
    }
}
