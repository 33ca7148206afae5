//! Through PgBouncer in transaction pooling mode (`pool_mode = transaction`, two server
//! connections per database, no prepared-statement support: PgBouncer 1.18): every command
//! works, alone and twice at once. In that mode each transaction (and each statement outside
//! one) may run on a different server connection, so git-migrate must keep no session state:
//! its advisory lock is transaction-scoped, its statements are unnamed (`simple_query`,
//! `query_typed`), and a deployment's reads and writes after the lock share one transaction.
//!
//! PgBouncer listens on 127.0.0.1 on a port the kernel picked as free (never a fixed one), in
//! front of the shared test cluster's unix socket, with `auth_type = trust`. It refuses to run
//! as root, so as root it runs as the user that owns the cluster (`postgres`).

use crate::common::git::{files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::reliability::spawn_gm;
use crate::common::{gm, Run};
use postgres::{Client, NoTls};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Server connections PgBouncer may open per database: small, so that the clients of a test
/// really share them.
const POOL_SIZE: usize = 2;

/// A PgBouncer process in front of the shared test cluster, stopped on drop.
struct Bouncer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

fn pgbouncer_binary() -> PathBuf {
    let fixed = PathBuf::from("/usr/sbin/pgbouncer");
    if fixed.exists() {
        return fixed;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("PgBouncer is not installed: apt-get install -y pgbouncer (.ci/run does)")
        })
}

/// Whether this PgBouncer knows `max_prepared_statements` (version 1.21 or later).
fn supports_prepared_statements(binary: &Path) -> bool {
    let out = Command::new(binary).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "PgBouncer 1.18.0"
    let version: Vec<u32> = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    version >= vec![1, 21]
}

/// The socket directory from the harness's `host=<dir> port=5432 user=postgres dbname=<db>`.
fn socket_dir(db: &TestDb) -> PathBuf {
    let rest = db.url.strip_prefix("host=").expect("host= first");
    let end = rest.find(" port=").expect("port= after host=");
    PathBuf::from(rest[..end].trim_matches('\''))
}

/// A port nobody listens on right now (bind port 0, read it, close it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Bouncer {
    /// Starts PgBouncer in front of the cluster `db` lives in; retries with another port if
    /// the one picked was taken in between.
    fn start(db: &TestDb) -> Bouncer {
        let binary = pgbouncer_binary();
        let socket = socket_dir(db);
        // SAFETY: geteuid has no preconditions.
        let owner = (unsafe { libc::geteuid() } == 0).then(|| {
            let m = std::fs::metadata(&socket).unwrap();
            (m.uid(), m.gid())
        });
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("gm-pgbouncer-")
                .tempdir()
                .unwrap();
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            }
            let port = free_port();
            let d = dir.path().display();
            let ini = format!(
                "[databases]\n\
                 * = host={socket} port=5432 user=postgres\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {d}/userlist.txt\n\
                 pool_mode = transaction\n\
                 default_pool_size = {POOL_SIZE}\n\
                 max_db_connections = {POOL_SIZE}\n\
                 min_pool_size = 0\n\
                 reserve_pool_size = 0\n\
                 max_client_conn = 200\n\
                 server_reset_query =\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 logfile = {d}/pgbouncer.log\n\
                 {prepared}",
                socket = socket.display(),
                prepared = if supports_prepared_statements(&binary) {
                    // 1.21 and later can track prepared statements (1.22+ by default): off,
                    // as in 1.18, so these tests keep checking that none are needed.
                    "max_prepared_statements = 0\n"
                } else {
                    // 1.18 rejects the unknown setting.
                    ""
                }
            );
            for (name, text) in [
                ("pgbouncer.ini", ini.as_str()),
                ("userlist.txt", "\"postgres\" \"\"\n"),
            ] {
                std::fs::write(dir.path().join(name), text).unwrap();
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(dir.path().join(name), Some(uid), Some(gid)).unwrap();
                }
            }
            let mut cmd = Command::new(&binary);
            cmd.arg(dir.path().join("pgbouncer.ini"))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some((uid, gid)) = owner {
                cmd.uid(uid).gid(gid);
            }
            // SAFETY: only async-signal-safe calls; runs after setuid/setgid.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    ) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn().expect("pgbouncer starts");
            let mut b = Bouncer { child, dir, port };
            if b.wait_ready(db) {
                return b;
            }
            last_log = b.log();
            // Drop stops it; try another port.
        }
        panic!("PgBouncer did not start; its log:\n{last_log}");
    }

    /// Polls until a query goes through; false when PgBouncer exited.
    fn wait_ready(&mut self, db: &TestDb) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) =
                Client::connect(&format!("{} connect_timeout=2", self.url(db)), NoTls)
            {
                if c.simple_query("SELECT 1").is_ok() {
                    return true;
                }
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "PgBouncer did not accept connections within 30 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// The connection string of `db` through PgBouncer.
    fn url(&self, db: &TestDb) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={}",
            self.port, db.name
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM: immediate shutdown. Then make sure.
            // SAFETY: plain syscall on our own unreaped child.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).unwrap().parse().unwrap()
}

