//! Concurrency and secrets: deployments racing each other for the advisory lock (one applies,
//! the others wait and find nothing to do; up to eight at once, with Hasura's state tables,
//! counting every up that ran), a lock that is not released in time (exit 5, naming the
//! holder of *this* database's lock: pid, application_name, user, since when), a deploy and a
//! rollback planned against the same state (the second one stops because the database moved)
//! or simply started together (the database ends at one of the two targets), and passwords
//! that must never reach stdout or stderr.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::reliability::{spawn_gm, Bg};
use crate::common::{gm, gm_env, Run};
use git_migrate_core::ledger::Ledger;
use postgres::Client;
use std::path::Path;
use std::time::{Duration, Instant};

/// A test connection holding git-migrate's deploy lock in an open transaction.
struct HeldLock {
    client: Client,
    pid: i32,
    /// When its transaction started, as git-migrate prints it.
    since: String,
}

/// `pg_stat_activity.xact_start` the way git-migrate renders a lock holder's "since".
const SINCE: &str = "to_char(xact_start, 'YYYY-MM-DD HH24:MI:SS TZ')";

/// Takes the deploy lock the way git-migrate does (same key, transaction-scoped), from a
/// connection whose application_name is `holder-test`.
fn hold_lock(db: &TestDb) -> HeldLock {
    let mut client = db.client();
    let key = Ledger::default().lock_key();
    client
        .batch_execute(&format!(
            "SET application_name = 'holder-test'; BEGIN; SELECT pg_advisory_xact_lock({key})"
        ))
        .unwrap();
    let row = client
        .query_one(
            &format!("SELECT pid, {SINCE} FROM pg_stat_activity WHERE pid = pg_backend_pid()"),
            &[],
        )
        .unwrap();
    HeldLock {
        pid: row.get(0),
        since: row.get(1),
        client,
    }
}

impl HeldLock {
    /// Ends the transaction, which releases the lock.
    fn release(mut self) {
        self.client.batch_execute("COMMIT").unwrap();
    }
}

/// How many git-migrate backends of this database are waiting for an advisory lock right now.
fn advisory_waiters(c: &mut Client) -> i64 {
    // One statement per call (autocommit), so pg_stat_activity is read fresh every time.
    c.query_one(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND NOT l.granted \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND a.application_name = 'git-migrate' \
           AND a.wait_event_type = 'Lock' AND a.wait_event = 'advisory'",
        &[],
    )
    .unwrap()
    .get(0)
}

