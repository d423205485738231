//! Planning: from the text of the config (and of the drop-in) and the options, the exact text each file
//! must end with. Pure functions: no file system, no processes; the module and the tests call them.

use ansible_module::Choice;
use anyhow::{bail, Result};
use serde_json::Value as Json;
use toml_edit::{DocumentMut, Item};

use crate::edit::{self, RuntimeSpec};
use crate::toml_tree;
use node_facts::containerd::layout::{self, Layout};

/// `present` registers the runtimes; `absent` removes them (the `state` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
}

impl Choice for State {
    const ALL: &'static [State] = &[State::Present, State::Absent];
    fn as_str(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Absent => "absent",
        }
    }
}

/// The `runtime_type` a runtime gets when neither its table nor its base has one (the option's default): runc's
/// shim, which NVIDIA's runtime runs under.
pub const DEFAULT_RUNTIME_TYPE: &str = "io.containerd.runc.v2";

/// What to do, already validated and defaulted (the module's parameters, minus paths and validation).
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    pub binary_path: String,
    /// The `runtime_type` of a runtime whose table (or copied base) has none.
    pub runtime_type: String,
    pub set_as_default: bool,
    pub enable_cdi: bool,
    pub extra_runtimes: Vec<RuntimeSpec>,
    pub container_annotations: Vec<String>,
    /// The version a new (missing, empty or comments-only) config gets.
    pub new_config_version: i64,
    pub state: State,
    /// `containerd config default` of the installed containerd: where the base runtime is copied from when
    /// the file itself has none (so a new file still inherits containerd's own runc settings).
    pub default_config: Option<String>,
    /// `containerd config dump` of the config (imports merged): in drop-in mode the base runtime is copied
    /// from it, so the drop-in's runtime carries every key containerd really gives the base.
    pub effective_config: Option<String>,
    /// The version the drop-in is written in (containerd 2.x: 3); default: the config's.
    pub drop_in_version: Option<i64>,
    /// `imports` entries to take out on `state: absent`: drop-in globs that load nothing but our drop-in.
    pub stale_imports: Vec<String>,
    /// The kubelet's cgroup driver is systemd (`Some(true)`), cgroupfs (`Some(false)`), or unknown: a new
    /// runtime with no base in the file takes `SystemdCgroup` from it.
    pub kubelet_systemd_cgroup: Option<bool>,
}

impl Options {
    /// The options with the reference's defaults.
    pub fn new(name: &str, binary_path: &str) -> Options {
        Options {
            name: name.to_string(),
            binary_path: binary_path.to_string(),
            runtime_type: DEFAULT_RUNTIME_TYPE.to_string(),
            set_as_default: false,
            enable_cdi: false,
            extra_runtimes: Vec::new(),
            container_annotations: Vec::new(),
            new_config_version: 2,
            state: State::Present,
            default_config: None,
            effective_config: None,
            drop_in_version: None,
            stale_imports: Vec::new(),
            kubelet_systemd_cgroup: None,
        }
    }

    /// The main runtime, then the extra ones.
    pub fn runtimes(&self) -> Vec<RuntimeSpec> {
        let main = RuntimeSpec {
            name: self.name.clone(),
            binary_path: self.binary_path.clone(),
        };
        std::iter::once(main)
            .chain(
                self.extra_runtimes
                    .iter()
                    .filter(|r| r.name != self.name)
                    .cloned(),
            )
            .collect()
    }
}

/// One file's text before and after; `None` is a missing (or to be deleted) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub before: Option<String>,
    pub after: Option<String>,
}

impl FileChange {
    /// The bytes differ (or the file appears or disappears).
    pub fn changed(&self) -> bool {
        self.before != self.after
    }

    /// What containerd would load differs: parsed data compared, formatting and comments ignored.
    pub fn data_changed(&self) -> bool {
        // Equal bytes need no parse (the common, idempotent case).
        self.changed() && data_of(self.before.as_deref()) != data_of(self.after.as_deref())
    }
}

/// The parsed data of a config text (a missing or unparsable file reads as an empty table).
pub fn data_of(text: Option<&str>) -> Json {
    text.and_then(|t| t.parse::<DocumentMut>().ok())
        .map(|d| toml_tree::data(d.as_item()))
        .unwrap_or_else(|| Json::Object(Default::default()))
}

