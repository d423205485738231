//! The installed containerd: where it is, which version it is, its default config, and the check a candidate
//! file passes before it replaces the real one (what the `validate` option asks for: containerd's own
//! `config dump`, or the caller's command). A run asks containerd through [`Installed`], so planning can be
//! tested with recorded answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ansible_module::process;
use anyhow::{bail, Context as _, Result};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The `containerd` executable on `PATH` (then the usual system folders), if any.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/bin", "/usr/bin"].iter().map(PathBuf::from))
        .map(|d| d.join("containerd"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `(major, minor)` from `containerd --version` output, e.g.
/// `containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3` or `... v2.1.4 ...`.
pub fn parse_version(output: &str) -> Option<(u32, u32)> {
    output.split_whitespace().skip(1).find_map(|word| {
        let w = word.strip_prefix('v').unwrap_or(word);
        let mut parts = w.split(['.', '~', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    })
}

/// The version of the containerd at `bin`.
pub fn version(bin: &Path) -> Result<(u32, u32)> {
    let out = process::run(bin, &["--version"], &[], TIMEOUT)?;
    if !out.success() {
        bail!("{} --version failed: {}", bin.display(), out.complaint());
    }
    parse_version(&out.stdout)
        .with_context(|| format!("cannot read a version in {:?}", out.stdout.trim()))
}

/// `containerd config default`: containerd's built-in settings, as TOML.
pub fn default_config(bin: &Path) -> Result<String> {
    let out = process::run(bin, &["config", "default"], &[], TIMEOUT)?;
    if !out.success() {
        bail!(
            "{} config default failed: {}",
            bin.display(),
            out.complaint()
        );
    }
    Ok(out.stdout)
}

/// `containerd --config FILE config dump`: the config as containerd loads it (imports merged, defaults filled).
pub fn dump(bin: &Path, config: &Path) -> Result<String> {
    let file = config.to_string_lossy();
    let out = process::run(bin, &["--config", &file, "config", "dump"], &[], TIMEOUT)?;
    if !out.success() {
        bail!("{} config dump failed: {}", bin.display(), out.complaint());
    }
    Ok(out.stdout)
}

/// What planning asks of the installed containerd; `None` where it cannot answer.
pub trait Installed {
    /// The program, for validation with its own `config dump`.
    fn program(&self) -> &Path;
    /// `(major, minor)` of `containerd --version`.
    fn version(&self) -> Option<(u32, u32)>;
    /// `containerd config default`.
    fn default_config(&self) -> Option<String>;
    /// `containerd --config FILE config dump`.
    fn dump(&self, config: &Path) -> Option<String>;
}

/// The containerd program found on this node.
pub struct Program(pub PathBuf);

impl Installed for Program {
    fn program(&self) -> &Path {
        &self.0
    }
    fn version(&self) -> Option<(u32, u32)> {
        version(&self.0).ok()
    }
    fn default_config(&self) -> Option<String> {
        default_config(&self.0).ok()
    }
    fn dump(&self, config: &Path) -> Option<String> {
        dump(&self.0, config).ok()
    }
}

/// Splits a `validate` command into words: whitespace separates, single and double quotes group, a backslash
/// escapes the next character. No shell is involved, so no expansion of any kind happens.
pub fn split_words(command: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                in_word = true;
                cur.push(
                    chars
                        .next()
                        .context("validate ends with a lone backslash")?,
                );
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("validate has an unclosed quote: {}", command);
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// How a candidate file is checked before it replaces the real one (the `validate` option, resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateCheck {
    /// Nothing is run.
    None,
    /// `containerd --config FILE config dump` with this containerd.
    ConfigDump(PathBuf),
    /// The caller's command; `%s` is replaced by the candidate's path.
    Command(String),
}

/// Runs the check on `candidate`; `Err` when it rejects it (its output quoted).
pub fn check_candidate(how: &CandidateCheck, candidate: &Path) -> Result<()> {
    let file = candidate.to_string_lossy();
    let (program, args): (PathBuf, Vec<String>) = match how {
        CandidateCheck::None => return Ok(()),
        CandidateCheck::ConfigDump(bin) => (
            bin.clone(),
            vec![
                "--config".into(),
                file.to_string(),
                "config".into(),
                "dump".into(),
            ],
        ),
        CandidateCheck::Command(cmd) => {
            if !cmd.contains("%s") {
                bail!("validate must contain %s (the candidate file): {}", cmd);
            }
            let mut words = split_words(cmd)?;
            if words.is_empty() {
                bail!("validate is empty");
            }
            for w in words.iter_mut() {
                *w = w.replace("%s", &file);
            }
            let program = PathBuf::from(words.remove(0));
            (program, words)
        }
    };
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = process::run(&program, &argv, &[], TIMEOUT)?;
    if !out.success() {
        bail!(
            "validation failed: {} {} exited with {}: {}",
            program.display(),
            argv.join(" "),
            out.code.map(|c| c.to_string()).unwrap_or("a signal".into()),
            out.complaint()
        );
    }
    Ok(())
}