/// Polls until `n` git-migrate processes wait for the deploy lock (panics after 15 s).
fn wait_for_waiters(db: &TestDb, n: i64, procs: &mut [&mut Bg]) {
    let mut c = db.client();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if advisory_waiters(&mut c) >= n {
            return;
        }
        for p in procs.iter_mut() {
            if let Some(s) = p.child.try_wait().unwrap() {
                panic!(
                    "`git-migrate {}` ended ({s}) instead of waiting for the lock",
                    p.what
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "{n} git-migrate process(es) never waited for the deploy lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SQL that keeps the migration's transaction (and so the deploy lock) open until `n` other
/// sessions of this database wait for an advisory lock, or 10 s passed. Makes the race
/// deterministic: the losers are certainly waiting when the winner commits.
fn wait_for_losers_sql(n: i64) -> String {
    format!(
        "DO $$\nBEGIN\n  FOR i IN 1..500 LOOP\n    EXIT WHEN (SELECT count(*) FROM pg_locks\n      \
         WHERE locktype = 'advisory' AND NOT granted\n        \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) >= {n};\n    \
         PERFORM pg_sleep(0.02);\n  END LOOP;\nEND\n$$;\n"
    )
}

fn commit_id(repo: &TestRepo, rev: &str) -> String {
    repo.repo.revparse_single(rev).unwrap().id().to_string()
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.scalar(sql).unwrap().parse().unwrap()
}

/// Whether the run is a loser that found the work done by someone else.
fn found_nothing_to_do(r: &Run) -> bool {
    let all = r.all();
    all.contains("another deployment reached the target while we waited")
        || all.contains("nothing to do")
}

#[test]
fn two_deploys_at_once_apply_once() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "runs", "create table runs (id int);", "drop table runs;");
    base.extend(files(&m1));
    let c1 = repo.commit(&base, &[], "runs table");
    repo.tag("v1", c1);
    // Slow: it holds the deploy lock until the other process waits for it (at most 10 s), and
    // at least 1.5 s as asked for, then records that it ran.
    let slow_up = format!(
        "select pg_sleep(1.5);\n{}insert into runs values (1);\ncreate table slow (id int);\n",
        wait_for_losers_sql(1)
    );
    let m2 = migration(2, "slow", &slow_up, "drop table slow;\ndelete from runs;");
    let c2 = repo.commit(&files(&m2), &[], "slow migration");
    repo.tag("v2", c2);
    let db = TestDb::new("two_deploys");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);

    let a = spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    let b = spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    let ra = a.finish(Duration::from_secs(30));
    let rb = b.finish(Duration::from_secs(30));
    ra.expect_code(0);
    rb.expect_code(0);

    let applied_it = |r: &Run| r.stdout.contains("1 applied");
    assert!(
        applied_it(&ra) != applied_it(&rb),
        "exactly one process must report the apply:\n{}\n=====\n{}",
        ra.all(),
        rb.all()
    );
    let (winner, loser) = if applied_it(&ra) { (ra, rb) } else { (rb, ra) };
    winner.expect_contains("Deployment #");
    // The loser waited for the lock, then saw the target reached.
    loser
        .expect_contains("waiting for another deployment to finish")
        .expect_contains("another deployment reached the target while we waited");
    assert!(found_nothing_to_do(&loser), "{}", loser.all());
    assert!(!loser.all().contains("Deployment #"), "{}", loser.all());

    // The migration ran exactly once, and exactly one deployment recorded it.
    assert!(db.has_table("public.slow"));
    assert_eq!(count(&db, "SELECT count(*) FROM runs"), 1);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM git_migrate.deployments WHERE applied <> '{}' AND 2 = ANY(applied)"
        ),
        1
    );
    // v1's deployment and v2's: the loser recorded nothing.
    assert_eq!(
        count(&db, "SELECT count(*) FROM git_migrate.deployments"),
        2
    );
    assert_eq!(db.applied(), vec![1, 2]);
    assert_eq!(
        db.scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1"),
        Some(commit_id(&repo, "v2"))
    );
}

#[test]
fn four_deploys_of_the_same_target_into_a_fresh_database() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(
        1,
        "runs",
        "create table runs (version int not null);\ninsert into runs values (1);",
        "drop table runs;",
    );
    // Keeps the lock until the three other processes wait for it.
    let m2_up = format!("{}insert into runs values (2);\n", wait_for_losers_sql(3));
    let m2 = migration(2, "slow", &m2_up, "delete from runs where version = 2;");
    let m3 = migration(
        3,
        "done",
        "insert into runs values (3);\ncreate table done (id int);",
        "drop table done;",
    );
    base.extend(files(&m1));
    base.extend(files(&m2));
    base.extend(files(&m3));
    repo.commit(&base, &[], "three migrations");
    let db = TestDb::new("four_deploys");
    let p = repo.path();

    let procs: Vec<Bg> = (0..4)
        .map(|_| spawn_gm(&p, &db.url, &["deploy", "--yes"]))
        .collect();
    let runs: Vec<Run> = procs
        .into_iter()
        .map(|b| b.finish(Duration::from_secs(30)))
        .collect();
    for r in &runs {
        r.expect_code(0);
    }
    let winners: Vec<&Run> = runs
        .iter()
        .filter(|r| r.stdout.contains("3 applied"))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one process applies; outputs:\n{}",
        runs.iter()
            .map(Run::all)
            .collect::<Vec<_>>()
            .join("\n=====\n")
    );
    for r in runs.iter().filter(|r| !r.stdout.contains("3 applied")) {
        assert!(
            found_nothing_to_do(r),
            "a loser must report nothing to do:\n{}",
            r.all()
        );
        r.expect_contains("waiting for another deployment to finish");
        assert!(!r.all().contains("Deployment #"), "{}", r.all());
    }
    // Every migration ran once.
    assert_eq!(
        db.rows("SELECT version, count(*) FROM runs GROUP BY version ORDER BY version"),
        vec![
            vec![Some("1".to_string()), Some("1".to_string())],
            vec![Some("2".to_string()), Some("1".to_string())],
            vec![Some("3".to_string()), Some("1".to_string())],
        ]
    );
    assert!(db.has_table("public.done"));
    assert_eq!(db.applied(), vec![1, 2, 3]);
    assert_eq!(
        count(&db, "SELECT count(*) FROM git_migrate.deployments"),
        1
    );
    assert_eq!(
        db.scalar("SELECT applied::text FROM git_migrate.deployments"),
        Some("{1,2,3}".to_string())
    );
}

