//! The whole module run in-process (as Ansible runs it, minus the process): surgical edits, check mode,
//! diff, backup, validate, symlinks, owner and mode, and every kind of bad input leaving files untouched.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use containerd_runtime::{plan, FileChange, Options, State};
use serde_json::{json, Map, Value};

const COMMENTED: &str = r#"# containerd config, written by hand
version = 2
root = "/var/lib/containerd"   # state lives here

[plugins]
  # the CRI plugin
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = 'registry.k8s.io/pause:3.9'

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = true   # systemd cgroup driver

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"

# trailing comment
"#;

fn run(args: Value) -> Value {
    let Value::Object(mut m) = args else { panic!() };
    // No containerd on the test machine's PATH is assumed: validation is explicit in each test.
    m.entry("validate").or_insert(json!("none"));
    ansible_module::execute_args(
        "containerd_runtime",
        &containerd_runtime::spec(),
        m,
        containerd_runtime::run,
    )
}

fn setup(text: Option<&str>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    if let Some(t) = text {
        fs::write(&path, t).unwrap();
    }
    (dir, path.to_str().unwrap().to_string())
}

fn parsed(text: &str) -> Value {
    plan::data_of(Some(text))
}

#[test]
fn adds_runtime_keeping_every_other_byte() {
    let (_d, path) = setup(Some(COMMENTED));
    let r = run(json!({"path": path}));
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["restart_required"], true);
    let after = fs::read_to_string(&path).unwrap();
    // The original is the new text minus one inserted block: common prefix + common suffix cover it all.
    let prefix = COMMENTED
        .bytes()
        .zip(after.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = COMMENTED
        .bytes()
        .rev()
        .zip(after.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        prefix + suffix >= COMMENTED.len(),
        "edit is not one inserted block:\n{after}"
    );
    let data = parsed(&after);
    let rt = &data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["nvidia"];
    assert_eq!(
        rt["options"]["BinaryName"],
        "/usr/bin/nvidia-container-runtime"
    );
    assert_eq!(rt["options"]["SystemdCgroup"], true, "inherited from runc");
    assert_eq!(rt["runtime_type"], "io.containerd.runc.v2");
    assert_eq!(r["runtime"], *rt);
    assert_eq!(r["config_version"], 2);
    assert_eq!(r["default_runtime_name"], "runc");
}

#[test]
fn second_run_changes_nothing() {
    let (_d, path) = setup(Some(COMMENTED));
    run(json!({"path": path, "set_as_default": true, "enable_cdi": true}));
    let first = fs::read(&path).unwrap();
    let r = run(json!({"path": path, "set_as_default": true, "enable_cdi": true}));
    assert_eq!(r["changed"], false, "{r}");
    assert_eq!(r["restart_required"], false);
    assert_eq!(fs::read(&path).unwrap(), first);
}

#[test]
fn check_mode_predicts_exactly_and_writes_nothing() {
    let (_d, path) = setup(Some(COMMENTED));
    let r = run(
        json!({"path": path, "set_as_default": true, "_ansible_check_mode": true, "_ansible_diff": true}),
    );
    assert_eq!(r["changed"], true);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        COMMENTED,
        "check mode wrote"
    );
    let predicted = r["diff"]["after"].as_str().unwrap().to_string();
    let real = run(json!({"path": path, "set_as_default": true}));
    assert_eq!(real["changed"], true);
    assert_eq!(fs::read_to_string(&path).unwrap(), predicted);
}

#[test]
fn check_mode_on_a_missing_file_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etc/containerd/config.toml");
    let r = run(json!({"path": path, "_ansible_check_mode": true}));
    assert_eq!(r["changed"], true);
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn diff_shows_before_and_after() {
    let (_d, path) = setup(Some(COMMENTED));
    let r = run(json!({"path": path, "_ansible_diff": true}));
    assert_eq!(r["diff"]["before"], COMMENTED);
    assert_eq!(r["diff"]["after"], fs::read_to_string(&path).unwrap());
    assert!(r["diff"]["before_header"]
        .as_str()
        .unwrap()
        .contains("config.toml"));
}

