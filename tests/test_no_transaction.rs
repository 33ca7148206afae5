//! No-transaction migrations (`-- git-migrate:no-transaction`, design §7.3): CREATE INDEX
//! CONCURRENTLY deploys and rolls back; a failure or a kill inside one leaves its ledger row
//! dirty and the deployment partial, the next deploy refuses, and `git migrate repair
//! --done/--undone` settles it; `repair --accept` records an edited migration's checksum;
//! transaction control in transactional SQL is refused before anything runs.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;
use crate::test_interrupt::{spawn_gm, wait_for_activity};
use std::time::Duration;

const NO_TX: &str = "-- git-migrate:no-transaction\n";

/// v1: table t; v2: + a concurrent index on t(a) (a no-transaction up and down) + table u.
fn index_repo() -> TestRepo {
    let mut repo = TestRepo::new();
    let mut f = base_project();
    let m1 = migration(
        1,
        "t",
        "create table t (id int, a int);\ninsert into t select g, g from generate_series(1, 100) g;",
        "drop table t;",
    );
    f.extend(files(&m1));
    let c1 = repo.commit(&f, &[], "t");
    repo.tag("v1", c1);
    let mut m = migration(
        2,
        "idx",
        &format!("{NO_TX}create index concurrently t_a_idx on t (a);\n"),
        &format!("{NO_TX}drop index concurrently t_a_idx;\n"),
    );
    m.extend(migration(
        3,
        "u",
        "create table u (id int);",
        "drop table u;",
    ));
    let c2 = repo.commit(&files(&m), &[], "index");
    repo.tag("v2", c2);
    repo
}

/// Commits the base project with `migrations` (owned files) on top.
fn commit_project(
    repo: &mut TestRepo,
    migrations: &[Vec<(String, String)>],
    msg: &str,
) -> git2::Oid {
    let owned: Vec<(String, String)> = migrations.concat();
    let mut f = base_project();
    f.extend(files(&owned));
    repo.commit(&f, &[], msg)
}

fn ledger_rows(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.rows("SELECT version::text, dirty::text, dirty_direction FROM git_migrate.migrations ORDER BY version")
}

fn row(v: i64, dirty: bool, direction: Option<&str>) -> Vec<Option<String>> {
    vec![
        Some(v.to_string()),
        Some(dirty.to_string()),
        direction.map(str::to_string),
    ]
}

fn last_status(db: &TestDb) -> String {
    db.scalar("SELECT kind || ' ' || status FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
        .unwrap()
}

fn index_is_valid(db: &TestDb) -> bool {
    db.scalar(
        "SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('public.t_a_idx')",
    )
    .as_deref()
        == Some("true")
}

#[test]
fn concurrent_index_deploys_and_rolls_back() {
    let repo = index_repo();
    let db = TestDb::new("notx_deploy");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["plan", "v2"])
        .expect_code(0)
        .expect_contains("outside a transaction: apply 2_idx")
        .expect_contains("1 step(s) run outside the deployment transaction")
        .expect_contains("git migrate repair --done V");
    let json = gm(&p, &db.url, &["--json", "plan", "v2"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["no_transaction"], serde_json::json!([2]));

    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert!(index_is_valid(&db));
    assert!(db.has_table("public.u"));
    assert_eq!(
        ledger_rows(&db),
        vec![
            row(1, false, None),
            row(2, false, None),
            row(3, false, None)
        ]
    );
    // One deployment row for the whole deployment, finished.
    assert_eq!(last_status(&db), "deploy ok");
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.deployments")
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        db.scalar("SELECT max(version) FROM git_migrate.schema_version")
            .as_deref(),
        Some("4")
    );
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
    // The lock is released.
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        .as_deref(),
        Some("0")
    );

    // Back: the no-transaction down (DROP INDEX CONCURRENTLY) runs outside, u in a transaction.
    gm(&p, &db.url, &["rollback", "v1", "--yes"])
        .expect_code(0)
        .expect_contains("2 reverted");
    assert!(!db.has_table("public.t_a_idx"));
    assert!(!db.has_table("public.u"));
    assert_eq!(ledger_rows(&db), vec![row(1, false, None)]);
    assert_eq!(last_status(&db), "rollback ok");
}

