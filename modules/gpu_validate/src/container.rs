//! The `container` check: runs a GPU container the way the kubelet does, through containerd's CRI with
//! `crictl` (a pod sandbox with runtime handler `runtime_name`, then a container from `smoke_image` running
//! `nvidia-smi -L`), and passes only when the container lists exactly the host's GPU UUIDs. The sandbox is
//! removed whatever happened, so a failed or timed-out check leaves nothing behind on the node.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ansible_module::process::{self, Output};
use serde_json::{json, Value};

use crate::node::Node;
use crate::report::Check;

pub const ID: &str = "container";
/// What the container runs: the same listing the host's UUIDs are compared with.
const COMMAND: &[&str] = &["nvidia-smi", "-L"];
/// The CDI device that stands for every NVIDIA GPU in the spec `nvidia-ctk cdi generate` writes.
const CDI_ALL: &str = "nvidia.com/gpu=all";
/// Time the sandbox's removal gets of its own, past the check's deadline: a timed-out check still cleans up.
const CLEANUP: Duration = Duration::from_secs(30);
/// How often the container's state is asked while waiting for `nvidia-smi -L` to end.
const POLL: Duration = Duration::from_millis(200);

/// What the check needs to know about the node and the request.
pub struct Request<'a> {
    pub image: &'a str,
    pub pull: bool,
    pub runtime_name: &'a str,
    /// containerd's CRI has `enable_cdi = true` and a CDI spec declares NVIDIA GPUs: the GPUs are asked for as a
    /// CDI device, as the kubelet passes them from a CDI-aware device plugin; otherwise through
    /// `NVIDIA_VISIBLE_DEVICES=all`, which the runtime's default (legacy) mode reads.
    pub cdi: bool,
    /// containerd's socket (its `grpc.address`).
    pub socket: &'a str,
    /// The host's GPU UUIDs as the host's nvidia-smi lists them (empty when it lists none or failed).
    pub host_uuids: &'a [String],
    /// How long the whole check may take.
    pub timeout: Duration,
}

/// The check itself.
pub fn check(node: &Node, r: &Request) -> Check {
    let Some(bin) = node.find_tool("crictl") else {
        return Check::fail(
            ID,
            format!(
                "crictl not found (looked in {}): the container check talks to containerd's CRI through it",
                node.tool_dirs().join(", ")
            ),
            "install cri-tools' crictl (kubeadm and Kubespray nodes have it), matching the Kubernetes minor version",
        );
    };
    let crictl = Crictl {
        bin,
        endpoint: format!("unix://{}", r.socket),
        deadline: Instant::now() + r.timeout,
        timeout: r.timeout,
    };
    let work = match WorkDir::new() {
        Ok(w) => w,
        Err(e) => return Check::fail(ID, e, "the module needs a writable temporary folder"),
    };
    if let Err(c) = ensure_image(&crictl, r) {
        return c;
    }
    let pod_config = work.write("pod.json", &pod_config(&work.path));
    let ctr_config = work.write("container.json", &container_config(r));
    let (pod_config, ctr_config) = match (pod_config, ctr_config) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) | (_, Err(e)) => {
            return Check::fail(ID, e, "the module needs a writable temporary folder")
        }
    };
    let pod = match crictl.call(&["runp", "--runtime", r.runtime_name, &pod_config]) {
        Ok(o) if o.success() => first_line(&o.stdout),
        Ok(o) => return sandbox_failed(r, &o),
        Err(c) => return c,
    };
    let verdict = in_sandbox(&crictl, r, &pod, &pod_config, &ctr_config);
    match crictl.remove_sandbox(&pod) {
        Ok(()) => verdict,
        Err(e) => {
            // A pod left behind is a fault of its own, said beside whatever the container showed.
            let mut c = verdict;
            c.detail.push_str(&format!(
                "; the pod sandbox {} could not be removed: {}",
                pod, e
            ));
            if c.status == crate::report::Status::Pass {
                c = Check::fail(
                    ID,
                    c.detail,
                    format!("remove it by hand: crictl rmp --force {}", pod),
                );
            }
            c
        }
    }
}

