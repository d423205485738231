//! Whole module runs, in-process, for the inputs it must refuse before writing anything: a wrong fingerprint,
//! secret key material, conflicting list files it was told not to remove, a missing driver when required.
//! (Installs through real apt are proven on a Podman node by tests/toolkit/run.)

use std::path::Path;

use openpgp::cert::prelude::*;
use openpgp::serialize::SerializeInto;
use sequoia_openpgp as openpgp;
use serde_json::{json, Map, Value};

fn cert() -> Cert {
    CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid("Test Repository <repo@example.invalid>")
        .add_signing_subkey()
        .generate()
        .unwrap()
        .0
}

fn run(args: Value) -> Value {
    let Value::Object(mut map) = args else {
        unreachable!()
    };
    map.insert("_ansible_module_name".into(), json!("nvidia_toolkit"));
    ansible_module::execute_args(
        "nvidia_toolkit",
        &nvidia_toolkit::spec(),
        Map::from_iter(map),
        nvidia_toolkit::run,
    )
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(dir);
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p)
            } else {
                vec![format!(
                    "{}={}",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                )]
            }
        })
        .collect()
}

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sources.list.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("keyrings")).unwrap();
        Node { dir }
    }
    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }
    fn args(&self, key: &str, fingerprint: &str) -> Value {
        json!({
            "key": key,
            "fingerprint": fingerprint,
            "version": "1.17.8-1",
            "repo_url": "file:/srv/aptrepo/good/stable/deb/$(ARCH)",
            "keyring_path": self.path("keyrings/nvidia.gpg"),
            "list_path": self.path("sources.list.d/nvidia-container-toolkit.list"),
            "driver_check": "skip",
        })
    }
}

#[test]
fn a_wrong_fingerprint_is_refused_and_nothing_is_written() {
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.armored().to_vec().unwrap()).unwrap();
    let before = listing(node.dir.path());
    let out = run(node.args(&armored, "C95B321B61E88C1809C4F759DDCAE044F796ECB0"));
    assert_eq!(out["failed"], json!(true), "{out}");
    let msg = out["msg"].as_str().unwrap();
    assert!(
        msg.contains(&c.fingerprint().to_hex()) && msg.contains("C95B321B"),
        "{msg}"
    );
    assert_eq!(listing(node.dir.path()), before);
}

#[test]
fn a_key_file_with_secret_material_is_refused() {
    let node = Node::new();
    let c = cert();
    let key_file = node.path("secret.asc");
    std::fs::write(&key_file, c.as_tsk().armored().to_vec().unwrap()).unwrap();
    let before = listing(node.dir.path());
    let out = run(node.args(&key_file, &c.fingerprint().to_hex()));
    assert_eq!(out["failed"], json!(true), "{out}");
    assert!(
        out["msg"].as_str().unwrap().contains("secret key material"),
        "{out}"
    );
    assert_eq!(listing(node.dir.path()), before);
}

#[test]
fn conflicting_lists_are_named_and_kept_when_told_to_fail() {
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.armored().to_vec().unwrap()).unwrap();
    std::fs::write(
        node.path("sources.list.d/nvidia-docker.list"),
        "deb https://nvidia.github.io/nvidia-docker/x /\n",
    )
    .unwrap();
    std::fs::write(
        node.path("sources.list.d/mirror.list"),
        "deb file:/srv/aptrepo/good/stable/deb/amd64 /\n",
    )
    .unwrap();
    let before = listing(node.dir.path());
    let mut args = node.args(&armored, &c.fingerprint().to_hex());
    args["conflicts"] = json!("fail");
    let out = run(args);
    assert_eq!(out["failed"], json!(true), "{out}");
    let msg = out["msg"].as_str().unwrap();
    assert!(
        msg.contains("nvidia-docker.list") && msg.contains("mirror.list"),
        "{msg}"
    );
    assert_eq!(listing(node.dir.path()), before);
}

#[test]
fn a_required_driver_that_is_missing_fails_first() {
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.armored().to_vec().unwrap()).unwrap();
    let mut args = node.args(&armored, &c.fingerprint().to_hex());
    args["driver_check"] = json!("required");
    if Path::new(nvidia_toolkit::DRIVER_VERSION_FILE).exists() {
        return; // a real GPU host: nothing to prove here
    }
    let before = listing(node.dir.path());
    let out = run(args);
    assert_eq!(out["failed"], json!(true), "{out}");
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .contains("no NVIDIA driver is loaded"),
        "{out}"
    );
    assert_eq!(listing(node.dir.path()), before);
}

#[test]
fn check_mode_predicts_the_files_and_writes_nothing() {
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.armored().to_vec().unwrap()).unwrap();
    let mut args = node.args(&armored, &c.fingerprint().to_hex());
    args["_ansible_check_mode"] = json!(true);
    args["_ansible_diff"] = json!(true);
    let before = listing(node.dir.path());
    let out = run(args);
    assert_eq!(out["changed"], json!(true), "{out}");
    assert_eq!(out.get("failed"), None, "{out}");
    let diff = out["diff"].to_string();
    assert!(
        diff.contains("signed-by=") && diff.contains("binary keyring"),
        "{diff}"
    );
    assert_eq!(listing(node.dir.path()), before);
}

