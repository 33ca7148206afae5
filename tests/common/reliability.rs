//! Shared by the reliability tests (kill trials, `tests/test_reliability.rs`, also run at full
//! size by `bench/reliability.sh`), the concurrency tests and the pooler tests:
//!
//! * [`Bg`]: the real binary started in the background, to race, kill or wait for;
//! * [`Rng`]: a tiny seeded xorshift, so a failing trial run can be replayed;
//! * [`CrashableCluster`]: a throwaway server that can be stopped with `pg_ctl stop -m
//!   immediate` (a crash) and started again on the same data directory;
//! * [`kill_repo`]: a repository of many migrations whose effects can be counted;
//! * [`Snapshot`]: everything a deployment writes (catalog fingerprint, table data, ledger
//!   rows, Hasura's state tables), without the columns that differ between two identical runs
//!   (timestamps, ids), so that a database can be classified as before-state, after-state or
//!   something in between.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::Run;
use git_migrate_core::scratch::Cluster;
use git_migrate_core::verify::fingerprint::{self, Fingerprint};
use postgres::{Client, NoTls, SimpleQueryMessage};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Background runs of the binary

/// A `git-migrate` process started in the background; killed if the test ends before it does.
pub struct Bg {
    pub child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    pub what: String,
    pub started: Instant,
}

fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Starts `git-migrate args` in `dir` against `url`, with the same clean environment as
/// `gm_env`, without waiting for it.
pub fn spawn_gm(dir: &Path, url: &str, args: &[&str]) -> Bg {
    let mut cmd = crate::common::gm_command(dir, url, args, &[]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the git-migrate binary starts");
    let stdout = Some(reader(child.stdout.take().unwrap()));
    let stderr = Some(reader(child.stderr.take().unwrap()));
    Bg {
        child,
        stdout,
        stderr,
        what: args.join(" "),
        started,
    }
}

impl Bg {
    /// Whether the process has ended.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL, to this process only (a no-op when it already ended).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits (at most `limit`) for the process to end and returns its output; panics (after
    /// killing it) when it does not end in time.
    pub fn finish(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let out = self.stdout.take().unwrap().join().unwrap();
                let err = self.stderr.take().unwrap().join().unwrap();
                panic!(
                    "`git-migrate {}` did not finish within {limit:?}\n{out}\n--- stderr ---\n{err}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        // Only this child, by its handle; a no-op when it was already waited for.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds and trial counts

/// xorshift64 (Marsaglia), seeded through splitmix64 so that any seed, 0 included, works.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// `GIT_MIGRATE_TRIAL_SEED` (decimal or 0x-hex) when set, else a fresh seed from the clock.
pub fn trial_seed() -> u64 {
    if let Ok(s) = std::env::var("GIT_MIGRATE_TRIAL_SEED") {
        let s = s.trim();
        let parsed = match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => s.parse(),
        };
        return parsed.unwrap_or_else(|e| panic!("GIT_MIGRATE_TRIAL_SEED={s:?}: {e}"));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos ^ ((std::process::id() as u64) << 32)
}

/// `GIT_MIGRATE_TRIALS` when set, else `default` (kept small for `cargo test`).
pub fn trial_count(default: usize) -> usize {
    match std::env::var("GIT_MIGRATE_TRIALS") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("GIT_MIGRATE_TRIALS={s:?}: {e}")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------------
// A server that can crash

/// The settings `git_migrate_core::scratch::Cluster` starts its server with, except
/// `synchronous_commit=off`: a restarted server acknowledges a commit only once its WAL is
/// written (to the OS; `fsync=off` only matters for an OS crash, which these tests do not
/// simulate), so a crash never loses a deployment the tool reported.
const RESTART_SETTINGS: &[&str] = &[
    "listen_addresses=",
    "fsync=off",
    "full_page_writes=off",
    "autovacuum=off",
    "wal_level=minimal",
    "max_wal_senders=0",
    "checkpoint_timeout=1h",
    "max_connections=100",
    "shared_buffers=64MB",
];

/// A throwaway cluster (initdb and first start by [`Cluster`]) that [`crash`](Self::crash)
/// stops with `pg_ctl stop -m immediate` and [`restart`](Self::restart) starts again on the
/// same data directory and socket (crash recovery). Dropping it stops whichever server runs
/// and removes the directory.
pub struct CrashableCluster {
    cluster: Option<Cluster>,
    /// The server started by [`restart`](Self::restart), when it runs.
    restarted: Option<Child>,
    dir: PathBuf,
    bindir: PathBuf,
    /// uid/gid the server runs as, when we are root.
    owner: Option<(u32, u32)>,
}

impl CrashableCluster {
    /// Starts a new cluster. The postmaster gets SIGQUIT when the calling thread exits.
    pub fn start() -> CrashableCluster {
        let cluster = Cluster::start().unwrap_or_else(|e| panic!("cannot start a cluster: {e}"));
        let dir = cluster.socket_dir().to_path_buf();
        let bindir = cluster.bindir().to_path_buf();
        // SAFETY: geteuid has no preconditions.
        let owner = if unsafe { libc::geteuid() } == 0 {
            let m = std::fs::metadata(dir.join("data")).unwrap();
            Some((m.uid(), m.gid()))
        } else {
            None
        };
        let c = CrashableCluster {
            cluster: Some(cluster),
            restarted: None,
            dir,
            bindir,
            owner,
        };
        // The first server runs with synchronous_commit=off; the role setting overrides that
        // for every session the tests and the tool open.
        c.execute(
            "postgres",
            "ALTER ROLE postgres SET synchronous_commit = on",
        );
        c
    }

    fn cluster(&self) -> &Cluster {
        self.cluster.as_ref().unwrap()
    }

    /// libpq connection string of database `db`.
    pub fn url(&self, db: &str) -> String {
        self.cluster().url(db)
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// `CREATE DATABASE name [TEMPLATE template]`; returns its URL.
    pub fn create_database(&self, name: &str, template: Option<&str>) -> String {
        self.cluster()
            .create_database(name, template)
            .unwrap_or_else(|e| panic!("create database {name}: {e}"))
    }

    pub fn drop_database(&self, name: &str) {
        self.cluster()
            .drop_database(name)
            .unwrap_or_else(|e| panic!("drop database {name}: {e}"))
    }

    /// A client of `db` whose application_name is `gm-test` (not the tool's).
    pub fn client(&self, db: &str) -> Client {
        Client::connect(&format!("{} application_name=gm-test", self.url(db)), NoTls)
            .unwrap_or_else(|e| panic!("connect to {db}: {e}"))
    }

    /// Runs SQL in `db`.
    pub fn execute(&self, db: &str, sql: &str) {
        self.client(db)
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn as_owner(&self, cmd: &mut Command) {
        cmd.current_dir(&self.dir).env("HOME", &self.dir);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
    }

    /// `pg_ctl stop -m immediate`: every backend dies at once, nothing is flushed or rolled
    /// back cleanly; the next start runs crash recovery.
    pub fn crash(&mut self) {
        let mut cmd = Command::new(self.bindir.join("pg_ctl"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "immediate", "-w", "-t", "60"])
            .stdin(Stdio::null());
        self.as_owner(&mut cmd);
        let out = cmd.output().expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl stop -m immediate failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(mut c) = self.restarted.take() {
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same directory and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.restarted.is_none(), "the server already runs");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let mut cmd = Command::new(self.bindir.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-k")
            .arg(&self.dir)
            .args(["-p", "5432"]);
        for s in RESTART_SETTINGS {
            cmd.arg("-c").arg(s);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        self.as_owner(&mut cmd);
        // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid) and
        // allocates nothing; std runs it after setuid/setgid, which clear the death signal.
        let parent = unsafe { libc::getpid() };
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGQUIT as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("postgres starts");
        let url = format!("{} connect_timeout=2", self.url("postgres"));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match Client::connect(&url, NoTls) {
                Ok(_) => break,
                Err(e) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "postgres exited during the restart ({status}): {e}; see server.log"
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "postgres did not accept connections after the restart: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        self.restarted = Some(child);
    }
}

impl Drop for CrashableCluster {
    fn drop(&mut self) {
        if let Some(mut c) = self.restarted.take() {
            // Fast shutdown, then immediate, then SIGKILL; always reaped.
            let pid = c.id() as libc::pid_t;
            for signal in [libc::SIGINT, libc::SIGQUIT] {
                // SAFETY: plain syscall on our own unreaped child.
                unsafe { libc::kill(pid, signal) };
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // The first server (already dead when it crashed) is reaped and the directory removed.
        drop(self.cluster.take());
    }
}

// ---------------------------------------------------------------------------------------------
// A repository of many migrations

/// Version of migration `i` (1-based), in Hasura's millisecond style.
pub fn kill_version(i: usize) -> i64 {
    1_700_000_000_000 + i as i64
}

/// Migration `i`: a table with 40 rows, an index on every third one, a comment on every
/// seventh, and one row in `public.apply_log` (created by migration 1) that counts how often
/// its up SQL ran. The down deletes that row and drops the table.
fn kill_migration(i: usize) -> Vec<(String, String)> {
    let v = kill_version(i);
    let t = format!("public.t_{i:03}");
    let mut up = String::new();
    let mut down = String::new();
    if i == 1 {
        up.push_str("create table public.apply_log (version bigint not null);\n");
    }
    up.push_str(&format!(
        "create table {t} (id int primary key, v text not null, n int not null default {i});\n\
         insert into {t} (id, v) select g, md5('{i}:' || g) from generate_series(1, 40) g;\n"
    ));
    if i.is_multiple_of(3) {
        up.push_str(&format!("create index t_{i:03}_v on {t} (v);\n"));
    }
    if i.is_multiple_of(7) {
        up.push_str(&format!("comment on table {t} is 'migration {i}';\n"));
    }
    up.push_str(&format!(
        "insert into public.apply_log (version) values ({v});\n"
    ));
    down.push_str(&format!(
        "delete from public.apply_log where version = {v};\ndrop table {t};\n"
    ));
    if i == 1 {
        down.push_str("drop table public.apply_log;\n");
    }
    migration(v, &format!("table_{i:03}"), &up, &down)
}

/// Hasura metadata tracking tables `t_001..t_{n}`.
fn tables_yaml(n: usize) -> String {
    let mut s = String::new();
    for i in 1..=n {
        s.push_str(&format!(
            "- table:\n    schema: public\n    name: t_{i:03}\n"
        ));
    }
    s
}

/// A config v2 project with `total` migrations: tag `base` has the first `base` of them (and
/// metadata tracking their tables), tag `tip` all of them.
pub fn kill_repo(total: usize, base: usize) -> TestRepo {
    let mut repo = TestRepo::new();
    let mut owned: Vec<(String, String)> = Vec::new();
    for i in 1..=base {
        owned.extend(kill_migration(i));
    }
    let yaml = tables_yaml(base);
    let mut all: Vec<(&str, &str)> = base_project()
        .into_iter()
        .filter(|(p, _)| *p != "metadata/tables.yaml")
        .collect();
    all.push(("metadata/tables.yaml", &yaml));
    all.extend(files(&owned));
    let c = repo.commit(&all, &[], "base");
    repo.tag("base", c);

    let mut owned: Vec<(String, String)> = Vec::new();
    for i in base + 1..=total {
        owned.extend(kill_migration(i));
    }
    let yaml = tables_yaml(total);
    let mut all = files(&owned);
    all.push(("metadata/tables.yaml", &yaml));
    let c = repo.commit(&all, &[], "tip");
    repo.tag("tip", c);
    repo
}

// ---------------------------------------------------------------------------------------------
// Snapshots

/// What a deployment writes, in a form two identical runs reproduce exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The catalog (every schema, the ledger's and Hasura's included).
    pub schema: Fingerprint,
    /// Section name → rows (columns joined by `|`, rows by newlines).
    pub data: BTreeMap<String, String>,
}

/// The state tables, without timestamps, serial ids and other values that differ between
/// two runs of the same deployment. A table that does not exist reads as `(missing)`.
const STATE_QUERIES: &[(&str, &str, &str)] = &[
    (
        "git_migrate.migrations",
        "git_migrate.migrations",
        "SELECT version, name, up_sha256, up_blob, down_sha256, md5(down_sql), down_blob, \
         folder_tree, applied_commit, dirty FROM git_migrate.migrations ORDER BY version",
    ),
    (
        "git_migrate.deployments",
        "git_migrate.deployments",
        "SELECT kind, target_ref, from_commit, to_commit, worktree_dirty, reverted, applied, \
         metadata_sha256, status, actor, tool_version, md5(plan::text) \
         FROM git_migrate.deployments ORDER BY id",
    ),
    (
        "git_migrate.metadata",
        "git_migrate.metadata",
        "SELECT id, sha256, tree_id, commit, md5(snapshot::text) FROM git_migrate.metadata",
    ),
    (
        "git_migrate.schema_version",
        "git_migrate.schema_version",
        "SELECT version FROM git_migrate.schema_version",
    ),
    (
        "hdb_catalog.schema_migrations",
        "hdb_catalog.schema_migrations",
        "SELECT version, dirty FROM hdb_catalog.schema_migrations ORDER BY version",
    ),
    (
        "hdb_catalog.hdb_version",
        "hdb_catalog.hdb_version",
        "SELECT hasura_uuid, version, cli_state::text FROM hdb_catalog.hdb_version",
    ),
    (
        "hdb_catalog.hdb_metadata",
        "hdb_catalog.hdb_metadata",
        "SELECT id, md5(metadata::text), resource_version FROM hdb_catalog.hdb_metadata ORDER BY id",
    ),
    (
        "hdb_catalog.hdb_schema_notifications",
        "hdb_catalog.hdb_schema_notifications",
        "SELECT id, notification::text, resource_version, instance_id \
         FROM hdb_catalog.hdb_schema_notifications ORDER BY id",
    ),
];

fn text_rows(msgs: &[SimpleQueryMessage]) -> Vec<Vec<String>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

impl Snapshot {
    /// Reads the snapshot of the database `c` is connected to (in one transaction, so it is
    /// one consistent view).
    pub fn take(c: &mut Client) -> Snapshot {
        let mut tx = c
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .unwrap();
        let schema = Fingerprint::take(&mut tx, &[]).expect("fingerprint");
        let mut data = BTreeMap::new();
        for (name, table, sql) in STATE_QUERIES {
            let exists = text_rows(
                &tx.simple_query(&format!("SELECT to_regclass('{table}') IS NOT NULL"))
                    .unwrap(),
            )[0][0]
                == "t";
            let text = if exists {
                text_rows(
                    &tx.simple_query(sql)
                        .unwrap_or_else(|e| panic!("{sql}: {e}")),
                )
                .into_iter()
                .map(|r| r.join("|"))
                .collect::<Vec<_>>()
                .join("\n")
            } else {
                "(missing)".to_string()
            };
            data.insert(name.to_string(), text);
        }
        // Every table of the public schema: row count and a checksum of its rows.
        let tables: Vec<String> = text_rows(
            &tx.simple_query(
                "SELECT quote_ident(relname) FROM pg_class \
                 WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1",
            )
            .unwrap(),
        )
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
        if !tables.is_empty() {
            let sql = tables
                .iter()
                .map(|t| {
                    format!(
                        "SELECT '{t}', count(*), md5(coalesce(string_agg(x::text, E'\\n' \
                         ORDER BY x::text), '')) FROM public.{t} x"
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            for r in text_rows(&tx.simple_query(&sql).unwrap()) {
                data.insert(format!("data public.{}", r[0]), r[1..].join("|"));
            }
        }
        tx.commit().unwrap();
        Snapshot { schema, data }
    }

    /// How `self` differs from `other`, one line per difference (at most `limit` lines).
    pub fn differences(&self, other: &Snapshot, limit: usize) -> Vec<String> {
        let mut out: Vec<String> = fingerprint::diff(&other.schema, &self.schema)
            .iter()
            .map(|d| format!("schema: {d}"))
            .collect();
        for (k, v) in &self.data {
            match other.data.get(k) {
                None => out.push(format!("{k}: only here")),
                Some(o) if o != v => out.push(format!("{k}: differs")),
                _ => {}
            }
        }
        for k in other.data.keys() {
            if !self.data.contains_key(k) {
                out.push(format!("{k}: missing here"));
            }
        }
        out.truncate(limit);
        out
    }
}

/// Counts in the trial database: how many up scripts ran once too often
/// (`public.apply_log` holds a version more than once), and how many rows Hasura's two state
/// stores lack or have in excess compared with the ledger (`hdb_catalog.schema_migrations`
/// versions, `hdb_version.cli_state.migrations.default` keys).
pub fn double_applies_and_lost_rows(c: &mut Client) -> (i64, i64) {
    let rows = text_rows(
        &c.simple_query(
            "SELECT (SELECT coalesce(sum(n - 1), 0) FROM \
                 (SELECT count(*) AS n FROM public.apply_log GROUP BY version) s), \
             (SELECT count(*) FROM (\
                 (SELECT version FROM git_migrate.migrations \
                  EXCEPT SELECT version FROM hdb_catalog.schema_migrations) \
                 UNION ALL (SELECT version FROM hdb_catalog.schema_migrations \
                  EXCEPT SELECT version FROM git_migrate.migrations) \
                 UNION ALL (SELECT version FROM git_migrate.migrations \
                  EXCEPT SELECT k::bigint FROM hdb_catalog.hdb_version, \
                    jsonb_object_keys(coalesce(cli_state #> '{migrations,default}', '{}')) k) \
                 UNION ALL (SELECT k::bigint FROM hdb_catalog.hdb_version, \
                    jsonb_object_keys(coalesce(cli_state #> '{migrations,default}', '{}')) k \
                  EXCEPT SELECT version FROM git_migrate.migrations)) d)",
        )
        .unwrap(),
    );
    (rows[0][0].parse().unwrap(), rows[0][1].parse().unwrap())
}

/// Waits until no session of `db` has application_name `git-migrate` (a killed client's
/// backend goes on until it next talks to the client, then rolls back and exits).
pub fn wait_for_tool_sessions_to_end(c: &mut Client, db: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let n = text_rows(
            &c.simple_query(&format!(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = '{db}' AND application_name = 'git-migrate'"
            ))
            .unwrap(),
        )[0][0]
            .clone();
        if n == "0" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} git-migrate session(s) of {db} still run after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Terminates the git-migrate sessions of `db`; returns how many there were.
pub fn terminate_tool_sessions(c: &mut Client, db: &str) -> usize {
    text_rows(
        &c.simple_query(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{db}' AND application_name = 'git-migrate'"
        ))
        .unwrap(),
    )
    .len()
}
