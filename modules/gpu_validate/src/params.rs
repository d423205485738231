//! The module's parameters: the argument spec (the one home of their defaults and choices) and [`Params`], every
//! parameter read once from the validated module, typed and checked before any node check runs. A bad value is
//! refused naming its parameter, rather than being used as given (on a GPU node) or ending in an unrelated check
//! failure (on a node without one).
//!
//! The names are the ones `containerd_runtime` uses for the same things (`name`, `path`, `min_driver_version`),
//! so one set of variables feeds both modules; the names this module used before stay as aliases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ansible_module::{choice, Choice, Kind, Module, ModuleSpec, Opt};
use anyhow::{bail, Result};
use node_facts::containerd::{CONFIG, NVIDIA_RUNTIME};
use node_facts::{kubelet, version};

use crate::report::FailOn;
use crate::{cdi, container, containerd, device_nodes, driver, pci, smi, toolkit};

/// One check of the module (a value of `checks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckId {
    Pci,
    Driver,
    NvidiaSmi,
    DeviceNodes,
    Toolkit,
    Containerd,
    Cdi,
    Container,
}

impl Choice for CheckId {
    /// In the order the checks run: each layer after the ones it stands on.
    const ALL: &'static [CheckId] = &[
        CheckId::Pci,
        CheckId::Driver,
        CheckId::NvidiaSmi,
        CheckId::DeviceNodes,
        CheckId::Toolkit,
        CheckId::Containerd,
        CheckId::Cdi,
        CheckId::Container,
    ];
    /// The id each check module reports its verdicts under.
    fn as_str(self) -> &'static str {
        match self {
            CheckId::Pci => pci::ID,
            CheckId::Driver => driver::ID,
            CheckId::NvidiaSmi => smi::ID,
            CheckId::DeviceNodes => device_nodes::ID,
            CheckId::Toolkit => toolkit::ID,
            CheckId::Containerd => containerd::ID,
            CheckId::Cdi => cdi::ID,
            CheckId::Container => container::ID,
        }
    }
}

/// The old names of `name` and `path`, kept so playbooks written for them go on working.
const NAME_ALIASES: &[&str] = &["runtime_name"];
const PATH_ALIASES: &[&str] = &["containerd_config"];

/// The module's argument spec: the one place of the defaults; choices are made from the enums
/// ([`Choice`]).
pub fn spec() -> ModuleSpec {
    ModuleSpec::new(vec![
        // No default here: it depends on smoke_image (Params::from_module).
        Opt::list("checks", Kind::Str).choices_of::<CheckId>(),
        Opt::int("expected_gpu_count"),
        Opt::str("min_driver_version").default(version::MIN_DRIVER),
        Opt::str("name")
            .default(NVIDIA_RUNTIME)
            .aliases(NAME_ALIASES),
        Opt::path("path").default(CONFIG).aliases(PATH_ALIASES),
        Opt::path("kubelet_config").default(kubelet::CONFIG),
        Opt::str("fail_on")
            .choices_of::<FailOn>()
            .default(FailOn::Error.as_str()),
        Opt::path("sysroot").default("/"),
        Opt::path("nvidia_smi_path"),
        Opt::int("timeout").default(60),
        Opt::str("smoke_image"),
        Opt::bool("smoke_pull").default(false),
    ])
    .supports_check_mode()
}

/// Every parameter, typed and checked.
#[derive(Debug, Clone)]
pub struct Params {
    /// The checks to run, each once, in the order of [`CheckId::ALL`].
    pub checks: Vec<CheckId>,
    pub expected_gpu_count: Option<usize>,
    pub min_driver_version: String,
    /// `name`: containerd's runtime (the RuntimeClass handler) that must run GPU containers.
    pub runtime_name: String,
    /// `path`: containerd's config file, a path on the node (under `sysroot`).
    pub containerd_config: PathBuf,
    /// The kubelet's config file, a path on the node (under `sysroot`), read for its cgroup driver.
    pub kubelet_config: PathBuf,
    pub fail_on: FailOn,
    /// The root under which the node is read: `/` on a live node.
    pub sysroot: PathBuf,
    /// nvidia-smi to run, a path on the node; `None`: the first one found.
    pub nvidia_smi_path: Option<PathBuf>,
    /// Each external program's time limit, and the whole container check's.
    pub timeout: Duration,
    /// The image the container check runs `nvidia-smi -L` in.
    pub smoke_image: Option<String>,
    pub smoke_pull: bool,
}

