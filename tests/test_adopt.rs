//! Adopting a database the Hasura CLI manages (design §5.2), and Hasura's config v3 state
//! (`hdb_catalog.hdb_version.cli_state`) kept in step with every deployment.
//!
//! Databases are prepared the way the Hasura CLI leaves them: the first N `up.sql` files run
//! (as `hasura migrate apply` would run them), and the versions recorded in
//! `hdb_catalog.schema_migrations` (config v2) or `cli_state` (config v3).

use crate::common::git::TestRepo;
use crate::common::pg::TestDb;
use crate::common::{gm, Run};
use crate::test_hasura_catalog::CATALOG_DDL;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Migration folders of a checked-out fixture under `dir`: (version, up.sql), ascending.
fn folders(repo: &TestRepo, dir: &str) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(repo.path().join(dir)).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(v) = name.split('_').next().and_then(|v| v.parse::<i64>().ok()) else {
            continue;
        };
        out.push((v, std::fs::read_to_string(e.path().join("up.sql")).unwrap()));
    }
    out.sort();
    out
}

/// Runs the first `n` up.sql files of `migrations` like `hasura migrate apply` (each file a
/// multi-statement batch); returns their versions.
fn run_ups(db: &TestDb, migrations: &[(i64, String)], n: usize) -> Vec<i64> {
    let mut c = db.client();
    for (_, up) in &migrations[..n] {
        c.batch_execute(up).unwrap();
    }
    migrations[..n].iter().map(|(v, _)| *v).collect()
}

/// A config v2 database as the Hasura CLI leaves it after applying the first `n` migrations
/// of the shop fixture at HEAD (v2.0.0).
fn hasura_v2(db: &TestDb, repo: &TestRepo, n: usize) -> Vec<i64> {
    let versions = run_ups(db, &folders(repo, "migrations"), n);
    let rows: Vec<String> = versions.iter().map(|v| format!("({v}, false)")).collect();
    let mut sql = "CREATE SCHEMA IF NOT EXISTS hdb_catalog;
         CREATE TABLE hdb_catalog.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
        .to_string();
    if !rows.is_empty() {
        sql.push_str(&format!(
            "INSERT INTO hdb_catalog.schema_migrations VALUES {};",
            rows.join(", ")
        ));
    }
    db.client().batch_execute(&sql).unwrap();
    versions
}

/// A config v3 database (server v2 catalog) as the Hasura CLI leaves it after applying the
/// first `n` migrations of the shop-v3 fixture: versions in `cli_state`, next to settings and
/// another database's state that must survive every write.
fn hasura_v3(db: &TestDb, repo: &TestRepo, n: usize) -> Vec<i64> {
    db.client().batch_execute(CATALOG_DDL).unwrap();
    let versions = run_ups(db, &folders(repo, "migrations/default"), n);
    let default: serde_json::Map<String, serde_json::Value> = versions
        .iter()
        .map(|v| (v.to_string(), serde_json::Value::Bool(false)))
        .collect();
    let state = serde_json::json!({
        "migrations": {"default": default, "analytics": {"42": false}},
        "settings": {"migration_mode": "true"},
        "isStateCopyCompleted": true
    });
    db.client()
        .execute(
            "UPDATE hdb_catalog.hdb_version SET cli_state = $1::text::jsonb",
            &[&state.to_string()],
        )
        .unwrap();
    versions
}

/// `cli_state` as JSON.
fn cli_state(db: &TestDb) -> serde_json::Value {
    serde_json::from_str(
        &db.scalar("SELECT cli_state::text FROM hdb_catalog.hdb_version")
            .unwrap(),
    )
    .unwrap()
}

/// The versions `cli_state.migrations.default` lists, each checked to be `false` (clean).
fn cli_versions(db: &TestDb) -> Vec<i64> {
    let s = cli_state(db);
    let m = s["migrations"]["default"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<i64> = m
        .iter()
        .map(|(k, v)| {
            assert_eq!(v, &serde_json::Value::Bool(false), "{k} is not clean: {s}");
            k.parse().unwrap()
        })
        .collect();
    out.sort();
    out
}

fn schema_migrations(db: &TestDb) -> Vec<i64> {
    db.rows("SELECT version FROM hdb_catalog.schema_migrations WHERE NOT dirty ORDER BY version")
        .into_iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect()
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.all()))
}