#[test]
fn lock_timeout_names_the_holder_and_changes_nothing() {
    let repo = TestRepo::shop();
    let db = TestDb::new("lock_timeout");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    let before = db.dump(false, None);

    let held = hold_lock(&db);
    let (pid, since) = (held.pid, held.since.clone());
    let started = Instant::now();
    let r = gm(
        &p,
        &db.url,
        &["deploy", "v2.0.0", "--yes", "--lock-timeout", "1"],
    );
    let took = started.elapsed();
    held.release();
    r.expect_code(5)
        .expect_contains("waiting for another deployment to finish")
        .expect_contains("another deployment holds the lock on this database; gave up after 1s")
        .expect_contains("--lock-timeout");
    // It did wait (measured, not bounded above: the machine may be slow).
    assert!(
        took >= Duration::from_millis(900),
        "gave up after {took:?}, before the 1 s lock timeout"
    );

    assert_eq!(db.dump(false, None), before, "the database changed");
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);
    assert_eq!(
        count(&db, "SELECT count(*) FROM git_migrate.deployments"),
        1
    );
    // Once the lock is free, the same command goes through.
    gm(
        &p,
        &db.url,
        &["deploy", "v2.0.0", "--yes", "--lock-timeout", "1"],
    )
    .expect_code(0)
    .expect_contains("5 applied");

    // Both the waiting message and the error name the holder: pid, application_name, user
    // and since when its transaction runs.
    r.expect_contains(&format!(
        "lock held by pid {pid} (holder-test, user postgres, since {since})"
    ))
    .expect_contains(&format!(
        "caused by: held by pid {pid} (holder-test, user postgres, since {since})"
    ));
}

/// The shop database's ledger and schema agree with a fresh deploy of `tag`.
fn assert_state_is(repo: &TestRepo, db: &TestDb, tag: &str, versions: &[i64]) {
    assert_eq!(db.applied(), versions);
    let fresh = TestDb::new(&format!("fresh_{tag}"));
    gm(&repo.path(), &fresh.url, &["deploy", tag, "--yes"]).expect_code(0);
    assert_eq!(
        db.dump(true, Some("git_migrate")),
        fresh.dump(true, Some("git_migrate")),
        "the schema is not the one of {tag}: half-applied?"
    );
    let ledger = "SELECT version, name, up_sha256 FROM git_migrate.migrations ORDER BY version";
    assert_eq!(db.rows(ledger), fresh.rows(ledger));
    let at = commit_id(repo, tag);
    assert_eq!(
        db.scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1"),
        Some(at.clone())
    );
    assert_eq!(
        db.scalar("SELECT commit FROM git_migrate.metadata"),
        Some(at)
    );
}