/// Where the table of a new runtime came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// Every runtime existed already: only the keys this module owns were set.
    NotNeeded,
    /// A runtime of the file itself (its default runtime, else `runc`), by name.
    File(String),
    /// `runc` of `containerd config default`: the file has no runtime to copy.
    ContainerdDefaults,
    /// Nothing to copy: the reference's bare table.
    Nothing,
}

impl Base {
    /// The file itself had no runtime to copy from.
    pub fn missing_in_file(&self) -> bool {
        matches!(self, Base::ContainerdDefaults | Base::Nothing)
    }
}

/// The outcome of planning.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: FileChange,
    /// The drop-in file, when drop-in mode is used.
    pub drop_in: Option<FileChange>,
    pub config_version: i64,
    /// The main runtime's resulting table as data (`null` when absent).
    pub runtime: Json,
    pub default_runtime_name: Option<String>,
    /// Where a new runtime's table was copied from.
    pub base: Base,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.config.changed() || self.drop_in.as_ref().is_some_and(FileChange::changed)
    }
    pub fn restart_required(&self) -> bool {
        self.config.data_changed() || self.drop_in.as_ref().is_some_and(FileChange::data_changed)
    }
}

/// Parses a config text with a clear error: line, column, the parser's message and a short excerpt of the
/// offending line (a line can be megabytes long; the message must stay readable).
pub fn parse(text: &str, what: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>()
        .map_err(|e| anyhow::anyhow!("{} is not valid TOML: {}", what, describe(text, &e)))
}

/// The most characters of the offending line an error quotes.
pub const EXCERPT_CHARS: usize = 200;

/// `line L, column C: message`, then the excerpt of the line around the column with a caret under it.
fn describe(text: &str, e: &toml_edit::TomlError) -> String {
    let message = e.message().trim();
    let Some(start) = e.span().map(|s| s.start.min(text.len())) else {
        return message.to_string();
    };
    // The span is a byte offset; step back to a character boundary.
    let start = (0..=start)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_no = text[..line_start].matches('\n').count() + 1;
    let line: Vec<char> = text[line_start..line_end]
        .trim_end_matches('\r')
        .chars()
        .collect();
    let column = text[line_start..start].chars().count();
    // A window of at most EXCERPT_CHARS characters around the column, marked where it is cut.
    let from = column
        .saturating_sub(EXCERPT_CHARS / 2)
        .min(line.len().saturating_sub(EXCERPT_CHARS));
    let to = (from + EXCERPT_CHARS).min(line.len());
    let shown: String = line[from..to]
        .iter()
        .map(|c| {
            if c.is_control() && *c != '\t' {
                '\u{fffd}'
            } else {
                *c
            }
        })
        .collect();
    let (lead, tail) = (
        if from > 0 { "..." } else { "" },
        if to < line.len() { "..." } else { "" },
    );
    format!(
        "line {}, column {}: {}\n  {}{}{}\n  {}^",
        line_no,
        column + 1,
        message,
        lead,
        shown,
        tail,
        " ".repeat(lead.len() + column.saturating_sub(from).min(to - from))
    )
}

/// Plans an in-place edit of one config file.
pub fn plan(input: Option<&str>, opts: &Options) -> Result<Plan> {
    let mut doc = parse(input.unwrap_or(""), "the config")?;
    let literal = toml_tree::prefers_literal_strings(doc.as_item());
    let version = layout::detect_version(&doc, opts.new_config_version)?;
    let layout = Layout::for_version(version);
    let mut base = Base::NotNeeded;
    let mut warnings = Vec::new();
    match opts.state {
        State::Present => {
            base = add_runtimes(&mut doc, &layout, opts)?;
            settle_default(doc.as_item_mut(), &layout, opts, &mut warnings)?;
            if opts.enable_cdi {
                edit::enable_cdi(doc.as_item_mut(), &layout)?;
            }
            if layout::is_blank(&doc) || doc.get("version").is_none() {
                edit::lift_trailing_comments(&mut doc);
            }
            edit::ensure_version(&mut doc, version);
        }
        State::Absent => {
            remove_runtimes(&mut doc, &layout, opts)?;
            edit::remove_imports(&mut doc, &opts.stale_imports);
            // The reference never reverts CDI, and sets it on cleanup too when asked to.
            if opts.enable_cdi && !layout::is_blank(&doc) {
                edit::enable_cdi(doc.as_item_mut(), &layout)?;
            }
        }
    }
    if literal {
        toml_tree::quote_new_strings_literally(doc.as_item_mut());
    }
    let after = render(input, &doc, opts);
    let runtime = runtime_data(&doc, &layout, &opts.name);
    Ok(Plan {
        default_runtime_name: default_name(&doc, &layout),
        config: FileChange {
            before: input.map(str::to_string),
            after,
        },
        drop_in: None,
        config_version: version,
        runtime,
        base,
        warnings,
    })
}

