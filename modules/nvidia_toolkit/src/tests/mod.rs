//! The run's steps (plan, apply, report) against the in-memory backend of `fake_backend.rs`: which backend
//! methods a run calls, in which order, and what it leaves on disk, for check mode, a second run, a failing
//! install and a pin the repository lacks. Real apt is tested on Podman nodes by `tests/toolkit/run`.

mod fake_backend;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ansible_module::Module;
use openpgp::cert::prelude::*;
use openpgp::serialize::SerializeInto;
use sequoia_openpgp as openpgp;
use serde_json::{json, Value};

use crate::backend::{Conflict, Installed};
use crate::params::{Params, DEFAULT_PACKAGES};
use fake_backend::{Call, FakeBackend};

const REPO_URL: &str = "file:/srv/repo/stable/deb/$(ARCH)";

fn packages() -> Vec<String> {
    DEFAULT_PACKAGES.iter().map(|s| s.to_string()).collect()
}

/// A repository offering 1.18.0-1 and 1.17.8-1 of the four packages; nothing installed.
fn node() -> FakeBackend {
    FakeBackend::new(&packages(), &["1.18.0-1", "1.17.8-1"])
}

/// A signing key as the repository's owner would publish it: armored public certificate and its fingerprint.
fn signing_key() -> (String, String) {
    let (cert, _) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid("Test Repository <repo@example.invalid>")
        .add_signing_subkey()
        .generate()
        .unwrap();
    let armored = String::from_utf8(cert.armored().to_vec().unwrap()).unwrap();
    (armored, cert.fingerprint().to_hex())
}