#[test]
fn rollback_planned_then_overtaken_by_a_deploy_stops() {
    // Both commands plan against v2.0.0 while a test connection holds the lock. PostgreSQL
    // grants a released lock to its waiters in queue order, so the first one to wait runs its
    // plan and the second one, re-planning under the lock, finds the database moved.
    let repo = TestRepo::shop();
    let p = repo.path();

    // Rollback first, deploy second.
    let db = TestDb::new("race_rollback_first");
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    let held = hold_lock(&db);
    let mut rollback = spawn_gm(
        &p,
        &db.url,
        &["rollback", "v1.0.0", "--yes", "--lock-timeout", "20"],
    );
    wait_for_waiters(&db, 1, &mut [&mut rollback]);
    let mut deploy = spawn_gm(
        &p,
        &db.url,
        &["deploy", "v1.1.0", "--yes", "--lock-timeout", "20"],
    );
    wait_for_waiters(&db, 2, &mut [&mut rollback, &mut deploy]);
    held.release();
    let rr = rollback.finish(Duration::from_secs(30));
    let rd = deploy.finish(Duration::from_secs(30));
    rr.expect_code(0)
        .expect_contains("waiting for another deployment")
        .expect_contains("5 reverted");
    rd.expect_code(3)
        .expect_contains("the database moved")
        .expect_contains("run the command again");
    assert_eq!(
        count(&db, "SELECT count(*) FROM git_migrate.deployments"),
        2
    );
    assert_state_is(&repo, &db, "v1.0.0", &[1700000000001, 1700000000002]);

    // Deploy first, rollback second.
    let db = TestDb::new("race_deploy_first");
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    let held = hold_lock(&db);
    let mut deploy = spawn_gm(
        &p,
        &db.url,
        &["deploy", "v1.1.0", "--yes", "--lock-timeout", "20"],
    );
    wait_for_waiters(&db, 1, &mut [&mut deploy]);
    let mut rollback = spawn_gm(
        &p,
        &db.url,
        &["rollback", "v1.0.0", "--yes", "--lock-timeout", "20"],
    );
    wait_for_waiters(&db, 2, &mut [&mut deploy, &mut rollback]);
    held.release();
    let rd = deploy.finish(Duration::from_secs(30));
    let rr = rollback.finish(Duration::from_secs(30));
    rd.expect_code(0).expect_contains("3 reverted");
    rr.expect_code(3).expect_contains("the database moved");
    assert_eq!(
        count(&db, "SELECT count(*) FROM git_migrate.deployments"),
        2
    );
    assert_state_is(
        &repo,
        &db,
        "v1.1.0",
        &[1700000000001, 1700000000002, 1700000000003, 1700000000004],
    );
}

const PW: &str = "Pa55w0rd-XYZ";
/// The role the secret tests connect as (cluster-wide, so not a generic name like `app`).
const ROLE: &str = "gm_secret_app";

#[track_caller]
fn assert_no_secret(r: &Run, what: &str) {
    // Both the plain and the percent-encoded form (Pa55w0rd%2DXYZ) start with this.
    assert!(
        !r.all().contains("Pa55w0rd"),
        "{what}: the password is in the output:\n{}",
        r.all()
    );
}

/// The socket directory from the harness's `host=<dir> port=5432 user=postgres dbname=<db>`.
fn socket_dir(db: &TestDb) -> String {
    let rest = db.url.strip_prefix("host=").expect("host= first");
    let end = rest.find(" port=").expect("port= after host=");
    rest[..end].trim_matches('\'').to_string()
}

