//! libpq's password file (`PGPASSFILE`, else `~/.pgpass`): lines of
//! `hostname:port:database:username:password`, `*` matching anything, `\:` and `\\` escapes,
//! `#` comments, first match wins; ignored unless its mode is 0600 or stricter.

use std::path::Path;

/// The default socket directory: `localhost` in the file also matches a connection to it (and
/// one without a host at all), as in libpq.
pub(crate) const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// What a line is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Host name, IP address, or socket directory (`localhost` for the default one).
    pub host: String,
    /// Port.
    pub port: String,
    /// Database.
    pub dbname: String,
    /// User.
    pub user: String,
}

/// The host as the file names it: `localhost` for no host or the default socket directory.
pub(crate) fn host_key(host: Option<&str>) -> String {
    match host {
        None | Some("") | Some(DEFAULT_SOCKET_DIR) => "localhost".to_string(),
        Some(h) => h.to_string(),
    }
}

/// One field of a line: its text with escapes removed, and whether it was exactly `*`.
struct Field {
    text: String,
    wildcard: bool,
}

/// Splits a line into four fields and the password (whose own `:`s need no escape).
fn fields(line: &str) -> Option<([Field; 4], String)> {
    let mut out = Vec::with_capacity(4);
    let mut rest = line;
    for _ in 0..4 {
        let mut text = String::new();
        let mut raw_len = None;
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => text.push(chars.next().map_or('\\', |(_, n)| n)),
                ':' => {
                    raw_len = Some(i);
                    break;
                }
                c => text.push(c),
            }
        }
        let raw_len = raw_len?;
        out.push(Field {
            wildcard: &rest[..raw_len] == "*",
            text,
        });
        rest = &rest[raw_len + 1..];
    }
    let mut password = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        password.push(if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        });
    }
    Some((out.try_into().ok()?, password))
}

/// The password of the first line matching `want`, and that line's number (1-based).
pub fn find(text: &str, want: &Wanted) -> Option<(String, usize)> {
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((f, password)) = fields(line) else {
            continue;
        };
        let values = [&want.host, &want.port, &want.dbname, &want.user];
        if f.iter()
            .zip(values)
            .all(|(f, v)| f.wildcard || f.text == *v)
        {
            return Some((password, n + 1));
        }
    }
    None
}

/// Whether a file mode allows the file to be used: no group or world access.
pub(crate) fn mode_ok(mode: u32) -> bool {
    mode & 0o077 == 0
}

/// Reads the file. `Ok(None)` when it does not exist; `Err(warning)` when it exists but must be
/// ignored (not a plain file, group or world access, unreadable).
pub fn read(path: &Path) -> Result<Option<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "password file \"{}\" cannot be read ({e}); it is ignored",
                path.display()
            ))
        }
    };
    if !meta.is_file() {
        return Err(format!(
            "password file \"{}\" is not a plain file; it is ignored",
            path.display()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if !mode_ok(mode) {
        return Err(format!(
            "password file \"{}\" has group or world access (mode {mode:04o}); it is ignored: permissions should be u=rw (0600) or less (chmod 600 {})",
            path.display(),
            path.display()
        ));
    }
    std::fs::read_to_string(path).map(Some).map_err(|e| {
        format!(
            "password file \"{}\" cannot be read ({e}); it is ignored",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(host: &str, port: &str, dbname: &str, user: &str) -> Wanted {
        Wanted {
            host: host.into(),
            port: port.into(),
            dbname: dbname.into(),
            user: user.into(),
        }
    }

    #[test]
    fn first_match_wins_with_wildcards() {
        let file = "\
# comment line: db.example:5432:*:app:nope
db.example:5432:prod:app:first
db.example:*:*:app:second
*:*:*:*:catch-all
";
        let w = want("db.example", "5432", "prod", "app");
        assert_eq!(find(file, &w), Some(("first".into(), 2)));
        let w = want("db.example", "6543", "prod", "app");
        assert_eq!(find(file, &w), Some(("second".into(), 3)));
        let w = want("other", "5432", "prod", "bob");
        assert_eq!(find(file, &w), Some(("catch-all".into(), 4)));
        assert_eq!(
            find(
                "db.example:5432:prod:app:x\n",
                &want("db", "5432", "prod", "app")
            ),
            None
        );
        // A field is either `*` or compared whole: no prefix matching.
        assert_eq!(
            find(
                "db*:5432:prod:app:x\n",
                &want("db.example", "5432", "prod", "app")
            ),
            None
        );
    }

    #[test]
    fn escapes() {
        // `\:` and `\\` in fields; the password may hold unescaped `:`; `\*` is a literal star.
        let file = "h\\:1:5432:d\\\\b:u:pa:ss\\\\wo\\rd\n\\*:5432:d:u:star\r\n";
        assert_eq!(
            find(file, &want("h:1", "5432", "d\\b", "u")),
            Some(("pa:ss\\word".into(), 1))
        );
        assert_eq!(
            find(file, &want("*", "5432", "d", "u")),
            Some(("star".into(), 2))
        );
        assert_eq!(find(file, &want("x", "5432", "d", "u")), None);
        // Too few fields: skipped.
        assert_eq!(
            find("h:5432:d\n*:*:*:*:ok\n", &want("h", "5432", "d", "u")),
            Some(("ok".into(), 2))
        );
        // An empty password field.
        assert_eq!(
            find("*:*:*:*:\n", &want("h", "1", "d", "u")),
            Some((String::new(), 1))
        );
    }

    #[test]
    fn localhost_and_the_default_socket() {
        assert_eq!(host_key(None), "localhost");
        assert_eq!(host_key(Some("/var/run/postgresql")), "localhost");
        assert_eq!(host_key(Some("/tmp/other")), "/tmp/other");
        assert_eq!(host_key(Some("127.0.0.1")), "127.0.0.1");
        let file = "localhost:5432:*:*:sock\n";
        assert!(find(
            file,
            &want(&host_key(Some(DEFAULT_SOCKET_DIR)), "5432", "d", "u")
        )
        .is_some());
        assert!(find(file, &want(&host_key(Some("/tmp/x")), "5432", "d", "u")).is_none());
    }

    #[test]
    fn permissions() {
        assert!(mode_ok(0o600));
        assert!(mode_ok(0o400));
        assert!(!mode_ok(0o640));
        assert!(!mode_ok(0o644));
        assert!(!mode_ok(0o604));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pgpass");
        assert_eq!(read(&p), Ok(None));
        std::fs::write(&p, "*:*:*:*:x\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = read(&p).unwrap_err();
        assert!(
            w.contains("group or world access") && w.contains("0644"),
            "{w}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&p), Ok(Some("*:*:*:*:x\n".into())));
        assert!(read(dir.path()).unwrap_err().contains("not a plain file"));
    }
}
