//! Proxy credentials in the environment are masked in whatever the module answers. A file of its own: the
//! test sets process-wide environment variables, which must not reach the other tests' runs.

use serde_json::{json, Map, Value};

#[test]
fn proxy_passwords_from_the_environment_never_reach_the_answer() {
    let secret = "S3cr3t-Pw-8zq";
    std::env::set_var(
        "http_proxy",
        format!("http://alice:{secret}@127.0.0.1:3128/"),
    );
    std::env::set_var("HTTPS_PROXY", "http://bob:p%40ss-w0rd@127.0.0.1:3128/");
    let dir = tempfile::tempdir().unwrap();
    // Any message that quotes the credentials stands in for apt's, which quotes the proxy URL it failed on.
    let key = dir
        .path()
        .join(format!("http://alice:{secret}@127.0.0.1:3128/ p@ss-w0rd"));
    let mut args = Map::new();
    args.insert("_ansible_module_name".into(), json!("nvidia_toolkit"));
    args.insert("key".into(), json!(key.display().to_string()));
    args.insert(
        "fingerprint".into(),
        json!("C95B321B61E88C1809C4F759DDCAE044F796ECB0"),
    );
    args.insert("driver_check".into(), json!("skip"));
    args.insert(
        "keyring_path".into(),
        json!(dir.path().join("k.gpg").display().to_string()),
    );
    args.insert(
        "list_path".into(),
        json!(dir.path().join("n.list").display().to_string()),
    );
    let out: Value = ansible_module::execute_args(
        "nvidia_toolkit",
        &nvidia_toolkit::spec(),
        args,
        nvidia_toolkit::run,
    );
    assert_eq!(out["failed"], json!(true), "{out}");
    let text = out.to_string();
    assert!(text.contains("cannot read the key file"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains("p@ss-w0rd"), "{text}");
    assert!(!text.contains("alice:"), "{text}");
}
