//! Connecting to PostgreSQL: where the connection comes from, libpq's TLS settings and
//! password file, and keeping passwords out of every message (docs/connections.md).
//!
//! rust-postgres parses the connection string, except for what it does not know: `sslmode`
//! `verify-ca`/`verify-full`, `sslrootcert`, `sslcert`, `sslkey` are taken out first
//! ([`conninfo`]) and applied through rustls ([`tls`]). The libpq environment (`PGSSLMODE`,
//! `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGPASSWORD`, `PGPASSFILE`, `HOME`) supplies
//! defaults for what the connection string leaves out, as in libpq; a password missing from
//! both comes from the password file ([`pgpass`]).

pub mod conninfo;
pub mod pgpass;
pub mod secrets;
pub mod tls;

use std::path::PathBuf;
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
    /// A TLS setting that cannot work (a missing root certificate file, an unknown sslmode…);
    /// nothing was attempted.
    #[error("cannot connect to {url}: {error}")]
    TlsConfig {
        /// The URL, password redacted.
        url: String,
        /// What is wrong.
        error: tls::TlsConfigError,
    },
    /// The TLS handshake failed (certificate not trusted, wrong host name…).
    #[error("cannot connect to {url}: {message}")]
    Tls {
        /// The URL, password redacted.
        url: String,
        /// What failed, with the sslmode and root certificate in effect.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// The server refused or could not be reached.
    #[error("cannot connect to {url}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Cause.
        #[source]
        source: postgres::Error,
        /// What to do about it, when there is something specific to say.
        hint: Option<String>,
    },
}

impl ConnectError {
    /// A configuration mistake (exit 2) rather than a failure to connect (exit 4).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            ConnectError::NoDatabase | ConnectError::BadUrl { .. } | ConnectError::TlsConfig { .. }
        )
    }

    /// What to do about it, when there is something specific to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConnectError::TlsConfig { error, .. } => Some(error.hint()),
            ConnectError::Tls { hint, .. } => Some(hint.clone()),
            ConnectError::Connect { hint, .. } => hint.clone(),
            ConnectError::NoDatabase | ConnectError::BadUrl { .. } => None,
        }
    }
}

/// The libpq environment variables that supply defaults (empty values count as unset).
#[derive(Clone, Default)]
pub struct LibpqEnv {
    /// `PGSSLMODE`.
    pub sslmode: Option<String>,
    /// `PGSSLROOTCERT`.
    pub sslrootcert: Option<String>,
    /// `PGSSLCERT`.
    pub sslcert: Option<String>,
    /// `PGSSLKEY`.
    pub sslkey: Option<String>,
    /// `PGPASSWORD`.
    pub password: Option<String>,
    /// `PGPASSFILE`.
    pub passfile: Option<PathBuf>,
    /// `HOME` (for `~/.pgpass` and `~/.postgresql/`).
    pub home: Option<PathBuf>,
    /// The operating-system user: the user name when the connection string has none.
    pub os_user: Option<String>,
}

impl std::fmt::Debug for LibpqEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibpqEnv")
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("passfile", &self.passfile)
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

impl LibpqEnv {
    /// From variables handed in by the caller.
    pub(crate) fn from_vars(get: impl Fn(&str) -> Option<String>) -> LibpqEnv {
        let v = |k: &str| get(k).filter(|s| !s.is_empty());
        LibpqEnv {
            sslmode: v("PGSSLMODE"),
            sslrootcert: v("PGSSLROOTCERT"),
            sslcert: v("PGSSLCERT"),
            sslkey: v("PGSSLKEY"),
            password: v("PGPASSWORD"),
            passfile: v("PGPASSFILE").map(PathBuf::from),
            home: v("HOME").map(PathBuf::from),
            os_user: None,
        }
    }

    /// From this process's environment.
    pub fn from_process() -> LibpqEnv {
        let mut env = LibpqEnv::from_vars(|k| std::env::var(k).ok());
        env.os_user = os_user();
        env
    }
}

