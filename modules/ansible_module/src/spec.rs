//! The argument spec, declared as data the way `AnsibleModule(argument_spec=...)` declares it.
//!
//! A module builds one `ModuleSpec` of `Opt`s with the builder methods below; [`crate::arguments`] checks the
//! raw arguments against it and converts them.

use serde_json::Value;

use crate::choice::Choice;

/// The type an option converts its value to (AnsibleModule's `type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    Float,
    List,
    Dict,
    Path,
    /// Any JSON value, unconverted (`type='raw'`).
    Raw,
}

impl Kind {
    /// The name AnsibleModule uses in its messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "str",
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::List => "list",
            Kind::Dict => "dict",
            Kind::Path => "path",
            Kind::Raw => "raw",
        }
    }
}

/// One option of a module (or of a sub-option dict).
#[derive(Debug, Clone)]
pub struct Opt {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub default: Option<Value>,
    pub choices: Vec<Value>,
    pub aliases: Vec<&'static str>,
    pub elements: Option<Kind>,
    pub no_log: bool,
    /// Sub-options: the value (or each list element) is validated as a nested spec.
    pub options: Option<Box<ModuleSpec>>,
    /// With sub-options: a missing or null value is validated as `{}`, so the sub-options' defaults apply.
    pub apply_defaults: bool,
}

impl Opt {
    pub fn new(name: &'static str, kind: Kind) -> Opt {
        Opt {
            name,
            kind,
            required: false,
            default: None,
            choices: Vec::new(),
            aliases: Vec::new(),
            elements: None,
            no_log: false,
            options: None,
            apply_defaults: false,
        }
    }
    pub fn str(name: &'static str) -> Opt {
        Opt::new(name, Kind::Str)
    }
    pub fn bool(name: &'static str) -> Opt {
        Opt::new(name, Kind::Bool)
    }
    pub fn int(name: &'static str) -> Opt {
        Opt::new(name, Kind::Int)
    }
    pub fn float(name: &'static str) -> Opt {
        Opt::new(name, Kind::Float)
    }
    pub fn path(name: &'static str) -> Opt {
        Opt::new(name, Kind::Path)
    }
    pub fn dict(name: &'static str) -> Opt {
        Opt::new(name, Kind::Dict)
    }
    pub fn raw(name: &'static str) -> Opt {
        Opt::new(name, Kind::Raw)
    }
    /// A list whose elements convert to `elements`.
    pub fn list(name: &'static str, elements: Kind) -> Opt {
        let mut o = Opt::new(name, Kind::List);
        o.elements = Some(elements);
        o
    }
    pub fn required(mut self) -> Opt {
        self.required = true;
        self
    }
    pub fn default(mut self, value: impl Into<Value>) -> Opt {
        self.default = Some(value.into());
        self
    }
    pub fn choices<V: Into<Value> + Clone>(mut self, choices: &[V]) -> Opt {
        self.choices = choices.iter().cloned().map(Into::into).collect();
        self
    }
    /// The choices are the words of a [`Choice`] enum (for a list, each element's), so the spec and the code
    /// that matches on the enum share one list.
    pub fn choices_of<C: Choice>(self) -> Opt {
        self.choices(&C::names())
    }
    pub fn aliases(mut self, aliases: &[&'static str]) -> Opt {
        self.aliases = aliases.to_vec();
        self
    }
    pub fn no_log(mut self) -> Opt {
        self.no_log = true;
        self
    }
    pub fn suboptions(mut self, spec: ModuleSpec) -> Opt {
        self.options = Some(Box::new(spec));
        self
    }
    pub fn apply_defaults(mut self) -> Opt {
        self.apply_defaults = true;
        self
    }
    /// The list's elements convert to `kind` (for `Opt::new(name, Kind::List)` or `Opt::raw`).
    pub fn elements(mut self, kind: Kind) -> Opt {
        self.elements = Some(kind);
        self
    }
}

/// A whole argument spec with its cross-option rules.
#[derive(Debug, Clone, Default)]
pub struct ModuleSpec {
    pub options: Vec<Opt>,
    pub mutually_exclusive: Vec<Vec<&'static str>>,
    pub required_together: Vec<Vec<&'static str>>,
    pub required_one_of: Vec<Vec<&'static str>>,
    /// `(key, value, requirements, is_one_of)`: when `key == value`, the requirements must be set
    /// (all of them, or at least one when `is_one_of`).
    pub required_if: Vec<(&'static str, Value, Vec<&'static str>, bool)>,
    /// `(key, requirements)`: when `key` is set, every requirement must be set too.
    pub required_by: Vec<(&'static str, Vec<&'static str>)>,
    pub supports_check_mode: bool,
}

impl ModuleSpec {
    pub fn new(options: Vec<Opt>) -> ModuleSpec {
        ModuleSpec {
            options,
            ..ModuleSpec::default()
        }
    }
    pub fn supports_check_mode(mut self) -> ModuleSpec {
        self.supports_check_mode = true;
        self
    }
    pub fn mutually_exclusive(mut self, keys: &[&'static str]) -> ModuleSpec {
        self.mutually_exclusive.push(keys.to_vec());
        self
    }
    pub fn required_together(mut self, keys: &[&'static str]) -> ModuleSpec {
        self.required_together.push(keys.to_vec());
        self
    }
    pub fn required_one_of(mut self, keys: &[&'static str]) -> ModuleSpec {
        self.required_one_of.push(keys.to_vec());
        self
    }
    pub fn required_if(
        mut self,
        key: &'static str,
        value: impl Into<Value>,
        requirements: &[&'static str],
        is_one_of: bool,
    ) -> ModuleSpec {
        self.required_if
            .push((key, value.into(), requirements.to_vec(), is_one_of));
        self
    }
    pub fn required_by(mut self, key: &'static str, requirements: &[&'static str]) -> ModuleSpec {
        self.required_by.push((key, requirements.to_vec()));
        self
    }
    pub fn option(&self, name: &str) -> Option<&Opt> {
        self.options.iter().find(|o| o.name == name)
    }

    /// The options as AnsibleModule's `argument_spec` dict (`type`, `required`, `default`, `choices`,
    /// `aliases`, `elements`, `no_log`, `options`; keys at their AnsibleModule defaults are left out), what
    /// the sidecar docs must describe.
    pub fn argument_spec(&self) -> Value {
        let mut spec = serde_json::Map::new();
        for o in &self.options {
            let mut d = serde_json::Map::new();
            d.insert("type".into(), o.kind.name().into());
            if o.required {
                d.insert("required".into(), true.into());
            }
            if let Some(v) = &o.default {
                d.insert("default".into(), v.clone());
            }
            if !o.choices.is_empty() {
                d.insert("choices".into(), Value::Array(o.choices.clone()));
            }
            if !o.aliases.is_empty() {
                d.insert("aliases".into(), o.aliases.clone().into());
            }
            if let Some(e) = o.elements {
                d.insert("elements".into(), e.name().into());
            }
            if o.no_log {
                d.insert("no_log".into(), true.into());
            }
            if let Some(sub) = &o.options {
                d.insert("options".into(), sub.argument_spec());
            }
            spec.insert(o.name.into(), Value::Object(d));
        }
        Value::Object(spec)
    }
}
