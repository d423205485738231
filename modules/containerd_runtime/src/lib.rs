//! The `containerd_runtime` Ansible module: registers a runtime (NVIDIA's by default) in containerd's
//! `config.toml` with a surgical, comment-preserving edit, or removes it again.
//!
//! # Library API (what the module and the tests call)
//!
//! - [`plan::plan`]`(input: Option<&str>, opts: &Options) -> Result<Plan>`: the in-place edit of one config
//!   text (`None`: the file does not exist). [`Plan`] holds `config: FileChange { before, after }` (`after:
//!   None` deletes the file), `config_version`, `runtime` (the resulting table as JSON), `default_runtime_name`,
//!   `base` (where a new runtime's table came from), and `changed()` / `restart_required()` (parsed data compared, not bytes).
//! - [`plan::plan_drop_in`]`(config, drop_in, import, opts)`: the same in drop-in mode (the runtimes in the
//!   drop-in, `import` added to the config's `imports`); `Plan::drop_in` then holds the drop-in's change.
//! - [`plan::data_of`]`(text)`: what containerd would load from a text, as JSON (formatting ignored).
//! - [`Options::new`]`(name, binary_path)` gives the reference's defaults; set the public fields for the rest.
//!
//! A run is [`run`]: [`change::plan`] reads the node and decides, [`apply::apply`] writes (validation,
//! backups, atomic replacement, putting files back on failure), [`report::response`] answers Ansible.

pub mod apply;
pub mod change;
pub mod containerd;
pub mod edit;
pub mod other_writers;
pub mod params;
pub mod plan;
pub mod report;
pub mod toml_tree;

use std::path::Path;
use std::time::Duration;

use ansible_module::safe_file::DirLock;
use ansible_module::{Choice, Kind, Module, ModuleSpec, Opt, Response};
use anyhow::{Context as _, Result};

pub use edit::RuntimeSpec;
pub use plan::{FileChange, Options, Plan, State};

use node_facts::containerd::{CONFIG, NVIDIA_RUNTIME};
use node_facts::kubelet;

/// The module's argument spec: the one place of the defaults. `name` and `path` take the aliases gpu_validate
/// takes for the same things (`runtime_name`, `containerd_config`), so one set of variables feeds both modules.
pub fn spec() -> ModuleSpec {
    let runtime = ModuleSpec::new(vec![
        Opt::str("name").required(),
        Opt::str("binary_path").required(),
    ]);
    ModuleSpec::new(vec![
        Opt::path("path")
            .default(CONFIG)
            .aliases(&["containerd_config"]),
        Opt::str("name")
            .default(NVIDIA_RUNTIME)
            .aliases(&["runtime_name"]),
        Opt::str("binary_path").default("/usr/bin/nvidia-container-runtime"),
        Opt::str("runtime_type").default(plan::DEFAULT_RUNTIME_TYPE),
        Opt::bool("set_as_default").default(false),
        Opt::bool("enable_cdi")
            .default(false)
            .aliases(&["cdi_enabled"]),
        Opt::list("extra_runtimes", Kind::Dict).suboptions(runtime),
        Opt::list("container_annotations", Kind::Str),
        Opt::int("config_version"),
        Opt::path("drop_in_path"),
        Opt::str("state")
            .default(State::Present.as_str())
            .choices_of::<State>(),
        Opt::bool("backup").default(false),
        Opt::str("validate").default("auto"),
        Opt::path("kubelet_config").default(kubelet::CONFIG),
    ])
    .supports_check_mode()
}

/// How long a run waits for another run editing the same directory.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Runs the module.
pub fn run(m: &mut Module) -> Result<Response> {
    // Every parameter is checked before anything is read, locked or created.
    let params = params::Params::from_module(m)?;
    let targets = change::Targets::of(&params)?;
    let check = m.check_mode();
    // Hold the directory lock from the read to the write, so no other run interleaves.
    if !check {
        for file in targets.all() {
            create_parent(file)?;
        }
    }
    let _locks = DirLock::acquire_all(&targets.all(), LOCK_WAIT)?;
    let installed = containerd::find().map(containerd::Program);
    let change = change::plan(
        &params,
        &targets,
        installed.as_ref().map(|c| c as &dyn containerd::Installed),
    )?;
    let applied = if check {
        apply::Applied::default()
    } else {
        apply::apply(&change)?
    };
    Ok(report::response(&change, &applied))
}

/// Creates the directory `file` goes in when it is missing (a run that writes it locks that directory first).
fn create_parent(file: &Path) -> Result<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
        }
        _ => Ok(()),
    }
}