/// `set_as_default: true` makes the runtime the default (recording what it replaced). Otherwise a default
/// this module set earlier is undone, and one that someone else set stays, with a warning.
fn settle_default(
    root: &mut Item,
    layout: &Layout,
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if opts.set_as_default {
        return edit::set_default(root, layout, &opts.name);
    }
    for rt in opts.runtimes() {
        if edit::undo_default(root, layout, &rt.name) == edit::DefaultUndo::SetElsewhere {
            warnings.push(format!(
                "runtime {} is already containerd's default runtime (default_runtime_name), set outside this \
                 module: left as it is (set_as_default: false does not undo a default this module did not set)",
                rt.name
            ));
        }
    }
    Ok(())
}

/// Plans drop-in mode: the runtimes go into the drop-in (a minimal file; containerd 2.x merges it deeply into
/// the config), the config gains `import` in its `imports` and loses any copy of the runtimes it held.
pub fn plan_drop_in(
    config: Option<&str>,
    drop_in: Option<&str>,
    import: &str,
    opts: &Options,
) -> Result<Plan> {
    let mut main = parse(config.unwrap_or(""), "the config")?;
    let mut dropin = parse(drop_in.unwrap_or(""), "the drop-in")?;
    // A new drop-in is written in the config's quoting, and its tables start at column 0 as in a new file.
    let fresh_drop_in = layout::is_blank(&dropin);
    let literal_main = toml_tree::prefers_literal_strings(main.as_item());
    let literal_drop_in = if fresh_drop_in {
        literal_main
    } else {
        toml_tree::prefers_literal_strings(dropin.as_item())
    };
    let version = layout::detect_version(&main, opts.new_config_version)?;
    let layout = Layout::for_version(version);
    let dversion = layout::detect_version(&dropin, opts.drop_in_version.unwrap_or(version))?;
    let dlayout = Layout::for_version(dversion);
    let mut base = Base::NotNeeded;
    let mut warnings = Vec::new();
    match opts.state {
        State::Present => {
            // What containerd loads (its dump), else the config itself: a runtime already there moves into
            // the drop-in whole; a new one copies that config's default runtime, else runc.
            let effective = opts
                .effective_config
                .as_deref()
                .map(|t| parse(t, "containerd's config dump"))
                .transpose()?;
            let loaded = effective.as_ref().unwrap_or(&main);
            let loaded_layout = match &effective {
                Some(e) => Layout::for_version(layout::detect_version(e, dversion)?),
                None => layout.clone(),
            };
            let found = edit::find_base(loaded.as_item(), &loaded_layout);
            let new_base = found.clone().map(|(_, item)| item);
            let existing = |name: &str| {
                let mut path = loaded_layout.runtimes();
                path.push(name);
                toml_tree::get(loaded.as_item(), &path)
                    .filter(|i| i.is_table_like())
                    .cloned()
            };
            if opts
                .runtimes()
                .iter()
                .any(|rt| !has_runtime(&dropin, &dlayout, &rt.name))
            {
                base = match found {
                    Some((name, _)) => Base::File(name),
                    None => Base::Nothing,
                };
            }
            put_runtimes(&mut dropin, &dlayout, opts, None, |rt| {
                let mut item = existing(&rt.name).or_else(|| new_base.clone())?;
                if fresh_drop_in {
                    toml_tree::reset_indentation(&mut item);
                }
                Some(item)
            })?;
            for rt in opts.runtimes() {
                edit::remove_runtime(main.as_item_mut(), &layout, &rt.name);
            }
            if opts.set_as_default {
                edit::set_default(dropin.as_item_mut(), &dlayout, &opts.name)?;
            } else {
                settle_default(dropin.as_item_mut(), &dlayout, opts, &mut warnings)?;
                settle_default(main.as_item_mut(), &layout, opts, &mut warnings)?;
            }
            if opts.enable_cdi {
                edit::enable_cdi(dropin.as_item_mut(), &dlayout)?;
            }
            edit::ensure_version(&mut dropin, dversion);
            if layout::is_blank(&main) {
                edit::lift_trailing_comments(&mut main);
            }
            edit::ensure_import(&mut main, import)?;
            edit::ensure_version(&mut main, version);
        }
        State::Absent => {
            remove_runtimes(&mut main, &layout, opts)?;
            edit::remove_imports(&mut main, &opts.stale_imports);
            remove_runtimes(&mut dropin, &dlayout, opts)?;
        }
    }
    if literal_main {
        toml_tree::quote_new_strings_literally(main.as_item_mut());
    }
    if literal_drop_in {
        toml_tree::quote_new_strings_literally(dropin.as_item_mut());
    }
    let runtime = match runtime_data(&dropin, &dlayout, &opts.name) {
        Json::Null => runtime_data(&main, &layout, &opts.name),
        r => r,
    };
    let default = default_name(&dropin, &dlayout).or_else(|| default_name(&main, &layout));
    Ok(Plan {
        config: FileChange {
            before: config.map(str::to_string),
            after: render(config, &main, opts),
        },
        drop_in: Some(FileChange {
            before: drop_in.map(str::to_string),
            after: render(drop_in, &dropin, opts),
        }),
        config_version: version,
        runtime,
        default_runtime_name: default,
        base,
        warnings,
    })
}

