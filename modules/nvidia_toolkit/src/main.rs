fn main() {
    ansible_module::main(
        "nvidia_toolkit",
        nvidia_toolkit::spec(),
        nvidia_toolkit::run,
    )
}
