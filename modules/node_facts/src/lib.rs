//! What more than one module knows about a GPU node, kept in one place and apart from Ansible's protocol
//! (`ansible_module`): dotted versions and the NVIDIA driver's version file, the kubelet's cgroup driver, the
//! file-name wildcards of containerd's `imports`, and the rule for a path given as a parameter.

pub mod glob;
pub mod kubelet;
pub mod path;
pub mod version;
