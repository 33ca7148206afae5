//! Lock safety at deploy time (issue 16): a migration's statements run with a short
//! `lock_timeout`; when one times out waiting for a table lock another session holds, the
//! deployment (rolled back) runs again after a pause, and after the last retry it exits 4 naming
//! the blocking session, with the database exactly as before. The wait for the deploy lock
//! itself is never cut short by it; `off` turns it off; a deployment with no-transaction
//! migrations is retried only before its first commit.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::reliability::spawn_gm;
use crate::common::{gm, Run};
use git_migrate_core::ledger::Ledger;
use postgres::Client;
use std::time::{Duration, Instant};

/// The application_name of the blocking session.
const BLOCKER_APP: &str = "lock-holder-test";

/// `deploy REV --yes` with a 1 s statement lock timeout and `retries` lock retries, then
/// `extra`.
fn deploy_retrying<'a>(rev: &'a str, retries: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "deploy",
        rev,
        "--yes",
        "--statement-lock-timeout",
        "1",
        "--lock-retries",
        retries,
    ];
    args.extend_from_slice(extra);
    args
}

/// A repository with table `t` at v1 (deployed) and `alter table t add column b` at v2;
/// `extra` migrations are added to v2.
fn world(name: &str, extra: &[(String, String)]) -> (TestRepo, TestDb, String) {
    let mut repo = TestRepo::new();
    let m1 = migration(1, "t", "create table t (id int);", "drop table t;");
    let c1 = repo.commit(&files(&base_project_with(&m1)), &[], "t");
    let db = TestDb::new(name);
    gm(&repo.path(), &db.url, &["deploy", &c1.to_string(), "--yes"]).expect_code(0);
    let mut m2 = migration(
        2,
        "alter_t",
        "alter table t add column b int;",
        "alter table t drop column b;",
    );
    m2.extend(extra.iter().cloned());
    let c2 = repo.commit(&files(&m2), &[], "alter t");
    (repo, db, c2.to_string())
}

/// A session that holds `ACCESS EXCLUSIVE` on `table` in an open transaction.
struct Blocker {
    client: Client,
    pid: i32,
}

fn block(db: &TestDb, table: &str) -> Blocker {
    let mut client = db.client();
    let pid = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    client
        .batch_execute(&format!(
            "SET application_name = '{BLOCKER_APP}'; BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .unwrap();
    Blocker { client, pid }
}

impl Blocker {
    fn release(mut self) {
        self.client.batch_execute("ROLLBACK").unwrap();
    }
}

/// Whether a git-migrate session of this database waits for a relation lock now.
fn deploy_waits_for_a_table(c: &mut Client) -> bool {
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'git-migrate' AND wait_event_type = 'Lock' \
         AND wait_event = 'relation'",
        &[],
    )
    .unwrap()
    .get::<_, i64>(0)
        > 0
}

/// Polls (at most `limit`) until `cond` holds.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn column_b_exists(db: &TestDb) -> bool {
    db.scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'b'",
    )
    .as_deref()
        == Some("1")
}

#[test]
fn a_blocked_migration_is_retried_and_succeeds_once_the_lock_is_released() {
    let (repo, db, c2) = world("lock_retry_succeeds", &[]);
    let blocker = block(&db, "t");
    let blocker_pid = blocker.pid;
    let mut bg = spawn_gm(
        &repo.path(),
        &db.url,
        &deploy_retrying(&c2, "3", &["--json"]),
    );
    // The first attempt waits for `t`, and stops waiting while the lock is still held: its
    // lock timeout fired. Only then is the lock released.
    let mut watch = db.client();
    wait_until("the deploy waits for t", Duration::from_secs(20), || {
        assert!(!bg.has_exited(), "the deploy ended before waiting for t");
        deploy_waits_for_a_table(&mut watch)
    });
    wait_until(
        "the first attempt timed out",
        Duration::from_secs(20),
        || !deploy_waits_for_a_table(&mut watch),
    );
    assert_eq!(db.applied(), vec![1], "nothing may be applied yet");
    blocker.release();
    let r = bg.finish(Duration::from_secs(60));
    r.expect_code(0)
        .expect_contains("up migration 2_alter_t waited longer than the lock timeout (1000ms)")
        .expect_contains("retry 1 of 3 in 1s")
        .expect_contains(&format!("blocked by pid {blocker_pid} ({BLOCKER_APP}"));
    // The plan document, then the result.
    let doc: serde_json::Value = serde_json::Deserializer::from_str(&r.stdout)
        .into_iter()
        .last()
        .expect("deploy --json output")
        .unwrap();
    assert!(doc["lock_retries"].as_u64().unwrap() >= 1, "{doc}");
    assert_eq!(doc["applied"], serde_json::json!([2]));
    assert_eq!(db.applied(), vec![1, 2]);
    assert!(column_b_exists(&db));
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.deployments WHERE status = 'ok'")
            .as_deref(),
        Some("2"),
        "one deployment row for the deploy, however many attempts"
    );
}