/// How many runtimes of `opts` a config (of `version`, or its own) has a table for.
pub fn runtimes_held(doc: &DocumentMut, version: i64, opts: &Options) -> usize {
    let layout = Layout::for_version(layout::detect_version(doc, version).unwrap_or(version));
    opts.runtimes()
        .iter()
        .filter(|rt| has_runtime(doc, &layout, &rt.name))
        .count()
}

/// Whether the document has a table for runtime `name`.
fn has_runtime(doc: &DocumentMut, layout: &Layout, name: &str) -> bool {
    let mut path = layout.runtimes();
    path.push(name);
    toml_tree::get(doc.as_item(), &path).is_some_and(Item::is_table_like)
}

/// Adds every runtime to `doc`. An existing one gets only the keys this module owns. A new one copies the
/// file's default runtime, else runc, else runc of containerd's default config; with no base in the file it
/// takes `SystemdCgroup` from the kubelet's cgroup driver when that is known.
fn add_runtimes(doc: &mut DocumentMut, layout: &Layout, opts: &Options) -> Result<Base> {
    let all_there = opts
        .runtimes()
        .iter()
        .all(|rt| has_runtime(doc, layout, &rt.name));
    if let Some((name, item)) = edit::find_base(doc.as_item(), layout) {
        put_runtimes(doc, layout, opts, None, |_| Some(item.clone()))?;
        return Ok(if all_there {
            Base::NotNeeded
        } else {
            Base::File(name)
        });
    }
    if all_there {
        put_runtimes(doc, layout, opts, None, |_| None)?;
        return Ok(Base::NotNeeded);
    }
    // The runtime tables of containerd's default config (version 2/3 layout) read the same in a version 1 file.
    let fallback = default_config_base(opts);
    let systemd = opts.kubelet_systemd_cgroup;
    let Some((name, mut item)) = fallback else {
        put_runtimes(doc, layout, opts, systemd, |_| None)?;
        return Ok(Base::Nothing);
    };
    toml_tree::reset_indentation(&mut item);
    // containerd 1.x replaces its built-in runtimes map with the file's: a file that gains a runtimes table
    // keeps the runtime containerd defaults to, when that is the one copied. A config whose default is
    // another runtime gets no runc table it did not ask for.
    let default = edit::default_of(doc.as_item(), layout);
    if default.as_deref().unwrap_or("runc") == name {
        let mut copy = item.clone();
        toml_tree::clear_positions(&mut copy);
        edit::put_table(doc.as_item_mut(), layout, &name, &copy)?;
    }
    put_runtimes(doc, layout, opts, systemd, |_| Some(item.clone()))?;
    Ok(Base::ContainerdDefaults)
}