/// The schema a database ends with, its ledger rows (without timestamps) and metadata hash.
/// (Not the data: the shop's seed migration takes ids from a sequence, which a revert does
/// not reset.)
fn state(db: &TestDb) -> (String, Vec<Vec<Option<String>>>, Option<String>) {
    (
        db.dump(true, Some("git_migrate")),
        db.rows("SELECT version, name, up_sha256, applied_commit FROM git_migrate.migrations ORDER BY version"),
        db.scalar("SELECT sha256 FROM git_migrate.metadata"),
    )
}

/// Runs `args` through the pooler and expects `code`.
#[track_caller]
fn through(p: &Path, url: &str, args: &[&str], code: i32) -> Run {
    let r = gm(p, url, args);
    r.expect_code(code);
    r
}

#[test]
fn every_command_works_through_transaction_pooling() {
    let mut repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("pooler_commands");
    let bouncer = Bouncer::start(&db);
    let url = bouncer.url(&db);

    through(&p, &url, &["status"], 0);
    through(&p, &url, &["plan", "v2.0.0"], 0).expect_contains("1700000000005");
    through(&p, &url, &["deploy", "v2.0.0", "--dry-run"], 0);
    through(&p, &url, &["deploy", "v1.1.0", "--yes"], 0).expect_contains("4 applied");
    through(&p, &url, &["deploy", "v2.0.0", "--yes", "--json"], 0);
    through(&p, &url, &["deploy", "v2.0.0", "--yes"], 0).expect_contains("nothing to do");
    through(&p, &url, &["status", "v2.0.0", "--exit-code"], 0);
    through(&p, &url, &["status", "--json"], 0);
    through(&p, &url, &["log"], 0).expect_contains("v1.1.0");
    through(&p, &url, &["log", "--json"], 0);
    through(&p, &url, &["rollback", "v1.0.0", "--yes"], 0).expect_contains("5 reverted");
    through(&p, &url, &["deploy", "v1.1.0", "--yes"], 0).expect_contains("2 applied");
    through(&p, &url, &["rollback", "--yes"], 0).expect_contains("2 reverted");
    assert_eq!(db.applied().len(), 2);
    through(&p, &url, &["apply", "--down", "all"], 0);
    assert!(db.applied().is_empty(), "{:?}", db.applied());
    // Hasura's apply: all, then down 2, then up 1.
    through(&p, &url, &["apply", "--up", "all"], 0);
    assert_eq!(db.applied().len(), 7);
    through(&p, &url, &["apply", "--down", "2"], 0);
    assert_eq!(db.applied().len(), 5);
    through(&p, &url, &["apply", "--up", "1"], 0);
    assert_eq!(db.applied().len(), 6);
    through(&p, &url, &["deploy", "v2.0.0", "--yes"], 0);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM git_migrate.deployments WHERE status <> 'ok'"
        ),
        0
    );

    // The same end state as a direct deployment of v2.0.0.
    let direct = TestDb::new("pooler_commands_direct");
    gm(&p, &direct.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    assert_eq!(state(&db), state(&direct));

    // A failing migration rolls back through the pooler as it does directly, and the error
    // still points at the failing statement (found by replaying in another transaction).
    let bad = migration(
        1700000000008,
        "broken",
        "create table public.broken (id int);\ninsert into public.broken values (1);\nselect * from no_such_table_here;\n",
        "drop table public.broken;",
    );
    let c = repo.commit(&files(&bad), &[], "a broken migration");
    repo.tag("broken", c);
    through(&p, &url, &["deploy", "broken", "--yes"], 4)
        .expect_contains("1700000000008_broken")
        .expect_contains("up.sql @")
        .expect_contains(":3:15: relation \"no_such_table_here\" does not exist");
    assert_eq!(state(&db), state(&direct));
    assert!(!db.has_table("public.broken"));
}

