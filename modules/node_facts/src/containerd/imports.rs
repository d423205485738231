//! containerd's `imports`: which files an entry names and in what order containerd loads them, as its
//! `LoadConfig` and `resolveImports` do.
//!
//! - An entry is cleaned; a relative one is relative to the importing file's folder (see
//!   [`Rules::relative_globs_from_file`] for the exception of containerd 1.6's globs).
//! - Only an entry with a `*` is a glob (containerd tests for `*` alone): it is expanded like Go's
//!   `filepath.Glob`, element by element, each folder's matches in sorted order, and matching nothing is no error.
//!   Any other entry names one file, which must exist.
//! - Loading is breadth first: the config, then its imports in order, then their imports; a file already
//!   loaded is skipped, so import cycles end.
//!
//! Paths are the node's (absolute); `root` is where the node's `/` is on this machine (`/` on a live node).

use std::collections::{HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use toml_edit::{DocumentMut, Item};

use super::{merge, Error, Rules};
use crate::glob;

/// The `imports` entries of a config, as written (entries that are not strings are left out).
pub fn entries(doc: &DocumentMut) -> Vec<String> {
    doc.get("imports")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The files one entry of `importing`'s `imports` names, in containerd's order.
pub fn resolve(root: &Path, importing: &Path, entry: &str, rules: Rules) -> Vec<PathBuf> {
    let entry = Path::new(entry);
    let is_glob = entry.to_string_lossy().contains('*');
    let base = if is_glob && !rules.relative_globs_from_file {
        Path::new("/")
    } else {
        importing.parent().unwrap_or(Path::new("/"))
    };
    let path = clean(&base.join(entry));
    if is_glob {
        expand(root, &path)
    } else {
        vec![path]
    }
}

/// The files loading `config` (whose parsed text is `doc`) imports, in load order, and the result of
/// merging each into `doc` by `rules`. A file that cannot be read or parsed fails with its node path.
/// containerd 1.x fails the same way; 2.x stops loading at a missing file and runs with what it has.
pub fn load(
    root: &Path,
    config: &Path,
    mut doc: DocumentMut,
    rules: Rules,
) -> Result<(DocumentMut, Vec<PathBuf>), Error> {
    let mut pending: VecDeque<PathBuf> = entries(&doc)
        .iter()
        .flat_map(|e| resolve(root, config, e, rules))
        .collect();
    let mut loaded: HashSet<PathBuf> = HashSet::from([config.to_path_buf()]);
    let mut imported = Vec::new();
    while let Some(file) = pending.pop_front() {
        if loaded.contains(&file) {
            continue;
        }
        let shown = file.display();
        let text = std::fs::read_to_string(on_node(root, &file))
            .map_err(|e| Error(format!("cannot read import {}: {}", shown, e)))?;
        let over: DocumentMut = text
            .parse()
            .map_err(|e| Error(format!("import {} is not valid TOML: {}", shown, e)))?;
        merge::merge(&mut doc, &over, rules);
        pending.extend(
            entries(&over)
                .iter()
                .flat_map(|e| resolve(root, &file, e, rules)),
        );
        loaded.insert(file.clone());
        imported.push(file);
    }
    Ok((doc, imported))
}

/// The `imports` entry that loads a drop-in: its folder's `*.toml` (what NVIDIA's `nvidia-ctk` adds), or
/// the file itself when its name does not end in `.toml`.
pub fn entry_for(drop_in: &Path) -> String {
    match (drop_in.parent(), drop_in.extension()) {
        (Some(dir), Some(ext)) if ext == "toml" => dir.join("*.toml").display().to_string(),
        _ => drop_in.display().to_string(),
    }
}

/// Whether `entry` of `importing`'s `imports` loads no file but `only` (a glob matching nothing counts too).
pub fn loads_only(
    root: &Path,
    importing: &Path,
    entry: &str,
    only: Option<&Path>,
    rules: Rules,
) -> bool {
    resolve(root, importing, entry, rules)
        .iter()
        .all(|f| Some(f.as_path()) == only)
}

fn is_missing(root: &Path, file: &Path) -> bool {
    std::fs::symlink_metadata(on_node(root, file)).is_err()
}

/// Where a node path is on this machine.
fn on_node(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Go's `filepath.Clean` for an absolute path: no `.` steps, `..` taken back lexically (never above `/`).
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The existing files an absolute pattern matches, element by element as Go's `filepath.Glob`: each
/// folder's names sorted, unreadable folders matching nothing.
fn expand(root: &Path, pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for c in pattern.components().skip(1) {
        let part = c.as_os_str().to_string_lossy();
        if !glob::has_wildcard(&part) {
            found.iter_mut().for_each(|f| f.push(c));
            continue;
        }
        found = found
            .iter()
            .flat_map(|dir| {
                let mut names: Vec<String> = std::fs::read_dir(on_node(root, dir))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| glob::matches(&part, n))
                    .collect();
                names.sort();
                names.into_iter().map(move |n| dir.join(n))
            })
            .collect();
    }
    found.retain(|f| !is_missing(root, f));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::layout::get;
    use std::fs;

    fn write(root: &Path, node_path: &str, text: &str) {
        let p = on_node(root, Path::new(node_path));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn runtime(name: &str, runtime_type: &str) -> String {
        format!(
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{name}]\nruntime_type = \"{runtime_type}\"\n"
        )
    }

    fn paths(v: &[PathBuf]) -> Vec<String> {
        v.iter().map(|p| p.display().to_string()).collect()
    }

    const NEW: Rules = Rules {
        plugins_merge_deeply: true,
        arrays_append_unique: true,
        relative_globs_from_file: true,
    };

    #[test]
    fn relative_entries_are_relative_to_the_importing_file() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "/etc/containerd/conf.d/10-a.toml", "");
        write(r, "/conf.d/at-slash.toml", "");
        let config = Path::new("/etc/containerd/config.toml");
        assert_eq!(
            paths(&resolve(r, config, "conf.d/*.toml", NEW)),
            ["/etc/containerd/conf.d/10-a.toml"]
        );
        assert_eq!(
            paths(&resolve(r, config, "./sub/../x.toml", NEW)),
            ["/etc/containerd/x.toml"]
        );
        assert_eq!(
            paths(&resolve(r, config, "/abs//y.toml", NEW)),
            ["/abs/y.toml"]
        );
        // containerd 1.6.20 globbed a relative entry from its working directory (`/` under systemd): seen
        // with its `config dump`, which loaded nothing from the config's conf.d.
        let old = Rules::of(Some((1, 6)));
        assert_eq!(
            paths(&resolve(r, config, "conf.d/*.toml", old)),
            ["/conf.d/at-slash.toml"]
        );
        assert_eq!(
            paths(&resolve(r, config, "conf.d/10-a.toml", old)),
            ["/etc/containerd/conf.d/10-a.toml"]
        );
    }

    #[test]
    fn only_a_star_makes_a_glob_and_a_glob_may_match_nothing() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "/etc/containerd/qa.toml", "");
        let config = Path::new("/etc/containerd/config.toml");
        // containerd 1.6.20 and 2.1.9 both looked for a file named `q?.toml` and failed on it.
        assert_eq!(
            paths(&resolve(r, config, "q?.toml", NEW)),
            ["/etc/containerd/q?.toml"]
        );
        assert_eq!(
            paths(&resolve(r, config, "q?.t*", NEW)),
            ["/etc/containerd/qa.toml"]
        );
        assert!(resolve(r, config, "none/*.toml", NEW).is_empty());
    }

    #[test]
    fn loading_is_breadth_first_in_sorted_glob_order() {
        // The tree containerd 1.7.24 and 2.1.9 loaded (`config dump`, Debian's packages, 2026-12-06) as
        // d1/a, d1/z, d2/z, b, c: runtime x came from c.toml, the last; 2.1 kept y of d1/z, 1.7 did not
        // (c.toml's CRI table replaced the whole table).
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let v2 = "version = 2\n";
        write(
            r,
            "/t/config.toml",
            "version = 2\nimports = [\"d*/*.toml\", \"b.toml\"]\n",
        );
        write(
            r,
            "/t/b.toml",
            &format!("{v2}imports = [\"c.toml\"]\n{}", runtime("x", "from-b")),
        );
        write(r, "/t/c.toml", &format!("{v2}{}", runtime("x", "from-c")));
        write(
            r,
            "/t/d2/z.toml",
            &format!("{v2}{}", runtime("x", "from-d2z")),
        );
        write(
            r,
            "/t/d1/z.toml",
            &format!("{v2}{}{}", runtime("x", "from-d1z"), runtime("y", "y")),
        );
        write(
            r,
            "/t/d1/a.toml",
            &format!(
                "{v2}imports = [\"../config.toml\"]\n{}",
                runtime("x", "from-d1a")
            ),
        );
        let config = Path::new("/t/config.toml");
        let text = fs::read_to_string(on_node(r, config)).unwrap();
        let rt = |d: &DocumentMut, name: &str| {
            get(
                d.as_item(),
                &[
                    "plugins",
                    "io.containerd.grpc.v1.cri",
                    "containerd",
                    "runtimes",
                    name,
                    "runtime_type",
                ],
            )
            .and_then(Item::as_str)
            .map(String::from)
        };
        let (merged, files) = load(r, config, text.parse().unwrap(), NEW).unwrap();
        // d1/a.toml imports the config back: the cycle ends there.
        assert_eq!(
            paths(&files),
            [
                "/t/d1/a.toml",
                "/t/d1/z.toml",
                "/t/d2/z.toml",
                "/t/b.toml",
                "/t/c.toml"
            ]
        );
        assert_eq!(rt(&merged, "x").as_deref(), Some("from-c"));
        assert_eq!(rt(&merged, "y").as_deref(), Some("y"));
        let (merged, _) = load(r, config, text.parse().unwrap(), Rules::of(Some((1, 7)))).unwrap();
        assert_eq!(rt(&merged, "x").as_deref(), Some("from-c"));
        assert_eq!(rt(&merged, "y"), None);
    }

    #[test]
    fn an_import_that_cannot_be_read_or_parsed_is_named() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "/t/bad.toml", "[x\n");
        let config = Path::new("/t/config.toml");
        let e = load(
            r,
            config,
            "imports = [\"gone.toml\"]\n".parse().unwrap(),
            NEW,
        )
        .unwrap_err();
        assert!(e.0.starts_with("cannot read import /t/gone.toml:"), "{e}");
        let e = load(
            r,
            config,
            "imports = [\"bad.toml\"]\n".parse().unwrap(),
            NEW,
        )
        .unwrap_err();
        assert!(
            e.0.starts_with("import /t/bad.toml is not valid TOML"),
            "{e}"
        );
    }

    #[test]
    fn a_drop_ins_entry_and_what_it_alone_loads() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let config = Path::new("/etc/containerd/config.toml");
        let ours = Path::new("/etc/containerd/conf.d/99-nvidia.toml");
        assert_eq!(entry_for(ours), "/etc/containerd/conf.d/*.toml");
        assert_eq!(
            entry_for(Path::new("/etc/containerd/nvidia.conf")),
            "/etc/containerd/nvidia.conf"
        );
        let entry = entry_for(ours);
        // Nothing there, or only our drop-in: the entry loads nothing else.
        assert!(loads_only(r, config, &entry, Some(ours), NEW));
        write(r, ours.to_str().unwrap(), "");
        assert!(loads_only(r, config, &entry, Some(ours), NEW));
        assert!(!loads_only(r, config, &entry, None, NEW));
        write(r, "/etc/containerd/conf.d/10-registry.toml", "");
        assert!(!loads_only(r, config, &entry, Some(ours), NEW));
        // A wildcard in a folder name is expanded too.
        assert!(!loads_only(
            r,
            config,
            "/etc/*/conf.d/*.toml",
            Some(ours),
            NEW
        ));
        assert!(loads_only(
            r,
            config,
            "/etc/*/conf.d/99-*.toml",
            Some(ours),
            NEW
        ));
    }
}
