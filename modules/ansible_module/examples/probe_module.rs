//! Test-only: a small but complete binary module on our library, run by `tests/ansible/run` through real
//! `ansible` and `ansible-playbook`. It writes `content` to `path` (honouring check and diff mode), and on
//! request warns, sets a fact, echoes a value, fails or panics, so each part of the contract can be seen
//! from Ansible's side.

use std::path::Path;
use std::time::Duration;

use ansible_module::safe_file::{self, DirLock, NewFile};
use ansible_module::{Diff, Kind, Module, ModuleSpec, Opt, Response};
use serde_json::Value;

fn spec() -> ModuleSpec {
    ModuleSpec::new(vec![
        Opt::path("path").aliases(&["dest"]),
        Opt::str("content").default(""),
        Opt::str("state")
            .choices(&["present", "absent"])
            .default("present"),
        Opt::bool("backup"),
        Opt::str("secret").no_log(),
        Opt::str("fact"),
        Opt::list("warn", Kind::Str),
        Opt::raw("echo"),
        Opt::bool("fail").default(false),
        Opt::bool("crash").default(false),
    ])
    .supports_check_mode()
    .required_by("backup", &["path"])
}

fn run(m: &mut Module) -> anyhow::Result<Response> {
    if m.bool("crash") {
        panic!("asked to crash");
    }
    if m.bool("fail") {
        return Ok(Response::failure(format!("{} was asked to fail", m.name)));
    }
    for w in m.str_list("warn") {
        m.warn(w);
    }
    let mut r = match m.str("path").map(String::from) {
        Some(path) => write(m, Path::new(&path))?,
        None => Response::new(false).msg(format!("{} had nothing to write", m.name)),
    };
    if let Some(fact) = m.str("fact") {
        r = r.fact("probe_fact", fact);
    }
    if let Some(echo) = m.get("echo") {
        r = r.set("echo", echo.clone());
    }
    // A module may well repeat a secret in its result; the library masks it.
    if let Some(secret) = m.str("secret") {
        r = r.set("secret_seen", format!("the secret is {}", secret));
    }
    Ok(r.set("check_mode", m.check_mode())
        .set("diff_mode", m.diff_mode()))
}

fn write(m: &Module, path: &Path) -> anyhow::Result<Response> {
    let _lock = DirLock::acquire(path, Duration::from_secs(30))?;
    let before = safe_file::read_optional(path)?;
    let before_text = before
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let want_present = m.str("state") == Some("present");
    let content = m.str("content").unwrap_or("").to_string();
    let after_text = want_present.then(|| content.clone());
    let changed = before_text != after_text;
    let shown = path.display().to_string();
    let mut r = Response::new(changed).msg(format!(
        "{} {} {}",
        m.name,
        if changed { "changed" } else { "left" },
        shown
    ));
    if changed {
        r = r.diff(Diff::file(
            &shown,
            before_text.clone().unwrap_or_default(),
            after_text.clone().unwrap_or_default(),
        ));
    }
    if changed && !m.check_mode() {
        if m.bool("backup") {
            if let Some(b) = safe_file::backup(path)? {
                r = r.set("backup_file", b.display().to_string());
            }
        }
        match after_text {
            Some(text) => safe_file::write_atomic(path, text.as_bytes(), NewFile::default())?,
            None => safe_file::remove(path)?,
        }
    }
    Ok(r.set("path", Value::String(shown)))
}

fn main() {
    ansible_module::main("gpunode_probe", spec(), run)
}
