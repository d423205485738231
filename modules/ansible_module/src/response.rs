//! What a module returns: one JSON object with `changed`, `failed`, `msg`, `diff`, `warnings`, facts and data,
//! masked for secrets before it is printed.

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::{Map, Value};

/// One file's (or one object's) before/after for diff mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub before: String,
    pub after: String,
    pub before_header: String,
    pub after_header: String,
}

impl Diff {
    /// A diff of one file; the headers name it.
    pub fn file(path: &str, before: impl Into<String>, after: impl Into<String>) -> Diff {
        Diff {
            before: before.into(),
            after: after.into(),
            before_header: format!("{} (before)", path),
            after_header: format!("{} (after)", path),
        }
    }

    fn to_json(&self) -> Value {
        serde_json::json!({
            "before": self.before,
            "after": self.after,
            "before_header": self.before_header,
            "after_header": self.after_header,
        })
    }
}

/// A module's answer. Build it, then return it from the module's `run` function.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    pub diffs: Vec<Diff>,
    pub warnings: Vec<String>,
    pub facts: Map<String, Value>,
    /// Module-specific keys, in insertion order.
    pub data: Map<String, Value>,
}

impl Response {
    pub fn new(changed: bool) -> Response {
        Response {
            changed,
            ..Response::default()
        }
    }
    pub fn failure(msg: impl Into<String>) -> Response {
        Response {
            failed: true,
            msg: Some(msg.into()),
            ..Response::default()
        }
    }
    pub fn msg(mut self, msg: impl Into<String>) -> Response {
        self.msg = Some(msg.into());
        self
    }
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Response {
        self.data.insert(key.to_string(), value.into());
        self
    }
    pub fn fact(mut self, key: &str, value: impl Into<Value>) -> Response {
        self.facts.insert(key.to_string(), value.into());
        self
    }
    pub fn diff(mut self, diff: Diff) -> Response {
        self.diffs.push(diff);
        self
    }
    pub fn warn(mut self, warning: impl Into<String>) -> Response {
        self.warnings.push(warning.into());
        self
    }

    /// The JSON object Ansible reads. `diff` only goes out when diff mode asked for it.
    pub fn to_json(&self, diff_mode: bool, invocation: Option<Value>) -> Value {
        let mut out = Map::new();
        // Like fail_json and a skip, a failure or skip says nothing about `changed` unless something changed.
        if self.changed || !(self.failed || self.skipped) {
            out.insert("changed".into(), Value::Bool(self.changed));
        }
        if self.failed {
            out.insert("failed".into(), Value::Bool(true));
        }
        if self.skipped {
            out.insert("skipped".into(), Value::Bool(true));
        }
        if let Some(msg) = &self.msg {
            out.insert("msg".into(), Value::String(msg.clone()));
        }
        for (k, v) in &self.data {
            out.insert(k.clone(), v.clone());
        }
        if diff_mode && !self.diffs.is_empty() {
            let diffs: Vec<Value> = self.diffs.iter().map(Diff::to_json).collect();
            let value = if diffs.len() == 1 {
                diffs.into_iter().next().unwrap()
            } else {
                Value::Array(diffs)
            };
            out.insert("diff".into(), value);
        }
        if !self.facts.is_empty() {
            out.insert("ansible_facts".into(), Value::Object(self.facts.clone()));
        }
        if !self.warnings.is_empty() {
            out.insert(
                "warnings".into(),
                Value::Array(self.warnings.iter().cloned().map(Value::String).collect()),
            );
        }
        if let Some(inv) = invocation {
            out.insert("invocation".into(), inv);
        }
        Value::Object(out)
    }
}

pub const NO_LOG_PLACEHOLDER: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";

/// Masks every secret in `value`, as AnsibleModule's `remove_values` does: a string equal to a secret becomes
/// the placeholder, a secret inside a longer string becomes `********` (longest secrets first); a number whose
/// text equals or contains a secret becomes the placeholder. Keys, booleans and nulls are left alone.
pub fn mask(value: &mut Value, secrets: &BTreeSet<String>) {
    if secrets.is_empty() {
        return;
    }
    let mut ordered: Vec<&str> = secrets.iter().map(String::as_str).collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
    mask_sorted(value, &ordered);
}

fn mask_sorted(value: &mut Value, secrets: &[&str]) {
    match value {
        Value::String(s) => {
            if secrets.contains(&s.as_str()) {
                *s = NO_LOG_PLACEHOLDER.to_string();
            } else {
                for secret in secrets {
                    if s.contains(secret) {
                        *s = s.replace(secret, "********");
                    }
                }
            }
        }
        Value::Number(_) => {
            let text = crate::pyfmt::py_str(value);
            if secrets.iter().any(|s| text.contains(s)) {
                *value = Value::String(NO_LOG_PLACEHOLDER.to_string());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_sorted(v, secrets)),
        Value::Object(m) => m.values_mut().for_each(|v| mask_sorted(v, secrets)),
        Value::Null | Value::Bool(_) => {}
    }
}

/// Prints exactly one JSON object on stdout and flushes. Non-ASCII goes out as-is (valid UTF-8).
pub fn print(value: &Value) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let _ = serde_json::to_writer(&mut lock, value);
    let _ = lock.write_all(b"\n");
    let _ = lock.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_equal_and_embedded_secrets_but_not_keys() {
        let secrets: BTreeSet<String> = ["hunter2".to_string()].into();
        let mut v = json!({"hunter2": "hunter2", "url": "http://u:hunter2@proxy", "n": true});
        mask(&mut v, &secrets);
        assert_eq!(
            v,
            json!({"hunter2": NO_LOG_PLACEHOLDER, "url": "http://u:********@proxy", "n": true})
        );
        let secrets: BTreeSet<String> = ["42".to_string(), "ab".into(), "abcd".into()].into();
        let mut v = json!([1420, 7, "xabcdx", "abab", 4.2]);
        mask(&mut v, &secrets);
        assert_eq!(
            v,
            json!([NO_LOG_PLACEHOLDER, 7, "x********x", "****************", 4.2])
        );
    }
}
