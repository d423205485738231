//! The one rule for a file path given as a module parameter: absolute, no NUL byte, no `..` step. A `..` could
//! lead out of a sysroot or past a check made on the path's folder; a relative path would depend on the
//! directory Ansible happens to run the module in.

use std::path::{Component, Path, PathBuf};

/// Checks `value`, given as parameter `option`; the error names both and says which rule it breaks.
pub fn absolute(option: &str, value: &str) -> Result<PathBuf, String> {
    if value.contains('\0') {
        return Err(format!(
            "{} must not contain a NUL byte, got {:?}",
            option, value
        ));
    }
    let path = Path::new(value);
    if !path.is_absolute() {
        return Err(format!(
            "{} must be an absolute path, got {:?}",
            option, value
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "{} must be an absolute path without '..' steps, got {:?}",
            option, value
        ));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::absolute;

    #[test]
    fn absolute_paths_pass_and_each_bad_shape_is_named() {
        assert_eq!(
            absolute("path", "/etc/containerd/config.toml")
                .unwrap()
                .to_str(),
            Some("/etc/containerd/config.toml")
        );
        assert!(absolute("path", "/").is_ok());
        // `...` and `a..b` are names, not steps up.
        assert!(absolute("path", "/srv/.../a..b").is_ok());
        for (bad, says) in [
            ("etc/x", "must be an absolute path, got \"etc/x\""),
            ("", "must be an absolute path"),
            ("./x", "must be an absolute path"),
            ("/etc/../x", "without '..' steps"),
            ("/etc/..", "without '..' steps"),
            ("/etc/x\0.bak", "must not contain a NUL byte"),
        ] {
            let e = absolute("drop_in_path", bad).unwrap_err();
            assert!(e.starts_with("drop_in_path "), "{e}");
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