#[test]
fn backup_keeps_the_old_bytes() {
    let (_d, path) = setup(Some(COMMENTED));
    let r = run(json!({"path": path, "backup": true}));
    let b = r["backup_file"].as_str().expect("backup_file");
    assert_eq!(fs::read_to_string(b).unwrap(), COMMENTED);
    // No change, no backup.
    let r = run(json!({"path": path, "backup": true}));
    assert!(r.get("backup_file").is_none());
}

#[test]
fn backups_map_each_changed_file_to_its_backup() {
    // Drop-in mode (a version 3 config, no containerd installed) with a drop-in already there: both files
    // change, both existed, both are backed up.
    let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\ndefault_runtime_name = 'runc'\n";
    let (d, path) = setup(Some(v3));
    let drop_in = d.path().join("conf.d/99-nvidia.toml");
    fs::create_dir_all(drop_in.parent().unwrap()).unwrap();
    fs::write(&drop_in, "# kept for the runtime\n").unwrap();
    let r = run(json!({"path": path, "drop_in_path": drop_in, "backup": true}));
    assert_eq!(r["drop_in_used"], true, "{r}");
    let backups = r["backups"].as_object().expect("backups");
    let mut files: Vec<&String> = backups.keys().collect();
    files.sort();
    let drop_in = drop_in.to_str().unwrap().to_string();
    assert_eq!(files, [&drop_in, &path], "{r}");
    assert_eq!(
        fs::read_to_string(backups[&path].as_str().unwrap()).unwrap(),
        v3
    );
    assert_eq!(
        fs::read_to_string(backups[&drop_in].as_str().unwrap()).unwrap(),
        "# kept for the runtime\n"
    );
    // The older names stay: the first backup, and the list of all when there are several.
    let all: Vec<&Value> = r["backup_files"].as_array().unwrap().iter().collect();
    assert_eq!(all.len(), 2);
    assert!(backups.values().any(|b| b == &r["backup_file"]));
    // Nothing changed, nothing backed up: an empty dict.
    let r = run(json!({"path": path, "drop_in_path": drop_in, "backup": true}));
    assert_eq!(r["changed"], false, "{r}");
    assert_eq!(r["backups"], json!({}));
    // A file that did not exist has no backup.
    let (_d2, new) = setup(None);
    let r = run(json!({"path": new, "backup": true}));
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["backups"], json!({}));
    assert!(r.get("backup_file").is_none());
}

#[test]
fn validate_command_accepts_and_rejects() {
    let (_d, path) = setup(Some(COMMENTED));
    let r = run(
        json!({"path": path, "validate": "grep -q 'BinaryName = \"/usr/bin/nvidia-container-runtime\"' %s"}),
    );
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["validated"], true);

    let (_d2, path2) = setup(Some(COMMENTED));
    let r = run(json!({"path": path2, "validate": "grep -q NoSuchText %s"}));
    assert_eq!(r["failed"], true);
    let msg = r["msg"].as_str().unwrap();
    assert!(
        msg.contains("validation failed") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(fs::read_to_string(&path2).unwrap(), COMMENTED);
    // The candidate is gone too.
    let left: Vec<_> = fs::read_dir(Path::new(&path2).parent().unwrap())
        .unwrap()
        .collect();
    assert_eq!(left.len(), 1, "temporary files left behind");

    let r = run(json!({"path": path2, "validate": "grep -q x"}));
    assert!(r["msg"].as_str().unwrap().contains("%s"), "{r}");
    assert_eq!(fs::read_to_string(&path2).unwrap(), COMMENTED);
}

#[test]
fn symlink_is_followed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.toml");
    fs::write(&real, COMMENTED).unwrap();
    let link = dir.path().join("config.toml");
    std::os::unix::fs::symlink("real.toml", &link).unwrap();
    let r = run(json!({"path": link}));
    assert_eq!(r["changed"], true, "{r}");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&real)
        .unwrap()
        .contains("nvidia-container-runtime"));
}

