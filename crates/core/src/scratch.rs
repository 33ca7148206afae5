//! A throwaway PostgreSQL cluster for tests, benchmarks and the `demo` command.
//!
//! [`Cluster::start`] runs `initdb` into a fresh directory under `/tmp` and
//! starts `postgres` on a unix socket in that directory (no TCP listener unless
//! [`ClusterOptions::listen`] asks for one), with every durability setting turned off. Dropping the [`Cluster`] (or calling
//! [`Cluster::stop`]) shuts the server down and removes the directory.
//!
//! When the current process runs as root, the server runs as the `postgres`
//! system user (or `nobody` if there is none), because `postgres` refuses to
//! run as root.
//!
//! The server is started with `PR_SET_PDEATHSIG = SIGQUIT`, so a crashed or
//! killed parent does not leak a postmaster. Linux delivers that signal when
//! the *thread* that spawned the child exits, not the process: a cluster that
//! must outlive the thread calling [`Cluster::start`] (for example one shared
//! by several tests through a `static`) has to be started from a long-lived
//! thread. [`Cluster::start`] itself simply spawns on the calling thread.

use std::ffi::{CString, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Default port number of the socket (only the socket file name depends on it when there is no
/// TCP listener).
const PORT: u16 = 5432;
/// How long to wait for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How long a fast shutdown (SIGINT) may take before escalating.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of the end of `server.log` goes into error messages.
const LOG_TAIL_BYTES: u64 = 4096;
/// What to tell a user who has no server binaries.
const INSTALL_HINT: &str =
    "install the PostgreSQL server binaries (Debian: apt-get install -y postgresql) or set PG_BINDIR";

/// Errors starting or using a scratch cluster.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// No directory with both `initdb` and `postgres` was found.
    #[error("PostgreSQL server binaries (initdb, postgres) not found (searched $PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, PATH): {INSTALL_HINT}")]
    BinariesNotFound,
    /// `PG_BINDIR` is set but does not hold the server binaries.
    #[error("PG_BINDIR={} does not contain both `initdb` and `postgres`: point it at the server's bin directory (e.g. /usr/lib/postgresql/<version>/bin) or unset it; otherwise {INSTALL_HINT}", .0.display())]
    BadPgBindir(PathBuf),
    /// Running as root, and no unprivileged user to run the server as exists.
    #[error("running as root, but neither the `postgres` nor the `nobody` system user exists and postgres refuses to run as root: create one (e.g. `useradd --system postgres`) or run as a non-root user")]
    NoServerUser,
    /// Creating the temporary directory failed.
    #[error("cannot create a temporary directory under /tmp for the scratch cluster: {0} (check that /tmp exists and is writable)")]
    TempDir(#[source] io::Error),
    /// Some other file operation on the temporary directory failed.
    #[error("scratch cluster: {what} {}: {source}", .path.display())]
    Io {
        /// What was being done, e.g. "cannot chown".
        what: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A server binary could not be executed at all.
    #[error("cannot run {}: {source} (check the installation or PG_BINDIR)", .program.display())]
    Spawn {
        /// The binary.
        program: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `initdb` exited unsuccessfully.
    #[error("initdb failed ({status}):\n{stderr}")]
    Initdb {
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stderr (and stdout).
        stderr: String,
    },
    /// The server exited before it accepted connections.
    #[error("postgres exited during startup ({status}); end of server.log:\n{log_tail}")]
    ServerExited {
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// The server did not accept connections in time.
    #[error("postgres did not accept connections within {}s (last error: {last_error}); end of server.log:\n{log_tail}", .waited.as_secs())]
    StartTimeout {
        /// How long we waited.
        waited: Duration,
        /// The last connection error.
        last_error: String,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// Connecting to the running scratch server failed.
    #[error("cannot connect to the scratch cluster ({url}): {source}")]
    Connect {
        /// The connection string used.
        url: String,
        /// The underlying error.
        #[source]
        source: postgres::Error,
    },
    /// A statement run by the scratch cluster helper failed.
    #[error("scratch cluster: `{statement}` failed: {source}")]
    Sql {
        /// The statement.
        statement: String,
        /// The underlying error.
        #[source]
        source: postgres::Error,
    },
}

/// Extra settings for [`Cluster::start_with`]; the default is what [`Cluster::start`] does.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Extra `postgresql.conf` settings (`name=value`), passed as `-c` after the built-in ones.
    pub settings: Vec<String>,
    /// `pg_hba.conf` lines put *before* initdb's (which trust every local connection); the
    /// first matching line wins, so these take precedence.
    pub hba: Vec<String>,
    /// Files written into the data directory before the server starts (name, contents), owned by
    /// the server user with mode 0600 (e.g. `server.crt`, `server.key` for `ssl=on`).
    pub files: Vec<(String, Vec<u8>)>,
    /// Also listen on TCP: `listen_addresses` and the port (the socket file uses the same port).
    pub listen: Option<(String, u16)>,
}

/// A running throwaway cluster on a unix socket in a temp dir.
///
/// Dropping it stops the server and removes the directory; see the
/// [module documentation](self) for the parent-death caveat.
#[derive(Debug)]
pub struct Cluster {
    /// The postmaster; `None` once stopped.
    child: Option<Child>,
    /// Socket directory; holds `data/` and `server.log`. `None` once removed.
    dir: Option<tempfile::TempDir>,
    /// Copy of the directory path, valid for the whole lifetime.
    path: PathBuf,
    /// Where `initdb` and `postgres` were found.
    bindir: PathBuf,
    /// The port (5432 unless [`ClusterOptions::listen`] says otherwise).
    port: u16,
}

/// Uid/gid to run the server as (only when we are root).
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl Cluster {
    /// Creates a temporary directory, runs `initdb` in it and starts `postgres`
    /// on a unix socket there, returning once the server accepts connections.
    ///
    /// The postmaster gets `SIGQUIT` when the calling *thread* exits (see the
    /// [module documentation](self)).
    pub fn start() -> Result<Cluster, ScratchError> {
        Cluster::start_with(&ClusterOptions::default())
    }

    /// Like [`Cluster::start`] with extra settings, `pg_hba.conf` lines, files in the data
    /// directory and an optional TCP listener.
    pub fn start_with(options: &ClusterOptions) -> Result<Cluster, ScratchError> {
        let port = options.listen.as_ref().map_or(PORT, |(_, p)| *p);
        let bindir = find_bindir()?;
        let run_as = server_user()?;
        let dir = tempfile::Builder::new()
            .prefix("gm-pg-")
            .tempdir_in("/tmp")
            .map_err(ScratchError::TempDir)?;
        let path = dir.path().to_path_buf();
        if let Some(u) = run_as {
            std::os::unix::fs::chown(&path, Some(u.uid), Some(u.gid)).map_err(|source| {
                ScratchError::Io {
                    what: "cannot chown",
                    path: path.clone(),
                    source,
                }
            })?;
        }
        let data = path.join("data");

        // initdb
        let initdb = bindir.join("initdb");
        let mut cmd = Command::new(&initdb);
        cmd.arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                // No `--no-instructions`: PostgreSQL 13's initdb refuses it, and the output is
                // captured anyway.
            ])
            .stdin(Stdio::null());
        prepare(&mut cmd, &path, run_as, libc::SIGKILL);
        let out = cmd.output().map_err(|source| ScratchError::Spawn {
            program: initdb.clone(),
            source,
        })?;
        if !out.status.success() {
            let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !stdout.trim().is_empty() {
                stderr.push_str("\n(stdout)\n");
                stderr.push_str(&stdout);
            }
            return Err(ScratchError::Initdb {
                status: out.status,
                stderr,
            });
        }

        write_data_files(&data, options, run_as)?;

        // postgres
        let log_path = path.join("server.log");
        let log = File::create(&log_path).map_err(|source| ScratchError::Io {
            what: "cannot create",
            path: log_path.clone(),
            source,
        })?;
        let log2 = log.try_clone().map_err(|source| ScratchError::Io {
            what: "cannot duplicate the handle of",
            path: log_path.clone(),
            source,
        })?;
        let server = bindir.join("postgres");
        let mut cmd = Command::new(&server);
        cmd.arg("-D").arg(&data).arg("-k").arg(&path);
        cmd.arg("-p").arg(port.to_string());
        let listen = match &options.listen {
            Some((addr, _)) => format!("listen_addresses={addr}"),
            None => "listen_addresses=".to_string(),
        };
        for setting in [
            listen.as_str(),
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "autovacuum=off",
            "wal_level=minimal",
            "max_wal_senders=0",
            "checkpoint_timeout=1h",
            "max_connections=100",
            "shared_buffers=64MB",
        ] {
            cmd.arg("-c").arg(setting);
        }
        for setting in &options.settings {
            cmd.arg("-c").arg(setting);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        prepare(&mut cmd, &path, run_as, libc::SIGQUIT);
        let child = cmd.spawn().map_err(|source| ScratchError::Spawn {
            program: server.clone(),
            source,
        })?;

        // From here on, Drop cleans up on every error path.
        let mut cluster = Cluster {
            child: Some(child),
            dir: Some(dir),
            path,
            bindir,
            port,
        };
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// libpq key=value connection string for database `db` as superuser `postgres`.
    ///
    /// Values are quoted (`'...'` with backslash escapes) only when they need it.
    pub fn url(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={}",
            conninfo_value(&self.path.to_string_lossy()),
            self.port,
            conninfo_value(db)
        )
    }

    /// The socket directory.
    pub fn socket_dir(&self) -> &Path {
        &self.path
    }

    /// The port (of the socket file, and of the TCP listener if there is one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `CREATE DATABASE <name>` (optionally `TEMPLATE <t>`), returns `url(name)`.
    ///
    /// Both names are quoted as SQL identifiers, so they are taken verbatim
    /// (case-sensitive, any characters).
    pub fn create_database(
        &self,
        name: &str,
        template: Option<&str>,
    ) -> Result<String, ScratchError> {
        let mut sql = format!("CREATE DATABASE {}", quote_ident(name));
        if let Some(t) = template {
            sql.push_str(" TEMPLATE ");
            sql.push_str(&quote_ident(t));
        }
        self.execute_in_postgres(&sql)?;
        Ok(self.url(name))
    }

    /// `DROP DATABASE IF EXISTS <name> WITH (FORCE)`.
    ///
    /// `WITH (FORCE)` terminates other sessions connected to it first.
    pub fn drop_database(&self, name: &str) -> Result<(), ScratchError> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
        self.execute_in_postgres(&sql)
    }

    /// Directory with the server binaries in use (for psql/pg_dump users: psql lives in the same bindir on Debian).
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// Stops the server (fast shutdown, escalating after 5 s) and removes the directory.
    ///
    /// Same as dropping the cluster, but reads better at the call site.
    pub fn stop(self) {
        drop(self)
    }

    /// Runs one statement in the `postgres` database.
    fn execute_in_postgres(&self, sql: &str) -> Result<(), ScratchError> {
        let url = self.url("postgres");
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .map_err(|source| ScratchError::Connect { url, source })?;
        client
            .batch_execute(sql)
            .map_err(|source| ScratchError::Sql {
                statement: sql.to_string(),
                source,
            })
    }

    /// Polls until the server accepts a connection, it exits, or time runs out.
    fn wait_ready(&mut self) -> Result<(), ScratchError> {
        let url = format!("{} connect_timeout=2", self.url("postgres"));
        let started = Instant::now();
        loop {
            let last_error = match postgres::Client::connect(&url, postgres::NoTls) {
                Ok(client) => {
                    drop(client);
                    return Ok(());
                }
                Err(e) => e.to_string(),
            };
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(ScratchError::ServerExited {
                        status,
                        log_tail: self.log_tail(),
                    });
                }
            }
            if started.elapsed() >= START_TIMEOUT {
                return Err(ScratchError::StartTimeout {
                    waited: started.elapsed(),
                    last_error,
                    log_tail: self.log_tail(),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The end of `server.log`, for error messages.
    fn log_tail(&self) -> String {
        let path = self.path.join("server.log");
        let read = || -> io::Result<String> {
            let mut f = File::open(&path)?;
            let len = f.metadata()?.len();
            let start = len.saturating_sub(LOG_TAIL_BYTES);
            f.seek(SeekFrom::Start(start))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            let mut text = String::from_utf8_lossy(&buf).into_owned();
            if start > 0 {
                // Drop the partial first line.
                if let Some(i) = text.find('\n') {
                    text.drain(..=i);
                }
            }
            Ok(text)
        };
        match read() {
            Ok(t) if t.trim().is_empty() => "(server.log is empty)".to_string(),
            Ok(t) => t,
            Err(e) => format!("(cannot read {}: {e})", path.display()),
        }
    }

    /// Stops the server if it runs and removes the directory. Idempotent.
    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
        if let Some(dir) = self.dir.take() {
            // Best effort: a leftover directory in /tmp is not worth a panic.
            let _ = dir.close();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Writes [`ClusterOptions::files`] into the data directory and prepends
/// [`ClusterOptions::hba`] to `pg_hba.conf`, owned by the server user.
fn write_data_files(
    data: &Path,
    options: &ClusterOptions,
    run_as: Option<RunAs>,
) -> Result<(), ScratchError> {
    let io_err = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ScratchError::Io { what, path, source }
    };
    let write = |path: &Path, bytes: &[u8]| -> Result<(), ScratchError> {
        fs::write(path, bytes).map_err(io_err("cannot write", path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(io_err("cannot chmod", path))?;
        if let Some(u) = run_as {
            std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
                .map_err(io_err("cannot chown", path))?;
        }
        Ok(())
    };
    for (name, bytes) in &options.files {
        write(&data.join(name), bytes)?;
    }
    if !options.hba.is_empty() {
        let hba = data.join("pg_hba.conf");
        let old = fs::read_to_string(&hba).map_err(io_err("cannot read", &hba))?;
        let mut new = options.hba.join("\n");
        new.push('\n');
        new.push_str(&old);
        write(&hba, new.as_bytes())?;
    }
    Ok(())
}

/// SIGINT (fast shutdown), then SIGQUIT (immediate), then SIGKILL; always reaps.
fn stop_child(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    for (signal, timeout) in [
        (libc::SIGINT, STOP_TIMEOUT),
        (libc::SIGQUIT, Duration::from_secs(2)),
    ] {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => {}
        }
        // SAFETY: plain syscall; `pid` is our unreaped child, so it cannot
        // have been recycled for another process.
        unsafe { libc::kill(pid, signal) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sets up the common child settings: working directory and HOME in the
/// cluster directory, the server user when we are root, and a parent-death
/// signal.
fn prepare(cmd: &mut Command, dir: &Path, run_as: Option<RunAs>, death_signal: libc::c_int) {
    cmd.current_dir(dir).env("HOME", dir);
    if let Some(u) = run_as {
        cmd.uid(u.uid).gid(u.gid);
    }
    // SAFETY: getpid is called before the fork; the closure only calls the
    // async-signal-safe getppid, prctl and (via Error::last_os_error) reads errno,
    // and does not allocate. std runs it after setuid/setgid, which matters
    // because changing credentials clears the parent-death signal.
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                death_signal as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// The user to run the server as: `None` when not root, else `postgres` or `nobody`.
fn server_user() -> Result<Option<RunAs>, ScratchError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Some(u) = lookup_user(name) {
            return Ok(Some(u));
        }
    }
    Err(ScratchError::NoServerUser)
}

/// uid/gid of a system user.
fn lookup_user(name: &str) -> Option<RunAs> {
    let cname = CString::new(name).ok()?;
    // SAFETY: getpwnam returns NULL or a pointer to static storage that stays
    // valid until the next getpw* call; we copy the two fields out at once.
    // (getpwnam is not thread-safe against concurrent getpw* calls; nothing in
    // this crate makes them, and getpwnam_r would need buffer-size guessing.)
    unsafe {
        let pw = libc::getpwnam(cname.as_ptr());
        if pw.is_null() {
            None
        } else {
            Some(RunAs {
                uid: (*pw).pw_uid,
                gid: (*pw).pw_gid,
            })
        }
    }
}

/// Finds the PostgreSQL server binaries (a directory with `initdb` and `postgres`).
///
/// Search order:
/// 1. env `PG_BINDIR` (if set and non-empty it must be right, otherwise an error);
/// 2. `pg_config --bindir`, if `initdb` exists there;
/// 3. the highest `/usr/lib/postgresql/<version>/bin` (Debian/Ubuntu);
/// 4. the highest `/usr/pgsql-<version>/bin` (RHEL/PGDG);
/// 5. `initdb` on `PATH`, symlinks resolved, and its directory.
pub(crate) fn find_bindir() -> Result<PathBuf, ScratchError> {
    if let Some(dir) = std::env::var_os("PG_BINDIR").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return if has_server_binaries(&dir) {
            Ok(dir)
        } else {
            Err(ScratchError::BadPgBindir(dir))
        };
    }
    if let Some(dir) = pg_config_bindir().filter(|d| has_server_binaries(d)) {
        return Ok(dir);
    }
    if let Some(dir) = highest_versioned("/usr/lib/postgresql", "", "bin") {
        return Ok(dir);
    }
    if let Some(dir) = highest_versioned("/usr", "pgsql-", "bin") {
        return Ok(dir);
    }
    if let Some(dir) = path_bindir() {
        return Ok(dir);
    }
    Err(ScratchError::BinariesNotFound)
}

/// `pg_config --bindir`, if pg_config runs.
fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// Among `<parent>/<prefix><version>/<sub>` holding the server binaries, the
/// one with the numerically highest version (e.g. 9.6 < 10 < 16).
fn highest_versioned(parent: &str, prefix: &str, sub: &str) -> Option<PathBuf> {
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in fs::read_dir(parent).ok()?.flatten() {
        let name = entry.file_name();
        let Some(version) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(key) = version_key(version) else {
            continue;
        };
        let dir = entry.path().join(sub);
        if !has_server_binaries(&dir) {
            continue;
        }
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, dir));
        }
    }
    best.map(|(_, dir)| dir)
}

/// "9.6" -> [9, 6]; anything that is not dot-separated numbers -> None.
fn version_key(v: &str) -> Option<Vec<u64>> {
    if v.is_empty() {
        return None;
    }
    v.split('.').map(|p| p.parse().ok()).collect()
}

/// The directory of `initdb` found on PATH, with symlinks resolved.
fn path_bindir() -> Option<PathBuf> {
    let path: OsString = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("initdb");
        if !is_executable(&candidate) {
            continue;
        }
        let Ok(real) = fs::canonicalize(&candidate) else {
            continue;
        };
        if let Some(parent) = real.parent() {
            if has_server_binaries(parent) {
                return Some(parent.to_path_buf());
            }
        }
    }
    None
}

/// Whether `dir` holds executable `initdb` and `postgres`.
fn has_server_binaries(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("postgres"))
}

/// A regular file (after following symlinks) with an execute bit.
fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

use crate::quote::quote_ident;

/// A libpq conninfo value, quoted only if needed.
fn conninfo_value(v: &str) -> String {
    let plain = !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\' || c == '=');
    if plain {
        v.to_string()
    } else {
        let mut s = String::with_capacity(v.len() + 2);
        s.push('\'');
        for c in v.chars() {
            if c == '\'' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('\'');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_create_query_drop_stop() {
        let t0 = Instant::now();
        let cluster = Cluster::start().expect("start scratch cluster");
        eprintln!("scratch cluster started in {:?}", t0.elapsed());
        let dir = cluster.socket_dir().to_path_buf();
        assert!(dir.starts_with("/tmp"));
        assert!(cluster.bindir().join("initdb").exists());
        assert_eq!(
            cluster.url("x"),
            format!("host={} port=5432 user=postgres dbname=x", dir.display())
        );

        // An awkward name exercises identifier and conninfo quoting.
        let name = "Scratch \"db\" 'one'";
        let url = cluster
            .create_database(name, None)
            .expect("create database");
        {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            let row = client
                .query_one("select 1, current_database()", &[])
                .unwrap();
            assert_eq!(row.get::<_, i32>(0), 1);
            assert_eq!(row.get::<_, String>(1), name);
            // The open session must not block the forced drop.
            cluster.drop_database(name).expect("drop database");
            assert!(client.simple_query("select 1").is_err());
        }

        let copy = cluster
            .create_database("copy", Some("template0"))
            .expect("create from template");
        postgres::Client::connect(&copy, postgres::NoTls).expect("connect to copy");
        cluster.drop_database("copy").unwrap();
        cluster.drop_database("never existed").unwrap();
        assert!(matches!(
            cluster.create_database("bad", Some("no such template")),
            Err(ScratchError::Sql { .. })
        ));

        let t1 = Instant::now();
        cluster.stop();
        eprintln!("scratch cluster stopped in {:?}", t1.elapsed());
        assert!(!dir.exists(), "{} still exists", dir.display());
    }

    #[test]
    fn server_dies_with_spawning_thread() {
        let mut cluster = thread::spawn(|| Cluster::start().expect("start"))
            .join()
            .unwrap();
        let child = cluster.child.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "postmaster survived its spawning thread"
            );
            thread::sleep(Duration::from_millis(10));
        }
        let dir = cluster.socket_dir().to_path_buf();
        drop(cluster);
        assert!(!dir.exists());
    }

    #[test]
    fn helpers() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(conninfo_value("plain_db"), "plain_db");
        assert_eq!(conninfo_value(""), "''");
        assert_eq!(conninfo_value("a b'c\\"), "'a b\\'c\\\\'");
        assert_eq!(version_key("9.6"), Some(vec![9, 6]));
        assert!(version_key("10").unwrap() > version_key("9.6").unwrap());
        assert_eq!(version_key("16beta1"), None);
        let msg = ScratchError::BinariesNotFound.to_string();
        assert!(msg.contains("apt-get install -y postgresql"), "{msg}");
    }
}
