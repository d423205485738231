//! The report step: the Ansible answer of a `present`/`latest` run, built from the plan (`plan.rs`), what the
//! apply step did or predicted (`apply.rs`) and the packages as dpkg has them afterwards. Reads nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use ansible_module::{Diff, Response};
use serde_json::{json, Map, Value};

use crate::apply::{Outcome, VersionChange};
use crate::backend::Installed;
use crate::params::Params;
use crate::plan::{FileWrite, Plan};

/// The answer: `changed` and `msg` from the list of changes, a diff per file, and the node's state as facts.
pub fn report(
    p: &Params,
    plan: &Plan,
    outcome: &Outcome,
    after: &BTreeMap<String, Installed>,
    elapsed: Duration,
) -> Response {
    let changes = changes(plan, outcome);
    let versions: Map<String, Value> = p
        .packages
        .iter()
        .map(|n| (n.clone(), json!(after.get(n).map(|i| i.version.clone()))))
        .collect();
    let changed = !changes.is_empty();
    let msg = if changed {
        changes.join("; ")
    } else {
        "already as requested".to_string()
    };
    let mut r = Response::new(changed)
        .msg(msg)
        .set("versions", Value::Object(versions))
        .set("fingerprint", plan.key.fingerprint.clone())
        .set("key_expires", json!(plan.key.expires))
        .set("keyring_path", plan.keyring_path.display().to_string())
        .set("repo_url", p.repo_url.clone())
        .set(
            "removed_lists",
            json!(plan
                .removals
                .iter()
                .map(|r| r.conflict.path.display().to_string())
                .collect::<Vec<_>>()),
        )
        .set("changes", json!(changes))
        .set("driver_version", json!(plan.driver_version))
        .set("apt_called", outcome.apt_called)
        .set("lock_wait_ms", outcome.lock_wait.as_millis() as u64)
        .set("elapsed_ms", elapsed.as_millis() as u64);
    if changed {
        for w in &plan.writes {
            r = r.diff(write_diff(w));
        }
        for removal in &plan.removals {
            r = r.diff(Diff::file(
                &removal.conflict.path.display().to_string(),
                String::from_utf8_lossy(&removal.before),
                "",
            ));
        }
    }
    r
}

/// One line per change, files first, in the order the apply step makes them.
fn changes(plan: &Plan, outcome: &Outcome) -> Vec<String> {
    let mut changes = Vec::new();
    for w in &plan.writes {
        changes.push(format!("wrote {}", w.file.path.display()));
    }
    for r in &plan.removals {
        changes.push(format!(
            "removed {} ({})",
            r.conflict.path.display(),
            r.conflict.why
        ));
    }
    match &outcome.version {
        VersionChange::Unchanged => {}
        VersionChange::To(v) => changes.push(format!("installed version {}", v)),
        VersionChange::ToNewestUnknown => {
            changes.push("installs the repository's newest version".into())
        }
    }
    if !plan.packages.hold.is_empty() {
        changes.push(format!("held {}", plan.packages.hold.join(" ")));
    }
    if !plan.packages.unhold.is_empty() {
        changes.push(format!(
            "released the hold on {}",
            plan.packages.unhold.join(" ")
        ));
    }
    changes
}

/// A repository file's diff; the binary keyring is shown by its size.
fn write_diff(w: &FileWrite) -> Diff {
    let path = w.file.path.display().to_string();
    if w.file.binary {
        let show = |b: Option<&Vec<u8>>| match b {
            Some(b) => format!("<binary keyring, {} bytes>\n", b.len()),
            None => String::new(),
        };
        return Diff::file(&path, show(w.before.as_ref()), show(Some(&w.file.contents)));
    }
    Diff::file(
        &path,
        String::from_utf8_lossy(w.before.as_deref().unwrap_or_default()),
        String::from_utf8_lossy(&w.file.contents),
    )
}