/// Steps inside the sandbox: create and start the container, wait for it to end, judge its output.
fn in_sandbox(
    crictl: &Crictl,
    r: &Request,
    pod: &str,
    pod_config: &str,
    ctr_config: &str,
) -> Check {
    let ctr = match crictl.call(&["create", pod, ctr_config, pod_config]) {
        Ok(o) if o.success() => first_line(&o.stdout),
        Ok(o) => return container_failed(r, "created", &o),
        Err(c) => return c,
    };
    match crictl.call(&["start", &ctr]) {
        Ok(o) if o.success() => {}
        Ok(o) => return container_failed(r, "started", &o),
        Err(c) => return c,
    }
    let exit_code = loop {
        let state = match crictl.call(&["inspect", "--output", "json", &ctr]) {
            Ok(o) if o.success() => serde_json::from_str::<Value>(&o.stdout).ok(),
            Ok(o) => return container_failed(r, "inspected", &o),
            Err(c) => return c,
        };
        let status = state.as_ref().and_then(|s| s.get("status"));
        if status.and_then(|s| s.get("state")).and_then(Value::as_str) == Some("CONTAINER_EXITED") {
            break status
                .and_then(|s| s.get("exitCode"))
                .and_then(Value::as_i64)
                .unwrap_or(-1);
        }
        if Instant::now() + POLL >= crictl.deadline {
            return crictl.timed_out("waiting for `nvidia-smi -L` in the container to end");
        }
        std::thread::sleep(POLL);
    };
    let output = match crictl.call(&["logs", &ctr]) {
        Ok(o) if o.success() => format!("{}{}", o.stdout, o.stderr),
        Ok(o) => return container_failed(r, "read (crictl logs)", &o),
        Err(c) => return c,
    };
    judge(r, exit_code, &output)
}

/// The verdict on what `nvidia-smi -L` printed in the container, against the host's UUIDs.
pub fn judge(r: &Request, exit_code: i64, output: &str) -> Check {
    let seen = gpu_uuids(output);
    let shown = one_line(output);
    let how = asked_how(r);
    if seen.is_empty() {
        return no_gpu(
            r,
            &format!(
                "`nvidia-smi -L` exited {} listing no GPU: {}",
                exit_code, shown
            ),
        );
    }
    let mut host: Vec<&str> = r.host_uuids.iter().map(String::as_str).collect();
    let mut inside: Vec<&str> = seen.iter().map(String::as_str).collect();
    host.sort_unstable();
    inside.sort_unstable();
    if host != inside {
        return Check::fail(
            ID,
            format!(
                "the container's GPUs differ from the host's: the container lists {}, the host's nvidia-smi {}; \
                 container output: {}",
                inside.join(", "),
                if host.is_empty() {
                    "none".to_string()
                } else {
                    host.join(", ")
                },
                shown
            ),
            "a container asking for all GPUs must get every GPU of the node: check NVIDIA_VISIBLE_DEVICES \
             handling (accept-nvidia-visible-devices-envvar-when-unprivileged) and the CDI spec \
             (regenerate it after a driver or GPU change)",
        );
    }
    Check::pass(
        ID,
        format!(
            "a container of handler '{}' from {} ({}) lists the host's {} GPU(s): {}",
            r.runtime_name,
            r.image,
            how,
            inside.len(),
            shown
        ),
    )
}

/// What a container without GPU shows in crictl's errors: the NVIDIA hook failing, or no nvidia-smi to run.
const NO_GPU_SIGNS: &[&str] = &[
    "nvidia-container-cli",
    "libnvidia-ml",
    "\"nvidia-smi\": executable file not found",
];

/// The failure for a container that got no GPU; `what` says how that showed.
fn no_gpu(r: &Request, what: &str) -> Check {
    Check::fail(
        ID,
        format!(
            "no GPU in the container: a container of handler '{}' ({}) got none; {}",
            r.runtime_name,
            asked_how(r),
            what
        ),
        format!(
            "runtime '{}' must run nvidia-container-runtime (the containerd check names its BinaryName) and \
             `nvidia-container-cli info` must work on the node{}",
            r.runtime_name,
            if r.cdi {
                "; with CDI, regenerate the spec (nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml) and use \
                 an image with ldconfig and an /etc/ld.so.cache (the spec's hook updates the image's cache, and \
                 leaves an image without one unable to find the driver's libraries)"
            } else {
                ""
            }
        ),
    )
}