#[test]
fn owner_and_mode_are_kept() {
    let (_d, path) = setup(Some(COMMENTED));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let is_root = nix::unistd::geteuid().is_root();
    if is_root {
        nix::unistd::chown(Path::new(&path), Some(1234.into()), Some(4321.into())).unwrap();
    }
    run(json!({"path": path}));
    let m = fs::metadata(&path).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    if is_root {
        assert_eq!((m.uid(), m.gid()), (1234, 4321));
    }
}

fn assert_fails_untouched(text: &[u8], want: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    fs::write(&path, text).unwrap();
    let r = run(json!({"path": path}));
    assert_eq!(r["failed"], true, "{r}");
    let msg = r["msg"].as_str().unwrap();
    assert!(msg.contains(want), "message {msg:?} lacks {want:?}");
    assert_eq!(fs::read(&path).unwrap(), text, "file changed");
}

#[test]
fn invalid_toml_fails_with_line_and_column() {
    assert_fails_untouched(b"version = 2\n[plugins\n", "line 2, column");
}

#[test]
fn version_of_the_wrong_type_fails() {
    assert_fails_untouched(b"version = \"2\"\n", "`version` must be an integer");
    assert_fails_untouched(b"version = 2.0\n", "`version` must be an integer");
}

#[test]
fn non_utf8_fails() {
    assert_fails_untouched(b"version = 2\n# caf\xe9\n", "not valid UTF-8");
}

#[test]
fn a_table_where_a_table_path_must_go_fails() {
    assert_fails_untouched(
        b"version = 2\nplugins = 3\n",
        "plugins must be a table, found integer",
    );
}

#[test]
fn config_that_is_a_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(json!({"path": dir.path()}));
    assert_eq!(r["failed"], true);
    assert!(r["msg"].as_str().unwrap().contains("is a directory"), "{r}");
}

#[test]
fn absent_restores_the_default_it_replaced() {
    let text = COMMENTED.replace("default_runtime_name = \"runc\"", "default_runtime_name = \"crun\"").replace(
        "[plugins.\"io.containerd.grpc.v1.cri\".registry]",
        "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\n          runtime_type = \"io.containerd.runc.v2\"\n\n    [plugins.\"io.containerd.grpc.v1.cri\".registry]",
    );
    let (_d, path) = setup(Some(&text));
    let r = run(json!({"path": path, "set_as_default": true}));
    assert_eq!(r["default_runtime_name"], "nvidia");
    let r = run(json!({"path": path, "state": "absent"}));
    assert_eq!(r["changed"], true);
    assert_eq!(r["default_runtime_name"], "crun");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text,
        "absent did not give back the original"
    );
}

#[test]
fn absent_on_a_file_we_created_deletes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    run(
        json!({"path": path, "extra_runtimes": [{"name": "nvidia-cdi", "binary_path": "/usr/bin/nvidia-container-runtime.cdi"}]}),
    );
    assert!(path.exists());
    let r = run(
        json!({"path": path, "state": "absent", "extra_runtimes": [{"name": "nvidia-cdi", "binary_path": "/usr/bin/nvidia-container-runtime.cdi"}]}),
    );
    assert_eq!(r["changed"], true);
    assert!(!path.exists());
}

#[test]
fn no_base_runtime_warns() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(json!({"path": dir.path().join("config.toml"),
                       "kubelet_config": dir.path().join("no-kubelet.yaml")}));
    let w = r["warnings"].to_string();
    assert!(
        w.contains("SystemdCgroup") && w.contains("no-kubelet.yaml"),
        "{r}"
    );
}

#[test]
fn kubespray_and_operator_files_warn() {
    let (d, path) = setup(Some(&format!("# Ansible managed (kubespray)\n{COMMENTED}")));
    fs::create_dir_all(d.path().join("conf.d")).unwrap();
    fs::write(d.path().join("conf.d/99-nvidia.toml"), "version = 2\n").unwrap();
    let r = run(json!({"path": path}));
    let w = r["warnings"].to_string();
    assert!(w.contains("Kubespray") && w.contains("GPU Operator"), "{r}");
}