/// Puts every runtime in place: an existing table gets only the keys this module owns, a new one is a copy
/// of `base_for(runtime)` (or the bare fallback) with those keys set, and `SystemdCgroup` when `systemd`
/// says so.
fn put_runtimes(
    doc: &mut DocumentMut,
    layout: &Layout,
    opts: &Options,
    systemd: Option<bool>,
    base_for: impl Fn(&RuntimeSpec) -> Option<Item>,
) -> Result<()> {
    let runtime_type = opts.runtime_type.as_str();
    for rt in &opts.runtimes() {
        let desired = || {
            let base = base_for(rt);
            let mut item = edit::desired_runtime(
                base.as_ref(),
                rt,
                runtime_type,
                &opts.container_annotations,
                layout,
            )?;
            if let Some(s) = systemd {
                edit::set_systemd_cgroup(&mut item, s)?;
            }
            Ok(item)
        };
        edit::put_runtime(
            doc.as_item_mut(),
            layout,
            rt,
            runtime_type,
            &opts.container_annotations,
            base_for(rt).as_ref(),
            desired,
        )?;
    }
    Ok(())
}

/// The base runtime from containerd's own default config (which carries its own version's layout).
fn default_config_base(opts: &Options) -> Option<(String, Item)> {
    let text = opts.default_config.as_deref()?;
    let doc = text.parse::<DocumentMut>().ok()?;
    let version = layout::detect_version(&doc, 2).ok()?;
    edit::find_base(doc.as_item(), &Layout::for_version(version))
}

/// Removes the runtimes and undoes a default this module set. A runtime that someone else made the default
/// is not removed: containerd would be left without its default runtime (the whole plan fails instead).
fn remove_runtimes(doc: &mut DocumentMut, layout: &Layout, opts: &Options) -> Result<()> {
    for rt in opts.runtimes() {
        let present = has_runtime(doc, layout, &rt.name);
        if edit::undo_default(doc.as_item_mut(), layout, &rt.name)
            == edit::DefaultUndo::SetElsewhere
            && present
        {
            bail!(
                "runtime {} is containerd's default runtime (default_runtime_name), set outside this module: \
                 removing it would leave containerd without its default runtime and every pod without a \
                 RuntimeClass unable to start. Point default_runtime_name at another runtime first; nothing \
                 was changed",
                rt.name
            );
        }
        edit::remove_runtime(doc.as_item_mut(), layout, &rt.name);
    }
    Ok(())
}

/// The text to write; `None` deletes the file. On `state: absent` a document left with nothing but
/// `version` is deleted; an untouched document keeps its exact input bytes.
fn render(input: Option<&str>, doc: &DocumentMut, opts: &Options) -> Option<String> {
    if opts.state == State::Absent {
        let only_bookkeeping = doc.as_table().iter().all(|(k, _)| k == "version");
        if only_bookkeeping {
            return None;
        }
    }
    let text = doc.to_string();
    // An edit that changes nothing containerd loads keeps the input's bytes: toml_edit cannot always print
    // an untouched document as it was (a table key quoted two ways in two headers comes out one way).
    if input == Some(text.as_str()) || (input.is_some() && data_of(input) == data_of(Some(&text))) {
        return input.map(str::to_string);
    }
    Some(text)
}

fn runtime_data(doc: &DocumentMut, layout: &Layout, name: &str) -> Json {
    let mut path = layout.runtimes();
    path.push(name);
    toml_tree::get(doc.as_item(), &path)
        .map(toml_tree::data)
        .unwrap_or(Json::Null)
}