/// One whole run through `converge`, as Ansible would start it: the answer as JSON, or the failure message.
fn converge(b: &FakeBackend, key: &(String, String), extra: Value) -> Result<Value, String> {
    let mut args = json!({
        "key": key.0,
        "fingerprint": key.1,
        "repo_url": REPO_URL,
        "driver_check": "skip",
        "lock_timeout": 5,
    });
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    let Value::Object(args) = args else {
        unreachable!()
    };
    let mut m = Module::from_args("nvidia_toolkit", &crate::spec(), args)?;
    let p = Params::from_module(&m).map_err(|e| format!("{e:#}"))?;
    match crate::converge(&mut m, &p, b, Path::new("/nonexistent/driver/version")) {
        Ok(r) => Ok(m.finish(r)),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Every file under the node's root with its bytes.
fn files_on(b: &FakeBackend) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(b.root.path(), &mut out);
    out
}

fn all_at(version: &str, held: bool) -> BTreeMap<String, Installed> {
    packages()
        .into_iter()
        .map(|p| {
            (
                p,
                Installed {
                    version: version.into(),
                    held,
                },
            )
        })
        .collect()
}

fn msg(out: &Value) -> &str {
    out["msg"].as_str().unwrap()
}

#[test]
fn a_fresh_install_then_a_second_run_that_calls_nothing_that_changes_the_node() {
    let b = node();
    let key = signing_key();
    let args = json!({"version": "1.17.8-1", "hold": true});

    let out = converge(&b, &key, args.clone()).unwrap();
    assert_eq!(
        b.take_calls(),
        vec![
            Call::Conflicts,
            Call::Installed,
            Call::WaitForLock,
            Call::Refresh,
            Call::Offered,
            Call::Install(packages(), "1.17.8-1".into()),
            Call::SetHold(packages(), true),
            Call::Installed,
        ]
    );
    assert_eq!(out["changed"], json!(true), "{out}");
    assert_eq!(out["apt_called"], json!(true));
    assert!(
        msg(&out).contains("wrote")
            && msg(&out).contains("installed version 1.17.8-1")
            && msg(&out).contains("held nvidia-container-toolkit"),
        "{out}"
    );
    assert_eq!(out["versions"]["libnvidia-container1"], json!("1.17.8-1"));
    assert_eq!(*b.installed.borrow(), all_at("1.17.8-1", true));
    let list = std::fs::read_to_string(b.list_path()).unwrap();
    assert!(list.contains("deb [signed-by="), "{list}");
    let written = files_on(&b);

    let out = converge(&b, &key, args).unwrap();
    let calls = b.take_calls();
    assert_eq!(
        calls,
        vec![Call::Conflicts, Call::Installed, Call::Installed]
    );
    assert!(!calls.iter().any(Call::changes_the_node));
    assert_eq!(out["changed"], json!(false), "{out}");
    assert_eq!(out["apt_called"], json!(false));
    assert_eq!(msg(&out), "already as requested");
    assert_eq!(out.get("diff"), None, "{out}");
    assert_eq!(files_on(&b), written);
}

#[test]
fn check_mode_calls_no_method_that_changes_the_node_and_writes_nothing() {
    let key = signing_key();
    let check = |extra: Value| {
        let mut args = json!({"_ansible_check_mode": true, "_ansible_diff": true});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        args
    };

    // A pin on a fresh node: everything is predicted from the plan alone.
    let b = node();
    let before = files_on(&b);
    let out = converge(
        &b,
        &key,
        check(json!({"version": "1.17.8-1", "hold": true})),
    )
    .unwrap();
    assert_eq!(b.take_calls(), vec![Call::Conflicts, Call::Installed]);
    assert_eq!(out["changed"], json!(true), "{out}");
    assert!(
        msg(&out).contains("installed version 1.17.8-1") && msg(&out).contains("held"),
        "{out}"
    );
    assert!(out["diff"].to_string().contains("signed-by="), "{out}");
    assert_eq!(files_on(&b), before);
    assert!(b.installed.borrow().is_empty());

    // latest reads the index already on the node, and only reads it.
    b.index_fetched.set(true);
    let out = converge(&b, &key, check(json!({"state": "latest"}))).unwrap();
    assert_eq!(
        b.take_calls(),
        vec![Call::Conflicts, Call::Installed, Call::Offered]
    );
    assert!(msg(&out).contains("installed version 1.18.0-1"), "{out}");
    b.index_fetched.set(false);
    let out = converge(&b, &key, check(json!({"state": "latest"}))).unwrap();
    assert!(
        msg(&out).contains("installs the repository's newest version"),
        "{out}"
    );
    assert!(!b.take_calls().iter().any(Call::changes_the_node));
    assert_eq!(files_on(&b), before);

    // absent on an installed node: predicted, nothing removed.
    converge(&b, &key, json!({"version": "1.17.8-1"})).unwrap();
    b.take_calls();
    let installed = files_on(&b);
    let out = converge(&b, &key, check(json!({"state": "absent"}))).unwrap();
    assert_eq!(b.take_calls(), vec![Call::Installed]);
    assert_eq!(out["changed"], json!(true), "{out}");
    assert_eq!(out["apt_called"], json!(false), "{out}");
    assert!(msg(&out).contains("removed packages"), "{out}");
    assert_eq!(files_on(&b), installed);
    assert_eq!(*b.installed.borrow(), all_at("1.17.8-1", false));
}

#[test]
fn a_failing_install_puts_the_repository_files_back_and_says_why() {
    let mut b = node();
    let key = signing_key();
    // An older list of ours and an old NVIDIA list the run removes before it installs.
    std::fs::write(b.list_path(), "deb https://old.example/repo /\n").unwrap();
    let old = b.path("sources.list.d/nvidia-docker.list");
    std::fs::write(&old, "deb https://nvidia.github.io/nvidia-docker/x /\n").unwrap();
    b.conflicts = vec![Conflict {
        path: old,
        why: "an old NVIDIA repository list".into(),
        removable: true,
    }];
    b.install_error = Some("E: Sub-process /usr/bin/dpkg returned an error code (1)".into());
    let before = files_on(&b);

    let err = converge(&b, &key, json!({"version": "1.17.8-1", "hold": true})).unwrap_err();
    assert!(
        err.contains("repository files were put back as they were")
            && err.contains("dpkg returned an error code (1)"),
        "{err}"
    );
    assert_eq!(files_on(&b), before);
    let calls = b.take_calls();
    assert!(
        calls.contains(&Call::Install(packages(), "1.17.8-1".into())),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| matches!(c, Call::SetHold(..))),
        "{calls:?}"
    );
    assert!(b.installed.borrow().is_empty());
}

