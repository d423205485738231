//! A tiny binary module for testing the action plugin: it answers with where it ran from, where its arguments
//! came from and the arguments themselves, so a test can tell the cached path from the plain protocol.
//! Std only, so `rustc` builds it statically in seconds. `"fail": true` in the arguments makes it fail.

use std::io::Write;

/// A JSON string literal (the paths and texts here are ASCII or UTF-8; escape what JSON requires).
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let args_path = std::env::args().nth(1).unwrap_or_default();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (code, body) = match std::fs::read_to_string(&args_path) {
        // The args file is one JSON object: pass it through untouched, so the test sees exactly what arrived.
        Ok(text) => {
            let failed = text.contains("\"fail\": true");
            let msg = if failed {
                "probe asked to fail"
            } else {
                "probe ran"
            };
            (
                i32::from(failed),
                format!(
                    "{{\"changed\": false, \"failed\": {}, \"msg\": {}, \"exe\": {}, \"args_path\": {}, \"args\": {}, \"args_text\": {}}}",
                    failed,
                    json_str(msg),
                    json_str(&exe),
                    json_str(&args_path),
                    text.trim(),
                    // Ansible strips `_ansible_*` keys from nested results; a string keeps them for the test.
                    json_str(text.trim())
                ),
            )
        }
        Err(e) => (
            1,
            format!(
                "{{\"failed\": true, \"msg\": {}}}",
                json_str(&format!("cannot read {}: {}", args_path, e))
            ),
        ),
    };
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(body.as_bytes());
    let _ = stdout.flush();
    std::process::exit(code);
}
