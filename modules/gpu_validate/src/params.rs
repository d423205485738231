//! Parameter checks that run before any node check: a bad value is refused naming the parameter, rather than
//! being used as given (on a GPU node) or ending in an unrelated check failure (on a node without one).

use anyhow::{bail, Result};

use crate::{Options, CHECKS};

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
    if !node_facts::version::is_minimum_version(&o.min_driver_version) {
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
    check_container(o)?;
    if let Some(p) = &o.nvidia_smi_path {
        node_path("nvidia_smi_path", p)?;
    }
    Ok(())
}

/// The `container` check's options: it needs an image, and runs containers only on the node itself.
fn check_container(o: &Options) -> Result<()> {
    if let Some(image) = &o.smoke_image {
        if image.trim().is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!(
                "smoke_image must be an image reference such as registry.example/cuda:12-base, got {:?}",
                image
            );
        }
    }
    if !o.checks.iter().any(|c| c == crate::container::ID) {
        return Ok(());
    }
    if o.smoke_image.is_none() {
        bail!("the container check needs smoke_image: the image it runs `nvidia-smi -L` in");
    }
    if !o.live {
        bail!("the container check runs a container on this node through containerd: it needs sysroot /");
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
            checks: crate::default_checks(None),
            expected_gpu_count: Some(8),
            min_driver_version: "470.82.01".into(),
            runtime_name: "nvidia".into(),
            containerd_config: "/etc/containerd/config.toml".into(),
            nvidia_smi_path: Some("/usr/bin/nvidia-smi".into()),
            smoke_image: None,
            smoke_pull: false,
            timeout: std::time::Duration::from_secs(60),
            live: true,
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
        for bad in ["", "latest", "470..82", "470.82.01-beta", ".470"] {
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
    fn a_major_only_min_driver_version_is_accepted() {
        // The gpu_node role passes one value to this module and to nvidia_toolkit: both take the same shapes.
        for ok in ["535", "535.104", "470.82.01"] {
            check_options(&Options {
                min_driver_version: ok.into(),
                ..good()
            })
            .unwrap_or_else(|e| panic!("{:?} refused: {}", ok, e));
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
    fn the_container_check_needs_an_image_and_the_live_node() {
        let with = |checks: &[&str], image: Option<&str>, live: bool| Options {
            checks: checks.iter().map(|c| c.to_string()).collect(),
            smoke_image: image.map(String::from),
            live,
            ..good()
        };
        check_options(&with(&["container"], Some("localhost/smoke:1"), true)).unwrap();
        // An image with the container check not selected is allowed (it is simply not used).
        check_options(&with(&["pci"], Some("localhost/smoke:1"), false)).unwrap();
        let msg = refused(with(&["pci", "container"], None, true));
        assert_eq!(
            msg,
            "the container check needs smoke_image: the image it runs `nvidia-smi -L` in"
        );
        let msg = refused(with(&["container"], Some("img:1"), false));
        assert!(msg.ends_with("it needs sysroot /"), "{}", msg);
        for bad in ["", " ", "img name", "img\n"] {
            let msg = refused(with(&["container"], Some(bad), true));
            assert!(msg.starts_with("smoke_image must be"), "{:?}: {}", bad, msg);
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
