//! Connecting to PostgreSQL: where the connection comes from, and keeping passwords out of
//! every message.

use std::str::FromStr;

/// Errors connecting.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No connection information at all.
    #[error("no database given")]
    NoDatabase,
    /// The URL does not parse.
    #[error("invalid database URL {url}")]
    BadUrl {
        /// The URL, password redacted.
        url: String,
        /// Cause.
        #[source]
        source: postgres::Error,
    },
    /// The server refused or could not be reached.
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Cause.
        #[source]
        source: postgres::Error,
    },
}

/// A database target: the connection string plus the secrets to redact from output.
#[derive(Clone)]
pub struct DbTarget {
    conninfo: String,
    password: Option<String>,
    /// A database name that replaces the one in `conninfo`.
    dbname: Option<String>,
}

impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbTarget({})", self.redacted())
    }
}

impl DbTarget {
    /// From a URL or a libpq key=value string.
    pub fn from_url(url: &str) -> DbTarget {
        let password = postgres::Config::from_str(url).ok().and_then(|c| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        });
        DbTarget {
            conninfo: url.to_string(),
            password,
            dbname: None,
        }
    }

    /// From libpq environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`), as handed in by the caller. `None` when none of them is set.
    pub fn from_pg_env(get: impl Fn(&str) -> Option<String>) -> Option<DbTarget> {
        let keys = [
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGUSER", "user"),
            ("PGDATABASE", "dbname"),
            ("PGPASSWORD", "password"),
            ("PGSSLMODE", "sslmode"),
            ("PGCONNECT_TIMEOUT", "connect_timeout"),
        ];
        let mut parts = Vec::new();
        let mut password = None;
        for (env, key) in keys {
            if let Some(v) = get(env).filter(|v| !v.is_empty()) {
                if key == "password" {
                    password = Some(v.clone());
                }
                parts.push(format!(
                    "{key}='{}'",
                    v.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        if parts.is_empty() {
            return None;
        }
        if get("PGHOST").is_none() {
            parts.push("host=/var/run/postgresql".into());
        }
        Some(DbTarget {
            conninfo: parts.join(" "),
            password,
            dbname: None,
        })
    }

    /// The same server and credentials, another database.
    pub fn with_dbname(&self, dbname: &str) -> DbTarget {
        DbTarget {
            dbname: Some(dbname.to_string()),
            ..self.clone()
        }
    }

    /// The connection string with the password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_conninfo(&self.conninfo, self.password.as_deref())
    }

    /// The password, so that callers can scrub it from any text.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Connects, with `application_name=git-migrate` unless the URL sets one.
    pub fn connect(&self) -> Result<postgres::Client, ConnectError> {
        let mut config =
            postgres::Config::from_str(&self.conninfo).map_err(|source| ConnectError::BadUrl {
                url: self.redacted(),
                source,
            })?;
        if let Some(d) = &self.dbname {
            config.dbname(d);
        }
        if config.get_application_name().is_none() {
            config.application_name("git-migrate");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        config
            .connect(postgres::NoTls)
            .map_err(|source| ConnectError::Connect {
                url: self.redacted(),
                source,
            })
    }
}

/// Replaces the password in a URL (`postgresql://u:pw@h/db`) or key=value string
/// (`password=pw`), and any other occurrence of the password, with `***`.
pub fn redact_conninfo(s: &str, password: Option<&str>) -> String {
    let mut out = s.to_string();
    if let Some(rest) = out
        .strip_prefix("postgresql://")
        .or_else(|| out.strip_prefix("postgres://"))
    {
        let scheme_len = out.len() - rest.len();
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                out = format!(
                    "{}{}:***{}",
                    &out[..scheme_len],
                    &rest[..colon],
                    &rest[at..]
                );
            }
        }
    }
    // key=value: password=xxx or password='x y'
    let mut result = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let boundary_ok = i == 0
            || rest[..i].ends_with(' ')
            || rest[..i].ends_with('?')
            || rest[..i].ends_with('&');
        result.push_str(&rest[..i + 9]);
        rest = &rest[i + 9..];
        if !boundary_ok {
            continue;
        }
        let end = if let Some(inner) = rest.strip_prefix('\'') {
            inner.find('\'').map(|e| e + 2).unwrap_or(rest.len())
        } else {
            rest.find([' ', '&']).unwrap_or(rest.len())
        };
        result.push_str("***");
        rest = &rest[end..];
    }
    result.push_str(rest);
    match password {
        Some(p) if !p.is_empty() => result.replace(p, "***"),
        _ => result,
    }
}

/// Renders a postgres error with everything the server said (message, detail, hint).
pub fn describe_pg_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(d) = db.detail() {
                s.push_str(&format!("; detail: {d}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                s.push_str(&format!(": {c}"));
                src = c.source();
            }
            s
        }
    }
}

/// Like [`describe_pg_error`] for any error in a source chain.
pub fn describe_pg_error_any(e: &(dyn std::error::Error + 'static)) -> String {
    match e.downcast_ref::<postgres::Error>() {
        Some(pe) => describe_pg_error(pe),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_conninfo(
                "postgresql://app:s3cret@db.example:5432/prod?sslmode=require",
                Some("s3cret")
            ),
            "postgresql://app:***@db.example:5432/prod?sslmode=require"
        );
        assert_eq!(
            redact_conninfo("host=/tmp user=x password='a b' dbname=y", None),
            "host=/tmp user=x password=*** dbname=y"
        );
        assert_eq!(
            redact_conninfo("postgres://u:p%40ss@h/db", None),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_conninfo("postgres://u@h/db", None),
            "postgres://u@h/db"
        );
        let t = DbTarget::from_url("postgresql://app:hunter2@localhost/db");
        assert_eq!(t.password(), Some("hunter2"));
        assert!(!format!("{t:?}").contains("hunter2"));
        let t = DbTarget::from_pg_env(|k| match k {
            "PGPASSWORD" => Some("pw'1".into()),
            "PGUSER" => Some("bob".into()),
            _ => None,
        })
        .unwrap();
        assert!(!t.redacted().contains("pw'1"), "{}", t.redacted());
        assert!(
            postgres::Config::from_str(&t.conninfo).is_ok(),
            "{}",
            t.conninfo
        );
    }
}
