//! The process's secret registry: every password the tool learns is registered here, and
//! everything the command layer prints passes through [`scrub`].
//!
//! It lives in the core, beside the connection code that learns the passwords, so that nothing
//! below the command layer has to reach up to the terminal code to keep a secret.

use std::sync::Mutex;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Registers a secret (a password) that must never be printed.
pub fn register_secret(s: &str) {
    if s.is_empty() {
        return;
    }
    let mut g = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    if !g.iter().any(|x| x == s) {
        g.push(s.to_string());
    }
}

/// Replaces every registered secret in `text` with `***`.
pub fn scrub(text: &str) -> String {
    let g = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for s in g.iter() {
        out = out.replace(s.as_str(), "***");
    }
    out
}

/// [`scrub`] on every string of a JSON value, before it is turned into text (a password holding
/// `"` or `\` is escaped in the text, where scrubbing the text would not find it).
pub fn scrub_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = scrub(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(scrub_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_secret_is_scrubbed_everywhere_it_appears() {
        register_secret("s3cr3t-in-secrets-test");
        register_secret("");
        assert_eq!(
            scrub("a s3cr3t-in-secrets-test b s3cr3t-in-secrets-test"),
            "a *** b ***"
        );
        assert_eq!(scrub("nothing here"), "nothing here");
    }
}