/// How a run gets its database.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// `DATABASE_URL`.
    Env(&'a str),
    /// `--database-url`.
    Flag(&'a str),
    /// PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD, no DATABASE_URL.
    PgEnv { host: &'a str, db: &'a str },
}

fn run_via(dir: &Path, via: Via<'_>, args: &[&str]) -> Run {
    match via {
        Via::Env(url) => gm(dir, url, args),
        Via::Flag(url) => {
            let mut a = vec!["--database-url", url];
            a.extend_from_slice(args);
            gm(dir, "", &a)
        }
        Via::PgEnv { host, db } => gm_env(
            dir,
            "",
            args,
            &[
                ("PGHOST", host),
                ("PGPORT", "5432"),
                ("PGUSER", ROLE),
                ("PGDATABASE", db),
                ("PGPASSWORD", PW),
            ],
        ),
    }
}

/// Commands, successful and failing, against a fresh database reached through `via`; `full`
/// runs every command, otherwise a representative few.
fn exercise(p: &Path, db: &TestDb, via: Via<'_>, label: &str, full: bool) {
    let check = |args: &[&str], code: i32| -> Run {
        let r = run_via(p, via, args);
        let what = format!("{label}: {}", args.join(" "));
        assert_eq!(r.code, code, "{what}: unexpected exit code:\n{}", r.all());
        assert_no_secret(&r, &what);
        r
    };
    let st = check(&["status"], 0);
    assert!(
        st.stdout.contains("***"),
        "{label}: status shows the redacted connection string:\n{}",
        st.all()
    );
    if full {
        check(&["status", "--json"], 0);
        check(&["plan", "v2.0.0"], 0);
        check(&["deploy", "v2.0.0", "--dry-run"], 0);
    }
    check(&["plan", "v2.0.0", "--json"], 0);
    check(&["deploy", "v2.0.0", "--yes"], 0);
    if full {
        check(&["deploy", "v2.0.0", "--yes"], 0); // nothing to do
        check(&["log"], 0);
        check(&["log", "--json"], 0);
        check(&["rollback", "v1.0.0"], 3); // not confirmed: no terminal, no --yes
    }
    check(&["rollback", "v1.0.0", "--yes"], 0);
    check(&["deploy", "broken", "--yes"], 4);
    if full {
        check(&["deploy", "broken", "--yes", "--json"], 4);
        check(&["status", "--json"], 0);
    }
    // Connected as the role with the password, and the password is not stored in the ledger.
    assert_eq!(
        db.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'"),
        Some(ROLE.to_string()),
        "{label}"
    );
    assert_eq!(
        count(
            db,
            &format!(
                "SELECT count(*) FROM git_migrate.deployments d \
                 WHERE row_to_json(d)::text LIKE '%{PW}%'"
            )
        ),
        0,
        "{label}: the password is stored in the ledger"
    );
}

#[test]
fn passwords_never_reach_the_output() {
    let mut repo = TestRepo::shop();
    let bad = migration(
        1700000000008,
        "broken",
        "create table public.broken (id int);\nselect * from no_such_table_here;\n",
        "drop table public.broken;",
    );
    let c = repo.commit(&files(&bad), &[], "a broken migration");
    repo.tag("broken", c);
    let p = repo.path();

    let setup = TestDb::new("secret_setup");
    setup
        .client()
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{PW}'; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ))
        .unwrap();
    let host = socket_dir(&setup);
    let kv = |db: &str| format!("host={host} port=5432 user={ROLE} password={PW} dbname={db}");
    let url = |db: &str| format!("postgresql://{ROLE}:{PW}@/{db}?host={host}&port=5432");
    let url_encoded =
        |db: &str| format!("postgresql://{ROLE}:Pa55w0rd%2DXYZ@/{db}?host={host}&port=5432");

    let db_kv = TestDb::new("secret_kv");
    let db_url = TestDb::new("secret_url");
    let db_flag = TestDb::new("secret_flag");
    let db_env = TestDb::new("secret_pgenv");
    let (kv_conn, url_conn, flag_conn) = (
        kv(&db_kv.name),
        url(&db_url.name),
        url_encoded(&db_flag.name),
    );
    let nope = "no_such_database_secret_test";
    let failing = [
        ("key=value, no such database", kv(nope), 4),
        (
            "quoted key=value, no such database",
            format!("host={host} port=5432 user={ROLE} password='{PW}' dbname={nope}"),
            4,
        ),
        ("URL, no such database", url(nope), 4),
        (
            "percent-encoded URL, no such database",
            url_encoded(nope),
            4,
        ),
        (
            "key=value, bad option",
            format!("{} sslmode=bogus", kv(nope)),
            -1,
        ),
        (
            "URL, bad port",
            format!("postgresql://{ROLE}:{PW}@/{nope}?host={host}&port=notaport"),
            -1,
        ),
        (
            "URL, no server there",
            format!("postgresql://{ROLE}:{PW}@/{nope}?host=/nonexistent-gm-dir&port=5432"),
            4,
        ),
    ];
    std::thread::scope(|s| {
        let p = &p;
        s.spawn(|| {
            exercise(
                p,
                &db_kv,
                Via::Env(&kv_conn),
                "DATABASE_URL key=value",
                true,
            )
        });
        s.spawn(|| exercise(p, &db_url, Via::Env(&url_conn), "DATABASE_URL URL", true));
        s.spawn(|| {
            exercise(
                p,
                &db_flag,
                Via::Flag(&flag_conn),
                "--database-url percent-encoded URL",
                false,
            )
        });
        s.spawn(|| {
            let via = Via::PgEnv {
                host: &host,
                db: &db_env.name,
            };
            exercise(p, &db_env, via, "PGPASSWORD", true);
            let r = run_via(
                p,
                Via::PgEnv {
                    host: &host,
                    db: nope,
                },
                &["status"],
            );
            r.expect_code(4).expect_contains(nope);
            assert_no_secret(&r, "PGPASSWORD, no such database");
        });
        s.spawn(|| {
            // Failing connections: a database that does not exist, malformed strings, no server.
            for (i, (what, conn, code)) in failing.iter().enumerate() {
                let via = if i % 2 == 0 {
                    Via::Env(conn)
                } else {
                    Via::Flag(conn)
                };
                for args in [
                    &["status"][..],
                    &["deploy", "v2.0.0", "--yes", "--json"][..],
                ] {
                    let r = run_via(p, via, args);
                    let what = format!("{what}: {}", args.join(" "));
                    if *code >= 0 {
                        assert_eq!(r.code, *code, "{what}:\n{}", r.all());
                    } else {
                        assert!(matches!(r.code, 2 | 4), "{what}:\n{}", r.all());
                    }
                    assert_no_secret(&r, &what);
                }
            }
        });
    });
}

#[test]
fn lock_holder_is_looked_up_in_this_database_only() {
    // Advisory locks are per database: the same key held in another database (by another
    // project's deployment on the same server) neither blocks this one nor is its holder.
    let repo = TestRepo::shop();
    let p = repo.path();
    let other = TestDb::new("holder_decoy");
    let db = TestDb::new("holder_lookup");
    let key = Ledger::default().lock_key();
    let mut decoy = other.client();
    decoy
        .batch_execute(&format!(
            "SET application_name = 'decoy-holder'; BEGIN; SELECT pg_advisory_xact_lock({key})"
        ))
        .unwrap();
    // Not blocked by the other database's lock.
    gm(
        &p,
        &db.url,
        &["deploy", "v1.0.0", "--yes", "--lock-timeout", "1"],
    )
    .expect_code(0);
    let held = hold_lock(&db);
    let pid = held.pid;
    let r = gm(
        &p,
        &db.url,
        &["deploy", "v2.0.0", "--yes", "--lock-timeout", "1"],
    );
    held.release();
    decoy.batch_execute("COMMIT").unwrap();
    r.expect_code(5)
        .expect_contains(&format!("lock held by pid {pid} (holder-test"))
        .expect_contains(&format!("held by pid {pid} (holder-test"));
    assert!(
        !r.all().contains("decoy-holder"),
        "the holder named is a session of another database:\n{}",
        r.all()
    );
}

/// Hasura's state stores as the Hasura CLI and server leave a database before its first
/// migration: `hdb_catalog.schema_migrations` and `hdb_version.cli_state` (plus the rest of the
/// catalog), empty.
fn with_hasura_state(db: &TestDb) {
    db.client()
        .batch_execute(&format!(
            "{}\nCREATE TABLE hdb_catalog.schema_migrations \
             (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);",
            crate::test_hasura_catalog::CATALOG_DDL
        ))
        .unwrap();
}

/// The versions Hasura's two state stores list: (`schema_migrations`, `cli_state` keys of the
/// `default` database), ascending.
fn hasura_versions(db: &TestDb) -> (Vec<i64>, Vec<i64>) {
    let col = |sql: &str| -> Vec<i64> {
        db.rows(sql)
            .into_iter()
            .map(|r| r[0].as_deref().unwrap().parse().unwrap())
            .collect()
    };
    (
        col("SELECT version FROM hdb_catalog.schema_migrations WHERE NOT dirty ORDER BY version"),
        col("SELECT k FROM hdb_catalog.hdb_version, \
             jsonb_object_keys(cli_state #> '{migrations,default}') k ORDER BY k::bigint"),
    )
}

/// SQL that keeps the migration's transaction (and so the deploy lock) open until `waiters`
/// other sessions of this database wait for an advisory lock and the test inserted a row into
/// `public.go`, or 20 s passed.
fn wait_for_go_sql(waiters: i64) -> String {
    format!(
        "DO $$\nBEGIN\n  FOR i IN 1..1000 LOOP\n    EXIT WHEN (SELECT count(*) FROM pg_locks\n      \
         WHERE locktype = 'advisory' AND NOT granted\n        \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) >= {waiters}\n      \
         AND EXISTS (SELECT 1 FROM public.go);\n    \
         PERFORM pg_sleep(0.02);\n  END LOOP;\nEND\n$$;\n"
    )
}

/// A repository whose `v1` creates `runs` (one row per up that ran) and `go` (the test's
/// signal), and whose `v2` adds three migrations, the first of which holds the transaction
/// until `waiters` others wait for the lock and the test says go.
fn storm_repo(waiters: i64) -> TestRepo {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(
        1,
        "runs",
        "create table runs (version int not null);\ncreate table go (x int);\ninsert into runs values (1);",
        "drop table go;\ndrop table runs;",
    );
    base.extend(files(&m1));
    let c1 = repo.commit(&base, &[], "runs");
    repo.tag("v1", c1);
    let m2 = migration(
        2,
        "slow",
        &format!("{}insert into runs values (2);\n", wait_for_go_sql(waiters)),
        "delete from runs where version = 2;",
    );
    let m3 = migration(
        3,
        "table",
        "insert into runs values (3);\ncreate table t3 (id int);",
        "drop table t3;\ndelete from runs where version = 3;",
    );
    let m4 = migration(
        4,
        "index",
        "insert into runs values (4);\ncreate index t3_id on t3 (id);",
        "drop index t3_id;\ndelete from runs where version = 4;",
    );
    let mut next = files(&m2);
    next.extend(files(&m3));
    next.extend(files(&m4));
    let c2 = repo.commit(&next, &[], "three more");
    repo.tag("v2", c2);
    repo
}

#[test]
fn eight_deploys_of_the_same_target_apply_once_and_keep_hasura_state() {
    let repo = storm_repo(7);
    let db = TestDb::new("storm_of_eight");
    with_hasura_state(&db);
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    assert_eq!(hasura_versions(&db), (vec![1], vec![1]));

    let mut procs: Vec<Bg> = (0..8)
        .map(|_| spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]))
        .collect();
    {
        let mut refs: Vec<&mut Bg> = procs.iter_mut().collect();
        wait_for_waiters(&db, 7, &mut refs);
    }
    // Every process is visible as git-migrate in pg_stat_activity: one holds the deploy lock
    // (running the slow migration), seven wait for it.
    let sessions = db.rows(
        "SELECT a.pid, EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid \
           AND l.locktype = 'advisory' AND l.granted) \
         FROM pg_stat_activity a \
         WHERE a.datname = current_database() AND a.application_name = 'git-migrate'",
    );
    assert_eq!(sessions.len(), 8, "git-migrate sessions: {sessions:?}");
    assert_eq!(
        sessions
            .iter()
            .filter(|r| r[1].as_deref() == Some("t"))
            .count(),
        1,
        "exactly one git-migrate session holds the lock: {sessions:?}"
    );
    db.client()
        .batch_execute("INSERT INTO public.go VALUES (1)")
        .unwrap();
    let runs: Vec<Run> = procs
        .into_iter()
        .map(|b| b.finish(Duration::from_secs(60)))
        .collect();
    let all = || {
        runs.iter()
            .map(Run::all)
            .collect::<Vec<_>>()
            .join("\n=====\n")
    };
    for r in &runs {
        r.expect_code(0);
    }
    let winners = runs
        .iter()
        .filter(|r| r.stdout.contains("3 applied"))
        .count();
    assert_eq!(winners, 1, "exactly one process applies:\n{}", all());
    for r in runs.iter().filter(|r| !r.stdout.contains("3 applied")) {
        r.expect_contains("waiting for another deployment to finish");
        assert!(found_nothing_to_do(r), "{}", r.all());
        assert!(!r.all().contains("Deployment #"), "{}", r.all());
    }

    // No up ran twice; one deployment applied them; Hasura's state lost no row.
    assert_eq!(
        db.rows("SELECT version, count(*) FROM runs GROUP BY version ORDER BY version"),
        (1..=4)
            .map(|v| vec![Some(v.to_string()), Some("1".to_string())])
            .collect::<Vec<_>>()
    );
    assert_eq!(
        db.rows("SELECT kind, applied::text, status FROM git_migrate.deployments ORDER BY id"),
        vec![
            vec![
                Some("deploy".to_string()),
                Some("{1}".to_string()),
                Some("ok".to_string())
            ],
            vec![
                Some("deploy".to_string()),
                Some("{2,3,4}".to_string()),
                Some("ok".to_string())
            ],
        ]
    );
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
    assert_eq!(hasura_versions(&db), (vec![1, 2, 3, 4], vec![1, 2, 3, 4]));
}