fn default_name(doc: &DocumentMut, layout: &Layout) -> Option<String> {
    let mut path = layout.containerd();
    path.push("default_runtime_name");
    toml_tree::get(doc.as_item(), &path)
        .and_then(Item::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 2 config whose default runtime is `default`, with `runc` and `default` tables that differ.
    fn config(default: &str, runtime_type: &str) -> String {
        format!(
            r#"version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "{d}"

  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{d}]
    runtime_type = "{t}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{d}.options]
      SystemdCgroup = true
"#,
            d = default,
            t = runtime_type
        )
    }

    /// Runs the edit twice; the second run must leave the exact bytes of the first.
    fn twice(input: &str, opts: &Options) -> Plan {
        let first = plan(Some(input), opts).unwrap();
        let out = first.config.after.clone().unwrap();
        let second = plan(Some(&out), opts).unwrap();
        assert!(
            !second.changed() && !second.restart_required(),
            "second run changed the config:\n--- first\n{}\n--- second\n{}",
            out,
            second.config.after.clone().unwrap_or_default()
        );
        first
    }

    fn runtime_path(data: &Json, name: &str) -> Json {
        data["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"][name].clone()
    }

    #[test]
    fn set_as_default_over_crun_is_idempotent_and_keeps_the_crun_base() {
        let mut opts = Options::new("nvidia", "/usr/bin/nvidia-container-runtime");
        opts.set_as_default = true;
        let first = twice(&config("crun", "io.containerd.runc.v2"), &opts);
        assert_eq!(first.default_runtime_name.as_deref(), Some("nvidia"));
        assert_eq!(first.runtime["options"]["SystemdCgroup"], Json::Bool(true));
    }

    #[test]
    fn a_dotted_runtime_made_default_over_kata_keeps_the_kata_base() {
        let mut opts = Options::new("gpu.rt", "/usr/bin/nvidia-container-runtime");
        opts.set_as_default = true;
        let first = twice(&config("kata", "io.containerd.kata.v2"), &opts);
        assert_eq!(
            first.runtime["runtime_type"],
            Json::String("io.containerd.kata.v2".into())
        );
        // A dotted name is one table key, not a path of tables.
        let data = data_of(first.config.after.as_deref());
        assert_eq!(
            runtime_path(&data, "gpu.rt")["options"]["SystemdCgroup"],
            Json::Bool(true)
        );
    }

    #[test]
    fn extra_runtimes_copy_the_default_and_stay_stable() {
        let mut opts = Options::new("nvidia", "/usr/bin/nvidia-container-runtime");
        opts.set_as_default = true;
        opts.extra_runtimes = vec![RuntimeSpec {
            name: "nvidia-cdi".into(),
            binary_path: "/usr/bin/nvidia-container-runtime.cdi".into(),
        }];
        let first = twice(&config("crun", "io.containerd.runc.v2"), &opts);
        let data = data_of(first.config.after.as_deref());
        assert_eq!(
            runtime_path(&data, "nvidia-cdi")["options"]["SystemdCgroup"],
            Json::Bool(true)
        );
        // A runtime that exists already, and is the default, keeps its own settings, stably.
        let mut opts = Options::new("runc-gpu", "/usr/bin/nvidia-container-runtime");
        opts.set_as_default = true;
        let first = twice(&config("runc-gpu", "io.containerd.runc.v2"), &opts);
        assert_eq!(first.runtime["options"]["SystemdCgroup"], Json::Bool(true));
        assert_eq!(first.base, Base::NotNeeded);
    }

    #[test]
    fn set_as_default_in_drop_in_mode_is_idempotent() {
        let mut opts = Options::new("nvidia", "/usr/bin/nvidia-container-runtime");
        opts.set_as_default = true;
        let cfg = config("crun", "io.containerd.runc.v2");
        let import = "/etc/containerd/conf.d/*.toml";
        let first = plan_drop_in(Some(&cfg), None, import, &opts).unwrap();
        let (c1, d1) = (
            first.config.after.clone().unwrap(),
            first.drop_in.clone().unwrap().after.unwrap(),
        );
        let second = plan_drop_in(Some(&c1), Some(&d1), import, &opts).unwrap();
        assert!(!second.changed(), "drop-in changed:\n{}", d1);
        assert_eq!(first.runtime["options"]["SystemdCgroup"], Json::Bool(true));
    }

    #[test]
    fn toml_errors_quote_a_short_excerpt() {
        let long = format!("version = 2\nx = {}\n", "{a = ".repeat(5000));
        let garbage: String = (0..65536u32)
            .map(|i| char::from_u32(0x20 + (i * 7919) % 0x5f).unwrap())
            .collect();
        for text in [long, format!("version = 2\n{}\n", garbage)] {
            let e = parse(&text, "the config").unwrap_err().to_string();
            assert!(
                e.len() < 2 * EXCERPT_CHARS + 400,
                "{} characters: {}",
                e.len(),
                e
            );
            assert!(e.contains("line 2"), "{}", e);
        }
        let e = parse("version = 2\n[a]\nb = = 1\n", "the config")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3, column") && e.contains("b = = 1"),
            "{}",
            e
        );
    }

    #[test]
    fn a_negative_new_config_version_is_refused() {
        let mut opts = Options::new("nvidia", "/usr/bin/nvidia-container-runtime");
        opts.new_config_version = 0;
        assert!(plan(None, &opts).is_err());
        assert!(plan(Some("version = -3\n"), &Options::new("nvidia", "/x")).is_err());
    }
}
