//! A whole module run in-process (`execute`, `execute_args`): the args file, run errors, secrets learned at
//! run time, check mode without support, `_ansible_inject_invocation`, and validation errors that must name
//! the option (an integer beyond i64, a list of dicts given a plain string).

use ansible_module::{execute, execute_args, Kind, Module, ModuleSpec, Opt, Response};
use serde_json::{json, Map, Value};

fn spec() -> ModuleSpec {
    ModuleSpec::new(vec![
        Opt::str("name").required(),
        Opt::str("token").no_log(),
    ])
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ok(m: &mut Module) -> anyhow::Result<Response> {
    m.add_no_log_value("learned-at-run-time");
    Ok(Response::new(true)
        .msg(format!("hello {}", m.str("name").unwrap()))
        .set("seen", "the learned-at-run-time value"))
}

fn err(m: &mut Module) -> anyhow::Result<Response> {
    let token = m.str("token").unwrap_or("").to_string();
    Err(anyhow::anyhow!("no route to host").context(format!("cannot log in with {}", token)))
}

#[test]
fn a_run_error_fails_with_its_chain_and_masked_invocation() {
    let out = execute_args(
        "demo",
        &spec(),
        args(json!({"name": "n", "token": "t0ps3cret"})),
        err,
    );
    assert_eq!(out["failed"], json!(true));
    assert_eq!(
        out["msg"],
        json!("cannot log in with ********: no route to host")
    );
    assert!(out.get("changed").is_none(), "like fail_json: {out}");
    assert_eq!(
        out["invocation"]["module_args"],
        json!({"name": "n", "token": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"})
    );
}

#[test]
fn values_learned_while_running_are_masked() {
    let out = execute_args("demo", &spec(), args(json!({"name": "n"})), ok);
    assert_eq!(out["changed"], json!(true));
    assert_eq!(out["seen"], json!("the ******** value"));
}

#[test]
fn invocation_can_be_left_out() {
    let with = execute_args("demo", &spec(), args(json!({"name": "n"})), ok);
    assert_eq!(
        with["invocation"]["module_args"],
        json!({"name": "n", "token": null})
    );
    let without = execute_args(
        "demo",
        &spec(),
        args(json!({"name": "n", "_ansible_inject_invocation": false})),
        ok,
    );
    assert!(without.get("invocation").is_none(), "{without}");
}

#[test]
fn check_mode_without_support_skips_after_validation() {
    let out = execute_args(
        "demo",
        &spec(),
        args(json!({"name": "n", "_ansible_check_mode": true})),
        ok,
    );
    assert_eq!(out["skipped"], json!(true));
    assert_eq!(
        out["msg"],
        json!("remote module (demo) does not support check mode")
    );
    let bad = execute_args(
        "demo",
        &spec(),
        args(json!({"_ansible_check_mode": true})),
        ok,
    );
    assert_eq!(bad["msg"], json!("missing required arguments: name"));
}

#[test]
fn the_args_file_is_read_or_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("args");
    let path = p.to_str().unwrap();
    let missing = execute("demo", &spec(), Some(path), ok);
    assert!(missing["msg"]
        .as_str()
        .unwrap()
        .starts_with("cannot read the arguments file"));
    std::fs::write(&p, "[1, 2]").unwrap();
    let list = execute("demo", &spec(), Some(path), ok);
    assert!(list["msg"]
        .as_str()
        .unwrap()
        .ends_with("must hold a JSON object, not list"));
    std::fs::write(&p, "{\"name\": ").unwrap();
    let broken = execute("demo", &spec(), Some(path), ok);
    assert!(broken["msg"]
        .as_str()
        .unwrap()
        .contains("is not valid JSON"));
    // Non-ASCII arrives \u-escaped, as Ansible writes it; unknown _ansible_ keys are ignored.
    std::fs::write(
        &p,
        r#"{"name": "caf\u00e9 \ud83d\ude80", "_ansible_future_key": 1}"#,
    )
    .unwrap();
    let good = execute("demo", &spec(), Some(path), ok);
    assert_eq!(good["msg"], json!("hello café 🚀"));
    let none = execute("demo", &spec(), None, ok);
    assert_eq!(none["failed"], json!(true));
}

fn never_runs(_: &mut Module) -> anyhow::Result<Response> {
    panic!("validation should have failed first")
}

#[test]
fn an_int_beyond_i64_fails_instead_of_reading_as_missing() {
    let spec = ModuleSpec::new(vec![Opt::int("config_version").default(2)]);
    let range = "this module takes integers from -9223372036854775808 to 9223372036854775807";
    for value in [json!(9223372036854775808u64), json!("9223372036854775808")] {
        let out = execute_args(
            "demo",
            &spec,
            args(json!({ "config_version": value })),
            never_runs,
        );
        assert_eq!(out["failed"], json!(true), "{out}");
        let msg = out["msg"].as_str().unwrap();
        assert!(
            msg.starts_with("argument 'config_version' is of type ")
                && msg.ends_with(&format!(
                    "9223372036854775808 is beyond the signed 64-bit range: {}",
                    range
                )),
            "{msg}"
        );
    }
    // The largest value that fits still arrives as given.
    let out = execute_args(
        "demo",
        &spec,
        args(json!({"config_version": i64::MAX})),
        |m: &mut Module| Ok(Response::new(false).set("seen", json!(m.int("config_version")))),
    );
    assert_eq!(out["seen"], json!(i64::MAX), "{out}");
}

#[test]
fn a_list_of_dicts_given_a_plain_string_names_the_option() {
    let runtime = ModuleSpec::new(vec![Opt::str("name").required()]);
    let spec = ModuleSpec::new(vec![
        Opt::list("extra_runtimes", Kind::Dict).suboptions(runtime)
    ]);
    let out = execute_args(
        "demo",
        &spec,
        args(json!({"extra_runtimes": "nvidia-cdi"})),
        never_runs,
    );
    assert_eq!(out["failed"], json!(true), "{out}");
    assert_eq!(
        out["msg"],
        json!(
            "Value 'nvidia-cdi' in the sub parameter field 'extra_runtimes' must be a dict (or a JSON or \
             key=value string): dictionary requested, could not parse JSON or key=value"
        )
    );
    // The same for one bad string among good elements.
    let out = execute_args(
        "demo",
        &spec,
        args(json!({"extra_runtimes": [{"name": "a"}, "nvidia-cdi"]})),
        never_runs,
    );
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .starts_with("Value 'nvidia-cdi' in the sub parameter field 'extra_runtimes'"),
        "{out}"
    );
}