#[test]
fn commands_twice_at_once_through_transaction_pooling() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("pooler_twice");
    let bouncer = Bouncer::start(&db);
    let url = bouncer.url(&db);
    let pair = |args: &[&str]| -> (Run, Run) {
        let a = spawn_gm(&p, &url, args);
        let b = spawn_gm(&p, &url, args);
        (
            a.finish(Duration::from_secs(60)),
            b.finish(Duration::from_secs(60)),
        )
    };
    let both_ok = |(a, b): &(Run, Run)| {
        a.expect_code(0);
        b.expect_code(0);
    };
    // Exactly one of two runs did `needle`, the other found nothing to do.
    let one_did = |(a, b): &(Run, Run), needle: &str| {
        a.expect_code(0);
        b.expect_code(0);
        assert!(
            a.stdout.contains(needle) != b.stdout.contains(needle),
            "exactly one run must report {needle:?}:\n{}\n=====\n{}",
            a.all(),
            b.all()
        );
        let loser = if a.stdout.contains(needle) { b } else { a };
        assert!(
            loser.all().contains("nothing to do")
                || loser
                    .all()
                    .contains("another deployment reached the target while we waited"),
            "{}",
            loser.all()
        );
    };

    both_ok(&pair(&["status"]));
    both_ok(&pair(&["plan", "v2.0.0"]));
    one_did(&pair(&["deploy", "v2.0.0", "--yes"]), "7 applied");
    assert_eq!(db.applied().len(), 7);
    both_ok(&pair(&["log"]));
    both_ok(&pair(&["status", "v2.0.0", "--exit-code"]));
    one_did(&pair(&["rollback", "v1.0.0", "--yes"]), "5 reverted");
    assert_eq!(db.applied().len(), 2);
    // Two `apply --up all` at once: the versions are applied once (the loser either waited
    // and found nothing pending, or re-planned after the winner).
    let (a, b) = pair(&["apply", "--up", "all"]);
    a.expect_code(0);
    b.expect_code(0);
    assert_eq!(db.applied().len(), 7);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM git_migrate.deployments WHERE kind = 'apply' AND applied <> '{}'"
        ),
        1,
        "{}\n=====\n{}",
        a.all(),
        b.all()
    );
    // Every deployment row is whole: 1 deploy, 1 rollback, 1 apply.
    assert_eq!(
        db.rows("SELECT kind, status FROM git_migrate.deployments ORDER BY id"),
        [["deploy", "ok"], ["rollback", "ok"], ["apply", "ok"]]
            .iter()
            .map(|r| r.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_pool_is_really_shared_and_the_lock_waiter_is_named() {
    // A test connection through PgBouncer holds the deploy lock in a transaction: it pins one
    // of the two server connections. A deploy through PgBouncer waits for the lock on the
    // other one and gives up after --lock-timeout, naming the holder (the server backend).
    // Meanwhile this database never has more than two server connections.
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("pooler_lock");
    let bouncer = Bouncer::start(&db);
    let url = bouncer.url(&db);
    gm(&p, &url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);

    let mut holder =
        Client::connect(&format!("{url} application_name=pool-holder"), NoTls).unwrap();
    let key = git_migrate_core::ledger::Ledger::default().lock_key();
    let mut tx = holder.transaction().unwrap();
    let msgs = tx
        .simple_query(&format!(
            "SELECT pg_advisory_xact_lock({key}); SELECT pg_backend_pid()"
        ))
        .unwrap();
    let pid: String = msgs
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .next_back()
        .unwrap();
    let r = gm(
        &p,
        &url,
        &["deploy", "v2.0.0", "--yes", "--lock-timeout", "1"],
    );
    let server_connections = count(
        &db,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            db.name
        ),
    );
    tx.commit().unwrap();
    r.expect_code(5)
        .expect_contains(&format!("lock held by pid {pid} (pool-holder"));
    assert!(
        server_connections <= POOL_SIZE as i64,
        "{server_connections} server connections through a pool of {POOL_SIZE}"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM git_migrate.deployments"),
        1
    );
    gm(
        &p,
        &url,
        &["deploy", "v2.0.0", "--yes", "--lock-timeout", "5"],
    )
    .expect_code(0)
    .expect_contains("5 applied");
}

#[test]
fn the_pooler_does_break_named_prepared_statements() {
    // The control experiment: what these tests would catch. A statement prepared (by name) on
    // one server connection, executed while another client holds that connection in a
    // transaction, runs on the other server connection, which never saw it.
    let db = TestDb::new("pooler_control");
    let bouncer = Bouncer::start(&db);
    let url = bouncer.url(&db);
    let mut a = Client::connect(&url, NoTls).unwrap();
    let mut b = Client::connect(&url, NoTls).unwrap();
    // The one idle server connection (opened by start()) gets the PREPARE...
    let statement = a.prepare("SELECT $1::int").unwrap();
    // ...then b's transaction pins that connection...
    b.batch_execute("BEGIN").unwrap();
    // ...so executing runs on a new one.
    let err = a
        .query(&statement, &[&1i32])
        .expect_err("a named statement cannot survive transaction pooling");
    b.batch_execute("COMMIT").unwrap();
    assert!(
        format!("{err:?}").contains("does not exist"),
        "unexpected error: {err:?}"
    );
    // What git-migrate uses instead works on any server connection.
    b.batch_execute("BEGIN").unwrap();
    let rows = a
        .query_typed("SELECT $1::int", &[(&1i32, postgres::types::Type::INT4)])
        .unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    b.batch_execute("COMMIT").unwrap();
}

/// The rule the pooler tests depend on, checked on the source: git-migrate never uses a named
/// prepared statement (`Client::query`/`execute`/`query_one`/`query_opt`/`prepare` with the
/// extended protocol), which transaction pooling breaks when the statement is prepared on one
/// server connection and executed on another.
#[test]
fn no_named_prepared_statements_in_the_sources() {
    let forbidden = [
        ".query(",
        ".query_one(",
        ".query_opt(",
        ".query_raw(",
        ".execute(",
        ".prepare(",
        ".prepare_typed(",
    ];
    let mut offenders = Vec::new();
    let roots = [
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/crates")),
    ];
    for (path, text) in crate::common::source::rust_files(&roots) {
        // Unit tests talk to scratch servers directly; comments and strings are not calls.
        let code = crate::common::source::without_tests(&crate::common::source::code_only(&text));
        for (n, line) in code.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "named prepared statements break behind a transaction pooler; use simple_query, \
         batch_execute or query_typed:\n{}",
        offenders.join("\n")
    );
}