/// (kind, from_commit, to_commit, applied) of every deployment, oldest first.
fn deployments(db: &TestDb) -> Vec<(String, Option<String>, Option<String>, String)> {
    db.rows("SELECT kind, from_commit, to_commit, applied::text FROM git_migrate.deployments ORDER BY id")
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].clone(),
                r[2].clone(),
                r[3].clone().unwrap(),
            )
        })
        .collect()
}

fn commit_of(repo: &TestRepo, rev: &str) -> String {
    repo.repo
        .revparse_single(rev)
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string()
}

fn has_ledger(db: &TestDb) -> bool {
    db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'git_migrate'")
        .as_deref()
        == Some("1")
}

/// The ledger rows that do not depend on when or by whom they were written.
fn ledger_rows(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.rows(
        "SELECT version, name, up_sha256, up_blob, down_sha256, down_sql, down_blob, folder_tree, dirty
           FROM git_migrate.migrations ORDER BY version",
    )
}

#[test]
fn deploy_adopts_and_applies_only_the_missing_migrations() {
    let repo = TestRepo::shop();
    let db = TestDb::new("adopt_deploy");
    let applied = hasura_v2(&db, &repo, 3);
    let all: Vec<i64> = folders(&repo, "migrations").iter().map(|m| m.0).collect();
    assert_eq!(all.len(), 7);
    let p = repo.path();
    let r = gm(&p, &db.url, &["deploy", "HEAD", "--yes"]);
    r.expect_code(0)
        .expect_contains("managed by the Hasura CLI")
        .expect_contains("hdb_catalog.schema_migrations lists 3 applied version(s)")
        .expect_contains("4 applied");
    assert_eq!(db.applied(), all, "the ledger has every version");
    let head = commit_of(&repo, "HEAD");
    let d = deployments(&db);
    assert_eq!(d.len(), 2, "{d:?}");
    // The adoption: Hasura's 3 versions, no commit (HEAD has 4 more), nothing executed.
    assert_eq!(d[0].0, "adopt");
    assert_eq!(d[0].2, None, "the state is not exactly HEAD's migrations");
    assert_eq!(
        d[0].3,
        format!(
            "{{{}}}",
            applied
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    );
    // The deploy: only the missing four, from the adopted state to HEAD.
    assert_eq!(d[1].0, "deploy");
    assert_eq!(d[1].1, None);
    assert_eq!(d[1].2.as_deref(), Some(head.as_str()));
    assert_eq!(
        d[1].3,
        format!(
            "{{{}}}",
            all[3..]
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    );
    // Adopted rows carry checksums and blob ids from HEAD, and name it as their commit.
    let adopted = db.rows(&format!(
        "SELECT count(*) FROM git_migrate.migrations
          WHERE version IN ({}) AND up_sha256 LIKE 'sha256:%' AND up_blob IS NOT NULL
            AND folder_tree IS NOT NULL AND down_sql IS NOT NULL AND applied_commit = '{head}'",
        applied
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    ));
    assert_eq!(adopted[0][0].as_deref(), Some("3"));
    assert_eq!(
        schema_migrations(&db),
        all,
        "Hasura's state is kept in step"
    );
    gm(&p, &db.url, &["log"])
        .expect_code(0)
        .expect_contains("adopt")
        .expect_contains("deploy");
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
    // And it rolls back like any deployment, adopted migrations included.
    gm(&p, &db.url, &["rollback", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), all[..2].to_vec());
    assert_eq!(schema_migrations(&db), all[..2].to_vec());
}

#[test]
fn adopt_at_a_commit_records_what_deploy_would_and_nothing_runs() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("adopt_explicit");
    hasura_v2(&db, &repo, 4); // exactly v1.1.0
    let before = db.dump(false, None);

    // --dry-run prints what would be recorded and writes nothing.
    gm(&p, &db.url, &["adopt", "--commit", "v1.1.0", "--dry-run"])
        .expect_code(0)
        .expect_contains("adopt    1700000000004_add_orders_total_and_index")
        .expect_contains("the ledger will say the database is at v1.1.0")
        .expect_contains("dry run: nothing was changed");
    let r = gm(
        &p,
        &db.url,
        &["adopt", "--commit", "v1.1.0", "--dry-run", "--json"],
    );
    r.expect_code(0);
    let doc = json(&r);
    assert_eq!(doc["exact"], true);
    assert_eq!(doc["versions"].as_array().unwrap().len(), 4);
    assert_eq!(doc["to_commit"], commit_of(&repo, "v1.1.0"));
    // No terminal and no --yes: refused, nothing written.
    gm(&p, &db.url, &["adopt", "--commit", "v1.1.0"])
        .expect_code(3)
        .expect_contains("--yes");
    assert_eq!(before, db.dump(false, None));
    assert!(!has_ledger(&db));

    gm(&p, &db.url, &["adopt", "--commit", "v1.1.0", "--yes"])
        .expect_code(0)
        .expect_contains("Adopted 4 migration(s)");
    // Nothing was executed: only the ledger is new.
    assert_eq!(before, db.dump(false, Some("git_migrate")));
    let d = deployments(&db);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, "adopt");
    assert_eq!(d[0].2, Some(commit_of(&repo, "v1.1.0")));
    // The same rows a deploy of v1.1.0 records.
    let fresh = TestDb::new("adopt_explicit_ref");
    gm(&p, &fresh.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    assert_eq!(ledger_rows(&db), ledger_rows(&fresh));
    gm(&p, &db.url, &["status", "v1.1.0"])
        .expect_code(0)
        .expect_contains("deployed    v1.1.0")
        .expect_contains("4 applied, 0 pending, 0 to revert");
    // Once adopted, there is nothing more to adopt.
    gm(&p, &db.url, &["adopt", "--yes"])
        .expect_code(3)
        .expect_contains("already records 4");
    // The next deploy applies only what is new.
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"])
        .expect_code(0)
        .expect_contains("3 applied");
    assert_eq!(db.applied().len(), 7);
}

#[test]
fn versions_missing_from_the_revision_are_adopted_without_checksums() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("adopt_missing");
    hasura_v2(&db, &repo, 4);
    // A version the Hasura CLI applied from a branch that git no longer has.
    db.client()
        .batch_execute("INSERT INTO hdb_catalog.schema_migrations VALUES (1699999999999, false)")
        .unwrap();
    gm(&p, &db.url, &["adopt", "--commit", "v1.1.0", "--yes"])
        .expect_code(0)
        .expect_contains("adopt    1699999999999  (not in v1.1.0: no files, no checksum)")
        .expect_contains("warning: 1 version(s) in hdb_catalog.schema_migrations are not in v1.1.0: 1699999999999")
        .expect_contains("must revert them")
        .expect_contains("the ledger will name no commit");
    assert_eq!(
        db.rows("SELECT up_sha256 IS NULL, name, applied_commit IS NULL FROM git_migrate.migrations WHERE version = 1699999999999"),
        vec![vec![Some("t".into()), Some(String::new()), Some("t".into())]]
    );
    assert_eq!(deployments(&db)[0].2, None, "no commit is claimed");
    gm(&p, &db.url, &["status", "v1.1.0"])
        .expect_code(0)
        .expect_contains("no single commit")
        .expect_contains("revert    1699999999999");
    // Deploying a revision without it means reverting it: refused without a down …
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"])
        .expect_code(3)
        .expect_contains("cannot revert 1699999999999");
    // … and dropped without running anything when asked to.
    gm(
        &p,
        &db.url,
        &["deploy", "v2.0.0", "--yes", "--allow-empty-down"],
    )
    .expect_code(0);
    assert_eq!(db.applied().len(), 7);
    assert!(!db.applied().contains(&1699999999999));
    assert!(!schema_migrations(&db).contains(&1699999999999));
}