/// The effective user's name (what rust-postgres and libpq use when no user is given).
fn os_user() -> Option<String> {
    // SAFETY: getpwuid returns NULL or a pointer to static storage valid until the next getpw*
    // call; the name is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// A database target: the connection string plus the secrets to redact from output.
#[derive(Clone)]
pub struct DbTarget {
    conninfo: String,
    password: Option<String>,
    /// Where the password came from when not from the connection string.
    password_from: Option<String>,
    /// A database name that replaces the one in `conninfo`.
    dbname: Option<String>,
    /// The libpq environment, once applied ([`DbTarget::resolve`]).
    env: Option<LibpqEnv>,
}

impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbTarget({})", self.redacted())
    }
}

impl DbTarget {
    /// From a URL or a libpq key=value string.
    pub fn from_url(url: &str) -> DbTarget {
        let (rest, _) = conninfo::split_ssl(url);
        let password = postgres::Config::from_str(&rest).ok().and_then(|c| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        });
        DbTarget {
            conninfo: url.to_string(),
            password,
            password_from: None,
            dbname: None,
            env: None,
        }
    }

    /// From libpq environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`, `PGCONNECT_TIMEOUT`), as handed in by the caller. `None` when none of them
    /// is set. (`PGSSLMODE` and the other TLS variables apply to every target, see
    /// [`DbTarget::resolve`].)
    pub fn from_pg_env(get: impl Fn(&str) -> Option<String>) -> Option<DbTarget> {
        let keys = [
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGUSER", "user"),
            ("PGDATABASE", "dbname"),
            ("PGPASSWORD", "password"),
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
            parts.push(format!("host={}", pgpass::DEFAULT_SOCKET_DIR));
        }
        Some(DbTarget {
            conninfo: parts.join(" "),
            password,
            password_from: None,
            dbname: None,
            env: None,
        })
    }

    /// The same server and credentials, another database. A password from the password file
    /// is looked up again for it.
    pub(crate) fn with_dbname(&self, dbname: &str) -> DbTarget {
        let mut t = DbTarget {
            dbname: Some(dbname.to_string()),
            ..self.clone()
        };
        if t.password_from
            .as_deref()
            .is_some_and(|f| f != "PGPASSWORD")
        {
            t.password = None;
            t.password_from = None;
            t.env = None;
        }
        t
    }

    /// The connection string with the password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_conninfo(&self.conninfo, self.password.as_deref())
    }

    /// A short name for tables of many databases: `host:port/dbname` (the first host; the
    /// socket folder for a unix socket), never the user or the password. The redacted
    /// connection string when it does not parse.
    pub fn label(&self) -> String {
        let (rest, _) = conninfo::split_ssl(&self.conninfo);
        let Ok(c) = postgres::Config::from_str(&rest) else {
            return self.redacted();
        };
        let host = match c.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        let db = self
            .dbname
            .as_deref()
            .or(c.get_dbname())
            .or(c.get_user())
            .unwrap_or("postgres");
        redact_conninfo(&format!("{host}:{port}/{db}"), self.password.as_deref())
    }

    /// The password (from the connection string, or once resolved from `PGPASSWORD` or the
    /// password file), so that callers can scrub it from any text.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Applies the libpq environment: TLS defaults, and when the connection string has no
    /// password, `PGPASSWORD`, else the password file. Returns warnings to show (a password
    /// file that is ignored).
    pub fn resolve(&self, env: LibpqEnv) -> (DbTarget, Vec<String>) {
        let mut t = self.clone();
        let mut warnings = Vec::new();
        if t.password.is_none() {
            if let Some(p) = env.password.clone() {
                t.password = Some(p);
                t.password_from = Some("PGPASSWORD".into());
            } else if let Some(path) = env
                .passfile
                .clone()
                .or_else(|| env.home.as_ref().map(|h| h.join(".pgpass")))
            {
                match pgpass::read(&path) {
                    Ok(Some(text)) => {
                        if let Some((p, line)) =
                            t.pgpass_wanted(&env).and_then(|w| pgpass::find(&text, &w))
                        {
                            t.password = Some(p);
                            t.password_from = Some(format!(
                                "the password file \"{}\" (line {line})",
                                path.display()
                            ));
                        }
                    }
                    Ok(None) => {}
                    Err(w) => warnings.push(w),
                }
            }
        }
        t.env = Some(env);
        (t, warnings)
    }

    /// What a password file line must match for this target.
    fn pgpass_wanted(&self, env: &LibpqEnv) -> Option<pgpass::Wanted> {
        let (rest, _) = conninfo::split_ssl(&self.conninfo);
        let config = postgres::Config::from_str(&rest).ok()?;
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => Some(h.clone()),
            Some(postgres::config::Host::Unix(p)) => Some(p.to_string_lossy().into_owned()),
            None => config.get_hostaddrs().first().map(|a| a.to_string()),
        };
        let user = config
            .get_user()
            .map(str::to_string)
            .or_else(|| env.os_user.clone())?;
        Some(pgpass::Wanted {
            host: pgpass::host_key(host.as_deref()),
            port: config
                .get_ports()
                .first()
                .copied()
                .unwrap_or(5432)
                .to_string(),
            dbname: self
                .dbname
                .clone()
                .or_else(|| config.get_dbname().map(str::to_string))
                .unwrap_or_else(|| user.clone()),
            user,
        })
    }

    /// Connects, with `application_name=git-migrate` unless the URL sets one, applying the
    /// process's libpq environment first unless [`DbTarget::resolve`] did. The password is
    /// registered as a secret ([`secrets`]). Nothing here prints: a target that was not resolved
    /// drops the resolution's warnings, so a caller that shows warnings resolves first (as the
    /// command layer does).
    pub fn connect(&self) -> Result<postgres::Client, ConnectError> {
        let Some(env) = &self.env else {
            let (t, _warnings) = self.resolve(LibpqEnv::from_process());
            return t.connect();
        };
        if let Some(p) = &self.password {
            secrets::register_secret(p);
        }
        let (rest, ssl) = conninfo::split_ssl(&self.conninfo);
        let mut config =
            postgres::Config::from_str(&rest).map_err(|source| ConnectError::BadUrl {
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
        if config.get_password().is_none() {
            if let Some(p) = &self.password {
                config.password(p);
            }
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            // libpq's default: the socket directory.
            config.host(pgpass::DEFAULT_SOCKET_DIR);
        }
        let hosts = config.get_hosts().to_vec();
        let hostaddrs = config.get_hostaddrs().to_vec();
        let unix_only = hostaddrs.is_empty()
            && hosts
                .iter()
                .all(|h| matches!(h, postgres::config::Host::Unix(_)));
        let hostaddr_only = hosts.is_empty();
        let tls_config_error = |error| ConnectError::TlsConfig {
            url: self.redacted(),
            error,
        };
        let plan = tls::plan(&ssl, env, unix_only, hostaddr_only, &|p| p.exists())
            .map_err(tls_config_error)?;
        if hostaddr_only {
            // rust-postgres wants a host name for TLS; libpq uses the address.
            for a in &hostaddrs {
                config.host(&a.to_string());
            }
        }
        let connector = tls::connector(&plan).map_err(tls_config_error)?;
        // prefer: why TLS failed before the plaintext attempt.
        let mut tls_failure = None;
        for (i, attempt) in plan.attempts.iter().enumerate() {
            config.ssl_mode(match attempt {
                tls::Attempt::Plain => postgres::config::SslMode::Disable,
                tls::Attempt::TlsIfOffered => postgres::config::SslMode::Prefer,
                tls::Attempt::TlsRequired => postgres::config::SslMode::Require,
            });
            match config.connect(connector.clone()) {
                Ok(client) => return Ok(client),
                Err(e) => {
                    let retry = i + 1 < plan.attempts.len()
                        && match attempt {
                            // allow: the server refused the plaintext connection.
                            tls::Attempt::Plain => e.as_db_error().is_some(),
                            // prefer: the handshake failed.
                            tls::Attempt::TlsIfOffered => tls::find_rustls_error(&e).is_some(),
                            tls::Attempt::TlsRequired => false,
                        };
                    if !retry {
                        let mut err = self.connect_error(e, &plan, &hosts);
                        if let (ConnectError::Connect { hint, .. }, Some(t)) =
                            (&mut err, tls_failure.take())
                        {
                            *hint = Some(match hint.take() {
                                Some(h) => format!("TLS was tried first and failed: {t}; {h}"),
                                None => format!("TLS was tried first and failed: {t}"),
                            });
                        }
                        return Err(err);
                    }
                    if let ConnectError::Tls { message, .. } = self.connect_error(e, &plan, &hosts)
                    {
                        tls_failure = Some(message);
                    }
                }
            }
        }
        unreachable!("a plan has at least one attempt and the last one returns")
    }

    /// A connection failure in words, with a hint when there is something specific to say.
    fn connect_error(
        &self,
        e: postgres::Error,
        plan: &tls::TlsPlan,
        hosts: &[postgres::config::Host],
    ) -> ConnectError {
        let url = self.redacted();
        if let Some(r) = tls::find_rustls_error(&e) {
            let host = match hosts.first() {
                Some(postgres::config::Host::Tcp(h)) => h.clone(),
                _ => String::new(),
            };
            let (message, hint) = tls::describe_tls_failure(r, plan, &host);
            return ConnectError::Tls { url, message, hint };
        }
        let hint = connect_hint(&e, plan, self.password_from.as_deref());
        ConnectError::Connect {
            url,
            source: e,
            hint,
        }
    }
}

/// Something specific to say about a failed connection.
fn connect_hint(
    e: &postgres::Error,
    plan: &tls::TlsPlan,
    password_from: Option<&str>,
) -> Option<String> {
    if let Some(db) = e.as_db_error() {
        return match db.code().code() {
            "28P01" => Some(match password_from {
                Some(from) => format!("the password came from {from}: check it, and the user name"),
                None => "check the user name and password".to_string(),
            }),
            "28000" if db.message().contains("no encryption") => Some(format!(
                "the server accepts this connection only over TLS (hostssl in pg_hba.conf), and sslmode={} did not use it: use sslmode=require, or verify-full with sslrootcert=CA-FILE",
                plan.mode.as_str()
            )),
            _ => None,
        };
    }
    let text = describe_pg_error(e);
    if text.contains("password missing") {
        return Some("the server asks for a password: give it in the URL, in PGPASSWORD, or in ~/.pgpass (mode 0600; PGPASSFILE names another file)".into());
    }
    if text.contains("server does not support TLS") {
        return Some(format!(
            "sslmode={} needs TLS, and the server does not offer it: turn ssl on in the server, or use sslmode=prefer",
            plan.mode.as_str()
        ));
    }
    None
}

/// Replaces the password in a URL (`postgresql://u:pw@h/db`) or key=value string
/// (`password=pw`), and any other occurrence of the password, with `***`.
pub(crate) fn redact_conninfo(s: &str, password: Option<&str>) -> String {
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
    fn labels_name_host_port_and_database_only() {
        let l = |u: &str| DbTarget::from_url(u).label();
        assert_eq!(
            l("postgresql://app:s3cret@db.example:6432/tenant_7?sslmode=require"),
            "db.example:6432/tenant_7"
        );
        assert_eq!(
            l("host=/run/pg port=5433 user=x password=s3cret dbname=t1"),
            "/run/pg:5433/t1"
        );
        assert_eq!(l("postgresql://app@db"), "db:5432/app");
        assert_eq!(
            l("not a url ="),
            DbTarget::from_url("not a url =").redacted()
        );
    }

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
        // A URL rust-postgres alone rejects still yields its password.
        let t = DbTarget::from_url(
            "postgresql://app:hunter2@db/x?sslmode=verify-full&sslrootcert=/ca.pem",
        );
        assert_eq!(t.password(), Some("hunter2"));
    }

    fn env_with(home: &std::path::Path, password: Option<&str>) -> LibpqEnv {
        LibpqEnv {
            home: Some(home.to_path_buf()),
            password: password.map(str::to_string),
            os_user: Some("osuser".into()),
            ..LibpqEnv::default()
        }
    }

    fn pgpass_file(dir: &std::path::Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(".pgpass");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn password_precedence() {
        let home = tempfile::tempdir().unwrap();
        pgpass_file(
            home.path(),
            "db.example:5432:prod:app:from-file\\:1\n*:*:*:osuser:os-user\nlocalhost:*:*:*:sock\n",
            0o600,
        );
        // The connection string wins.
        let (t, w) = DbTarget::from_url("postgresql://app:inline@db.example/prod")
            .resolve(env_with(home.path(), Some("env")));
        assert_eq!((t.password(), w.len()), (Some("inline"), 0));
        // Then PGPASSWORD.
        let (t, _) = DbTarget::from_url("postgresql://app@db.example/prod")
            .resolve(env_with(home.path(), Some("env")));
        assert_eq!(t.password(), Some("env"));
        // Then the file: host, port, database and user matched; `\\` unescaped.
        let (t, _) = DbTarget::from_url("postgresql://app@db.example/prod")
            .resolve(env_with(home.path(), None));
        assert_eq!(t.password(), Some("from-file:1"));
        assert!(t.password_from.as_deref().unwrap().contains("(line 1)"));
        // Another database: looked up again.
        let (t2, _) = t.with_dbname("other").resolve(env_with(home.path(), None));
        assert_eq!(t2.password(), None);
        // No user in the URL: the operating-system user.
        let (t, _) =
            DbTarget::from_url("host=db.example dbname=prod").resolve(env_with(home.path(), None));
        assert_eq!(t.password(), Some("os-user"));
        // The default socket directory, or no host at all, is `localhost`.
        for url in [
            "host=/var/run/postgresql user=u dbname=d",
            "postgresql://u@/d?host=%2Fvar%2Frun%2Fpostgresql",
        ] {
            let (t, _) = DbTarget::from_url(url).resolve(env_with(home.path(), None));
            assert_eq!(t.password(), Some("sock"), "{url}");
        }
        let (t, _) = DbTarget::from_url("host=/tmp/sockets user=u dbname=d")
            .resolve(env_with(home.path(), None));
        assert_eq!(t.password(), None);
        // PGPASSFILE names another file.
        let other = home.path().join("elsewhere");
        std::fs::write(&other, "*:*:*:*:elsewhere\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o400)).unwrap();
        let mut env = env_with(home.path(), None);
        env.passfile = Some(other);
        let (t, _) = DbTarget::from_url("postgresql://app@db.example/prod").resolve(env);
        assert_eq!(t.password(), Some("elsewhere"));
    }

    #[test]
    fn open_password_file_is_ignored_with_a_warning() {
        let home = tempfile::tempdir().unwrap();
        pgpass_file(home.path(), "*:*:*:*:secret\n", 0o644);
        let (t, w) = DbTarget::from_url("postgresql://app@db.example/prod")
            .resolve(env_with(home.path(), None));
        assert_eq!(t.password(), None);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains(".pgpass") && w[0].contains("0644"), "{w:?}");
        assert!(!w[0].contains("secret"));
    }

    fn connect_err(t: &DbTarget) -> ConnectError {
        match t.connect() {
            Ok(_) => panic!("{t:?} connected"),
            Err(e) => e,
        }
    }

    #[test]
    fn tls_settings_that_cannot_work_are_configuration_errors() {
        let home = tempfile::tempdir().unwrap();
        let (t, _) = DbTarget::from_url(
            "postgresql://app:pw@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .resolve(env_with(home.path(), None));
        let e = connect_err(&t);
        assert!(e.is_configuration());
        let msg = e.to_string();
        assert!(
            msg.contains("\"/nonexistent/ca.pem\" does not exist") && !msg.contains("pw@"),
            "{msg}"
        );
        assert!(e.hint().unwrap().contains("sslrootcert=system"));
        let (t, _) = DbTarget::from_url("host=127.0.0.1 port=1 sslmode=verify")
            .resolve(env_with(home.path(), None));
        let e = connect_err(&t);
        assert!(
            e.is_configuration() && e.to_string().contains("invalid sslmode"),
            "{e}"
        );
        // A unix socket ignores sslmode: the error is about the missing server, not TLS.
        let (t, _) = DbTarget::from_url(
            "host=/nonexistent-dir port=1 user=u sslmode=verify-full sslrootcert=/nonexistent",
        )
        .resolve(env_with(home.path(), None));
        let e = connect_err(&t);
        assert!(matches!(e, ConnectError::Connect { .. }), "{e:?}");
    }
}