#[test]
fn restart_required_compares_data_not_bytes() {
    let c = FileChange {
        before: Some("a = 1 # one\n".into()),
        after: Some("a   = 1\n".into()),
    };
    assert!(c.changed() && !c.data_changed());
    let c = FileChange {
        before: None,
        after: Some("a = 1\n".into()),
    };
    assert!(c.data_changed());
}

#[test]
fn plan_api_new_file_and_version_3() {
    let mut o = Options::new("nvidia", "/usr/bin/nvidia-container-runtime");
    o.new_config_version = 3;
    let p = plan::plan(None, &o).unwrap();
    assert_eq!(p.config_version, 3);
    let data = parsed(p.config.after.as_deref().unwrap());
    assert_eq!(data["version"], 3);
    assert!(
        data["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["nvidia"]
            .is_object()
    );
    assert_eq!(p.base, plan::Base::Nothing);
    // Comments-only input keeps its comments, first.
    let p = plan::plan(Some("# only a comment\n"), &o).unwrap();
    assert!(p.config.after.unwrap().starts_with("# only a comment\n"));
    o.state = State::Absent;
    assert_eq!(plan::plan(None, &o).unwrap().config.after, None);
}

#[test]
fn plan_drop_in_api() {
    let o = Options::new("nvidia", "/usr/bin/nvidia-container-runtime");
    let p = plan::plan_drop_in(Some(COMMENTED), None, "/etc/containerd/conf.d/*.toml", &o).unwrap();
    let main = parsed(p.config.after.as_deref().unwrap());
    assert_eq!(main["imports"], json!(["/etc/containerd/conf.d/*.toml"]));
    let drop = parsed(p.drop_in.unwrap().after.as_deref().unwrap());
    let rt = &drop["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["nvidia"];
    assert_eq!(rt["options"]["SystemdCgroup"], true);
    assert_eq!(drop["version"], 2);
    let _ = Map::<String, Value>::new();
}

/// The names of every entry under `dir` (recursively), with each file's bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = p.display().to_string();
        if p.is_dir() {
            out.push((name, Vec::new()));
            out.extend(tree(&p));
        } else {
            out.push((name, fs::read(&p).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

#[test]
fn bad_parameters_are_refused_before_anything_is_touched() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "nvidia\n[evil]"}),
            "not a valid runtime name",
        ),
        (json!({"name": "nvi\u{1}dia"}), "not a valid runtime name"),
        (
            json!({"extra_runtimes": [{"name": "a]b", "binary_path": "/usr/bin/x"}]}),
            "extra_runtimes[0].name",
        ),
        (
            json!({"binary_path": "bin/nvidia-container-runtime"}),
            "absolute",
        ),
        (json!({"binary_path": "../../usr/bin/x"}), "absolute"),
        (json!({"binary_path": "/usr/bin/nvidia\u{0}"}), "NUL"),
        (
            json!({"extra_runtimes": [{"name": "cdi", "binary_path": "x/y"}]}),
            "extra_runtimes[0].binary_path",
        ),
        (json!({"config_version": -1}), "config_version"),
        (json!({"config_version": 0}), "config_version"),
        (
            json!({"config_version": 9223372036854775808u64}),
            "config_version",
        ),
        (json!({"drop_in_path": "conf.d/99-nvidia.toml"}), "absolute"),
        (
            json!({"kubelet_config": "kubelet/config.yaml"}),
            "kubelet_config must be an absolute path",
        ),
        (
            json!({"state": "removed"}),
            "value of state must be one of: present, absent, got: removed",
        ),
    ];
    for (args, wanted) in cases {
        let (d, path) = setup(Some(COMMENTED));
        let before = tree(d.path());
        let mut args = args.as_object().unwrap().clone();
        args.insert("path".into(), json!(path));
        let r = run(Value::Object(args.clone()));
        assert_eq!(r["failed"], true, "{args:?}: {r}");
        let msg = r["msg"].as_str().unwrap();
        assert!(msg.contains(wanted), "{args:?}: {msg}");
        assert_eq!(tree(d.path()), before, "{args:?} touched files");
    }
    for path in ["config.toml", "../etc/containerd/config.toml"] {
        let r = run(json!({"path": path}));
        assert_eq!(r["failed"], true, "{r}");
        assert!(r["msg"].as_str().unwrap().contains("absolute"), "{r}");
    }
}

