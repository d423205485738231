//! Values the result must never show: proxy credentials from the environment (apt quotes the proxy URL in its
//! errors) and a secret key pasted as `key` text. Found before anything runs, so every message is masked.

/// The credentials to mask in every `*_proxy` / `*_PROXY` variable of `vars`: for each URL with userinfo,
/// `user:password` and the password, as written and percent-decoded (apt may print either).
pub fn proxy_credentials<I>(vars: I) -> Vec<String>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut found = Vec::new();
    for (name, value) in vars {
        if !name.to_ascii_lowercase().ends_with("_proxy") {
            continue;
        }
        // no_proxy and friends may list several URLs; a userinfo in any of them is masked.
        for url in value.split([',', ' ']) {
            let Some(userinfo) = userinfo(url) else {
                continue;
            };
            let mut parts = vec![userinfo.to_string()];
            if let Some((_, password)) = userinfo.split_once(':') {
                parts.push(password.to_string());
            }
            for part in parts {
                let decoded = percent_decode(&part);
                for v in [part, decoded] {
                    if !v.is_empty() && !found.contains(&v) {
                        found.push(v);
                    }
                }
            }
        }
    }
    found
}

/// The `user[:password]` part of `scheme://user:password@host:port/...` (also without a scheme).
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // The last '@' ends the userinfo: a password may itself hold an unescaped '@'.
    authority
        .rsplit_once('@')
        .map(|(u, _)| u)
        .filter(|u| !u.is_empty())
}

/// `%XX` escapes decoded; anything malformed is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Whether `key` text (inline armor) carries secret key material: a private key armor header, or a
/// certificate that parses with secret parts. Such text is masked even though the run refuses it.
pub fn is_secret_key_text(key: &str) -> bool {
    key.contains("PRIVATE KEY BLOCK") || crate::key::has_secret_parts(key.as_bytes())
}

/// Registers every secret of this run with the module, before anything can quote one.
pub fn register(m: &mut ansible_module::Module) {
    for v in proxy_credentials(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    ) {
        m.add_no_log_value(v);
    }
    if let Some(text) = m.str("key").map(String::from) {
        if crate::key::is_inline(&text) && is_secret_key_text(&text) {
            m.add_no_log_value(text.trim().to_string());
            m.add_no_log_value(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn proxy_userinfo_and_password_are_found_in_both_cases() {
        let found = proxy_credentials(vars(&[
            ("http_proxy", "http://alice:S3cr3t@127.0.0.1:3128/"),
            ("HTTPS_PROXY", "https://bob:p%40ss@proxy.example.invalid"),
            ("PATH", "http://carol:notaproxy@x/"),
        ]));
        assert!(found.contains(&"alice:S3cr3t".to_string()), "{found:?}");
        assert!(found.contains(&"S3cr3t".to_string()), "{found:?}");
        assert!(found.contains(&"bob:p%40ss".to_string()), "{found:?}");
        assert!(found.contains(&"p%40ss".to_string()), "{found:?}");
        assert!(found.contains(&"p@ss".to_string()), "{found:?}");
        assert!(!found.iter().any(|v| v.contains("notaproxy")), "{found:?}");
    }

    #[test]
    fn proxies_without_credentials_register_nothing() {
        let found = proxy_credentials(vars(&[
            ("http_proxy", "http://127.0.0.1:3128/"),
            ("no_proxy", "localhost,127.0.0.1,.example.invalid"),
            ("ftp_proxy", "proxy:21"),
            ("all_proxy", ""),
        ]));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn an_at_sign_in_the_path_is_not_userinfo_and_one_in_the_password_is() {
        assert_eq!(userinfo("http://proxy:3128/a@b"), None);
        assert_eq!(userinfo("http://u:p@w@proxy:3128"), Some("u:p@w"));
        assert_eq!(userinfo("u:p@proxy:3128"), Some("u:p"));
    }
}
