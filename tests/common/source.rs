//! Reading the crates' Rust sources as code, for the tests that check the sources themselves
//! (the layering test, the prepared-statement scan): every `.rs` file below some folders, and
//! its text with comments, string contents and unit tests blanked out.

use std::path::PathBuf;

/// Every `.rs` file below `roots`, with its text, in a stable order.
pub fn rust_files(roots: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = roots.to_vec();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
}

/// Comments dropped and string and character literals emptied, keeping line breaks.
pub fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let newlines = |from: usize, to: usize| "\n".repeat(text[from..to].matches('\n').count());
    while i < b.len() {
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(b.len(), |n| i + n);
        } else if text[i..].starts_with("/*") {
            let (start, mut depth) = (i, 0usize);
            loop {
                if text[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if text[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if i >= b.len() {
                    break;
                } else {
                    i += 1;
                }
            }
            out.push_str(&newlines(start, i.min(b.len())));
        } else if b[i] == b'r'
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            && text[i + 1..].trim_start_matches('#').starts_with('"')
        {
            let hashes = text[i + 1..].len() - text[i + 1..].trim_start_matches('#').len();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            let end = text[body..]
                .find(&close)
                .map_or(b.len(), |n| body + n + close.len());
            out.push_str("\"\"");
            out.push_str(&newlines(i, end));
            i = end;
        } else if b[i] == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            out.push_str("\"\"");
            out.push_str(&newlines(start, i));
        } else if b[i] == b'\'' && char_literal_len(&text[i..]).is_some() {
            i += char_literal_len(&text[i..]).unwrap();
            out.push_str("' '");
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a character literal at the start of `s` (`'a'`, `'\n'`, `'\''`), not a
/// lifetime.
fn char_literal_len(s: &str) -> Option<usize> {
    let rest = &s[1..];
    if let Some(esc) = rest.strip_prefix('\\') {
        let close = esc.find('\'')?;
        // `'\''`: the quote right after the backslash is escaped.
        let close = if close == 0 {
            1 + esc[1..].find('\'')?
        } else {
            close
        };
        return Some(1 + 1 + close + 1);
    }
    let c = rest.chars().next()?;
    rest[c.len_utf8()..]
        .starts_with('\'')
        .then(|| 1 + c.len_utf8() + 1)
}

/// `#[cfg(test)] mod … { … }` blocks blanked out: unit tests may use anything.
pub fn without_tests(code: &str) -> String {
    let mut code = code.to_string();
    while let Some(at) = code.find("#[cfg(test)]") {
        let rest = &code[at + "#[cfg(test)]".len()..];
        let trimmed = rest.trim_start();
        if !(trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ")) {
            // An item other than a test module: keep it, but stop it matching again.
            code.replace_range(at..at + 2, "# ");
            continue;
        }
        let Some(open) = code[at..].find('{').map(|n| at + n) else {
            break;
        };
        let mut depth = 0usize;
        let mut end = code.len();
        for (n, ch) in code[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + n + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let lines = "\n".repeat(code[at..end].matches('\n').count());
        code.replace_range(at..end, &lines);
    }
    code
}