#[test]
fn lock_timeout_names_a_running_deployment_as_the_holder() {
    let repo = storm_repo(0);
    let db = TestDb::new("lock_holder_is_a_deploy");
    with_hasura_state(&db);
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);

    let mut slow = spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    // Its session, once it holds the lock (it waits in migration 2 for the go row).
    let mut c = db.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (pid, since): (i32, String) = loop {
        let rows = c
            .query(
                &format!(
                    "SELECT a.pid, {SINCE} FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted \
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                       AND a.application_name = 'git-migrate'"
                ),
                &[],
            )
            .unwrap();
        if let Some(r) = rows.first() {
            break (r.get(0), r.get(1));
        }
        assert!(
            !slow.has_exited(),
            "the slow deploy ended before it held the lock"
        );
        assert!(
            Instant::now() < deadline,
            "the slow deploy never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    let r = gm(
        &p,
        &db.url,
        &["deploy", "v2", "--yes", "--lock-timeout", "1"],
    );
    c.batch_execute("INSERT INTO public.go VALUES (1)").unwrap();
    let done = slow.finish(Duration::from_secs(60));
    r.expect_code(5)
        .expect_contains(&format!(
            "lock held by pid {pid} (git-migrate, user postgres, since {since})"
        ))
        .expect_contains(&format!(
            "caused by: held by pid {pid} (git-migrate, user postgres, since {since})"
        ));
    done.expect_code(0).expect_contains("3 applied");
    // The one that gave up wrote nothing; the holder's deployment is whole.
    assert_eq!(
        count(&db, "SELECT count(*) FROM git_migrate.deployments"),
        2
    );
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
    assert_eq!(hasura_versions(&db), (vec![1, 2, 3, 4], vec![1, 2, 3, 4]));
    assert_eq!(count(&db, "SELECT count(*) FROM runs"), 4);
}