#[test]
fn an_inline_secret_key_is_refused_and_its_text_is_masked() {
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.as_tsk().armored().to_vec().unwrap()).unwrap();
    let before = listing(node.dir.path());
    let out = run(node.args(&armored, &c.fingerprint().to_hex()));
    assert_eq!(out["failed"], json!(true), "{out}");
    assert!(
        out["msg"].as_str().unwrap().contains("secret key material"),
        "{out}"
    );
    let text = out.to_string();
    for line in armored.lines().filter(|l| l.len() > 40) {
        assert!(
            !text.contains(line),
            "secret key line in the answer: {text}"
        );
    }
    assert_eq!(
        out["invocation"]["module_args"]["key"],
        json!("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
    );
    assert_eq!(listing(node.dir.path()), before);
}

#[test]
fn an_inline_secret_key_is_masked_even_when_the_fingerprint_is_wrong() {
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.as_tsk().armored().to_vec().unwrap()).unwrap();
    let out = run(node.args(&armored, "C95B321B61E88C1809C4F759DDCAE044F796ECB0"));
    assert_eq!(out["failed"], json!(true), "{out}");
    let text = out.to_string();
    for line in armored.lines().filter(|l| l.len() > 40) {
        assert!(
            !text.contains(line),
            "secret key line in the answer: {text}"
        );
    }
}

#[test]
fn an_inline_public_key_stays_visible_in_the_invocation() {
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.armored().to_vec().unwrap()).unwrap();
    let out = run(node.args(&armored, "C95B321B61E88C1809C4F759DDCAE044F796ECB0"));
    assert_eq!(out["failed"], json!(true), "{out}");
    assert_eq!(out["invocation"]["module_args"]["key"], json!(armored));
}

#[test]
fn relative_and_dotdot_paths_are_refused_before_anything_is_touched() {
    let c = cert();
    let armored = String::from_utf8(c.armored().to_vec().unwrap()).unwrap();
    for (option, value) in [
        ("keyring_path", "keyring.gpg"),
        ("list_path", "../nvidia.list"),
        ("list_path", "sources.list.d/nvidia.list"),
        ("keyring_path", "/usr/share/keyrings/../../../tmp/k.gpg"),
    ] {
        let node = Node::new();
        let before = listing(node.dir.path());
        let mut args = node.args(&armored, &c.fingerprint().to_hex());
        args[option] = json!(value);
        let out = run(args);
        assert_eq!(out["failed"], json!(true), "{option}={value}: {out}");
        let msg = out["msg"].as_str().unwrap();
        assert!(
            msg.contains(option) && msg.contains("absolute") && msg.contains(value),
            "{option}={value}: {msg}"
        );
        assert_eq!(listing(node.dir.path()), before, "{option}={value}");
    }
}

#[test]
fn a_run_waits_for_the_lock_another_run_holds_on_the_list_folder() {
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.armored().to_vec().unwrap()).unwrap();
    let list = node.path("sources.list.d/nvidia-container-toolkit.list");
    let held = ansible_module::safe_file::DirLock::acquire(
        Path::new(&list),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let before = listing(node.dir.path());
    let mut args = node.args(&armored, &c.fingerprint().to_hex());
    args["lock_timeout"] = json!(1);
    let out = run(args);
    assert_eq!(out["failed"], json!(true), "{out}");
    let msg = out["msg"].as_str().unwrap();
    assert!(
        msg.contains("cannot lock") && msg.contains("sources.list.d"),
        "{msg}"
    );
    assert_eq!(listing(node.dir.path()), before);
    drop(held);
}

#[test]
fn min_driver_version_takes_the_same_shapes_as_gpu_validate() {
    // One rule for both modules (node_facts::version::is_minimum_version): the role passes one value.
    let node = Node::new();
    let c = cert();
    let armored = String::from_utf8(c.armored().to_vec().unwrap()).unwrap();
    for bad in ["470..82", ".470", "470.82.01-beta", "latest"] {
        let mut args = node.args(&armored, &c.fingerprint().to_hex());
        args["min_driver_version"] = json!(bad);
        let out = run(args);
        assert_eq!(out["failed"], json!(true), "{:?}: {}", bad, out);
        assert!(
            out["msg"].as_str().unwrap().contains("min_driver_version"),
            "{:?}: {}",
            bad,
            out
        );
    }
    let mut args = node.args(&armored, &c.fingerprint().to_hex());
    args["min_driver_version"] = json!("535");
    args["_ansible_check_mode"] = json!(true);
    let out = run(args);
    assert!(
        !out["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("min_driver_version"),
        "535 refused: {out}"
    );
}
