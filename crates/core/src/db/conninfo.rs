//! Taking libpq's TLS settings out of a connection string before rust-postgres parses it:
//! rust-postgres rejects `sslmode=verify-ca|verify-full` and does not know `sslrootcert`,
//! `sslcert` or `sslkey`. Pure functions.

/// The TLS settings of a connection string, as written (URL values percent-decoded,
/// key=value values unquoted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SslParams {
    /// `sslmode`.
    pub mode: Option<String>,
    /// `sslrootcert`.
    pub rootcert: Option<String>,
    /// `sslcert`.
    pub cert: Option<String>,
    /// `sslkey`.
    pub key: Option<String>,
}

impl SslParams {
    fn set(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.mode,
            "sslrootcert" => &mut self.rootcert,
            "sslcert" => &mut self.cert,
            "sslkey" => &mut self.key,
            _ => return false,
        };
        // As in libpq, the last occurrence wins.
        *slot = Some(value);
        true
    }
}

/// Splits a URL (`postgresql://…?sslmode=…`) or key=value string into the string without the
/// TLS settings and the settings. A string that does not tokenize is returned unchanged with no
/// settings, so that rust-postgres reports what is wrong with it.
pub(crate) fn split_ssl(conninfo: &str) -> (String, SslParams) {
    let split = if let Some(rest) = conninfo
        .strip_prefix("postgresql://")
        .or_else(|| conninfo.strip_prefix("postgres://"))
    {
        split_url(conninfo, conninfo.len() - rest.len())
    } else {
        split_keyword_value(conninfo)
    };
    split.unwrap_or_else(|| (conninfo.to_string(), SslParams::default()))
}

/// The query string starts at the first `?` after the credentials, which (as rust-postgres
/// parses them) end at the first `@`.
fn split_url(url: &str, scheme_len: usize) -> Option<(String, SslParams)> {
    let after_creds = url[scheme_len..]
        .find('@')
        .map_or(scheme_len, |i| scheme_len + i + 1);
    let Some(q) = url[after_creds..].find('?').map(|i| after_creds + i) else {
        return Some((url.to_string(), SslParams::default()));
    };
    let mut params = SslParams::default();
    let mut kept = Vec::new();
    for part in url[q + 1..].split('&') {
        let taken = match part.split_once('=') {
            Some((k, v)) => params.set(&percent_decode(k)?, percent_decode(v)?),
            None => false,
        };
        if !taken {
            kept.push(part);
        }
    }
    let mut out = url[..q].to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    Some((out, params))
}

/// `%XX` decoding; `None` for a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// libpq's key=value syntax: `key = value` pairs separated by whitespace; a value is either
/// single-quoted or runs to the next whitespace, and a backslash escapes the next character.
fn split_keyword_value(s: &str) -> Option<(String, SslParams)> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let offset = |i: usize| chars.get(i).map_or(s.len(), |&(o, _)| o);
    let mut params = SslParams::default();
    let mut out = String::new();
    let mut copied = 0; // byte offset in `s` up to which `out` holds the input
    let mut i = 0;
    loop {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        let mut key = String::new();
        while let Some(c) = at(i).filter(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
            i += 1;
        }
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if at(i) != Some('=') {
            return None;
        }
        i += 1;
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let mut value = String::new();
        if at(i) == Some('\'') {
            i += 1;
            loop {
                match at(i)? {
                    '\\' => {
                        value.push(at(i + 1)?);
                        i += 2;
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(c) = at(i).filter(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(at(i + 1)?);
                    i += 2;
                } else {
                    value.push(c);
                    i += 1;
                }
            }
        }
        if params.set(&key, value) {
            out.push_str(&s[copied..offset(start)]);
            let mut next = i;
            while at(next).is_some_and(char::is_whitespace) {
                next += 1;
            }
            copied = offset(next);
        }
    }
    out.push_str(&s[copied..]);
    Some((out.trim().to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: &str, root: Option<&str>) -> SslParams {
        SslParams {
            mode: Some(mode.into()),
            rootcert: root.map(str::to_string),
            ..SslParams::default()
        }
    }

    #[test]
    fn url_settings_are_taken_out() {
        let (rest, p) = split_ssl(
            "postgresql://app:pw@db.example:5432/prod?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        );
        assert_eq!(
            rest,
            "postgresql://app:pw@db.example:5432/prod?application_name=x"
        );
        assert_eq!(p, params("verify-full", Some("/etc/ca.pem")));

        let (rest, p) = split_ssl("postgres://h/db?sslmode=require");
        assert_eq!(rest, "postgres://h/db");
        assert_eq!(p, params("require", None));

        // A `?` in the password is not the query string; the last occurrence wins.
        let (rest, p) = split_ssl(
            "postgresql://u:p?w@h/db?sslcert=c.pem&sslkey=k.pem&sslmode=prefer&sslmode=disable",
        );
        assert_eq!(rest, "postgresql://u:p?w@h/db");
        assert_eq!(p.cert.as_deref(), Some("c.pem"));
        assert_eq!(p.key.as_deref(), Some("k.pem"));
        assert_eq!(p.mode.as_deref(), Some("disable"));

        // Nothing to take: unchanged.
        for s in [
            "postgresql://h/db",
            "postgresql:///db?host=/tmp",
            "postgres://u@h",
        ] {
            assert_eq!(split_ssl(s), (s.to_string(), SslParams::default()));
        }
        // A bad escape: left to rust-postgres.
        let bad = "postgresql://h/db?sslmode=%zz";
        assert_eq!(split_ssl(bad), (bad.to_string(), SslParams::default()));
    }

    #[test]
    fn keyword_value_settings_are_taken_out() {
        let (rest, p) = split_ssl(
            "host=db port=5432 sslmode=verify-ca sslrootcert='/a dir/ca.pem' user=x password='p w'",
        );
        assert_eq!(rest, "host=db port=5432 user=x password='p w'");
        assert_eq!(p, params("verify-ca", Some("/a dir/ca.pem")));

        let (rest, p) = split_ssl("sslmode = require   dbname=d sslrootcert=C:\\\\x\\ y");
        assert_eq!(rest, "dbname=d");
        assert_eq!(p, params("require", Some("C:\\x y")));

        let (rest, p) = split_ssl("host=h password='it\\'s sslmode=disable' sslmode=require");
        assert_eq!(rest, "host=h password='it\\'s sslmode=disable'");
        assert_eq!(p.mode.as_deref(), Some("require"));

        // Unterminated quote, missing `=`: unchanged, rust-postgres reports the error.
        for bad in [
            "host=h password='abc sslmode=require",
            "host sslmode=require",
        ] {
            assert_eq!(split_ssl(bad), (bad.to_string(), SslParams::default()));
        }
        assert_eq!(split_ssl(""), (String::new(), SslParams::default()));
    }

    #[test]
    fn what_remains_parses_in_rust_postgres() {
        use std::str::FromStr;
        for s in [
            "postgresql://u:pw@localhost:5433/db?sslmode=verify-full&sslrootcert=ca.pem",
            "host=localhost sslmode=verify-ca sslrootcert=ca.pem dbname=db",
            "postgresql://u@h/db?sslrootcert=system",
        ] {
            let (rest, _) = split_ssl(s);
            assert!(postgres::Config::from_str(&rest).is_ok(), "{rest}");
            assert!(postgres::Config::from_str(s).is_err() || !s.contains("verify"));
        }
    }
}