/// gpu_validate's names for the config and the runtime work here too, so one set of variables feeds both.
#[test]
fn the_names_gpu_validate_takes_are_aliases() {
    let (_d, path) = setup(Some(COMMENTED));
    let r = run(json!({"containerd_config": path, "runtime_name": "nvidia-cdi"}));
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["path"], json!(path), "{r}");
    let data = parsed(&fs::read_to_string(&path).unwrap());
    let runtimes = &data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"];
    assert!(runtimes["nvidia-cdi"].is_object(), "{runtimes}");
    assert!(runtimes.get("nvidia").is_none(), "{runtimes}");
}

#[test]
fn a_bare_binary_name_is_kept() {
    let (_d, path) = setup(Some(COMMENTED));
    let r = run(json!({"path": path, "binary_path": "nvidia-container-runtime"}));
    assert_eq!(r["changed"], true, "{r}");
}

#[test]
fn a_dangling_symlink_into_a_missing_folder_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("config.toml");
    std::os::unix::fs::symlink(dir.path().join("nowhere/config.toml"), &link).unwrap();
    let r = run(json!({"path": link}));
    assert_eq!(r["failed"], true, "{r}");
    assert!(r["msg"].as_str().unwrap().contains("does not exist"), "{r}");
    assert!(!dir.path().join("nowhere").exists());
    // A dangling link into an existing folder still gets its file.
    let link2 = dir.path().join("other.toml");
    std::os::unix::fs::symlink("real.toml", &link2).unwrap();
    let r = run(json!({"path": link2}));
    assert_eq!(r["changed"], true, "{r}");
    assert!(dir.path().join("real.toml").exists());
}

