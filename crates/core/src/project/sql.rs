//! Small facts about SQL text that planning needs without a database.

/// If a comment (`--` to end of line, or nested `/* */`) starts at `i`, the index after it.
fn skip_comment(b: &[u8], i: usize) -> Option<usize> {
    if b[i] == b'-' && b.get(i + 1) == Some(&b'-') {
        let mut j = i;
        while j < b.len() && b[j] != b'\n' {
            j += 1;
        }
        return Some(j);
    }
    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
        let mut depth = 1;
        let mut j = i + 2;
        while j < b.len() && depth > 0 {
            if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                depth += 1;
                j += 2;
            } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                depth -= 1;
                j += 2;
            } else {
                j += 1;
            }
        }
        return Some(j);
    }
    None
}

/// Whether SQL text contains nothing but whitespace and comments (`--` and nested `/* */`).
///
/// Such a down migration cannot reverse anything: Hasura's console writes
/// "-- Could not auto-generate a down migration." and a zero-byte file means "no down".
pub fn is_effectively_empty(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if let Some(next) = skip_comment(b, i) {
            i = next;
        } else if c == 0xEF && b.get(i + 1) == Some(&0xBB) && b.get(i + 2) == Some(&0xBF) {
            i += 3; // UTF-8 byte order mark
        } else {
            return false;
        }
    }
    true
}