#[test]
fn failing_no_transaction_migration_is_dirty_until_repaired_undone() {
    let repo = index_repo();
    let db = TestDb::new("notx_fail");
    let p = repo.path();
    // Hasura's migration state is kept in step, dirty flag included.
    db.rows(
        "CREATE SCHEMA hdb_catalog; \
         CREATE TABLE hdb_catalog.schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)",
    );
    let hasura = || {
        db.rows("SELECT version::text || ' ' || dirty::text FROM hdb_catalog.schema_migrations ORDER BY version")
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect::<Vec<_>>()
    };
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    // Something is in the way of the index.
    db.rows("CREATE TABLE t_a_idx (x int)");
    let r = gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    r.expect_code(4)
        .expect_contains("up migration 2_idx failed outside a transaction: it is marked dirty")
        .expect_contains("marked dirty")
        .expect_contains("is partial")
        .expect_contains("migrations/2_idx/up.sql")
        .expect_contains("already exists")
        .expect_contains("git migrate repair --done 2")
        .expect_contains("git migrate repair --undone 2");
    assert_eq!(
        ledger_rows(&db),
        vec![row(1, false, None), row(2, true, Some("up"))]
    );
    assert_eq!(last_status(&db), "deploy partial");
    assert!(!db.has_table("public.u"));
    assert_eq!(hasura(), vec!["1 false", "2 true"]);

    // The next deploy refuses, naming the migration and the repair.
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(3)
        .expect_contains("migration 2_idx is marked dirty")
        .expect_contains("git migrate repair --done 2");
    // Repair refuses what is not dirty or not applied, and asks before changing anything.
    gm(&p, &db.url, &["repair", "--done", "1", "--yes"])
        .expect_code(3)
        .expect_contains("migration 1_t is not dirty");
    gm(&p, &db.url, &["repair", "--undone", "9", "--yes"])
        .expect_code(3)
        .expect_contains("migration 9 is not applied");
    gm(&p, &db.url, &["repair", "--undone", "2"])
        .expect_code(3)
        .expect_contains("no terminal");
    gm(&p, &db.url, &["repair", "--undone", "2", "--dry-run"])
        .expect_code(0)
        .expect_contains("2_idx's ledger row (and Hasura's, if it has one) is deleted");
    assert_eq!(
        ledger_rows(&db),
        vec![row(1, false, None), row(2, true, Some("up"))]
    );

    // Clear the obstacle, record that the index was not built, deploy again.
    db.rows("DROP TABLE t_a_idx");
    gm(&p, &db.url, &["repair", "--undone", "2", "--yes"])
        .expect_code(0)
        .expect_contains("Repaired 2_idx");
    assert_eq!(ledger_rows(&db), vec![row(1, false, None)]);
    assert_eq!(hasura(), vec!["1 false"]);
    assert_eq!(last_status(&db), "repair ok");
    gm(&p, &db.url, &["repair", "--undone", "2", "--yes"]).expect_code(3);
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert!(index_is_valid(&db));
    assert_eq!(
        ledger_rows(&db),
        vec![
            row(1, false, None),
            row(2, false, None),
            row(3, false, None)
        ]
    );
    assert_eq!(hasura(), vec!["1 false", "2 false", "3 false"]);
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
    gm(&p, &db.url, &["log"])
        .expect_code(0)
        .expect_contains("repair");
}

