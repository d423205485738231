//! The apt backend: a binary keyring and a one-line list file with `signed-by`, dpkg's status read directly,
//! and apt-get run (argument vectors, no shell) only when something must change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::backend::{Backend, Conflict, Installed, RepoFile};
use crate::dpkg;
use crate::key::VerifiedKey;
use crate::params::Params;

pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg";
pub const DEFAULT_LIST: &str = "/etc/apt/sources.list.d/nvidia-container-toolkit.list";
/// Names NVIDIA's older install guides used for the same packages' repository.
pub const OLD_LIST_NAMES: [&str; 3] = [
    "libnvidia-container.list",
    "nvidia-docker.list",
    "nvidia-container-runtime.list",
];
/// How long one apt-get call may run before it is stopped.
const APT_TIMEOUT: Duration = Duration::from_secs(1800);

pub struct Apt {
    /// dpkg's database folder (`/var/lib/dpkg`).
    pub admin_dir: PathBuf,
    /// The main sources list, which the module reports but never edits.
    pub main_list: PathBuf,
}

impl Apt {
    pub fn system() -> Apt {
        Apt {
            admin_dir: PathBuf::from("/var/lib/dpkg"),
            main_list: PathBuf::from("/etc/apt/sources.list"),
        }
    }

    fn list_path(&self, p: &Params) -> PathBuf {
        p.list_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LIST))
    }

    fn tool(name: &str) -> PathBuf {
        which::which(name).unwrap_or_else(|_| PathBuf::from("/usr/bin").join(name))
    }

    /// Runs an apt tool with the environment it needs to never ask questions; fails with apt's own errors.
    fn apt(&self, tool: &str, args: &[&str], what: &str) -> Result<String> {
        let mut all: Vec<String> = vec!["-q".into()];
        all.extend(proxy_options());
        all.extend(args.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = ansible_module::process::run(
            &Self::tool(tool),
            &argv,
            &[("DEBIAN_FRONTEND", "noninteractive"), ("LC_ALL", "C")],
            APT_TIMEOUT,
        )?;
        let problems = apt_problems(&out.stdout, &out.stderr);
        if !out.success() || !problems.is_empty() {
            let detail = if problems.is_empty() {
                out.complaint().to_string()
            } else {
                problems.join("\n")
            };
            bail!(
                "{} failed ({} {}, exit {}):\n{}",
                what,
                tool,
                args.join(" "),
                out.code
                    .map(|c| c.to_string())
                    .unwrap_or("by signal".into()),
                detail
            );
        }
        Ok(out.stdout)
    }
}

/// The two files of the repository, as they must be: the verified key at `keyring` and the list file at `list`
/// that points apt at `repo_url` signed by that key.
pub fn repo_files_at(
    keyring: PathBuf,
    list: PathBuf,
    repo_url: &str,
    key: &VerifiedKey,
) -> Vec<RepoFile> {
    let contents = list_contents(repo_url, &keyring).into_bytes();
    vec![
        RepoFile {
            path: keyring,
            contents: key.binary.clone(),
            mode: 0o644,
            binary: true,
        },
        RepoFile {
            path: list,
            contents,
            mode: 0o644,
            binary: false,
        },
    ]
}

/// The list file's text.
pub fn list_contents(repo_url: &str, keyring: &Path) -> String {
    format!(
        "# NVIDIA Container Toolkit repository, managed by Ansible (gpunode.nvidia.nvidia_toolkit)\n\
         deb [signed-by={}] {} /\n",
        keyring.display(),
        repo_url
    )
}

/// The part of a repository URL that identifies it in other list files: up to `$(ARCH)`, no trailing slash,
/// no scheme (http and https lines name the same repository).
pub fn url_key(repo_url: &str) -> String {
    let head = repo_url.split("$(ARCH)").next().unwrap_or(repo_url);
    let head = head.split_once("://").map(|(_, r)| r).unwrap_or(head);
    let head = head.strip_prefix("file:").unwrap_or(head);
    head.trim_end_matches('/').to_string()
}

/// Whether a sources file's active (uncommented) lines mention the repository.
pub fn mentions(text: &str, key: &str) -> bool {
    !key.is_empty()
        && text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.contains(key))
}

