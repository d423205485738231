fn main() {
    ansible_module::main(
        "containerd_runtime",
        containerd_runtime::spec(),
        containerd_runtime::run,
    )
}