fn asked_how(r: &Request) -> String {
    if r.cdi {
        format!("CDI device {}", CDI_ALL)
    } else {
        "NVIDIA_VISIBLE_DEVICES=all".to_string()
    }
}

/// The UUIDs of the GPUs `nvidia-smi -L` lists (`GPU 0: NVIDIA H200 (UUID: GPU-...)`); MIG devices, listed
/// under their GPU, are not GPUs of their own.
pub fn gpu_uuids(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.starts_with("GPU "))
        .filter_map(|l| {
            let (_, rest) = l.split_once("(UUID: ")?;
            let uuid = rest.split(')').next()?.trim();
            uuid.starts_with("GPU-").then(|| uuid.to_string())
        })
        .collect()
}

/// The image is on the node, or pulled when `smoke_pull` allows it.
fn ensure_image(crictl: &Crictl, r: &Request) -> Result<(), Check> {
    let o = crictl.call(&["inspecti", r.image])?;
    if o.success() {
        return Ok(());
    }
    if !r.pull {
        return Err(Check::fail(
            ID,
            format!(
                "image {} is not on the node (containerd's k8s.io namespace) and smoke_pull is false: {}",
                r.image,
                crictl_error(&o)
            ),
            "import it (ctr -n k8s.io images import IMAGE.tar) or set smoke_pull: true to let containerd pull it",
        ));
    }
    let o = crictl.call(&["pull", r.image])?;
    if o.success() {
        return Ok(());
    }
    Err(Check::fail(
        ID,
        format!("pulling {} failed: {}", r.image, crictl_error(&o)),
        "check the image name, the registry's reachability and credentials, or import the image by hand",
    ))
}

/// `crictl runp` failed: containerd's own words, and whether it is the handler it does not know.
fn sandbox_failed(r: &Request, o: &Output) -> Check {
    let said = crictl_error(o);
    if said.contains("no runtime for") {
        return Check::fail(
            ID,
            format!(
                "containerd does not know runtime handler '{}': {}",
                r.runtime_name, said
            ),
            "register the runtime (gpunode.nvidia.containerd_runtime) and restart containerd so it loads the \
             config",
        );
    }
    Check::fail(
        ID,
        format!(
            "the pod sandbox with handler '{}' did not start: {}",
            r.runtime_name, said
        ),
        "see containerd's log; `failed to update /proc/self/oom_score_adj: Permission denied` from runc means \
         the node forbids lowering oom_score_adj (set restrict_oom_score_adj = true in the CRI config)",
    )
}

/// A step on the container failed (`created`, `started`, ...). The runtime failing to give the container a GPU
/// (its hook cannot reach the driver) or a container without nvidia-smi (no GPU was mounted in) is said as such.
fn container_failed(r: &Request, step: &str, o: &Output) -> Check {
    let said = crictl_error(o);
    if NO_GPU_SIGNS.iter().any(|s| said.contains(s)) {
        return no_gpu(r, &format!("it could not be {}: {}", step, said));
    }
    Check::fail(
        ID,
        format!(
            "the container of handler '{}' ({}) could not be {}: {}",
            r.runtime_name,
            asked_how(r),
            step,
            crictl_error(o)
        ),
        "the runtime failed to set the container up: run `nvidia-container-cli info` on the node; with CDI, an \
         unresolvable device means no spec declares it (nvidia-ctk cdi generate)",
    )
}

/// The pod sandbox's config: host network (no CNI needed), a fresh uid so runs never collide.
fn pod_config(log_dir: &Path) -> Value {
    let uid = format!(
        "gpu-validate-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    json!({
        "metadata": {"name": "gpu-validate", "namespace": "gpu-validate", "uid": uid, "attempt": 0},
        "log_directory": log_dir.to_string_lossy(),
        // 2 is NamespaceMode NODE: the sandbox shares the host's network, so the check works before any CNI.
        "linux": {"security_context": {"namespace_options": {"network": 2}}}
    })
}