/// The clashing definitions: old NVIDIA list names and any other sources file naming the same repository
/// (apt refuses two entries for one repository with different `signed-by`).
pub fn find_conflicts(list: &Path, main_list: &Path, repo_url: &str) -> Result<Vec<Conflict>> {
    let key = url_key(repo_url);
    let mut out = Vec::new();
    let dir = list.parent().unwrap_or(Path::new("/"));
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => bail!("cannot list {}: {}", dir.display(), e),
    };
    entries.sort();
    for path in entries {
        if path == list {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !(name.ends_with(".list") || name.ends_with(".sources")) || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let why = if OLD_LIST_NAMES.contains(&name) {
            "an old NVIDIA repository list"
        } else if mentions(&text, &key) {
            "names the same repository"
        } else {
            continue;
        };
        out.push(Conflict {
            path,
            why: why.into(),
            removable: true,
        });
    }
    if let Ok(text) = std::fs::read_to_string(main_list) {
        if mentions(&text, &key) {
            out.push(Conflict {
                path: main_list.to_path_buf(),
                why: "names the same repository (edit it by hand: the module never edits the main list)"
                    .into(),
                removable: false,
            });
        }
    }
    Ok(out)
}

/// The error and warning lines apt printed that mean the step did not do its job (a bad signature only
/// warns on some apt versions, yet leaves the old index in place).
pub fn apt_problems(stdout: &str, stderr: &str) -> Vec<String> {
    stdout
        .lines()
        .chain(stderr.lines())
        .map(str::trim)
        .filter(|l| {
            // apt 3 (trixie on) writes "Error:"/"Warning:" where older apt writes "E:"/"W:".
            l.starts_with("E:")
                || l.starts_with("Error:")
                || l.starts_with("Err:")
                || ((l.starts_with("W:") || l.starts_with("Warning:"))
                    && (l.contains("GPG error")
                        || l.contains("Failed to fetch")
                        || l.contains("signature")
                        || l.contains("NO_PUBKEY")
                        || l.contains("EXPKEYSIG")))
        })
        .map(String::from)
        .collect()
}