#[test]
fn kill_inside_a_no_transaction_migration_then_repair_done() {
    let mut repo = TestRepo::new();
    let c1 = commit_project(
        &mut repo,
        &[migration(
            1,
            "a",
            "create table a (id int);",
            "drop table a;",
        )],
        "a",
    );
    repo.tag("v1", c1);
    let mut m = migration(
        2,
        "sleepy",
        &format!("{NO_TX}SELECT pg_sleep(5);\n"),
        "select 1;",
    );
    m.extend(migration(
        3,
        "b",
        "create table b (id int);",
        "drop table b;",
    ));
    let c2 = repo.commit(&files(&m), &[], "sleepy");
    repo.tag("v2", c2);
    let db = TestDb::new("notx_kill");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);

    let mut bg = spawn_gm(&p, &db.url, &["deploy", "v2", "--yes"]);
    wait_for_activity(&db, &mut bg, "pg_sleep(5)", false);
    bg.signal(libc::SIGKILL);
    let r = bg.finish(Duration::from_secs(10));
    assert_eq!(r.code, 128 + libc::SIGKILL, "{}", r.all());
    assert_eq!(
        ledger_rows(&db),
        vec![row(1, false, None), row(2, true, Some("up"))]
    );
    assert_eq!(last_status(&db), "deploy partial");
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(3)
        .expect_contains("migration 2_sleepy is marked dirty")
        .expect_contains("git migrate repair --done 2");
    // The statement had no lasting effect to check: record it as done.
    gm(&p, &db.url, &["repair", "--done", "2", "--yes"])
        .expect_code(0)
        .expect_contains("2_sleepy is recorded as applied");
    assert_eq!(
        ledger_rows(&db),
        vec![row(1, false, None), row(2, false, None)]
    );
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
}

