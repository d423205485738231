//! One check's verdict (`{id, status, detail, hint}`), the one-line summary and the failure message.

use serde_json::{json, Value};

use ansible_module::Choice;

/// How a check ended. `Skip` means the check does not apply here (never "could not look").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One check's verdict. `hint` says what to do about a failure or warning (empty when nothing to do).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub detail: String,
    pub hint: String,
}

impl Check {
    pub fn new(id: &'static str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            id,
            status,
            detail: detail.into(),
            hint: String::new(),
        }
    }
    pub fn pass(id: &'static str, detail: impl Into<String>) -> Check {
        Check::new(id, Status::Pass, detail)
    }
    pub fn skip(id: &'static str, detail: impl Into<String>) -> Check {
        Check::new(id, Status::Skip, detail)
    }
    pub fn fail(id: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check::new(id, Status::Fail, detail).hint(hint)
    }
    pub fn warn(id: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check::new(id, Status::Warn, detail).hint(hint)
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = hint.into();
        self
    }

    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "status": self.status.as_str(), "detail": self.detail, "hint": self.hint})
    }
}

/// Which verdicts fail the task (the `fail_on` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Error,
    Warning,
    Never,
}

impl Choice for FailOn {
    const ALL: &'static [FailOn] = &[FailOn::Error, FailOn::Warning, FailOn::Never];
    fn as_str(self) -> &'static str {
        match self {
            FailOn::Error => "error",
            FailOn::Warning => "warning",
            FailOn::Never => "never",
        }
    }
}

impl FailOn {
    fn counts(self, status: Status) -> bool {
        match self {
            FailOn::Error => status == Status::Fail,
            FailOn::Warning => matches!(status, Status::Fail | Status::Warn),
            FailOn::Never => false,
        }
    }
}

/// `7 checks: 4 pass, 0 warn, 2 fail (toolkit, containerd), 1 skip`.
pub fn summary(checks: &[Check]) -> String {
    let ids = |s: Status| -> Vec<&str> {
        checks
            .iter()
            .filter(|c| c.status == s)
            .map(|c| c.id)
            .collect()
    };
    let part = |s: Status| {
        let list = ids(s);
        if list.is_empty() || s == Status::Pass {
            format!("{} {}", list.len(), s.as_str())
        } else {
            format!("{} {} ({})", list.len(), s.as_str(), list.join(", "))
        }
    };
    format!(
        "{} checks: {}, {}, {}, {}",
        checks.len(),
        part(Status::Pass),
        part(Status::Warn),
        part(Status::Fail),
        part(Status::Skip)
    )
}

/// The most characters of one check's detail that the failure message quotes.
pub const MESSAGE_DETAIL_CHARS: usize = 160;

/// The failure message when `fail_on` says the task fails: one short part per counted check, its detail cut
/// at [`MESSAGE_DETAIL_CHARS`] characters (the whole detail and the hint stay in `checks`). `None` when the task passes. A node without NVIDIA GPU says so first, in words nobody
/// can miss.
pub fn failure(checks: &[Check], fail_on: FailOn, no_gpu: bool) -> Option<String> {
    let counted: Vec<&Check> = checks.iter().filter(|c| fail_on.counts(c.status)).collect();
    if counted.is_empty() {
        return None;
    }
    let parts: Vec<String> = counted
        .iter()
        .map(|c| format!("{} {}: {}", c.id, c.status.as_str(), short(&c.detail)))
        .collect();
    let head = if no_gpu {
        "no NVIDIA GPU on this node"
    } else {
        "GPU node validation failed"
    };
    Some(format!("{}: {}", head, parts.join("; ")))
}

/// A detail's first [`MESSAGE_DETAIL_CHARS`] characters, marked where it is cut.
fn short(detail: &str) -> String {
    if detail.chars().count() <= MESSAGE_DETAIL_CHARS {
        return detail.to_string();
    }
    let cut: String = detail.chars().take(MESSAGE_DETAIL_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Check> {
        vec![
            Check::pass("pci", "1 GPU"),
            Check::warn("device_nodes", "no /dev/char links", "create them"),
            Check::fail("toolkit", "nvidia-ctk not found", "install it"),
            Check::skip("cdi", "CDI off"),
        ]
    }

    #[test]
    fn summary_names_the_checks_that_did_not_pass() {
        assert_eq!(
            summary(&sample()),
            "4 checks: 1 pass, 1 warn (device_nodes), 1 fail (toolkit), 1 skip (cdi)"
        );
    }

    #[test]
    fn fail_on_decides_what_fails_the_task() {
        let c = sample();
        let err = failure(&c, FailOn::Error, false).unwrap();
        assert_eq!(
            err,
            "GPU node validation failed: toolkit fail: nvidia-ctk not found"
        );
        let warn = failure(&c, FailOn::Warning, false).unwrap();
        assert!(warn.contains("device_nodes warn") && warn.contains("toolkit fail"));
        assert_eq!(failure(&c, FailOn::Never, false), None);
        assert_eq!(failure(&c[..1], FailOn::Warning, false), None);
        assert!(failure(&c, FailOn::Error, true)
            .unwrap()
            .starts_with("no NVIDIA GPU on this node: "));
    }

    #[test]
    fn the_message_keeps_one_short_part_per_failed_check() {
        let path =
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/nvidia/bin"
                .repeat(8);
        let checks = vec![
            Check::fail(
                "toolkit",
                format!("nvidia-ctk not found (PATH {path}; searched {path})"),
                format!("install it; PATH was {path}"),
            ),
            Check::fail(
                "containerd",
                format!("{} and more", "x".repeat(500)),
                "fix it",
            ),
        ];
        let msg = failure(&checks, FailOn::Error, false).unwrap();
        assert!(
            msg.chars().count() < 400,
            "{} characters: {}",
            msg.len(),
            msg
        );
        assert!(
            !msg.contains("install it") && !msg.contains('\n'),
            "{}",
            msg
        );
        assert!(msg.starts_with(
            "GPU node validation failed: toolkit fail: nvidia-ctk not found (PATH /usr/local"
        ));
        assert!(msg.contains("…; containerd fail: xxx"), "{}", msg);
        assert!(msg.ends_with('…'), "{}", msg);
    }
}
