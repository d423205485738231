//! Applying the edit twice equals applying it once (bytes and `changed`).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((opts, input)) = common::decode(data) else {
        return;
    };
    let Ok(first) = containerd_runtime::plan::plan(input, &opts) else {
        return;
    };
    let Ok(second) = containerd_runtime::plan::plan(first.config.after.as_deref(), &opts) else {
        panic!("the edit refuses its own output");
    };
    assert!(
        !second.changed() && second.config.after == first.config.after,
        "a second run changes the config\n--- input\n{input:?}\n--- once\n{:?}\n--- twice\n{:?}",
        first.config.after,
        second.config.after
    );
});