#[test]
fn a_lock_never_released_exits_4_naming_the_blocker_and_changes_nothing() {
    let (repo, db, c2) = world("lock_retry_gives_up", &[]);
    let before = db.dump_ignoring_failed_attempts();
    let blocker = block(&db, "t");
    let started = Instant::now();
    let r = gm(&repo.path(), &db.url, &deploy_retrying(&c2, "2", &[]));
    let took = started.elapsed();
    let pid = blocker.pid;
    blocker.release();
    r.expect_code(4)
        .expect_contains(
            "up migration 2_alter_t failed; the deployment was rolled back and nothing changed",
        )
        .expect_contains("55P03")
        .expect_contains("retry 1 of 2 in 1s")
        .expect_contains("retry 2 of 2 in 2s")
        .expect_contains("again after 2 retries")
        .expect_contains(&format!("blocked by pid {pid} ({BLOCKER_APP}, user "))
        .expect_contains("in its transaction for ")
        .expect_contains("AccessExclusiveLock on t")
        .expect_contains("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .expect_contains(&format!("SELECT pg_terminate_backend({pid})"));
    assert!(
        !r.stderr.contains("retry 3"),
        "two retries only:\n{}",
        r.all()
    );
    // Three attempts of 1 s and pauses of 1 s and 2 s.
    assert!(took >= Duration::from_secs(6), "took {took:?}");
    assert_eq!(db.applied(), vec![1]);
    assert!(!column_b_exists(&db));
    assert_eq!(before, db.dump_ignoring_failed_attempts());
    // The failed deploy is recorded once, not once per attempt.
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.deployments WHERE status = 'failed'")
            .as_deref(),
        Some("1")
    );
}