/// Splits SQL text into statements for diagnostics: byte ranges, each starting at its first
/// token (leading whitespace and comments skipped) and ending after its `;` (or at the end).
///
/// Knows single-quoted strings (with `''` and, for `E''`, backslash escapes), quoted
/// identifiers, dollar quotes, `--` and nested `/* */` comments. It does not know SQL-standard
/// function bodies (`BEGIN ATOMIC … END`); callers use it only to locate a failure and give up
/// when a fragment fails differently from the whole.
pub fn split_statements(sql: &str) -> Vec<std::ops::Range<usize>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(next) = skip_comment(b, i) {
            i = next;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if start.is_none() && c != b';' {
            start = Some(i);
        }
        match c {
            b';' => {
                if let Some(s) = start.take() {
                    out.push(s..i + 1);
                }
                i += 1;
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(b[i - 1], b'E' | b'e')
                    && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                    } else if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => {
                // $tag$ … $tag$ (tag: letters, digits, underscores; not starting with a digit)
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|x| !(x.is_ascii_alphanumeric() || *x == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(e)
                        if b[e] == b'$' && !b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) =>
                    {
                        let tag = &sql[i..=e];
                        match sql[e + 1..].find(tag) {
                            Some(close) => i = e + 1 + close + tag.len(),
                            None => i = b.len(),
                        }
                    }
                    _ => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    if let Some(s) = start {
        out.push(s..b.len());
    }
    out
}

/// 1-based (line, column) of a byte offset.
pub fn line_col_of_byte(sql: &str, byte: usize) -> (usize, usize) {
    let before = &sql[..byte.min(sql.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Converts Postgres' 1-based character position into a 1-based (line, column).
pub fn line_col(sql: &str, position: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, ch) in sql.chars().enumerate() {
        if i + 1 >= position {
            break;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Whether two SQL texts differ only in layout: whitespace and comments between tokens, the
/// case of keywords and unquoted names, and trailing blanks on the lines of dollar-quoted
/// bodies (a formatter's edits). Tokens are
/// PostgreSQL's own scanner's, so strings, quoted identifiers and the rest of a dollar-quoted
/// body are compared exactly. `false` when either text cannot be scanned.
pub(crate) fn same_but_layout(a: &str, b: &str) -> bool {
    match (layout_free_tokens(a), layout_free_tokens(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn layout_free_tokens(sql: &str) -> Option<Vec<String>> {
    use pg_query::protobuf::Token;
    let text = sql.replace('\0', " ");
    let scanned = pg_query::scan(&text).ok()?;
    let mut out = Vec::with_capacity(scanned.tokens.len());
    for t in &scanned.tokens {
        if matches!(t.token(), Token::SqlComment | Token::CComment) {
            continue;
        }
        let s = text.get(usize::try_from(t.start).ok()?..usize::try_from(t.end).ok()?)?;
        let keyword = t.keyword_kind() != pg_query::protobuf::KeywordKind::NoKeyword;
        if s.starts_with('$') && s.len() > 1 && s.ends_with('$') {
            let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
            out.push(lines.join("\n"));
        } else if keyword || (t.token() == Token::Ident && !s.starts_with('"')) {
            // Keywords and unquoted names are case-insensitive: the server folds them.
            out.push(s.to_ascii_lowercase());
        } else {
            out.push(s.to_string());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_detection() {
        for s in [
            "",
            "  \n\t",
            "-- Could not auto-generate a down migration.\n-- Please write an appropriate down migration for the SQL below:\n-- alter table x add column y int;\n",
            "/* a /* nested */ comment */\n",
            "\u{feff}-- bom\n",
            "/* unterminated",
        ] {
            assert!(is_effectively_empty(s), "{s:?}");
        }
        for s in ["drop table x;", "-- c\nselect 1", "/* x */ drop table y"] {
            assert!(!is_effectively_empty(s), "{s:?}");
        }
    }

    #[test]
    fn splitting() {
        let sql = "create table a (x text default 'a;b');\n-- c; d\n/* e; */ insert into a values ($$x;y$$);\nselect E'\\';';\n  select $f$ ; $f$, \"q;\"\"\";\nselect 1";
        let parts: Vec<&str> = split_statements(sql).into_iter().map(|r| &sql[r]).collect();
        assert_eq!(
            parts,
            vec![
                "create table a (x text default 'a;b');",
                "insert into a values ($$x;y$$);",
                "select E'\\';';",
                "select $f$ ; $f$, \"q;\"\"\";",
                "select 1"
            ]
        );
        assert!(split_statements("  -- only a comment\n").is_empty());
        let r = &split_statements(sql)[1];
        assert_eq!(line_col_of_byte(sql, r.start), (3, 10));
    }

    #[test]
    fn positions() {
        let sql = "create table a (id int);\ncreate tabel b;\n";
        let pos = sql.find("tabel").unwrap() + 1;
        assert_eq!(line_col(sql, pos), (2, 8));
        assert_eq!(line_col("é\nxy", 4), (2, 2));
        assert_eq!(line_col("abc", 1), (1, 1));
    }

    #[test]
    fn layout_only_edits_are_recognised() {
        let a = "CREATE TABLE t (\n  id int, -- key\n  x text   \n);   \n\n";
        assert!(super::same_but_layout(
            a,
            "CREATE TABLE t (id int, x text);"
        ));
        assert!(super::same_but_layout(
            a,
            "/* header */\nCREATE TABLE t (id int,\n x text);"
        ));
        let f = "create function f() returns int language plpgsql as $$\nbegin   \n  return 1;\t\nend\n$$;";
        assert!(super::same_but_layout(f, "create function f() returns int language plpgsql as $$\nbegin\n  return 1;\nend\n$$;\n"));
        assert!(!super::same_but_layout(
            a,
            "CREATE TABLE t (id int, x text not null);"
        ));
        assert!(!super::same_but_layout("select 'a  b';", "select 'a b';"));
        assert!(!super::same_but_layout("select \"A\";", "select \"a\";"));
        assert!(super::same_but_layout(
            "SELECT Name FROM T;",
            "select name from t;"
        ));
        assert!(!super::same_but_layout("select 'A';", "select 'a';"));
        assert!(!super::same_but_layout(
            f,
            &f.replace("return 1", "return 2")
        ));
        assert!(!super::same_but_layout("select 'open", "select 'open"));
    }
}
