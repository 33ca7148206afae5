//! Small facts about SQL text that planning needs without a database.

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
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else if c == 0xEF && b.get(i + 1) == Some(&0xBB) && b.get(i + 2) == Some(&0xBF) {
            i += 3; // UTF-8 byte order mark
        } else {
            return false;
        }
    }
    true
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
    fn positions() {
        let sql = "create table a (id int);\ncreate tabel b;\n";
        let pos = sql.find("tabel").unwrap() + 1;
        assert_eq!(line_col(sql, pos), (2, 8));
        assert_eq!(line_col("é\nxy", 4), (2, 2));
        assert_eq!(line_col("abc", 1), (1, 1));
    }
}