#[test]
fn the_config_sets_the_default_and_off_turns_it_off() {
    let (repo, db, c2) = world("lock_retry_config", &[]);
    std::fs::write(
        repo.path().join("git-migrate.yaml"),
        "policy:\n  statement_lock_timeout: 500ms\n  lock_retries: 0\n",
    )
    .unwrap();
    let before = db.dump_ignoring_failed_attempts();
    let blocker = block(&db, "t");
    // From git-migrate.yaml: 500 ms, no retry.
    let started = Instant::now();
    let r = gm(&repo.path(), &db.url, &["deploy", &c2, "--yes"]);
    let took = started.elapsed();
    r.expect_code(4)
        .expect_contains("55P03")
        .expect_contains("(not retried)")
        .expect_contains(&format!("blocked by pid {} ({BLOCKER_APP}", blocker.pid));
    assert!(!r.stderr.contains("retry 1"), "{}", r.all());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(!column_b_exists(&db));
    // `off` on the command line: the statement waits as long as it takes.
    let mut bg = spawn_gm(
        &repo.path(),
        &db.url,
        &["deploy", &c2, "--yes", "--statement-lock-timeout", "off"],
    );
    let mut watch = db.client();
    wait_until("the deploy waits for t", Duration::from_secs(20), || {
        assert!(!bg.has_exited(), "the deploy ended before waiting for t");
        deploy_waits_for_a_table(&mut watch)
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        deploy_waits_for_a_table(&mut watch),
        "still waiting past the configured 500 ms"
    );
    blocker.release();
    let r = bg.finish(Duration::from_secs(60));
    r.expect_code(0);
    assert!(!r.stderr.contains("retry"), "{}", r.all());
    assert!(column_b_exists(&db));
    assert_ne!(before, db.dump_ignoring_failed_attempts());
}

#[test]
fn the_deploy_lock_wait_is_not_cut_short_by_the_statement_lock_timeout() {
    let (repo, db, c2) = world("lock_retry_advisory", &[]);
    // Another deployment holds the deploy lock for 2.5 s.
    let mut holder = db.client();
    let key = Ledger::default().lock_key();
    holder
        .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({key})"))
        .unwrap();
    let bg = spawn_gm(
        &repo.path(),
        &db.url,
        &deploy_retrying(&c2, "0", &["--lock-timeout", "30"]),
    );
    std::thread::sleep(Duration::from_millis(2500));
    holder.batch_execute("COMMIT").unwrap();
    let r = bg.finish(Duration::from_secs(60));
    r.expect_code(0)
        .expect_contains("waiting for another deployment");
    assert!(column_b_exists(&db));
}

/// The timeout hits the first segment (before anything committed): retried as a whole. The
/// no-transaction migration after it then runs once.
#[test]
fn a_segmented_deployment_is_retried_before_its_first_commit() {
    let m3 = migration(
        3,
        "idx",
        "-- git-migrate:no-transaction\ncreate index concurrently t_id on t (id);",
        "-- git-migrate:no-transaction\ndrop index concurrently t_id;",
    );
    let (repo, db, c2) = world("lock_retry_segmented", &m3);
    let blocker = block(&db, "t");
    let bg = spawn_gm(&repo.path(), &db.url, &deploy_retrying(&c2, "3", &[]));
    let mut watch = db.client();
    wait_until("the deploy waits for t", Duration::from_secs(20), || {
        deploy_waits_for_a_table(&mut watch)
    });
    wait_until(
        "the first attempt timed out",
        Duration::from_secs(20),
        || !deploy_waits_for_a_table(&mut watch),
    );
    blocker.release();
    let r: Run = bg.finish(Duration::from_secs(60));
    r.expect_code(0).expect_contains("retry 1 of 3");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.deployments WHERE status = 'partial'")
            .as_deref(),
        Some("0")
    );
}

/// The timeout hits a segment after a no-transaction migration committed: not retried (the
/// committed part must not run again); exit 4, the deployment partial, the blocker named.
#[test]
fn a_segmented_deployment_is_not_retried_after_a_commit() {
    let mut repo = TestRepo::new();
    let m1 = migration(
        1,
        "t",
        "create table t (id int);\ncreate table u (id int);",
        "drop table t;\ndrop table u;",
    );
    let c1 = repo.commit(&files(&base_project_with(&m1)), &[], "t and u");
    let db = TestDb::new("lock_retry_after_commit");
    gm(&repo.path(), &db.url, &["deploy", &c1.to_string(), "--yes"]).expect_code(0);
    let mut m = migration(
        2,
        "idx",
        "-- git-migrate:no-transaction\ncreate index concurrently u_id on u (id);",
        "-- git-migrate:no-transaction\ndrop index concurrently u_id;",
    );
    m.extend(migration(
        3,
        "alter_t",
        "alter table t add column b int;",
        "alter table t drop column b;",
    ));
    let c2 = repo.commit(&files(&m), &[], "index u, alter t").to_string();
    let blocker = block(&db, "t");
    let r = gm(&repo.path(), &db.url, &deploy_retrying(&c2, "3", &[]));
    let pid = blocker.pid;
    blocker.release();
    r.expect_code(4)
        .expect_contains("3_alter_t")
        .expect_contains("(not retried)")
        .expect_contains("partial")
        .expect_contains(&format!("blocked by pid {pid} ({BLOCKER_APP}"));
    assert!(!r.stderr.contains("retry 1"), "{}", r.all());
    // The committed no-transaction migration stays applied; the alter did not happen.
    assert_eq!(db.applied(), vec![1, 2]);
    assert!(!column_b_exists(&db));
}