#[test]
fn a_version_below_one_in_the_file_is_refused() {
    let (_d, path) = setup(Some("version = -3\n"));
    let r = run(json!({"path": path}));
    assert_eq!(r["failed"], true, "{r}");
    assert!(r["msg"].as_str().unwrap().contains("version"), "{r}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "version = -3\n");
}

#[test]
fn set_as_default_over_crun_is_a_no_op_the_second_time() {
    let text = COMMENTED
        .replace(
            "default_runtime_name = \"runc\"",
            "default_runtime_name = \"crun\"",
        )
        .replace(".runtimes.runc", ".runtimes.crun");
    let (_d, path) = setup(Some(&text));
    let first = run(json!({"path": path, "set_as_default": true}));
    assert_eq!(first["changed"], true, "{first}");
    let bytes = fs::read(&path).unwrap();
    let second = run(json!({"path": path, "set_as_default": true}));
    assert_eq!(second["changed"], false, "{second}");
    assert_eq!(second["restart_required"], false, "{second}");
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(
        second["runtime"]["options"]["SystemdCgroup"], true,
        "{second}"
    );
}

/// A GPU node as EKS's nodeadm configures it (version 2): `nvidia` is the default runtime, with the systemd
/// cgroup driver and a base OCI spec, and there is no `runc` table. Written after the shape nodeadm renders
/// (awslabs/amazon-eks-ami, nodeadm/internal/containerd), in single-quoted literals.
const EKS_GPU: &str = r#"version = 2
root = '/var/lib/containerd'
state = '/run/containerd'

[grpc]
address = '/run/containerd/containerd.sock'

[plugins.'io.containerd.grpc.v1.cri'.containerd]
default_runtime_name = 'nvidia'
discard_unpacked_layers = true

[plugins.'io.containerd.grpc.v1.cri']
sandbox_image = '602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/pause:3.5'

[plugins.'io.containerd.grpc.v1.cri'.registry]
config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'

[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.nvidia]
runtime_type = 'io.containerd.runc.v2'
base_runtime_spec = '/etc/containerd/base-runtime-spec.json'

[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.nvidia.options]
BinaryName = '/usr/bin/nvidia-container-runtime'
SystemdCgroup = true

[plugins.'io.containerd.grpc.v1.cri'.cni]
bin_dir = '/opt/cni/bin'
conf_dir = '/etc/cni/net.d'
"#;

fn runtimes_v2(data: &Value) -> &Value {
    &data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
}

#[test]
fn a_node_that_already_works_is_left_exactly_as_it_is() {
    let (d, path) = setup(Some(EKS_GPU));
    let kubelet = d.path().join("kubelet.yaml");
    let r = run(json!({"path": path, "kubelet_config": kubelet}));
    assert_eq!(r["changed"], false, "{r}");
    assert_eq!(r["restart_required"], false, "{r}");
    assert_eq!(fs::read_to_string(&path).unwrap(), EKS_GPU);
    assert_eq!(r["default_runtime_name"], "nvidia");
    assert!(
        r["warnings"]
            .to_string()
            .contains("already containerd's default runtime"),
        "{r}"
    );
}

#[test]
fn an_existing_runtime_gets_only_the_keys_this_module_owns() {
    let moved = EKS_GPU.replace(
        "BinaryName = '/usr/bin/nvidia-container-runtime'",
        "BinaryName = '/usr/local/nvidia/toolkit/nvidia-container-runtime'",
    );
    let (_d, path) = setup(Some(&moved));
    let r = run(json!({"path": path}));
    assert_eq!(r["changed"], true, "{r}");
    let after = fs::read_to_string(&path).unwrap();
    // One line differs, and only in the binary's path.
    let changed: Vec<_> = moved
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        vec![(
            "BinaryName = '/usr/local/nvidia/toolkit/nvidia-container-runtime'",
            // In the file's own quoting.
            "BinaryName = '/usr/bin/nvidia-container-runtime'"
        )],
        "{after}"
    );
    assert_eq!(moved.lines().count(), after.lines().count(), "{after}");
    let data = parsed(&after);
    let rts = runtimes_v2(&data);
    assert!(rts.get("runc").is_none(), "a runc table was added: {after}");
    assert_eq!(rts["nvidia"]["options"]["SystemdCgroup"], true);
    assert_eq!(
        rts["nvidia"]["base_runtime_spec"],
        "/etc/containerd/base-runtime-spec.json"
    );
}

#[test]
fn a_new_runtime_copies_the_default_runtime_whatever_its_name() {
    let (_d, path) = setup(Some(EKS_GPU));
    let extra =
        json!([{"name": "nvidia-cdi", "binary_path": "/usr/bin/nvidia-container-runtime.cdi"}]);
    let r = run(json!({"path": path, "extra_runtimes": extra}));
    assert_eq!(r["changed"], true, "{r}");
    let data = parsed(&fs::read_to_string(&path).unwrap());
    let rts = runtimes_v2(&data);
    assert!(rts.get("runc").is_none());
    assert_eq!(rts["nvidia-cdi"]["options"]["SystemdCgroup"], true);
    assert_eq!(
        rts["nvidia-cdi"]["options"]["BinaryName"],
        "/usr/bin/nvidia-container-runtime.cdi"
    );
    assert_eq!(
        rts["nvidia-cdi"]["base_runtime_spec"],
        "/etc/containerd/base-runtime-spec.json"
    );
    assert_eq!(
        rts["nvidia"],
        parsed(EKS_GPU)["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["nvidia"]
    );
    // And back: absent takes out what it added and leaves the default set by nodeadm alone.
    let r = run(json!({"path": path, "state": "absent", "name": "nvidia-cdi"}));
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(fs::read_to_string(&path).unwrap(), EKS_GPU);
}

#[test]
fn absent_refuses_to_remove_a_default_someone_else_set() {
    let (_d, path) = setup(Some(EKS_GPU));
    let r = run(json!({"path": path, "state": "absent"}));
    assert_eq!(r["failed"], true, "{r}");
    let msg = r["msg"].as_str().unwrap();
    assert!(
        msg.contains("default runtime") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), EKS_GPU);
}

