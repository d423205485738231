//! The kubelet's cgroup driver, from its config file (`cgroupDriver` of a KubeletConfiguration). containerd's
//! runc runtimes must use the same driver (`SystemdCgroup`), or pods fail.

/// Where kubeadm (and Kubespray, which runs it) writes the kubelet's configuration.
pub const CONFIG: &str = "/var/lib/kubelet/config.yaml";

/// The driver a KubeletConfiguration YAML document sets: its top-level `cgroupDriver` (a key at column 0; the
/// value may be quoted and commented), else `cgroupfs`, the kubelet's default.
pub fn cgroup_driver(yaml: &str) -> String {
    yaml.lines()
        .find_map(|line| line.strip_prefix("cgroupDriver:"))
        .map(|v| {
            v.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .to_string()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "cgroupfs".into())
}

#[cfg(test)]
mod tests {
    use super::cgroup_driver;

    #[test]
    fn reads_the_top_level_driver_else_the_kubelets_default() {
        let kubeadm = "apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: false\ncgroupDriver: systemd\nclusterDNS:\n- 10.96.0.10\n";
        assert_eq!(cgroup_driver(kubeadm), "systemd");
        assert_eq!(
            cgroup_driver("cgroupDriver: \"cgroupfs\" # by hand\n"),
            "cgroupfs"
        );
        assert_eq!(cgroup_driver("cgroupDriver: 'systemd'\n"), "systemd");
        // A nested key belongs to something else; no key at all is the kubelet's default.
        assert_eq!(
            cgroup_driver("nested:\n  cgroupDriver: systemd\n"),
            "cgroupfs"
        );
        assert_eq!(cgroup_driver(""), "cgroupfs");
    }
}
