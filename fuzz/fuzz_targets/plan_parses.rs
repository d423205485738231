//! The edit never panics, and whatever it writes is valid TOML that it accepts again.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((opts, input)) = common::decode(data) else {
        return;
    };
    let Ok(plan) = containerd_runtime::plan::plan(input, &opts) else {
        return;
    };
    if let Some(after) = plan.config.after.as_deref() {
        if let Err(e) = after.parse::<toml_edit::DocumentMut>() {
            panic!("the edit wrote invalid TOML: {e}\n--- input\n{input:?}\n--- output\n{after}");
        }
        if let Err(e) = containerd_runtime::plan::plan(Some(after), &opts) {
            panic!("the edit refuses its own output: {e:#}\n--- output\n{after}");
        }
    }
});