#[test]
fn a_default_set_here_is_undone_with_its_quoting_and_one_set_elsewhere_stays() {
    let single = COMMENTED.replace(
        "default_runtime_name = \"runc\"",
        "default_runtime_name = 'runc'",
    );
    let (_d, path) = setup(Some(&single));
    run(json!({"path": path, "set_as_default": true}));
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("default_runtime_name = \"nvidia\" # containerd_runtime: was 'runc'"));
    // set_as_default: false undoes this module's own default; absent then gives back the original bytes.
    let r = run(json!({"path": path}));
    assert_eq!(r["default_runtime_name"], "runc", "{r}");
    run(json!({"path": path, "state": "absent"}));
    assert_eq!(fs::read_to_string(&path).unwrap(), single);

    // With no default before, the marker says so, and absent removes the key again.
    let bare = COMMENTED.replace("      default_runtime_name = \"runc\"\n\n", "");
    let (_d, path) = setup(Some(&bare));
    run(json!({"path": path, "set_as_default": true}));
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("# containerd_runtime: was unset"), "{text}");
    let r = run(json!({"path": path, "state": "absent"}));
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(fs::read_to_string(&path).unwrap(), bare);
}

#[test]
fn with_no_base_the_kubelet_cgroup_driver_decides_systemd_cgroup() {
    for (driver, want) in [("systemd", true), ("cgroupfs", false)] {
        let dir = tempfile::tempdir().unwrap();
        let kubelet = dir.path().join("config.yaml");
        fs::write(
            &kubelet,
            format!("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: {driver}\n"),
        )
        .unwrap();
        let path = dir.path().join("config.toml");
        fs::write(&path, "version = 2\n").unwrap();
        let r = run(json!({"path": path, "kubelet_config": kubelet}));
        assert_eq!(r["changed"], true, "{r}");
        assert_eq!(r["runtime"]["options"]["SystemdCgroup"], want, "{r}");
        assert!(!r["warnings"].to_string().contains("SystemdCgroup"), "{r}");
    }
}

#[test]
fn absent_on_a_stock_config_with_empty_imports_changes_nothing() {
    // `containerd config default` of 1.7 and 2.x begins so.
    let stock = "imports = []\nversion = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      default_runtime_name = \"runc\"\n";
    let (_d, path) = setup(Some(stock));
    let r = run(json!({"path": path, "state": "absent"}));
    assert_eq!(r["changed"], false, "{r}");
    assert_eq!(r["restart_required"], false, "{r}");
    assert_eq!(fs::read_to_string(&path).unwrap(), stock);
}

#[test]
fn drop_in_mode_leaves_a_runtime_that_is_already_in_the_config_where_it_is() {
    let (d, path) = setup(Some(EKS_GPU));
    let drop_in = d.path().join("conf.d/99-nvidia.toml");
    let r = run(json!({"path": path, "drop_in_path": drop_in, "config_version": 3}));
    assert_eq!(r["changed"], false, "{r}");
    assert_eq!(r["drop_in_used"], false, "{r}");
    assert!(!drop_in.exists());
    assert_eq!(fs::read_to_string(&path).unwrap(), EKS_GPU);
    assert!(r["warnings"].to_string().contains("edited there"), "{r}");
}

