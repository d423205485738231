//! The module's parameters as typed values ([`Params`]), and their checks beyond their types, done before
//! anything is read, locked or written: runtime names containerd can use, absolute paths, a positive config
//! version. The defaults live in the argument spec alone: validation has filled them in before this runs.

use std::path::PathBuf;

use ansible_module::Module;
use anyhow::{bail, Result};
use serde_json::Value as Json;

use crate::edit::RuntimeSpec;
use crate::plan::Options;

/// Every parameter, checked and typed.
#[derive(Debug, Clone)]
pub struct Params {
    pub path: PathBuf,
    pub drop_in_path: Option<PathBuf>,
    /// `config_version` as given (`None`: asked of the installed containerd).
    pub config_version: Option<i64>,
    /// What the plan needs (runtimes, default, CDI, state); the containerd-derived fields are filled later.
    pub options: Options,
    pub backup: bool,
    /// `validate` as given: `auto`, `none` (or empty) or a command with `%s`.
    pub validate: String,
    pub kubelet_config: PathBuf,
}

impl Params {
    /// Reads and checks every parameter of a validated module.
    pub fn from_module(m: &Module) -> Result<Params> {
        let path = check_file_path("path", m.given_str("path")?)?;
        let drop_in_path = m
            .str("drop_in_path")
            .map(|p| check_file_path("drop_in_path", p))
            .transpose()?;
        let config_version = config_version(m.params.get("config_version"))?;
        let name = m.given_str("name")?;
        check_runtime_name("name", name)?;
        let binary_path = m.given_str("binary_path")?;
        check_binary_path("binary_path", binary_path)?;
        let mut extra_runtimes = Vec::new();
        for (i, d) in m.dict_list("extra_runtimes").iter().enumerate() {
            let rt = RuntimeSpec {
                name: d["name"].as_str().unwrap_or_default().to_string(),
                binary_path: d["binary_path"].as_str().unwrap_or_default().to_string(),
            };
            check_runtime_name(&format!("extra_runtimes[{}].name", i), &rt.name)?;
            check_binary_path(
                &format!("extra_runtimes[{}].binary_path", i),
                &rt.binary_path,
            )?;
            extra_runtimes.push(rt);
        }
        let mut options = Options::new(name, binary_path);
        options.runtime_type = m.given_str("runtime_type")?.to_string();
        options.set_as_default = m.bool("set_as_default");
        options.enable_cdi = m.bool("enable_cdi");
        options.extra_runtimes = extra_runtimes;
        options.container_annotations = m.str_list("container_annotations");
        options.state = m.choice("state")?;
        Ok(Params {
            path,
            drop_in_path,
            config_version,
            options,
            backup: m.bool("backup"),
            validate: m.given_str("validate")?.to_string(),
            kubelet_config: check_file_path("kubelet_config", m.given_str("kubelet_config")?)?,
        })
    }
}

/// A runtime name (`name`, `extra_runtimes[].name`): letters, digits, `.`, `_` and `-`, what runtime names
/// use in practice. Anything else (a newline, a bracket, a control character) would make a table key no
/// one means, so it is refused.
pub fn check_runtime_name(option: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("{} must not be empty", option);
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        bail!(
            "{} {:?} is not a valid runtime name: {:?} is not allowed (use letters, digits, '.', '_' and '-')",
            option,
            name,
            bad
        );
    }
    Ok(())
}

/// An absolute file path with no NUL byte and no `..` step (`path`, `drop_in_path`, `kubelet_config`): the rule every module
/// applies to a path parameter, [`node_facts::path::absolute`].
pub fn check_file_path(option: &str, path: &str) -> Result<PathBuf> {
    node_facts::path::absolute(option, path).map_err(anyhow::Error::msg)
}

/// The runtime binary: an absolute path with no NUL byte. A bare name with no `/` is kept: the shim looks
/// it up in its PATH. A relative path (`bin/x`, `../x`) would depend on the shim's working directory.
pub fn check_binary_path(option: &str, path: &str) -> Result<()> {
    check_no_nul(option, path)?;
    if path.is_empty() {
        bail!("{} must not be empty", option);
    }
    if path.contains('/') && !path.starts_with('/') {
        bail!(
            "{} must be an absolute path (or a bare command name found in PATH), got {:?}",
            option,
            path
        );
    }
    Ok(())
}

fn check_no_nul(option: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        bail!("{} must not contain a NUL byte (\\0)", option);
    }
    Ok(())
}

/// `config_version` as given: absent, or a positive integer that fits an i64.
pub fn config_version(raw: Option<&Json>) -> Result<Option<i64>> {
    match raw {
        None | Some(Json::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => bail!(
                "config_version must be a positive integer (containerd knows 1, 2 and 3), got {}",
                v
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runtime_names_with_control_characters_or_brackets_are_refused() {
        for bad in [
            "nvidia\n[evil]",
            "nvi\x01dia",
            "a b",
            "a]b",
            "a\"b",
            "nvídia",
            "",
        ] {
            assert!(check_runtime_name("name", bad).is_err(), "{:?}", bad);
        }
        let e = check_runtime_name("name", "nvidia\n[evil]").unwrap_err();
        assert!(e.to_string().contains("not a valid runtime name"), "{}", e);
        for good in ["nvidia", "nvidia-cdi", "gpu.rt", "kata_qemu", "Runc2"] {
            check_runtime_name("name", good).unwrap();
        }
    }

    #[test]
    fn file_paths_must_be_absolute() {
        for bad in [
            "config.toml",
            "../etc/containerd/config.toml",
            "/etc/../x.toml",
            "",
        ] {
            let e = check_file_path("path", bad).unwrap_err();
            assert!(e.to_string().contains("absolute"), "{}", e);
        }
        let e = check_file_path("path", "/etc/x\0.bak").unwrap_err();
        assert!(e.to_string().contains("NUL"), "{}", e);
        check_file_path("path", "/etc/containerd/config.toml").unwrap();
    }

    #[test]
    fn binary_paths_must_be_absolute_without_nul() {
        for bad in ["bin/x", "../../usr/bin/x", "./x", ""] {
            assert!(check_binary_path("binary_path", bad).is_err(), "{:?}", bad);
        }
        check_binary_path("binary_path", "nvidia-container-runtime").unwrap();
        let e = check_binary_path("binary_path", "/usr/bin/nvidia\0").unwrap_err();
        assert!(e.to_string().contains("NUL"), "{}", e);
        check_binary_path("binary_path", "/usr/bin/nvidia-container-runtime").unwrap();
    }

    #[test]
    fn config_version_must_be_positive_and_fit() {
        assert_eq!(config_version(None).unwrap(), None);
        assert_eq!(config_version(Some(&json!(null))).unwrap(), None);
        assert_eq!(config_version(Some(&json!(3))).unwrap(), Some(3));
        for bad in [json!(0), json!(-1), json!(9223372036854775808u64)] {
            let e = config_version(Some(&bad)).unwrap_err();
            assert!(e.to_string().contains("config_version"), "{}", e);
        }
    }
}