#[test]
fn failing_no_transaction_revert_then_repair_done() {
    let repo = index_repo();
    let db = TestDb::new("notx_revert");
    let p = repo.path();
    // Hasura's config v3 state is kept in step, dirty flag included.
    db.rows(
        "CREATE SCHEMA hdb_catalog; \
         CREATE TABLE hdb_catalog.hdb_version (version text, cli_state jsonb NOT NULL DEFAULT '{}'); \
         INSERT INTO hdb_catalog.hdb_version (version) VALUES ('48')",
    );
    let cli_state = || {
        db.scalar(
            "SELECT (cli_state -> 'migrations' -> 'default')::text FROM hdb_catalog.hdb_version",
        )
        .unwrap()
    };
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    assert_eq!(cli_state(), r#"{"1": false, "2": false, "3": false}"#);
    // Someone dropped the index by hand: the down fails.
    db.rows("DROP INDEX t_a_idx");
    gm(&p, &db.url, &["rollback", "v1", "--yes"])
        .expect_code(4)
        .expect_contains("down migration 2_idx failed outside a transaction: it is marked dirty")
        .expect_contains("committed: revert 3_u")
        .expect_contains("git migrate repair --done 2");
    assert_eq!(
        ledger_rows(&db),
        vec![row(1, false, None), row(2, true, Some("down"))]
    );
    assert_eq!(last_status(&db), "rollback partial");
    assert_eq!(cli_state(), r#"{"1": false, "2": true}"#);
    // The index is gone, which is what the down does: record the revert.
    gm(&p, &db.url, &["repair", "--done", "2", "--yes"])
        .expect_code(0)
        .expect_contains("2_idx's revert is recorded");
    assert_eq!(ledger_rows(&db), vec![row(1, false, None)]);
    assert_eq!(cli_state(), r#"{"1": false}"#);
    gm(&p, &db.url, &["rollback", "v1", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["status", "--exit-code", "v1"]).expect_code(0);
}

#[test]
fn failure_after_a_no_transaction_step_keeps_what_committed() {
    let mut repo = TestRepo::new();
    let c1 = commit_project(
        &mut repo,
        &[
            migration(1, "t", "create table t (a int);", "drop table t;"),
            migration(
                2,
                "idx",
                &format!("{NO_TX}create index concurrently t_a_idx on t (a);\n"),
                &format!("{NO_TX}drop index concurrently t_a_idx;\n"),
            ),
            migration(3, "bad", "create table x (id nosuchtype);", "drop table x;"),
        ],
        "bad third migration",
    );
    repo.tag("v1", c1);
    let db = TestDb::new("notx_later_failure");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"])
        .expect_code(4)
        .expect_contains("up migration 3_bad failed")
        .expect_contains("is partial")
        .expect_contains("committed: apply 1_t, apply 2_idx");
    assert_eq!(
        ledger_rows(&db),
        vec![row(1, false, None), row(2, false, None)]
    );
    assert!(index_is_valid(&db));
    assert!(!db.has_table("public.x"));
    assert_eq!(last_status(&db), "deploy partial");
    // 3 never ran: fix it in a new commit and deploy.
    let c2 = repo.commit(
        &files(&migration(
            3,
            "bad",
            "create table x (id int);",
            "drop table x;",
        )),
        &[],
        "fix",
    );
    repo.tag("v2", c2);
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
}

#[test]
fn a_format_1_ledger_is_upgraded_by_the_next_deploy() {
    let repo = index_repo();
    let db = TestDb::new("notx_upgrade");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    // What git-migrate's ledger format 1 looked like.
    db.rows(
        "ALTER TABLE git_migrate.migrations DROP COLUMN dirty_direction; \
         ALTER TABLE git_migrate.deployments DROP COLUMN schema_digest, DROP COLUMN schema_fingerprint; \
         DELETE FROM git_migrate.schema_version; INSERT INTO git_migrate.schema_version (version) VALUES (1)",
    );
    gm(&p, &db.url, &["status", "--exit-code", "v1"]).expect_code(0);
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    assert_eq!(
        db.scalar("SELECT max(version) FROM git_migrate.schema_version")
            .as_deref(),
        Some("4")
    );
    // Format 3: the deployment records the schema it left.
    assert_eq!(
        db.scalar("SELECT schema_digest IS NOT NULL FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("t")
    );
    assert_eq!(ledger_rows(&db).len(), 3);
}

#[test]
fn repair_accept_records_the_new_checksum() {
    let mut repo = TestRepo::new();
    let c1 = commit_project(
        &mut repo,
        &[migration(
            1,
            "a",
            "create table a (id int);",
            "drop table a;",
        )],
        "a",
    );
    repo.tag("v1", c1);
    let db = TestDb::new("repair_accept");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let old = db
        .scalar("SELECT up_sha256 FROM git_migrate.migrations WHERE version = 1")
        .unwrap();
    // Someone edited the applied migration.
    let c2 = repo.commit(
        &files(&migration(
            1,
            "a",
            "CREATE TABLE a (id integer);\n",
            "drop table a;",
        )),
        &[],
        "reformat",
    );
    repo.tag("v2", c2);
    gm(&p, &db.url, &["deploy", "v2", "--yes"])
        .expect_code(3)
        .expect_contains("modified after it was applied")
        .expect_contains("git migrate repair --accept 1");
    gm(&p, &db.url, &["repair", "--accept", "1", "v2", "--dry-run"])
        .expect_code(0)
        .expect_contains(&format!("changes from {old}"));
    gm(&p, &db.url, &["repair", "--accept", "1", "v2", "--yes"])
        .expect_code(0)
        .expect_contains("Repaired 1_a");
    let new = db
        .scalar("SELECT up_sha256 FROM git_migrate.migrations WHERE version = 1")
        .unwrap();
    assert_ne!(new, old);
    assert_eq!(last_status(&db), "repair ok");
    // Nothing ran, and the database still counts as deployed at v1.
    assert_eq!(
        db.scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1"),
        Some(c1.to_string())
    );
    gm(&p, &db.url, &["status", "v1"]).expect_contains("deployed    v1");
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["status", "--exit-code", "v2"]).expect_code(0);
    // Accepting again has nothing to do; --done needs a dirty row.
    gm(&p, &db.url, &["repair", "--accept", "1", "--yes"])
        .expect_code(3)
        .expect_contains("nothing to accept");
    gm(&p, &db.url, &["repair", "--done", "1", "--yes"])
        .expect_code(3)
        .expect_contains("is not dirty");
}

#[test]
fn transaction_control_is_refused_before_anything_runs() {
    let mut repo = TestRepo::new();
    let c1 = commit_project(
        &mut repo,
        &[
            migration(1, "a", "create table a (id int);", "drop table a;"),
            migration(
                2,
                "chunks",
                "insert into a values (1);\nCOMMIT;\ninsert into a values (2);\n",
                "delete from a;",
            ),
        ],
        "chunks",
    );
    repo.tag("v1", c1);
    let db = TestDb::new("txcontrol_refused");
    let p = repo.path();
    let r = gm(&p, &db.url, &["deploy", "v1", "--yes"]);
    r.expect_code(3)
        .expect_contains(&format!(
            "migrations/2_chunks/up.sql @ {}:2:1: COMMIT",
            &c1.to_string()[..10]
        ))
        .expect_contains("mark the migration `-- git-migrate:no-transaction`")
        .expect_contains("nothing was changed");
    assert!(!db.has_table("git_migrate.migrations"));
    assert!(!db.has_table("public.a"));
    gm(&p, &db.url, &["deploy", "v1", "--dry-run"]).expect_code(3);

    // The same word inside a dollar-quoted body or a comment is fine, and a no-transaction
    // migration may do what it likes.
    let c2 = repo.commit(
        &files(&migration(
            2,
            "chunks",
            "-- COMMIT;\ninsert into a values (1);\ndo $$ begin perform 'COMMIT'; end $$;\n",
            "delete from a;",
        )),
        &[],
        "no commit",
    );
    repo.tag("v2", c2);
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 2]);
}

#[test]
fn without_no_transaction_steps_a_deploy_is_one_transaction() {
    let repo = index_repo();
    let db = TestDb::new("notx_one_tx");
    let p = repo.path();
    // Everything v1 writes (schema, data, ledger, metadata, deployment row) has one xmin.
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let xmins = "SELECT count(DISTINCT x::text) FROM (
        SELECT xmin AS x FROM git_migrate.migrations UNION ALL
        SELECT xmin FROM git_migrate.deployments UNION ALL
        SELECT xmin FROM git_migrate.metadata UNION ALL
        SELECT xmin FROM git_migrate.schema_version UNION ALL
        SELECT xmin FROM t) s";
    assert_eq!(db.scalar(xmins).as_deref(), Some("1"));
    // With a no-transaction step, the segments commit separately.
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    let segments =
        "SELECT count(DISTINCT xmin::text) FROM git_migrate.migrations WHERE version > 1";
    assert_eq!(db.scalar(segments).as_deref(), Some("2"));
}

#[test]
fn failure_before_the_first_no_transaction_step_changes_nothing() {
    let mut repo = TestRepo::new();
    let c1 = commit_project(
        &mut repo,
        &[
            migration(1, "t", "create table t (a int);", "drop table t;"),
            migration(2, "bad", "create table x (id nosuchtype);", "drop table x;"),
            migration(
                3,
                "idx",
                &format!("{NO_TX}create index concurrently t_a_idx on t (a);\n"),
                &format!("{NO_TX}drop index concurrently t_a_idx;\n"),
            ),
        ],
        "bad second migration",
    );
    repo.tag("v1", c1);
    let db = TestDb::new("notx_first_failure");
    let before = db.dump(false, None);
    gm(&repo.path(), &db.url, &["deploy", "v1", "--yes"])
        .expect_code(4)
        .expect_contains(
            "up migration 2_bad failed; the deployment was rolled back and nothing changed",
        )
        .expect_contains("migrations/2_bad/up.sql");
    assert_eq!(db.dump(false, None), before);
}