/// Each package's versions offered by a source whose line contains `key`, newest first as apt lists them,
/// from `apt-cache policy PKG...` output.
pub fn offered_from_policy(text: &str, key: &str) -> BTreeMap<String, Vec<String>> {
    let mut offered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut package: Option<String> = None;
    let mut version: Option<&str> = None;
    for line in text.lines() {
        if !line.starts_with([' ', '\t']) && line.trim_end().ends_with(':') {
            // "nvidia-container-toolkit:" starts a package's section ("name:arch:" on a multi-arch node).
            let head = line.trim_end().trim_end_matches(':');
            package = Some(head.split(':').next().unwrap_or(head).to_string());
            version = None;
            continue;
        }
        let t = line.trim_start_matches([' ', '*']).trim();
        if t.is_empty()
            || t.ends_with(':')
            || t.starts_with("Installed:")
            || t.starts_with("Candidate:")
        {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        // "1.18.0-1 500" is a version line; "500 file:/srv/repo  Packages" a source line under it.
        if words.len() == 2 && words[1].parse::<i32>().is_ok() && words[0].parse::<i32>().is_err() {
            version = Some(words[0]);
        } else if words.first().is_some_and(|w| w.parse::<i32>().is_ok())
            && !key.is_empty()
            && t.contains(key)
        {
            if let (Some(package), Some(version)) = (&package, version) {
                let versions = offered.entry(package.clone()).or_default();
                if !versions.iter().any(|v| v == version) {
                    versions.push(version.to_string());
                }
            }
        }
    }
    offered
}

/// Proxy options for apt from the task's environment: apt reads `http_proxy`/`https_proxy` itself, but not
/// the upper-case spellings many sites set, so those are passed on explicitly.
pub fn proxy_options() -> Vec<String> {
    let mut out = Vec::new();
    for scheme in ["http", "https"] {
        let lower = format!("{}_proxy", scheme);
        if std::env::var_os(&lower).is_some() {
            continue;
        }
        if let Ok(v) = std::env::var(lower.to_ascii_uppercase()) {
            if !v.trim().is_empty() {
                out.push("-o".into());
                out.push(format!("Acquire::{}::Proxy={}", scheme, v.trim()));
            }
        }
    }
    out
}

impl Backend for Apt {
    fn keyring_path(&self, p: &Params) -> PathBuf {
        p.keyring_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KEYRING))
    }

    fn repo_files(&self, p: &Params, key: &VerifiedKey) -> Vec<RepoFile> {
        repo_files_at(self.keyring_path(p), self.list_path(p), &p.repo_url, key)
    }

    fn managed_paths(&self, p: &Params) -> Vec<PathBuf> {
        vec![self.list_path(p), self.keyring_path(p)]
    }

    fn conflicts(&self, p: &Params) -> Result<Vec<Conflict>> {
        find_conflicts(&self.list_path(p), &self.main_list, &p.repo_url)
    }

    fn installed(&self, packages: &[String]) -> Result<BTreeMap<String, Installed>> {
        let status = dpkg::read_status(&self.admin_dir)?;
        Ok(packages
            .iter()
            .filter_map(|name| {
                let s = status.get(name).filter(|s| s.is_installed())?;
                Some((
                    name.clone(),
                    Installed {
                        version: s.version.clone(),
                        held: s.is_held(),
                    },
                ))
            })
            .collect())
    }

    fn wait_for_lock(&self, timeout: Duration) -> Result<Duration> {
        dpkg::wait_for_locks(&self.admin_dir, timeout)
    }

    fn refresh(&self, p: &Params) -> Result<()> {
        let list = self.list_path(p);
        let sourcelist = format!("Dir::Etc::sourcelist={}", list.display());
        self.apt(
            "apt-get",
            &[
                "update",
                "-o",
                &sourcelist,
                "-o",
                "Dir::Etc::sourceparts=-",
                "-o",
                "APT::Get::List-Cleanup=0",
            ],
            &format!("updating the index of {}", p.repo_url),
        )?;
        Ok(())
    }

    fn offered(&self, p: &Params, packages: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
        let mut args = vec!["policy"];
        args.extend(packages.iter().map(String::as_str));
        let out = self.apt("apt-cache", &args, "reading the repository index")?;
        Ok(offered_from_policy(&out, &url_key(&p.repo_url)))
    }

    fn install(&self, packages: &[String], version: &str, lock_timeout: Duration) -> Result<()> {
        let lock = format!("DPkg::Lock::Timeout={}", lock_timeout.as_secs());
        let pins: Vec<String> = packages
            .iter()
            .map(|p| format!("{}={}", p, version))
            .collect();
        let mut args = vec![
            "install",
            "-y",
            "-o",
            &lock,
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "--allow-downgrades",
            "--allow-change-held-packages",
        ];
        args.extend(pins.iter().map(String::as_str));
        self.apt("apt-get", &args, &format!("installing {}", pins.join(" ")))?;
        Ok(())
    }

    fn set_hold(&self, packages: &[String], hold: bool) -> Result<()> {
        let mut args = vec![if hold { "hold" } else { "unhold" }];
        args.extend(packages.iter().map(String::as_str));
        self.apt(
            "apt-mark",
            &args,
            if hold {
                "holding the packages"
            } else {
                "releasing the hold"
            },
        )?;
        Ok(())
    }

    fn remove(&self, packages: &[String], lock_timeout: Duration) -> Result<()> {
        let lock = format!("DPkg::Lock::Timeout={}", lock_timeout.as_secs());
        let mut args = vec!["remove", "-y", "-o", &lock, "--allow-change-held-packages"];
        args.extend(packages.iter().map(String::as_str));
        self.apt("apt-get", &args, "removing the packages")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_line_carries_signed_by() {
        let text = list_contents(
            "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH)",
            Path::new("/usr/share/keyrings/k.gpg"),
        );
        assert!(text.ends_with(
            "\ndeb [signed-by=/usr/share/keyrings/k.gpg] https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n"
        ));
    }

    #[test]
    fn url_keys_ignore_scheme_arch_and_slashes() {
        assert_eq!(
            url_key("https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH)"),
            "nvidia.github.io/libnvidia-container/stable/deb"
        );
        assert_eq!(url_key("file:/srv/repo/"), "/srv/repo");
    }

    #[test]
    fn finds_old_names_and_same_url_lists_but_not_others_or_ours() {
        let d = tempfile::tempdir().unwrap();
        let parts = d.path().join("sources.list.d");
        std::fs::create_dir(&parts).unwrap();
        let url = "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH)";
        let ours = parts.join("nvidia-container-toolkit.list");
        std::fs::write(&ours, list_contents(url, Path::new("/k.gpg"))).unwrap();
        std::fs::write(
            parts.join("nvidia-docker.list"),
            "deb https://nvidia.github.io/nvidia-docker/x /\n",
        )
        .unwrap();
        std::fs::write(
            parts.join("zz-copy.list"),
            "deb [signed-by=/other.gpg] http://nvidia.github.io/libnvidia-container/stable/deb/amd64 /\n",
        )
        .unwrap();
        std::fs::write(
            parts.join("commented.list"),
            "# deb https://nvidia.github.io/libnvidia-container/stable/deb/amd64 /\n",
        )
        .unwrap();
        std::fs::write(
            parts.join("debian.sources"),
            "Types: deb\nURIs: http://mirror/debian\n",
        )
        .unwrap();
        std::fs::write(
            parts.join("nvidia-docker.list.bak"),
            "deb https://nvidia.github.io/libnvidia-container/stable/deb/amd64 /\n",
        )
        .unwrap();
        let main = d.path().join("sources.list");
        std::fs::write(&main, "deb http://mirror/debian bookworm main\n").unwrap();
        let found = find_conflicts(&ours, &main, url).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|c| c.path.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["nvidia-docker.list", "zz-copy.list"]);
        assert!(found.iter().all(|c| c.removable));
        std::fs::write(
            &main,
            "deb https://nvidia.github.io/libnvidia-container/stable/deb/amd64 /\n",
        )
        .unwrap();
        let found = find_conflicts(&ours, &main, url).unwrap();
        assert_eq!(found.len(), 3);
        assert!(!found[2].removable && found[2].path == main);
    }

    #[test]
    fn lists_each_packages_versions_from_our_repository_only() {
        // The shape of apt 2.6's `apt-cache policy A B` (bookworm), with a second repository offering a newer
        // version and the installed one also listed from dpkg's status file.
        let policy = "\
nvidia-container-toolkit:
  Installed: 1.17.8-1
  Candidate: 1.19.0-1
  Version table:
     1.19.0-1 500
        500 http://archive.example/ubuntu noble/multiverse amd64 Packages
     1.18.0-1 500
        500 file:/srv/aptrepo/good/stable/deb/amd64  Packages
 *** 1.17.8-1 500
        500 file:/srv/aptrepo/good/stable/deb/amd64  Packages
        100 /var/lib/dpkg/status
libnvidia-container1:amd64:
  Installed: (none)
  Candidate: 1.18.0-1
  Version table:
     1.18.0-1 500
        500 file:/srv/aptrepo/good/stable/deb/amd64  Packages
nvidia-container-toolkit-base:
  Installed: (none)
  Candidate: (none)
  Version table:
";
        let key = url_key("file:/srv/aptrepo/good/stable/deb/$(ARCH)");
        let offered = offered_from_policy(policy, &key);
        assert_eq!(
            offered,
            BTreeMap::from([
                (
                    "nvidia-container-toolkit".to_string(),
                    vec!["1.18.0-1".to_string(), "1.17.8-1".to_string()]
                ),
                (
                    "libnvidia-container1".to_string(),
                    vec!["1.18.0-1".to_string()]
                ),
            ])
        );
        assert!(offered_from_policy(policy, "/elsewhere").is_empty());
    }

    #[test]
    fn bad_signatures_and_errors_are_problems_but_notices_are_not() {
        let out = "Get:1 file:/srv/repo InRelease\nW: GPG error: file:/srv/repo  InRelease: The following signatures were invalid: BADSIG 1234\nE: The repository 'file:/srv/repo  InRelease' is not signed.\nN: Updating from such a repository can't be done securely\n";
        let p = apt_problems(out, "");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(apt_problems(
            "Hit:1 file:/srv/repo InRelease\nReading package lists...\n",
            "W: some unrelated notice\n"
        )
        .is_empty());
    }

    #[test]
    fn upper_case_proxies_are_passed_on_lower_case_ones_left_to_apt() {
        // The only test that touches these variables (the environment is shared by the test threads).
        std::env::remove_var("http_proxy");
        std::env::set_var("HTTP_PROXY", "http://proxy.invalid:3128");
        std::env::set_var("https_proxy", "http://proxy.invalid:3129");
        std::env::set_var("HTTPS_PROXY", "http://ignored.invalid:1");
        assert_eq!(
            proxy_options(),
            vec![
                "-o".to_string(),
                "Acquire::http::Proxy=http://proxy.invalid:3128".to_string()
            ]
        );
        for v in ["HTTP_PROXY", "https_proxy", "HTTPS_PROXY"] {
            std::env::remove_var(v);
        }
        assert!(proxy_options().is_empty());
    }
}
