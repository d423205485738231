//! What more than one module knows about a GPU node, kept in one place and apart from Ansible's protocol
//! (`ansible_module`): dotted versions and the NVIDIA driver's version file, the kubelet's cgroup driver,
//! containerd's config (its layout per version, its `imports` and how it merges them), the file-name
//! wildcards those imports use, and the rule for a path given as a parameter.

pub mod containerd;
pub mod glob;
pub mod kubelet;
pub mod path;
pub mod version;