#[test]
fn a_dirty_version_blocks_adoption_until_it_is_accepted_or_forgotten() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("adopt_dirty");
    hasura_v2(&db, &repo, 2);
    db.client()
        .batch_execute(
            "UPDATE hdb_catalog.schema_migrations SET dirty = true WHERE version = 1700000000002",
        )
        .unwrap();
    let before = db.dump(false, None);
    for args in [
        &["deploy", "--yes"][..],
        &["adopt", "--yes"][..],
        &["plan"][..],
    ] {
        gm(&p, &db.url, args)
            .expect_code(3)
            .expect_contains("marks migration 1700000000002 dirty")
            .expect_contains("git migrate adopt --accept-dirty 1700000000002")
            .expect_contains("git migrate adopt --forget-dirty 1700000000002")
            .expect_contains(
                "hasura migrate apply --version 1700000000002 --type up --skip-execution",
            );
    }
    gm(&p, &db.url, &["status"])
        .expect_code(0)
        .expect_contains("not adopted yet")
        .expect_contains("marks migration 1700000000002 dirty");
    // Only dirty versions may be accepted.
    gm(
        &p,
        &db.url,
        &["adopt", "--accept-dirty", "1700000000001", "--yes"],
    )
    .expect_code(2)
    .expect_contains("not dirty");
    assert_eq!(before, db.dump(false, None), "nothing was written");

    gm(
        &p,
        &db.url,
        &[
            "adopt",
            "--commit",
            "v1.0.0",
            "--accept-dirty",
            "1700000000002",
            "--yes",
        ],
    )
    .expect_code(0)
    .expect_contains("accepted as applied");
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);
    assert_eq!(
        schema_migrations(&db),
        vec![1700000000001, 1700000000002],
        "the flag is cleared"
    );

    // Forgotten instead: it leaves Hasura's state and the next deploy applies it.
    let db = TestDb::new("adopt_forget");
    let ups = folders(&repo, "migrations");
    run_ups(&db, &ups, 1);
    db.client()
        .batch_execute(
            "CREATE SCHEMA hdb_catalog;
             CREATE TABLE hdb_catalog.schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
             INSERT INTO hdb_catalog.schema_migrations VALUES (1700000000001, false), (1700000000002, true);",
        )
        .unwrap();
    gm(
        &p,
        &db.url,
        &["adopt", "--forget-dirty", "1700000000002", "--yes"],
    )
    .expect_code(0)
    .expect_contains("forget   1700000000002");
    assert_eq!(db.applied(), vec![1700000000001]);
    assert_eq!(schema_migrations(&db), vec![1700000000001]);
    gm(&p, &db.url, &["deploy", "v1.0.0", "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);
}

#[test]
fn status_on_an_unadopted_database_says_so_and_writes_nothing() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("adopt_status");
    hasura_v2(&db, &repo, 3);
    let before = db.dump(false, None);
    gm(&p, &db.url, &["status"])
        .expect_code(0)
        .expect_contains(
            "managed by the Hasura CLI, not adopted yet (run `git migrate adopt` or deploy)",
        )
        .expect_contains("3 applied, 4 pending, 0 to revert")
        .expect_contains("pending   1700000000004_add_orders_total_and_index");
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(1);
    let r = gm(&p, &db.url, &["status", "--json"]);
    r.expect_code(0);
    let doc = json(&r);
    assert_eq!(doc["hasura"]["adopted"], false);
    assert_eq!(doc["hasura"]["versions"], 3);
    assert_eq!(doc["in_sync"], false);
    gm(&p, &db.url, &["status", "--table"])
        .expect_code(0)
        .expect_contains("not adopted yet");
    // plan and deploy --dry-run show the adoption and the four applies, and write nothing.
    gm(&p, &db.url, &["plan"])
        .expect_code(0)
        .expect_contains("Adopt: this database is managed by the Hasura CLI")
        .expect_contains("apply   1700000000007");
    let r = gm(&p, &db.url, &["deploy", "--dry-run", "--json"]);
    r.expect_code(0);
    assert_eq!(json(&r)["adopt"]["versions"].as_array().unwrap().len(), 3);
    // Adoption needs a commit's files, not the working tree's.
    gm(&p, &db.url, &["deploy", "--worktree", "--yes"])
        .expect_code(3)
        .expect_contains("git migrate adopt --commit REV");
    // rollback cannot adopt: it says what to do instead.
    gm(&p, &db.url, &["rollback", "v1.0.0", "--yes"])
        .expect_code(3)
        .expect_contains("git migrate adopt");
    assert!(!has_ledger(&db), "read commands create no ledger");
    assert_eq!(before, db.dump(false, None));
}

