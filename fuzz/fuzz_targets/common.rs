//! Turns fuzzer bytes into one containerd edit: the first byte picks the options, the rest is the config text.

use containerd_runtime::{Options, State};

/// The options and config text encoded in `data` (`None` when the text is not UTF-8: the module refuses it
/// before any edit, as the bad-input corpus shows).
pub fn decode(data: &[u8]) -> Option<(Options, Option<&str>)> {
    let (&flags, rest) = data.split_first()?;
    let text = std::str::from_utf8(rest).ok()?;
    let names = [
        "nvidia",
        "nvidia-cdi",
        "runc",
        "gpu.rt",
        "NVIDIA",
        "crun",
        "nvidia",
        "x",
    ];
    let mut opts = Options::new(
        names[(flags & 7) as usize],
        "/usr/bin/nvidia-container-runtime",
    );
    opts.set_as_default = flags & 8 != 0;
    opts.enable_cdi = flags & 16 != 0;
    opts.state = if flags & 32 != 0 {
        State::Absent
    } else {
        State::Present
    };
    opts.new_config_version = if flags & 64 != 0 { 3 } else { 2 };
    let input = if flags & 128 != 0 && text.is_empty() {
        None
    } else {
        Some(text)
    };
    Some((opts, input))
}
