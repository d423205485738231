//! The cdi check's reading of the NVIDIA runtime's mode, held against the real runtime: for each config, the
//! module says "uses CDI" exactly when the real NVIDIA Container Toolkit 1.17.0 runtime, given that config and
//! no CDI spec, refuses to create a container asking for every GPU (`unresolvable CDI devices`). Elsewhere the
//! real runtime goes on to its low-level runtime (here `/bin/true`), as it does on a legacy-mode node.
//!
//! The runtime comes from `../shared/toolkit` beside the checkout (`TOOLKIT_DIR` to look elsewhere), the real
//! programs built from NVIDIA's public source. Without it there is nothing real to compare with: the test
//! says so on stderr and checks nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gpu_validate::cdi::{self, RuntimeMode};
use gpu_validate::containerd::Effective;
use gpu_validate::node::Node;

/// The toolkit 1.17.0's own default config (mode "auto"), recorded from the real `nvidia-ctk config default`.
const RECORDED: &str = include_str!("data/nvidia-container-runtime-config.toml");

fn toolkit_archive() -> Option<PathBuf> {
    let dir = std::env::var_os("TOOLKIT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/toolkit"));
    let archive = dir.join("nvidia-container-toolkit-1.17.0-amd64.tar.xz");
    archive.is_file().then_some(archive)
}

/// Runs `runtime create` on a bundle whose process asks for every GPU, with `config` as the runtime's config
/// (found through XDG_CONFIG_HOME, as the runtime looks for it). `Err` holds the runtime's complaint.
fn real_create(work: &Path, runtime: &Path, config: &str) -> Result<(), String> {
    let xdg = work.join("xdg");
    std::fs::create_dir_all(xdg.join("nvidia-container-runtime")).unwrap();
    std::fs::write(xdg.join("nvidia-container-runtime/config.toml"), config).unwrap();
    let bundle = work.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        r#"{"ociVersion":"1.0.2","process":{"args":["/bin/true"],"env":["PATH=/bin","NVIDIA_VISIBLE_DEVICES=all"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{}}"#,
    )
    .unwrap();
    let out = Command::new(runtime)
        .args(["create", "--bundle"])
        .arg(&bundle)
        .arg("gpunode-mode-test")
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The module's reading of the same config, with containerd running runtime `nvidia` as `binary`.
fn module_mode(work: &Path, binary: &str, config: &str) -> RuntimeMode {
    let root = work.join("sysroot");
    let file = root.join(cdi::RUNTIME_CONFIG.trim_start_matches('/'));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, config).unwrap();
    let eff = Effective {
        doc: format!(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options]\nBinaryName = \"{}\"\n",
            binary
        )
        .parse()
        .unwrap(),
        source: String::new(),
    };
    cdi::runtime_mode(&Node::new(&root, Duration::from_secs(5)), &eff, "nvidia")
}

#[test]
fn the_module_says_cdi_exactly_where_the_real_runtime_needs_a_spec() {
    let Some(archive) = toolkit_archive() else {
        eprintln!("no ../shared/toolkit with the real NVIDIA Container Toolkit (TOOLKIT_DIR): nothing real to compare with");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("-xJf")
        .arg(&archive)
        .arg("-C")
        .arg(tmp.path())
        .args([
            "usr/bin/nvidia-container-runtime",
            "usr/bin/nvidia-container-runtime.cdi",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "cannot unpack {}", archive.display());
    let bin = tmp.path().join("usr/bin");
    let empty = tmp.path().join("no-specs");
    std::fs::create_dir(&empty).unwrap();
    // The recorded config, made to run /bin/true as its low-level runtime and to look for specs in an empty
    // folder (both keys are in the recording, so the edits are checked to take).
    let base = {
        let runtimes = "runtimes = [\"docker-runc\", \"runc\", \"crun\"]";
        let dirs = "spec-dirs = [\"/etc/cdi\", \"/var/run/cdi\"]";
        assert!(RECORDED.contains(runtimes) && RECORDED.contains(dirs));
        RECORDED
            .replace(runtimes, "runtimes = [\"/bin/true\"]")
            .replace(dirs, &format!("spec-dirs = [\"{}\"]", empty.display()))
    };
    let with_mode = |line: &str| {
        assert!(base.contains("mode = \"auto\""));
        base.replace("mode = \"auto\"", line)
    };
    let cases = [
        (
            "the recorded default, mode \"auto\"",
            "nvidia-container-runtime",
            base.clone(),
        ),
        (
            "mode \"cdi\"",
            "nvidia-container-runtime",
            with_mode("mode = \"cdi\""),
        ),
        (
            "mode 'cdi', a literal string",
            "nvidia-container-runtime",
            with_mode("mode = 'cdi'"),
        ),
        (
            "mode \"legacy\"",
            "nvidia-container-runtime",
            with_mode("mode = \"legacy\""),
        ),
        ("no mode key", "nvidia-container-runtime", with_mode("")),
        (
            "the .cdi executable, mode \"legacy\"",
            "nvidia-container-runtime.cdi",
            with_mode("mode = \"legacy\""),
        ),
        (
            "the .cdi executable, mode \"auto\"",
            "nvidia-container-runtime.cdi",
            base.clone(),
        ),
    ];
    for (i, (what, exe, config)) in cases.iter().enumerate() {
        let work = tmp.path().join(format!("case-{}", i));
        let real = real_create(&work, &bin.join(exe), config);
        let real_needs_spec = match &real {
            Ok(()) => false,
            Err(e) if e.contains("unresolvable CDI devices nvidia.com/gpu=all") => true,
            Err(e) => panic!("{}: the real runtime failed otherwise: {}", what, e),
        };
        let ours = module_mode(&work, &format!("/usr/bin/{}", exe), config);
        assert_eq!(
            matches!(ours, RuntimeMode::Cdi(_)),
            real_needs_spec,
            "{}: the module says {:?}, the real runtime {:?}",
            what,
            ours,
            real
        );
    }
    // A config that is not TOML: the real runtime cannot load it (no container at all), and the module does not
    // guess a mode.
    let broken = "[nvidia-container-runtime\nmode = \"cdi\"\n";
    let work = tmp.path().join("broken");
    let real = real_create(&work, &bin.join("nvidia-container-runtime"), broken);
    assert!(
        real.as_ref()
            .is_err_and(|e| !e.contains("unresolvable CDI devices")),
        "{:?}",
        real
    );
    assert!(matches!(
        module_mode(&work, "/usr/bin/nvidia-container-runtime", broken),
        RuntimeMode::Unknown(_)
    ));
}
