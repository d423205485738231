//! The executable Ansible runs: the protocol of `ansible_module` around `containerd_runtime::run`.

fn main() {
    ansible_module::main(
        "containerd_runtime",
        containerd_runtime::spec(),
        containerd_runtime::run,
    )
}