#[test]
fn a_pin_the_repository_lacks_fails_before_any_package_is_touched() {
    let b = node();
    let key = signing_key();
    let before = files_on(&b);
    let err = converge(&b, &key, json!({"version": "9.9.9-1", "hold": true})).unwrap_err();
    assert!(
        err.contains(&format!(
            "{} has no version 9.9.9-1 of {}",
            REPO_URL,
            packages().join(" ")
        )) && err.contains("1.18.0-1, 1.17.8-1")
            && err.contains("put back"),
        "{err}"
    );
    let calls = b.take_calls();
    assert_eq!(
        calls,
        vec![
            Call::Conflicts,
            Call::Installed,
            Call::WaitForLock,
            Call::Refresh,
            Call::Offered,
        ]
    );
    // The list and keyring had to be in place for the index to be fetched; they are gone again.
    assert_eq!(files_on(&b), before);
    assert!(b.installed.borrow().is_empty());
}

#[test]
fn a_package_already_at_the_pin_needs_no_offer_from_the_repository() {
    // The repository dropped 1.16.0-1, which three packages already have; the fourth is still offered at it.
    let mut b = node();
    let key = signing_key();
    let mut installed = all_at("1.16.0-1", false);
    installed.remove("libnvidia-container1");
    *b.installed.borrow_mut() = installed;
    b.repository.insert(
        "libnvidia-container1".into(),
        vec!["1.18.0-1".into(), "1.16.0-1".into()],
    );
    let out = converge(&b, &key, json!({"version": "1.16.0-1"})).unwrap();
    assert!(msg(&out).contains("installed version 1.16.0-1"), "{out}");
    assert_eq!(*b.installed.borrow(), all_at("1.16.0-1", false));
}

#[test]
fn latest_at_the_newest_already_installs_nothing_and_only_sets_the_hold() {
    let b = node();
    let key = signing_key();
    converge(&b, &key, json!({"version": "1.18.0-1"})).unwrap();
    b.take_calls();
    let out = converge(&b, &key, json!({"state": "latest", "hold": true})).unwrap();
    assert_eq!(
        b.take_calls(),
        vec![
            Call::Conflicts,
            Call::Installed,
            Call::WaitForLock,
            Call::Refresh,
            Call::Offered,
            Call::SetHold(packages(), true),
            Call::Installed,
        ]
    );
    assert_eq!(msg(&out), format!("held {}", packages().join(" ")));
    assert_eq!(*b.installed.borrow(), all_at("1.18.0-1", true));
}

#[test]
fn absent_removes_the_packages_then_the_files_and_a_second_run_changes_nothing() {
    let b = node();
    let key = signing_key();
    converge(&b, &key, json!({"version": "1.17.8-1"})).unwrap();
    b.take_calls();
    let out = converge(&b, &key, json!({"state": "absent"})).unwrap();
    assert_eq!(
        b.take_calls(),
        vec![Call::Installed, Call::WaitForLock, Call::Remove(packages())]
    );
    assert_eq!(out["changed"], json!(true), "{out}");
    assert!(files_on(&b).is_empty(), "{:?}", files_on(&b));
    assert!(b.installed.borrow().is_empty());

    let out = converge(&b, &key, json!({"state": "absent"})).unwrap();
    assert_eq!(b.take_calls(), vec![Call::Installed]);
    assert_eq!(out["changed"], json!(false), "{out}");
    assert_eq!(msg(&out), "already absent");
}
