fn main() {
    ansible_module::main("gpu_validate", gpu_validate::spec(), gpu_validate::run)
}
