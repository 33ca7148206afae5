//! Ctrl-C during a deployment: SIGINT cancels the running statement, the transaction rolls
//! back, the process says so and exits 130, and the database is exactly as before; a second
//! Ctrl-C exits at once (the server rolls back when the connection drops); inside a
//! no-transaction migration the migration stays dirty and the message names the repair.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, Run};
use git_migrate_core::ledger::Ledger;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A `git-migrate` process in the background; killed if the test ends before it does.
pub(crate) struct Bg {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Starts `git-migrate args` in `dir` against `url` without waiting for it.
pub(crate) fn spawn_gm(dir: &Path, url: &str, args: &[&str]) -> Bg {
    let mut cmd = crate::common::gm_command(dir, url, args, &[]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the git-migrate binary starts");
    Bg {
        stdout: Some(reader(child.stdout.take().unwrap())),
        stderr: Some(reader(child.stderr.take().unwrap())),
        child,
    }
}

impl Bg {
    /// Sends `signal` to the process.
    pub(crate) fn signal(&self, signal: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Panics if the process has ended (with its output).
    pub(crate) fn assert_running(&mut self) {
        if let Some(s) = self.child.try_wait().unwrap() {
            let out = self.stdout.take().unwrap().join().unwrap();
            let err = self.stderr.take().unwrap().join().unwrap();
            panic!("git-migrate ended ({s}) too early:\n{out}\n--- stderr ---\n{err}");
        }
    }

    /// Waits (at most `limit`) for the process to end and returns its output.
    pub(crate) fn finish(mut self, limit: Duration) -> Run {
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
                panic!("git-migrate did not finish within {limit:?}\n{out}\n--- stderr ---\n{err}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until another session of `db` runs a statement containing `needle` (or waits for a
/// lock, with `waiting`), while `bg` keeps running.
pub(crate) fn wait_for_activity(db: &TestDb, bg: &mut Bg, needle: &str, waiting: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%{needle}%'{}",
        if waiting {
            " AND wait_event_type = 'Lock'"
        } else {
            ""
        }
    );
    loop {
        if db.scalar(&sql).as_deref() != Some("0") {
            return;
        }
        bg.assert_running();
        assert!(
            Instant::now() < deadline,
            "no session ran {needle:?} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The state a deployment may change: the schema and data outside the ledger, the ledger's
/// rows, and its successful deployments.
pub(crate) fn snapshot(db: &TestDb) -> (String, Vec<Vec<Option<String>>>, String) {
    (
        db.dump(false, Some("git_migrate")),
        db.rows(
            "SELECT version, name, up_sha256, dirty, deployment_id FROM git_migrate.migrations ORDER BY version",
        ),
        db.scalar(
            "SELECT count(*) FROM git_migrate.deployments WHERE status IN ('ok', 'partial')",
        )
        .unwrap(),
    )
}

/// v1: a control table saying how long the slow migration sleeps (30 s, set to 0 to let the
/// next deploy through); v2: a slow migration (`slow_up`), then another one.
pub(crate) fn slow_repo(slow_up: &str) -> TestRepo {
    let mut repo = TestRepo::new();
    let mut f = base_project();
    let m1 = migration(
        1,
        "ctl",
        "create table ctl (sleep float8 not null);\ninsert into ctl values (30);",
        "drop table ctl;",
    );
    f.extend(files(&m1));
    let c1 = repo.commit(&f, &[], "control table");
    repo.tag("v1", c1);
    let mut m = migration(2, "slow", slow_up, "drop table if exists slow;");
    m.extend(migration(
        3,
        "after",
        "create table after3 (id int);",
        "drop table after3;",
    ));
    let c2 = repo.commit(&files(&m), &[], "slow migration");
    repo.tag("v2", c2);
    repo
}

pub(crate) const SLOW_TX: &str =
    "create table slow (id int);\ninsert into slow values (1);\nselect pg_sleep((select sleep from ctl));\n";

#[test]
fn sigint_during_a_transactional_migration_rolls_back() {
    let repo = slow_repo(SLOW_TX);
    let db = TestDb::new("sigint_tx");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = snapshot(&db);

    let mut bg = spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    wait_for_activity(&db, &mut bg, "pg_sleep", false);
    let started = Instant::now();
    bg.signal(libc::SIGINT);
    let r = bg.finish(Duration::from_secs(10));
    r.expect_code(130)
        .expect_contains("interrupted: rolled back, nothing changed");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the running statement was not cancelled"
    );
    assert_eq!(snapshot(&db), before);
    assert!(!db.has_table("public.slow"));
    // Nothing is left behind: the next deploy runs normally.
    db.rows("UPDATE ctl SET sleep = 0");
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(db.applied(), vec![1, 2, 3]);
}

#[test]
fn second_sigint_exits_at_once_and_changes_nothing() {
    let repo = slow_repo(SLOW_TX);
    let db = TestDb::new("sigint_twice");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = snapshot(&db);

    let mut bg = spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    wait_for_activity(&db, &mut bg, "pg_sleep", false);
    bg.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(2));
    bg.signal(libc::SIGINT);
    let r = bg.finish(Duration::from_secs(10));
    r.expect_code(130).expect_contains("interrupted");
    // The server rolls back a transaction whose connection dropped; wait until that session
    // is gone before looking.
    let deadline = Instant::now() + Duration::from_secs(10);
    while db
        .scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%pg_sleep%'")
        .as_deref()
        != Some("0")
    {
        assert!(Instant::now() < deadline, "the interrupted session never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(snapshot(&db), before);
    db.rows("UPDATE ctl SET sleep = 0");
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 2, 3]);
}

#[test]
fn sigint_while_waiting_for_the_lock_changes_nothing() {
    let repo = slow_repo(SLOW_TX);
    let db = TestDb::new("sigint_lock");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    db.rows("UPDATE ctl SET sleep = 0");
    let before = snapshot(&db);
    // Another session holds the deploy lock.
    let mut holder = db.client();
    holder
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({})",
            Ledger::default().lock_key()
        ))
        .unwrap();
    let mut bg = spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    wait_for_activity(&db, &mut bg, "pg_advisory_xact_lock", true);
    bg.signal(libc::SIGINT);
    let r = bg.finish(Duration::from_secs(10));
    r.expect_code(130)
        .expect_contains("interrupted: rolled back, nothing changed");
    assert_eq!(snapshot(&db), before);
    drop(holder);
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
}

#[test]
fn sigint_inside_a_no_transaction_migration_leaves_it_dirty() {
    let repo =
        slow_repo("-- git-migrate:no-transaction\nselect pg_sleep((select sleep from ctl));\n");
    let db = TestDb::new("sigint_notx");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let mut bg = spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    wait_for_activity(&db, &mut bg, "pg_sleep", false);
    bg.signal(libc::SIGINT);
    let r = bg.finish(Duration::from_secs(10));
    r.expect_code(130)
        .expect_contains("interrupted")
        .expect_contains("up migration 2_slow runs outside a transaction and did not finish")
        .expect_contains("git migrate repair --done 2")
        .expect_contains("git migrate repair --undone 2");
    assert_eq!(
        db.rows("SELECT version, dirty::text, dirty_direction FROM git_migrate.migrations ORDER BY version"),
        vec![
            vec![Some("1".into()), Some("false".into()), None],
            vec![Some("2".into()), Some("true".into()), Some("up".into())],
        ]
    );
    assert_eq!(
        db.scalar("SELECT status FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("partial")
    );
    // The statement did not finish: undo (nothing to undo here) and run it again.
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(3)
        .expect_contains("2_slow is marked dirty");
    gm(&p, &db.url, &["repair", "--undone", "2", "--yes"]).expect_code(0);
    db.rows("UPDATE ctl SET sleep = 0");
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
}
