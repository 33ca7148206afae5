//! One throwaway PostgreSQL cluster per test binary, started on first use from a dedicated
//! long-lived thread (PR_SET_PDEATHSIG fires when the spawning *thread* exits, and libtest ends
//! a test's thread when the test ends), stopped and deleted at exit. One database per test.

use git_migrate_core::scratch::Cluster;
use postgres::{Client, NoTls};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

struct Shared {
    cluster: Mutex<Option<Cluster>>,
    bindir: std::path::PathBuf,
    socket: std::path::PathBuf,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

extern "C" fn stop_cluster() {
    if let Some(s) = SHARED.get() {
        if let Some(c) = s.cluster.lock().unwrap_or_else(|e| e.into_inner()).take() {
            c.stop();
        }
    }
}

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres-owner".into())
            .spawn(move || {
                let started = Cluster::start();
                let ok = started.is_ok();
                tx.send(started).unwrap();
                if ok {
                    // Keep this thread alive for the whole run: the postmaster dies with it.
                    loop {
                        std::thread::park();
                    }
                }
            })
            .unwrap();
        let cluster = rx
            .recv()
            .unwrap()
            .unwrap_or_else(|e| panic!("cannot start the test PostgreSQL cluster: {e}"));
        unsafe {
            libc::atexit(stop_cluster);
        }
        Shared {
            bindir: cluster.bindir().to_path_buf(),
            socket: cluster.socket_dir().to_path_buf(),
            cluster: Mutex::new(Some(cluster)),
        }
    })
}

/// A database for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Creates a fresh, empty database named after the test.
    pub fn new(test: &str) -> TestDb {
        let s = shared();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name: String = format!("t{n}_{test}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        let guard = s.cluster.lock().unwrap();
        let url = guard
            .as_ref()
            .expect("cluster running")
            .create_database(&name, None)
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        TestDb { name, url }
    }

    /// A new client.
    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).expect("connect to the test database")
    }

    /// Like [`TestDb::dump`], without the history rows of failed attempts: a failed deployment
    /// changes nothing but appends a `failed` row to `git_migrate.deployments` (so `log` and
    /// `promote` can see it), which also advances that table's id sequence.
    pub fn dump_ignoring_failed_attempts(&self) -> String {
        let dump = self.dump(false, None);
        let mut out = Vec::new();
        let mut status_col: Option<usize> = None;
        for line in dump.lines() {
            if let Some(rest) = line.strip_prefix("COPY git_migrate.deployments (") {
                let cols = rest.split(')').next().unwrap_or_default();
                status_col = cols.split(", ").position(|c| c == "status");
                out.push(line);
                continue;
            }
            if let Some(i) = status_col {
                if line == "\\." {
                    status_col = None;
                } else if line.split('\t').nth(i) == Some("failed") {
                    continue;
                }
            }
            if line.contains("'git_migrate.deployments_id_seq'") {
                continue;
            }
            out.push(line);
        }
        out.join("\n")
    }

    /// `pg_dump` of the database (schema and data), with pg_dump's random
    /// `\restrict` lines removed. `exclude_schema` leaves out a schema (e.g. the ledger).
    pub fn dump(&self, schema_only: bool, exclude_schema: Option<&str>) -> String {
        let s = shared();
        // The server's own pg_dump; `PG_DUMP` names another (the npm server packages of
        // bench/pg-matrix.sh carry no client tools).
        let pg_dump = std::env::var_os("PG_DUMP")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| s.bindir.join("pg_dump"));
        let mut cmd = Command::new(pg_dump);
        cmd.arg("-h").arg(&s.socket).args([
            "-p",
            "5432",
            "-U",
            "postgres",
            "--no-owner",
            "--no-privileges",
        ]);
        if schema_only {
            cmd.arg("--schema-only");
        }
        if let Some(x) = exclude_schema {
            cmd.arg("--exclude-schema").arg(x);
        }
        cmd.arg(&self.name);
        let out = cmd.output().expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Rows of a query, every column as text.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut c = self.client();
        c.simple_query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// The first column of the first row.
    pub fn scalar(&self, sql: &str) -> Option<String> {
        self.rows(sql)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
    }

    /// The server's `server_version_num` (150018 for 15.18): for the few expectations that
    /// differ between PostgreSQL versions (bench/pg-matrix.sh runs the tests on 13 to 18).
    pub fn server_version_num(&self) -> u32 {
        self.scalar("SHOW server_version_num")
            .and_then(|v| v.parse().ok())
            .expect("server_version_num is a number")
    }

    /// Applied versions in the ledger, ascending.
    pub fn applied(&self) -> Vec<i64> {
        self.rows("SELECT version FROM git_migrate.migrations ORDER BY version")
            .into_iter()
            .map(|r| r[0].as_deref().unwrap().parse().unwrap())
            .collect()
    }

    /// Whether a relation exists.
    pub fn has_table(&self, name: &str) -> bool {
        self.scalar(&format!("SELECT to_regclass('{name}') IS NOT NULL"))
            .as_deref()
            == Some("t")
    }
}