/// The container's config: `nvidia-smi -L`, asking for every GPU as the node is set up.
fn container_config(r: &Request) -> Value {
    let mut c = json!({
        "metadata": {"name": "nvidia-smi"},
        "image": {"image": r.image},
        "command": COMMAND,
        "log_path": "nvidia-smi.log",
        "linux": {}
    });
    if r.cdi {
        c["CDI_devices"] = json!([{ "name": CDI_ALL }]);
    } else {
        c["envs"] = json!([{"key": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]);
    }
    c
}

/// crictl aimed at containerd's socket, each call bounded by what is left of the check's time.
struct Crictl {
    bin: PathBuf,
    endpoint: String,
    deadline: Instant,
    timeout: Duration,
}

impl Crictl {
    fn call(&self, args: &[&str]) -> Result<Output, Check> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_secs(1) {
            return Err(self.timed_out(&format!("before `crictl {}`", args[0])));
        }
        self.call_within(args, left)
            .map_err(|e| self.timed_out(&format!("`crictl {}`: {}", args[0], e)))
    }

    fn call_within(&self, args: &[&str], left: Duration) -> anyhow::Result<Output> {
        // crictl's own --timeout bounds each CRI request; it takes whole seconds.
        let secs = format!("{}s", left.as_secs().max(1));
        let mut all = vec![
            "--runtime-endpoint",
            &self.endpoint,
            "--image-endpoint",
            &self.endpoint,
            "--timeout",
            &secs,
        ];
        all.extend_from_slice(args);
        process::run(&self.bin, &all, &[("LC_ALL", "C")], left)
    }

    fn timed_out(&self, at: &str) -> Check {
        Check::fail(
            ID,
            format!(
                "the container check ran past its {} s (timeout) {}",
                self.timeout.as_secs(),
                at
            ),
            "a slow first start (image unpacking, a hung nvidia-container-cli) needs a larger timeout; see \
             containerd's log",
        )
    }

    /// Stops and removes the sandbox and its container, with time of its own.
    fn remove_sandbox(&self, pod: &str) -> Result<(), String> {
        let mut said = Vec::new();
        for verb in ["stopp", "rmp"] {
            match self.call_within(&[verb, pod], CLEANUP) {
                Ok(o) if o.success() => {}
                Ok(o) => said.push(format!("crictl {}: {}", verb, crictl_error(&o))),
                Err(e) => said.push(format!("crictl {}: {:#}", verb, e)),
            }
        }
        if said.is_empty() {
            Ok(())
        } else {
            Err(said.join("; "))
        }
    }
}

