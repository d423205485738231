//! File-name wildcards as containerd's `imports` use them (Go's `filepath.Glob` per path element): `*` is any
//! run of characters, `?` one character. Character classes (`[...]`) are not supported: no installer writes them.

/// Whether `name` (one path element) matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Whether a pattern holds a wildcard at all.
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_and_question_marks_match_like_a_file_glob() {
        assert!(matches("*.toml", "99-nvidia.toml"));
        assert!(!matches("*.toml", "99-nvidia.toml.bak"));
        assert!(matches("99-*", "99-x"));
        assert!(matches("a*b*c", "aXXbYc"));
        assert!(!matches("a*b*c", "aXXc"));
        assert!(matches("9?-nvidia.toml", "99-nvidia.toml"));
        assert!(!matches("?", ""));
        assert!(matches("*", ""));
        assert!(matches("é*", "éa"));
    }
}