#[test]
fn deploy_racing_rollback_ends_at_one_of_the_two_targets() {
    // Both start at once from v2.0.0, with no lock held by the test: whichever takes the lock
    // first runs; the other stops because the database moved, or (when it planned only after
    // the first one committed) goes on from there. Either way the database ends exactly at one
    // of the two targets, never in between.
    let repo = TestRepo::shop();
    let p = repo.path();
    let v1_0 = [1700000000001, 1700000000002];
    let v1_1 = [1700000000001, 1700000000002, 1700000000003, 1700000000004];
    for round in 0..3 {
        let db = TestDb::new(&format!("deploy_vs_rollback_{round}"));
        gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
        let deploy_args = ["deploy", "v1.1.0", "--yes"];
        let rollback_args = ["rollback", "v1.0.0", "--yes"];
        let (d, r) = if round % 2 == 0 {
            let d = spawn_gm(&p, &db.url, &deploy_args);
            (d, spawn_gm(&p, &db.url, &rollback_args))
        } else {
            let r = spawn_gm(&p, &db.url, &rollback_args);
            (spawn_gm(&p, &db.url, &deploy_args), r)
        };
        let rd = d.finish(Duration::from_secs(60));
        let rr = r.finish(Duration::from_secs(60));
        for run in [&rd, &rr] {
            match run.code {
                0 => {}
                3 => {
                    run.expect_contains("the database moved");
                }
                _ => panic!("round {round}: unexpected exit code:\n{}", run.all()),
            }
        }
        assert!(
            rd.code == 0 || rr.code == 0,
            "round {round}: neither ran:\n{}\n=====\n{}",
            rd.all(),
            rr.all()
        );
        let successes = [&rd, &rr].iter().filter(|r| r.code == 0).count() as i64;
        assert_eq!(
            count(&db, "SELECT count(*) FROM git_migrate.deployments"),
            1 + successes,
            "round {round}"
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM git_migrate.deployments WHERE status <> 'ok'"
            ),
            0
        );
        let last = db
            .scalar("SELECT target_ref FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .unwrap();
        match last.as_str() {
            "v1.1.0" => assert_state_is(&repo, &db, "v1.1.0", &v1_1),
            "v1.0.0" => assert_state_is(&repo, &db, "v1.0.0", &v1_0),
            other => panic!("round {round}: the last deployment went to {other}"),
        }
        println!(
            "round {round}: deploy exit {}, rollback exit {}, database at {last}",
            rd.code, rr.code
        );
    }
}
