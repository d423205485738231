//! Parameter checks that run before any node check: a bad value is refused naming the parameter, rather than
//! being used as given (on a GPU node) or ending in an unrelated check failure (on a node without one).

use anyhow::{bail, Result};

use crate::{node, Options, CHECKS};

/// Refuses `sysroot` unless it is an absolute path without NUL bytes. Whether it exists is checked apart,
/// because that is the node's state rather than the value's shape.
pub fn check_sysroot(sysroot: &str) -> Result<()> {
    if sysroot.contains('\0') {
        bail!("sysroot must not contain a NUL byte, got {:?}", sysroot);
    }
    if !sysroot.starts_with('/') {
        bail!("sysroot must be an absolute path, got {:?}", sysroot);
    }
    Ok(())
}

/// Refuses the options that cannot mean anything: each error names its parameter.
pub fn check_options(o: &Options) -> Result<()> {
    if o.checks.is_empty() {
        // Nothing checked must not read as a healthy node.
        bail!(
            "checks is empty: name at least one of {}",
            CHECKS.join(", ")
        );
    }
    if let Some(n) = o.expected_gpu_count {
        if n < 0 {
            bail!("expected_gpu_count must be 0 or more, got {}", n);
        }
    }
    if node::version_token(&o.min_driver_version).as_deref() != Some(o.min_driver_version.as_str())
    {
        bail!(
            "min_driver_version must be a dotted version such as 470.82.01, got {:?}",
            o.min_driver_version
        );
    }
    if o.runtime_name.trim().is_empty() {
        bail!("runtime_name must not be empty: name containerd's runtime, such as nvidia");
    }
    if o.runtime_name.chars().any(char::is_control) {
        bail!(
            "runtime_name must not contain control characters, got {:?}",
            o.runtime_name
        );
    }
    node_path("containerd_config", &o.containerd_config)?;
    if let Some(p) = &o.nvidia_smi_path {
        node_path("nvidia_smi_path", p)?;
    }
    Ok(())
}

/// A path on the node, looked up under `sysroot`: absolute, no NUL byte, and no `..` that could lead out of
/// the sysroot.
fn node_path(name: &str, p: &str) -> Result<()> {
    if p.contains('\0') {
        bail!("{} must not contain a NUL byte, got {:?}", name, p);
    }
    if !p.starts_with('/') {
        bail!("{} must be an absolute path, got {:?}", name, p);
    }
    if p.split('/').any(|part| part == "..") {
        bail!(
            "{} must be an absolute path without '..' components, got {:?}",
            name,
            p
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Options {
        Options {
            checks: CHECKS.iter().map(|c| c.to_string()).collect(),
            expected_gpu_count: Some(8),
            min_driver_version: "470.82.01".into(),
            runtime_name: "nvidia".into(),
            containerd_config: "/etc/containerd/config.toml".into(),
            nvidia_smi_path: Some("/usr/bin/nvidia-smi".into()),
        }
    }

    fn refused(o: Options) -> String {
        format!("{:#}", check_options(&o).expect_err("should be refused"))
    }

    #[test]
    fn good_options_pass() {
        check_options(&good()).unwrap();
        check_options(&Options {
            expected_gpu_count: Some(0),
            nvidia_smi_path: None,
            ..good()
        })
        .unwrap();
    }

    #[test]
    fn negative_expected_gpu_count_is_refused() {
        let msg = refused(Options {
            expected_gpu_count: Some(-1),
            ..good()
        });
        assert_eq!(msg, "expected_gpu_count must be 0 or more, got -1");
    }

    #[test]
    fn empty_or_odd_runtime_name_is_refused() {
        for bad in ["", "  ", "nvidia\n[evil]", "nv\0idia"] {
            let msg = refused(Options {
                runtime_name: bad.into(),
                ..good()
            });
            assert!(
                msg.starts_with("runtime_name must not"),
                "{:?}: {}",
                bad,
                msg
            );
        }
    }

    #[test]
    fn empty_or_non_version_min_driver_version_is_refused() {
        for bad in ["", "latest", "470", "470.82.01-beta", ".470"] {
            let msg = refused(Options {
                min_driver_version: bad.into(),
                ..good()
            });
            assert!(
                msg.starts_with("min_driver_version must be"),
                "{:?}: {}",
                bad,
                msg
            );
        }
    }

    #[test]
    fn relative_nvidia_smi_path_is_refused() {
        for (bad, says) in [
            ("../bin/nvidia-smi", "absolute path, got"),
            ("nvidia-smi", "absolute path, got"),
            ("/usr/../../bin/nvidia-smi", "without '..'"),
            ("/usr/bin/nvidia-smi\0x", "NUL byte"),
        ] {
            let msg = refused(Options {
                nvidia_smi_path: Some(bad.into()),
                ..good()
            });
            assert!(
                msg.starts_with("nvidia_smi_path must"),
                "{:?}: {}",
                bad,
                msg
            );
            assert!(msg.contains(says), "{:?}: {}", bad, msg);
        }
    }

    #[test]
    fn relative_containerd_config_is_refused() {
        for bad in [
            "config.toml",
            "etc/containerd/config.toml",
            "",
            "/etc/../../x",
        ] {
            let msg = refused(Options {
                containerd_config: bad.into(),
                ..good()
            });
            assert!(
                msg.starts_with("containerd_config must be an absolute path"),
                "{:?}: {}",
                bad,
                msg
            );
        }
    }

    #[test]
    fn sysroot_must_be_absolute_without_nul() {
        check_sysroot("/").unwrap();
        check_sysroot("/srv/image").unwrap();
        let msg = format!("{:#}", check_sysroot("sysroot").unwrap_err());
        assert_eq!(msg, "sysroot must be an absolute path, got \"sysroot\"");
        let msg = format!("{:#}", check_sysroot("/srv/root\0x").unwrap_err());
        assert!(
            msg.starts_with("sysroot must not contain a NUL byte"),
            "{}",
            msg
        );
    }
}
