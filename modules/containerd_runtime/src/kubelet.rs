//! The kubelet's cgroup driver, read from its config file (`cgroupDriver` in a KubeletConfiguration): a new
//! runtime that has no base in containerd's config must use the same driver as the kubelet, or its pods fail.

use std::path::Path;

/// `Some(true)` for `cgroupDriver: systemd`, `Some(false)` for `cgroupfs`, `None` when the file is missing,
/// unreadable or names no driver.
pub fn systemd_cgroup(config: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(config).ok()?;
    driver(&text).map(|d| d == "systemd")
}

/// The top-level `cgroupDriver` of a KubeletConfiguration YAML document. Only a key at column 0 counts
/// (a nested key of the same name belongs to something else); the value may be quoted and commented.
pub fn driver(yaml: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let value = line.strip_prefix("cgroupDriver:")?;
        let value = value.split(" #").next().unwrap_or("").trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        matches!(value, "systemd" | "cgroupfs").then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::driver;

    #[test]
    fn reads_the_top_level_driver_only() {
        let kubeadm = "apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: false\ncgroupDriver: systemd\nclusterDNS:\n- 10.96.0.10\n";
        assert_eq!(driver(kubeadm).as_deref(), Some("systemd"));
        assert_eq!(
            driver("cgroupDriver: \"cgroupfs\" # set by hand\n").as_deref(),
            Some("cgroupfs")
        );
        assert_eq!(driver("nested:\n  cgroupDriver: systemd\n"), None);
        assert_eq!(driver("cgroupDriver: something-else\n"), None);
        assert_eq!(driver(""), None);
    }
}
