//! Parameters that take one of a fixed set of words (an argument spec's `choices`), as enums.
//!
//! One list per choice: the enum's [`Choice::ALL`] makes the spec's `choices` ([`crate::Opt::choices_of`]),
//! and the same list turns the validated word back into the enum ([`crate::Module::choice`]). So the words
//! Ansible accepts and the ones the code matches on cannot drift apart, and a word that has no variant is an
//! error naming the option, never a silent fallback to some other value.

/// A parameter that takes one of a fixed set of words.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every value, in the order the spec lists them.
    const ALL: &'static [Self];
    /// The word a playbook writes.
    fn as_str(self) -> &'static str;
    /// The value whose word is `word`, if any.
    fn parse(word: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == word)
    }
    /// The words of [`Choice::ALL`], for the spec's `choices` and for messages.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|c| c.as_str()).collect()
    }
}

/// `word`, given for `option`, as its enum; an unknown word is an error that names the option and every word
/// it takes. Argument validation has checked the word against the same list, so the error means the spec and
/// the enum disagree (or the word came from somewhere validation did not see, such as a list element).
pub fn parse<C: Choice>(option: &str, word: &str) -> anyhow::Result<C> {
    C::parse(word).ok_or_else(|| {
        anyhow::anyhow!(
            "{} must be one of {}, got {:?}",
            option,
            C::names().join(", "),
            word
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Module, ModuleSpec, Opt};
    use serde_json::json;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Colour {
        Red,
        Green,
    }

    impl Choice for Colour {
        const ALL: &'static [Colour] = &[Colour::Red, Colour::Green];
        fn as_str(self) -> &'static str {
            match self {
                Colour::Red => "red",
                Colour::Green => "green",
            }
        }
    }

    fn module(spec: &ModuleSpec, args: serde_json::Value) -> Result<Module, String> {
        let serde_json::Value::Object(args) = args else {
            unreachable!()
        };
        Module::from_args("example", spec, args)
    }

    #[test]
    fn the_spec_choices_are_the_enums_words_and_read_back_as_the_enum() {
        let spec = ModuleSpec::new(vec![Opt::str("colour")
            .choices_of::<Colour>()
            .default(Colour::Green.as_str())]);
        assert_eq!(
            spec.argument_spec()["colour"],
            json!({"type": "str", "choices": ["red", "green"], "default": "green"})
        );
        let m = module(&spec, json!({})).unwrap();
        assert_eq!(m.choice::<Colour>("colour").unwrap(), Colour::Green);
        let m = module(&spec, json!({"colour": "red"})).unwrap();
        assert_eq!(m.choice::<Colour>("colour").unwrap(), Colour::Red);
        // Validation refuses another word before the module sees it.
        let e = module(&spec, json!({"colour": "blue"})).unwrap_err();
        assert!(
            e.contains("value of colour must be one of: red, green"),
            "{e}"
        );
    }

    #[test]
    fn a_word_without_a_variant_is_an_error_not_a_fallback() {
        // A spec that lists a word the enum lacks (what choices_of rules out) and one with no default.
        let spec = ModuleSpec::new(vec![
            Opt::str("colour")
                .choices(&["red", "green", "blue"])
                .default("blue"),
            Opt::str("shade").choices_of::<Colour>(),
        ]);
        let m = module(&spec, json!({})).unwrap();
        assert_eq!(
            format!("{:#}", m.choice::<Colour>("colour").unwrap_err()),
            "colour must be one of red, green, got \"blue\""
        );
        let e = format!("{:#}", m.choice::<Colour>("shade").unwrap_err());
        assert!(e.contains("shade has no value"), "{e}");
        assert_eq!(
            format!("{:#}", parse::<Colour>("colours[1]", "Red").unwrap_err()),
            "colours[1] must be one of red, green, got \"Red\""
        );
    }
}
