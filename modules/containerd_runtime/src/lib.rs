//! The `containerd_runtime` Ansible module (not implemented yet).

use ansible_module::{Module, ModuleSpec, Response};

/// The module's argument spec.
pub fn spec() -> ModuleSpec {
    ModuleSpec::new(vec![]).supports_check_mode()
}

/// Runs the module.
pub fn run(_m: &mut Module) -> anyhow::Result<Response> {
    Ok(Response::failure(
        "containerd_runtime is not implemented yet",
    ))
}
