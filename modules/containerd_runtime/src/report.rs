//! The answer to Ansible: what changed and where, the runtime as configured, the backups made, the diff of
//! each changed file, and the warnings.

use ansible_module::{Diff, Response};
use serde_json::{json, Map, Value as Json};

use crate::apply::Applied;
use crate::change::Change;
use crate::plan::State;

/// The module's result for a planned `change` and what applying it did (`Applied::default()` in check mode).
pub fn response(change: &Change, applied: &Applied) -> Response {
    let (plan, opts) = (&change.plan, &change.options);
    let changed = change.changed();
    let verb = match (changed, opts.state) {
        (false, _) => "already in the wanted state",
        (true, State::Present) => "registered",
        (true, State::Absent) => "removed",
    };
    let backups: Vec<String> = applied
        .backups
        .iter()
        .map(|(_, b)| b.display().to_string())
        .collect();
    let by_file: Map<String, Json> = applied
        .backups
        .iter()
        .map(|(f, b)| (f.display().to_string(), json!(b.display().to_string())))
        .collect();
    let mut r = Response::new(changed)
        .msg(format!(
            "runtime {} {} ({})",
            opts.name,
            verb,
            change.runtime_file().display()
        ))
        .set("restart_required", plan.restart_required())
        .set("config_version", plan.config_version)
        .set("runtime", plan.runtime.clone())
        .set(
            "default_runtime_name",
            plan.default_runtime_name
                .clone()
                .map(Json::String)
                .unwrap_or(Json::Null),
        )
        .set("drop_in_used", plan.drop_in.is_some())
        .set("validated", applied.validated)
        .set("path", change.targets.config.display().to_string())
        .set("backups", Json::Object(by_file));
    // The older names, kept for playbooks written against them: the first backup, and all of them when
    // there are several.
    if let Some(b) = backups.first() {
        r = r.set("backup_file", b.clone());
    }
    if backups.len() > 1 {
        r = r.set("backup_files", json!(backups));
    }
    for (file, c) in change.files() {
        if c.changed() {
            r = r.diff(Diff::file(
                &file.display().to_string(),
                c.before.clone().unwrap_or_default(),
                c.after.clone().unwrap_or_default(),
            ));
        }
    }
    for w in change.warnings.iter().chain(&plan.warnings) {
        r = r.warn(w.clone());
    }
    r
}
