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
    let r = run(json!({"path": dir.path().join("config.toml")}));
    let w = r["warnings"].to_string();
    assert!(w.contains("SystemdCgroup"), "{r}");
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
    assert!(p.no_base);
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