#[test]
fn an_existing_runtime_without_a_cgroup_driver_takes_the_default_runtimes_systemd_one() {
    // k3s on a systemd host: runc uses the systemd driver, the `nvidia` runtime k3s adds names none.
    let k3s = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"nvidia\"]\n  runtime_type = \"io.containerd.runc.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"nvidia\".options]\n  BinaryName = \"/usr/bin/nvidia-container-runtime\"\n";
    let (_d, path) = setup(Some(k3s));
    let r = run(json!({"path": path}));
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["runtime"]["options"]["SystemdCgroup"], true, "{r}");
    let after = fs::read_to_string(&path).unwrap();
    assert_eq!(
        after,
        k3s.replace(
            "  BinaryName = \"/usr/bin/nvidia-container-runtime\"\n",
            "  BinaryName = \"/usr/bin/nvidia-container-runtime\"\n  SystemdCgroup = true\n"
        )
    );
    // A cgroupfs base (false, or no key) adds nothing.
    let cgroupfs = k3s.replace("SystemdCgroup = true", "SystemdCgroup = false");
    let (_d, path) = setup(Some(&cgroupfs));
    let r = run(json!({"path": path}));
    assert_eq!(r["changed"], false, "{r}");
}

#[test]
fn new_values_follow_the_files_quoting_and_a_new_drop_in_starts_at_column_zero() {
    // A version 3 config written in literal strings, as containerd 2.x's `config default` writes it.
    let v3 = "version = 3\n\n[plugins]\n  [plugins.'io.containerd.cri.v1.runtime']\n    [plugins.'io.containerd.cri.v1.runtime'.containerd]\n      default_runtime_name = 'runc'\n\n      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]\n        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n          runtime_type = 'io.containerd.runc.v2'\n\n          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n            SystemdCgroup = true\n";
    let (d, path) = setup(Some(v3));
    run(json!({"path": path, "set_as_default": true}));
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("BinaryName = '/usr/bin/nvidia-container-runtime'")
            && text.contains("default_runtime_name = 'nvidia' # containerd_runtime: was 'runc'"),
        "{text}"
    );
    assert!(!text.contains("\"/usr/bin"), "{text}");
    run(json!({"path": path, "state": "absent"}));
    assert_eq!(fs::read_to_string(&path).unwrap(), v3);

    // Drop-in mode with no containerd installed (a version 3 config merges deeply): the new drop-in's
    // tables and keys start at column 0 and use the config's quoting.
    let drop_in = d.path().join("conf.d/99-nvidia.toml");
    let r = run(json!({"path": path, "drop_in_path": drop_in}));
    assert_eq!(r["drop_in_used"], true, "{r}");
    let dropped = fs::read_to_string(&drop_in).unwrap();
    assert!(
        dropped.lines().all(|l| !l.starts_with(' ')),
        "indented drop-in:\n{dropped}"
    );
    assert!(
        dropped.contains("BinaryName = '/usr/bin/nvidia-container-runtime'"),
        "{dropped}"
    );
}

#[test]
fn a_config_k3s_generates_warns_that_k3s_rewrites_it() {
    let k3s =
        "\n# File generated by k3s. DO NOT EDIT. Use config.toml.tmpl instead.\nversion = 2\n";
    let (_d, path) = setup(Some(k3s));
    let r = run(json!({"path": path}));
    assert!(r["warnings"].to_string().contains("k3s/RKE2"), "{r}");
}

#[test]
fn a_key_quoted_two_ways_in_two_headers_keeps_its_bytes_when_nothing_changes() {
    // EKS nodeadm's version 3 template writes `'io.containerd.cri.v1.images'` in one header and
    // `"io.containerd.cri.v1.images"` in the next; the nvidia runtime is already right.
    let eks = "version = 3\n\n[plugins.'io.containerd.cri.v1.images']\ndiscard_unpacked_layers = true\n\n[plugins.\"io.containerd.cri.v1.images\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\ndefault_runtime_name = \"nvidia\"\n\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia]\nruntime_type = \"io.containerd.runc.v2\"\n\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia.options]\nBinaryName = \"/usr/bin/nvidia-container-runtime\"\nSystemdCgroup = true\n";
    let (_d, path) = setup(Some(eks));
    let r = run(json!({"path": path}));
    assert_eq!(r["changed"], false, "{r}");
    assert_eq!(fs::read_to_string(&path).unwrap(), eks);
}