impl Params {
    /// Reads and checks every parameter of a validated module; the first bad value is the error.
    pub fn from_module(m: &Module) -> Result<Params> {
        let smoke_image = m.str("smoke_image").map(String::from);
        if let Some(image) = &smoke_image {
            check_image(image)?;
        }
        let checks = match m.get("checks") {
            Some(_) => checks(&m.str_list("checks"))?,
            // The container check runs a container: it runs by default only when an image is given for it.
            None => CheckId::ALL
                .iter()
                .copied()
                .filter(|c| *c != CheckId::Container || smoke_image.is_some())
                .collect(),
        };
        let timeout = m.given_int("timeout")?;
        if timeout < 1 {
            bail!("timeout must be at least 1 second, got {}", timeout);
        }
        let p = Params {
            checks,
            expected_gpu_count: expected_gpu_count(m.int("expected_gpu_count"))?,
            min_driver_version: min_driver_version(m.given_str("min_driver_version")?)?,
            runtime_name: runtime_name(given_as(m, "name", NAME_ALIASES), m.given_str("name")?)?,
            containerd_config: node_facts::path::absolute(
                given_as(m, "path", PATH_ALIASES),
                m.given_str("path")?,
            )
            .map_err(anyhow::Error::msg)?,
            kubelet_config: node_facts::path::absolute(
                "kubelet_config",
                m.given_str("kubelet_config")?,
            )
            .map_err(anyhow::Error::msg)?,
            fail_on: m.choice("fail_on")?,
            sysroot: node_facts::path::absolute("sysroot", m.given_str("sysroot")?)
                .map_err(anyhow::Error::msg)?,
            nvidia_smi_path: m
                .str("nvidia_smi_path")
                .map(|p| node_facts::path::absolute("nvidia_smi_path", p))
                .transpose()
                .map_err(anyhow::Error::msg)?,
            timeout: Duration::from_secs(timeout as u64),
            smoke_image,
            smoke_pull: m.bool("smoke_pull"),
        };
        p.check_container()?;
        Ok(p)
    }

    /// The sysroot is `/`: the node is the running system, where a container can be run.
    pub fn live(&self) -> bool {
        self.sysroot == Path::new("/")
    }

    pub fn wants(&self, id: CheckId) -> bool {
        self.checks.contains(&id)
    }

    /// The container check needs an image, and runs containers only on the node itself.
    fn check_container(&self) -> Result<()> {
        if !self.wants(CheckId::Container) {
            return Ok(());
        }
        if self.smoke_image.is_none() {
            bail!("the container check needs smoke_image: the image it runs `nvidia-smi -L` in");
        }
        if !self.live() {
            bail!("the container check runs a container on this node through containerd: it needs sysroot /");
        }
        Ok(())
    }
}

/// The name a playbook gave an option: an alias when it used one (validation keeps what was given under it),
/// so a message names what the user wrote.
fn given_as(m: &Module, name: &'static str, aliases: &[&'static str]) -> &'static str {
    aliases
        .iter()
        .copied()
        .find(|a| m.params.contains_key(*a))
        .unwrap_or(name)
}

/// `checks` as given: at least one, each known; they run once each, in their own order.
fn checks(given: &[String]) -> Result<Vec<CheckId>> {
    if given.is_empty() {
        // Nothing checked must not read as a healthy node.
        bail!(
            "checks is empty: name at least one of {}",
            CheckId::names().join(", ")
        );
    }
    let mut wanted = Vec::new();
    for word in given {
        wanted.push(choice::parse::<CheckId>("checks", word)?);
    }
    Ok(CheckId::ALL
        .iter()
        .copied()
        .filter(|c| wanted.contains(c))
        .collect())
}

fn expected_gpu_count(given: Option<i64>) -> Result<Option<usize>> {
    given
        .map(|n| {
            usize::try_from(n)
                .map_err(|_| anyhow::anyhow!("expected_gpu_count must be 0 or more, got {}", n))
        })
        .transpose()
}