#[test]
fn config_v3_adopts_from_cli_state_and_keeps_it_in_step() {
    let repo = TestRepo::fixture("shop-v3");
    let p = repo.path();
    let db = TestDb::new("adopt_v3");
    let applied = hasura_v3(&db, &repo, 3);
    // An old schema_migrations the v3 CLI no longer reads is not trusted.
    db.client()
        .batch_execute(
            "CREATE TABLE hdb_catalog.schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
             INSERT INTO hdb_catalog.schema_migrations VALUES (1700000000001, false);",
        )
        .unwrap();
    gm(&p, &db.url, &["deploy", "v1.1.0", "--yes"])
        .expect_code(0)
        .expect_contains("hdb_catalog.hdb_version.cli_state (database \"default\") lists 3")
        .expect_contains("hdb_catalog.schema_migrations disagrees")
        .expect_contains("1 applied");
    assert_eq!(db.applied()[..3], applied[..]);
    assert_eq!(cli_versions(&db), db.applied());
    let s = cli_state(&db);
    assert_eq!(
        s["migrations"]["analytics"],
        serde_json::json!({"42": false})
    );
    assert_eq!(s["settings"], serde_json::json!({"migration_mode": "true"}));
    assert_eq!(s["isStateCopyCompleted"], true);
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    assert_eq!(db.applied().len(), 7);
    assert_eq!(cli_versions(&db), db.applied());
    gm(&p, &db.url, &["rollback", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(db.applied().len(), 2);
    assert_eq!(cli_versions(&db), db.applied());
    assert_eq!(
        cli_state(&db)["migrations"]["analytics"],
        serde_json::json!({"42": false})
    );
}

#[test]
fn config_v3_cli_state_is_created_on_a_fresh_server_catalog() {
    let repo = TestRepo::fixture("shop-v3");
    let p = repo.path();
    let db = TestDb::new("cli_state_fresh");
    db.client().batch_execute(CATALOG_DDL).unwrap(); // cli_state = '{}'
    gm(&p, &db.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    assert_eq!(cli_versions(&db), db.applied());
    assert_eq!(db.applied().len(), 4);
    // A metadata-only change touches no migration key.
    gm(&p, &db.url, &["deploy", "v1.2.0", "--yes"]).expect_code(0);
    assert_eq!(cli_versions(&db), db.applied());
    gm(&p, &db.url, &["rollback", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(cli_versions(&db), db.applied());
    assert_eq!(db.applied().len(), 2);
}

/// Waits until a backend of this database waits on a lock.
fn wait_for_lock_waiter(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = db.scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND application_name = 'git-migrate'",
        );
        if n.as_deref() != Some("0") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "git-migrate never waited on the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cli_state_written_by_another_transaction_meanwhile_is_not_lost() {
    let repo = TestRepo::fixture("shop-v3");
    let p = repo.path();
    let db = TestDb::new("cli_state_race");
    db.client().batch_execute(CATALOG_DDL).unwrap();
    gm(&p, &db.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    // Another writer (a Hasura CLI for another database) holds the row, changed, uncommitted.
    let mut other = db.client();
    let mut tx = other.transaction().unwrap();
    tx.batch_execute(
        "UPDATE hdb_catalog.hdb_version
            SET cli_state = jsonb_set(cli_state, '{migrations,analytics}', '{\"7\": false}')",
    )
    .unwrap();
    let (url, dir) = (db.url.clone(), p.clone());
    let deploy = std::thread::spawn(move || gm(&dir, &url, &["deploy", "v2.0.0", "--yes"]));
    wait_for_lock_waiter(&db);
    tx.commit().unwrap();
    deploy.join().unwrap().expect_code(0);
    let s = cli_state(&db);
    assert_eq!(
        s["migrations"]["analytics"],
        serde_json::json!({"7": false})
    );
    assert_eq!(cli_versions(&db), db.applied());
    assert_eq!(db.applied().len(), 7);
}

/// Runs two git-migrate commands at the same time.
fn race(p: &Path, url: &str, a: &[&str], b: &[&str]) -> (Run, Run) {
    let (pa, ua, aa) = (
        p.to_path_buf(),
        url.to_string(),
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    let (pb, ub, bb) = (
        p.to_path_buf(),
        url.to_string(),
        b.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    let ta = std::thread::spawn(move || {
        gm(&pa, &ua, &aa.iter().map(String::as_str).collect::<Vec<_>>())
    });
    let tb = std::thread::spawn(move || {
        gm(&pb, &ub, &bb.iter().map(String::as_str).collect::<Vec<_>>())
    });
    (ta.join().unwrap(), tb.join().unwrap())
}

#[test]
fn concurrent_deploys_and_rollbacks_never_lose_a_cli_state_entry() {
    let repo = TestRepo::fixture("shop-v3");
    let p = repo.path();
    let db = TestDb::new("cli_state_concurrent");
    hasura_v3(&db, &repo, 2);
    let rounds: [(&[&str], &[&str]); 4] = [
        (
            &["deploy", "v1.1.0", "--yes"],
            &["deploy", "v2.0.0", "--yes"],
        ),
        (
            &["rollback", "v1.0.0", "--yes"],
            &["deploy", "v2.0.0", "--yes"],
        ),
        (
            &["deploy", "v1.1.0", "--yes"],
            &["rollback", "v1.0.0", "--yes"],
        ),
        (
            &["deploy", "v2.0.0", "--yes"],
            &["deploy", "v1.1.0", "--yes"],
        ),
    ];
    for (a, b) in rounds {
        let (ra, rb) = race(&p, &db.url, a, b);
        for r in [&ra, &rb] {
            // Each either ran, found the target already reached, or stopped because the
            // database moved under it (exit 3): never a half-written state.
            assert!(
                r.code == 0 || r.code == 3,
                "unexpected exit code:\n{}",
                r.all()
            );
        }
        assert!(ra.code == 0 || rb.code == 0, "{}\n{}", ra.all(), rb.all());
        let ledger: BTreeSet<i64> = db.applied().into_iter().collect();
        let state: BTreeSet<i64> = cli_versions(&db).into_iter().collect();
        assert_eq!(ledger, state, "after {a:?} and {b:?}");
        assert_eq!(
            cli_state(&db)["migrations"]["analytics"],
            serde_json::json!({"42": false})
        );
    }
}

#[test]
fn an_empty_ledger_left_by_metadata_apply_is_adopted_later() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("adopt_after_metadata");
    hasura_v2(&db, &repo, 2);
    db.client()
        .batch_execute("INSERT INTO hdb_catalog.schema_migrations VALUES (1699999999999, false)")
        .unwrap();
    // metadata apply leaves migrations alone: no adoption, no refusal.
    gm(&p, &db.url, &["metadata", "apply", "v1.0.0", "--yes"]).expect_code(0);
    assert!(has_ledger(&db));
    assert!(db.applied().is_empty());
    // A ledger from before adoption existed required checksums.
    db.client()
        .batch_execute("ALTER TABLE git_migrate.migrations ALTER COLUMN up_sha256 SET NOT NULL")
        .unwrap();
    gm(&p, &db.url, &["status", "v1.0.0"])
        .expect_code(0)
        .expect_contains("not adopted yet");
    gm(&p, &db.url, &["adopt", "--commit", "v1.0.0", "--yes"])
        .expect_code(0)
        .expect_contains("Adopted 3 migration(s)");
    assert_eq!(
        db.applied(),
        vec![1699999999999, 1700000000001, 1700000000002]
    );
    let d = deployments(&db);
    assert_eq!(
        d.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
        ["metadata", "adopt"]
    );
}

#[test]
fn hasura_style_apply_adopts_too() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("adopt_apply");
    hasura_v2(&db, &repo, 3);
    gm(&p, &db.url, &["apply", "--up", "2"])
        .expect_code(0)
        .expect_contains("managed by the Hasura CLI");
    assert_eq!(db.applied().len(), 5);
    let d = deployments(&db);
    assert_eq!(
        d.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
        ["adopt", "apply"]
    );
    assert_eq!(schema_migrations(&db), db.applied());
}