/// A private temporary folder for the configs and the container's log, removed when dropped.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn new() -> Result<WorkDir, String> {
        let path = std::env::temp_dir().join(format!(
            "gpu-validate-container.{}.{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        // create_dir, not create_dir_all: a folder that already exists is someone else's.
        std::fs::create_dir(&path)
            .map_err(|e| format!("cannot create {}: {}", path.display(), e))?;
        Ok(WorkDir { path })
    }

    fn write(&self, name: &str, v: &Value) -> Result<String, String> {
        let p = self.path.join(name);
        std::fs::write(&p, v.to_string())
            .map_err(|e| format!("cannot write {}: {}", p.display(), e))?;
        Ok(p.to_string_lossy().into_owned())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// crictl's error without its warnings: the `level=error`/`level=fatal` messages (unquoted), else every line
/// that is not a warning or a client-side log line (`E1205 10:00:00.000000 ...`).
fn crictl_error(o: &Output) -> String {
    let text = o.complaint();
    let messages: Vec<String> = text
        .lines()
        .filter(|l| l.contains("level=error") || l.contains("level=fatal"))
        .filter_map(|l| {
            let (_, rest) = l.split_once("msg=\"")?;
            Some(
                rest.trim_end()
                    .trim_end_matches('"')
                    .replace("\\n", " | ")
                    .replace("\\\"", "\""),
            )
        })
        .collect();
    if !messages.is_empty() {
        return one_line(&messages.join("\n"));
    }
    let klog = |l: &str| {
        let b = l.as_bytes();
        b.len() > 5 && b"IWEF".contains(&b[0]) && b[1..5].iter().all(u8::is_ascii_digit)
    };
    one_line(
        &text
            .lines()
            .filter(|l| !l.contains("level=warning") && !klog(l))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Output on one line, as a check's detail is read (long outputs cut, saying so).
fn one_line(s: &str) -> String {
    let joined = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    match joined.char_indices().nth(1000) {
        Some((i, _)) => format!("{}... (cut)", &joined[..i]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H200: &str = "GPU-2d7464a3-3231-11fe-df0a-18d3e1f0787d";

    fn req(host: &[String], cdi: bool) -> Request<'_> {
        Request {
            image: "localhost/gpunode/smoke:1",
            pull: false,
            runtime_name: "nvidia",
            cdi,
            socket: "/run/containerd/containerd.sock",
            host_uuids: host,
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn uuids_are_read_from_gpu_lines_only() {
        let out = format!(
            "GPU 0: NVIDIA H200 (UUID: {})\n  MIG 1g.18gb     Device  0: (UUID: MIG-0b5a1c2e-aaaa)\nGPU 1: NVIDIA H200 (UUID: GPU-1)\n",
            H200
        );
        assert_eq!(gpu_uuids(&out), vec![H200.to_string(), "GPU-1".into()]);
        assert!(gpu_uuids("sh: nvidia-smi: not found\n").is_empty());
        assert!(gpu_uuids("No devices were found\n").is_empty());
    }

    #[test]
    fn the_host_s_uuids_pass_in_any_order() {
        let host = vec!["GPU-b".to_string(), "GPU-a".to_string()];
        let out = "GPU 0: A (UUID: GPU-a)\nGPU 1: B (UUID: GPU-b)\n";
        let c = judge(&req(&host, false), 0, out);
        assert_eq!(c.status, crate::report::Status::Pass, "{:?}", c);
        assert!(
            c.detail.contains("NVIDIA_VISIBLE_DEVICES=all"),
            "{}",
            c.detail
        );
        assert!(
            c.detail.contains("lists the host's 2 GPU(s)"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_container_without_gpu_fails_with_its_output() {
        let host = vec![H200.to_string()];
        let c = judge(
            &req(&host, true),
            127,
            "exec: \"nvidia-smi\": executable file not found in $PATH",
        );
        assert_eq!(c.status, crate::report::Status::Fail);
        assert!(
            c.detail.starts_with("no GPU in the container: "),
            "{}",
            c.detail
        );
        assert!(
            c.detail.contains("CDI device nvidia.com/gpu=all"),
            "{}",
            c.detail
        );
        assert!(c.detail.contains("exited 127"), "{}", c.detail);
        assert!(c.hint.contains("nvidia-ctk cdi generate"), "{}", c.hint);
        // No host GPU and none inside is still no pass: nothing was shown to work.
        let c = judge(&req(&[], false), 0, "");
        assert!(
            c.detail.starts_with("no GPU in the container: "),
            "{}",
            c.detail
        );
    }

    #[test]
    fn other_uuids_than_the_host_s_fail() {
        let host = vec![H200.to_string(), "GPU-2".to_string()];
        let c = judge(
            &req(&host, false),
            0,
            &format!("GPU 0: H200 (UUID: {})\n", H200),
        );
        assert_eq!(c.status, crate::report::Status::Fail);
        assert!(
            c.detail.starts_with(
                "the container's GPUs differ from the host's: the container lists GPU-2d74"
            ),
            "{}",
            c.detail
        );
        let c = judge(&req(&[], false), 0, "GPU 0: X (UUID: GPU-x)\n");
        assert!(
            c.detail.contains("the host's nvidia-smi none"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn configs_ask_for_gpus_the_way_the_node_is_set_up() {
        let legacy = container_config(&req(&[], false));
        assert_eq!(legacy["envs"][0]["key"], "NVIDIA_VISIBLE_DEVICES");
        assert_eq!(legacy["envs"][0]["value"], "all");
        assert!(legacy.get("CDI_devices").is_none());
        assert_eq!(legacy["command"], json!(["nvidia-smi", "-L"]));
        let cdi = container_config(&req(&[], true));
        assert_eq!(cdi["CDI_devices"][0]["name"], "nvidia.com/gpu=all");
        assert!(cdi.get("envs").is_none());
        let pod = pod_config(Path::new("/tmp/x"));
        assert_eq!(
            pod["linux"]["security_context"]["namespace_options"]["network"],
            2
        );
        assert_ne!(
            pod["metadata"]["uid"],
            pod_config(Path::new("/tmp/x"))["metadata"]["uid"]
        );
    }

    /// crictl 1.36's stderr as a Podman node with containerd 1.7 gave it (the runtime name changed).
    const UNKNOWN_HANDLER: &str = r#"time="2026-12-05T23:44:54Z" level=warning msg="Config \"/etc/crictl.yaml\" does not exist, trying next: \"/usr/local/bin/crictl.yaml\""
time="2026-12-05T23:44:54Z" level=warning msg="cgroup_parent is not set. Use `runtime-config` to get the runtime cgroup driver"
E1205 23:44:54.593601     417 remote_runtime.go:237] "RunPodSandbox from runtime service failed" err="rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for \"nvidia\" is configured"
time="2026-12-05T23:44:54Z" level=error msg="run pod sandbox: rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for \"nvidia\" is configured"
"#;
    /// The same node, handler nvidia with the real toolkit 1.17.0 and no NVIDIA driver (the hook's error).
    const HOOK_FAILED: &str = r#"E1205 23:45:02.845591     755 remote_runtime.go:435] "StartContainer from runtime service failed" err=<
	rpc error: code = Unknown desc = failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error running hook #0: error running hook: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'
	nvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: cannot open shared object file: no such file or directory: unknown
 > containerID="01bae565f29d"
time="2026-12-05T23:45:02Z" level=error msg="starting the container \"01bae565f29d\": rpc error: code = Unknown desc = failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error running hook #0: error running hook: exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'\nnvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: cannot open shared object file: no such file or directory: unknown"
"#;

    fn failed(stderr: &str) -> Output {
        Output {
            code: Some(1),
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn containerd_s_unknown_handler_is_named_without_crictl_s_warnings() {
        let c = sandbox_failed(&req(&[], false), &failed(UNKNOWN_HANDLER));
        assert_eq!(
            c.detail,
            "containerd does not know runtime handler 'nvidia': run pod sandbox: rpc error: code = Unknown desc = \
             failed to get sandbox runtime: no runtime for \"nvidia\" is configured"
        );
        assert!(c.hint.contains("restart containerd"), "{}", c.hint);
    }

    #[test]
    fn a_hook_that_cannot_reach_the_driver_means_no_gpu_in_the_container() {
        let c = container_failed(&req(&[], false), "started", &failed(HOOK_FAILED));
        assert!(
            c.detail.starts_with(
                "no GPU in the container: a container of handler 'nvidia' (NVIDIA_VISIBLE_DEVICES=all) got none; \
                 it could not be started: starting the container \"01bae565f29d\": rpc error"
            ),
            "{}",
            c.detail
        );
        assert!(
            c.detail.ends_with(
                "'legacy' | nvidia-container-cli: initialization error: load library failed: \
                 libnvidia-ml.so.1: cannot open shared object file: no such file or directory: unknown"
            ),
            "{}",
            c.detail
        );
        // Another failure is said as it is.
        let c = container_failed(
            &req(&[], false),
            "created",
            &failed("time=\"x\" level=fatal msg=\"image not known\"\n"),
        );
        assert_eq!(
            c.detail,
            "the container of handler 'nvidia' (NVIDIA_VISIBLE_DEVICES=all) could not be created: image not known"
        );
    }

    #[test]
    fn long_output_is_cut_on_one_line() {
        let long = "x\n".repeat(2000);
        let s = one_line(&long);
        assert!(s.ends_with("... (cut)") && !s.contains('\n'));
        assert_eq!(one_line("a\n\n b \n"), "a | b");
    }
}