/// The same shapes `nvidia_toolkit` takes (`535`, `535.104`, `470.82.01`): the gpu_node role passes one value
/// to both.
fn min_driver_version(v: &str) -> Result<String> {
    if !node_facts::version::is_minimum_version(v) {
        bail!(
            "min_driver_version must be a dotted version such as 470.82.01, got {:?}",
            v
        );
    }
    Ok(v.to_string())
}

/// A runtime name is looked up in containerd's config and handed to crictl: it must say something, and a
/// control character could not be a table key anyone means.
fn runtime_name(option: &str, name: &str) -> Result<String> {
    if name.trim().is_empty() {
        bail!(
            "{} must not be empty: name containerd's runtime, such as nvidia",
            option
        );
    }
    if name.chars().any(char::is_control) {
        bail!(
            "{} must not contain control characters, got {:?}",
            option,
            name
        );
    }
    Ok(name.to_string())
}

/// An image reference is one word: crictl takes it as one argument.
fn check_image(image: &str) -> Result<()> {
    if image.trim().is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "smoke_image must be an image reference such as registry.example/cuda:12-base, got {:?}",
            image
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The parameters as the module gets them: validated against the spec, then read.
    fn params(args: Value) -> Result<Params> {
        let Value::Object(args) = args else {
            panic!("args must be an object")
        };
        let m = Module::from_args("gpu_validate", &spec(), args).map_err(anyhow::Error::msg)?;
        Params::from_module(&m)
    }

    fn refused(args: Value) -> String {
        format!(
            "{:#}",
            params(args.clone()).expect_err(&format!("{} should be refused", args))
        )
    }

    #[test]
    fn the_spec_choices_are_the_enums_words() {
        let spec = spec();
        let choices = |name: &str| -> Vec<String> {
            spec.option(name)
                .unwrap()
                .choices
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            choices("checks"),
            [
                "pci",
                "driver",
                "nvidia_smi",
                "device_nodes",
                "toolkit",
                "containerd",
                "cdi",
                "container"
            ]
        );
        assert_eq!(choices("fail_on"), ["error", "warning", "never"]);
        for c in CheckId::ALL {
            assert_eq!(CheckId::parse(c.as_str()), Some(*c));
        }
        assert_eq!(CheckId::parse("gpu_burn"), None);
    }

    #[test]
    fn defaults_come_from_the_spec() {
        let p = params(json!({})).unwrap();
        assert_eq!(p.runtime_name, "nvidia");
        assert_eq!(
            p.containerd_config,
            Path::new("/etc/containerd/config.toml")
        );
        assert_eq!(p.min_driver_version, "470.82.01");
        assert_eq!(p.kubelet_config, Path::new("/var/lib/kubelet/config.yaml"));
        assert_eq!(p.fail_on, FailOn::Error);
        assert_eq!(p.sysroot, Path::new("/"));
        assert_eq!(p.timeout, Duration::from_secs(60));
        assert_eq!(p.expected_gpu_count, None);
        assert_eq!(p.nvidia_smi_path, None);
        assert!(!p.smoke_pull);
        // Every check but the container check, which runs a container and so is asked for.
        assert_eq!(p.checks, &CheckId::ALL[..CheckId::ALL.len() - 1]);
        let p = params(json!({"smoke_image": "localhost/smoke:1"})).unwrap();
        assert_eq!(p.checks, CheckId::ALL);
    }

    #[test]
    fn checks_run_once_each_in_their_own_order() {
        let p = params(json!({"checks": ["cdi", "pci", "cdi"]})).unwrap();
        assert_eq!(p.checks, [CheckId::Pci, CheckId::Cdi]);
        let msg = refused(json!({"checks": []}));
        assert!(msg.starts_with("checks is empty: name at least one of pci, driver, nvidia_smi"));
    }

    #[test]
    fn the_old_names_still_work_and_messages_name_what_was_written() {
        let p = params(
            json!({"runtime_name": "nvidia-cdi", "containerd_config": "/etc/k3s/config.toml"}),
        )
        .unwrap();
        assert_eq!(p.runtime_name, "nvidia-cdi");
        assert_eq!(p.containerd_config, Path::new("/etc/k3s/config.toml"));
        let p = params(json!({"name": "nvidia-cdi", "path": "/etc/k3s/config.toml"})).unwrap();
        assert_eq!(p.runtime_name, "nvidia-cdi");
        assert_eq!(p.containerd_config, Path::new("/etc/k3s/config.toml"));
        assert!(refused(json!({"runtime_name": ""})).starts_with("runtime_name must not be empty"));
        assert!(refused(json!({"name": ""})).starts_with("name must not be empty"));
        assert!(refused(json!({"containerd_config": "config.toml"}))
            .starts_with("containerd_config must be an absolute path"));
        assert!(
            refused(json!({"path": "config.toml"})).starts_with("path must be an absolute path")
        );
    }

    #[test]
    fn negative_expected_gpu_count_is_refused() {
        assert_eq!(
            refused(json!({"expected_gpu_count": -1})),
            "expected_gpu_count must be 0 or more, got -1"
        );
        assert_eq!(
            params(json!({"expected_gpu_count": 0}))
                .unwrap()
                .expected_gpu_count,
            Some(0)
        );
    }

    #[test]
    fn timeout_below_one_second_is_refused() {
        assert_eq!(
            refused(json!({"timeout": 0})),
            "timeout must be at least 1 second, got 0"
        );
    }

    #[test]
    fn empty_or_odd_runtime_name_is_refused() {
        for bad in ["", "  ", "nvidia\n[evil]", "nv\0idia"] {
            let msg = refused(json!({ "name": bad }));
            assert!(msg.starts_with("name must not"), "{:?}: {}", bad, msg);
        }
    }

    #[test]
    fn empty_or_non_version_min_driver_version_is_refused() {
        for bad in ["", "latest", "470..82", "470.82.01-beta", ".470"] {
            let msg = refused(json!({ "min_driver_version": bad }));
            assert!(
                msg.starts_with("min_driver_version must be"),
                "{:?}: {}",
                bad,
                msg
            );
        }
    }

    #[test]
    fn a_major_only_min_driver_version_is_accepted() {
        // The gpu_node role passes one value to this module and to nvidia_toolkit: both take the same shapes.
        for ok in ["535", "535.104", "470.82.01"] {
            params(json!({ "min_driver_version": ok }))
                .unwrap_or_else(|e| panic!("{:?} refused: {}", ok, e));
        }
    }

    /// Every path parameter follows node_facts::path's one rule, and the error names the parameter.
    #[test]
    fn paths_must_be_absolute_without_dotdot_or_nul() {
        for option in ["path", "kubelet_config", "sysroot", "nvidia_smi_path"] {
            for (bad, says) in [
                ("../bin/x", "must be an absolute path, got"),
                ("x", "must be an absolute path, got"),
                (
                    "/usr/../../bin/x",
                    "must be an absolute path without '..' steps",
                ),
                ("/usr/bin/x\0y", "must not contain a NUL byte"),
            ] {
                let msg = refused(json!({ option: bad }));
                assert!(
                    msg.starts_with(&format!("{} {}", option, says)),
                    "{} {:?}: {}",
                    option,
                    bad,
                    msg
                );
            }
        }
        let p = params(
            json!({"sysroot": "/srv/image", "nvidia_smi_path": "/usr/local/nvidia/bin/nvidia-smi"}),
        )
        .unwrap();
        assert_eq!(p.sysroot, Path::new("/srv/image"));
        assert!(!p.live());
        assert_eq!(
            p.nvidia_smi_path.as_deref(),
            Some(Path::new("/usr/local/nvidia/bin/nvidia-smi"))
        );
    }

    #[test]
    fn the_container_check_needs_an_image_and_the_live_node() {
        params(json!({"checks": ["container"], "smoke_image": "localhost/smoke:1"})).unwrap();
        // An image with the container check not selected is allowed (it is simply not used).
        params(json!({"checks": ["pci"], "smoke_image": "localhost/smoke:1", "sysroot": "/srv"}))
            .unwrap();
        assert_eq!(
            refused(json!({"checks": ["pci", "container"]})),
            "the container check needs smoke_image: the image it runs `nvidia-smi -L` in"
        );
        let msg = refused(json!({"smoke_image": "img:1", "sysroot": "/srv"}));
        assert!(msg.ends_with("it needs sysroot /"), "{}", msg);
        for bad in ["", " ", "img name", "img\n"] {
            let msg = refused(json!({"checks": ["pci"], "smoke_image": bad}));
            assert!(msg.starts_with("smoke_image must be"), "{:?}: {}", bad, msg);
        }
    }
}
