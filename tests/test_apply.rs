//! `git migrate apply` with Hasura's flags, compared with hasura-cli.md §5.1: `--version V --type
//! down` reverts only V, `--goto V` keeps V applied, `--up 2` applies two, `--skip-execution`
//! writes state only, `--down N` refuses before running anything when a down is missing.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;

/// Five migrations 1..=5 creating tables t1..t5, and a Hasura state table.
fn setup(name: &str) -> (TestRepo, TestDb) {
    let mut r = TestRepo::new();
    let mut f = base_project_with(&[]);
    for v in 1..=5 {
        f.extend(migration(
            v,
            &format!("t{v}"),
            &format!("create table t{v}(id int);"),
            &format!("drop table t{v};"),
        ));
    }
    r.commit(&files(&f), &[], "five");
    let db = TestDb::new(name);
    (r, db)
}

fn tables(db: &TestDb) -> Vec<String> {
    db.rows("select tablename from pg_tables where schemaname = 'public' and tablename like 't_' order by 1")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

#[test]
fn up_n_then_all() {
    let (r, db) = setup("apply_up");
    gm(&r.path(), &db.url, &["apply", "--up", "2"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(db.applied(), vec![1, 2]);
    assert_eq!(tables(&db), vec!["t1", "t2"]);
    // More than are pending: refused before running anything (Hasura: "limit 2 short").
    gm(&r.path(), &db.url, &["apply", "--up", "5"])
        .expect_code(3)
        .expect_contains("short");
    assert_eq!(db.applied(), vec![1, 2]);
    gm(&r.path(), &db.url, &["apply"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    gm(&r.path(), &db.url, &["apply", "--up", "all"])
        .expect_code(0)
        .expect_contains("Nothing to apply");
}

#[test]
fn version_type_down_reverts_only_that_version() {
    let (r, db) = setup("apply_version");
    gm(&r.path(), &db.url, &["apply"]).expect_code(0);
    gm(
        &r.path(),
        &db.url,
        &["apply", "--version", "3", "--type", "down"],
    )
    .expect_code(0)
    .expect_contains("1 reverted");
    assert_eq!(db.applied(), vec![1, 2, 4, 5]);
    assert_eq!(tables(&db), vec!["t1", "t2", "t4", "t5"]);
    gm(
        &r.path(),
        &db.url,
        &["apply", "--version", "3", "--type", "down"],
    )
    .expect_code(3)
    .expect_contains("not applied");
    gm(
        &r.path(),
        &db.url,
        &["apply", "--version", "3", "--type", "up"],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    gm(&r.path(), &db.url, &["apply", "--version", "3"])
        .expect_code(3)
        .expect_contains("already applied");
}

#[test]
fn goto_keeps_the_version_applied() {
    let (r, db) = setup("apply_goto");
    gm(&r.path(), &db.url, &["apply", "--goto", "3"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 2, 3]);
    gm(&r.path(), &db.url, &["apply"]).expect_code(0);
    gm(&r.path(), &db.url, &["apply", "--goto", "2"])
        .expect_code(0)
        .expect_contains("3 reverted");
    assert_eq!(db.applied(), vec![1, 2]);
    assert_eq!(tables(&db), vec!["t1", "t2"]);
}

#[test]
fn down_n_is_all_or_nothing() {
    let (mut r, db) = setup("apply_down");
    // Migration 2 has no down anywhere in history.
    r.commit(&[], &["migrations/2_t2/down.sql"], "2 cannot be undone");
    gm(&r.path(), &db.url, &["apply"]).expect_code(0);
    gm(&r.path(), &db.url, &["apply", "--down", "2"])
        .expect_code(0)
        .expect_contains("2 reverted");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    // --down 2 needs 2's down: refused before 3 is reverted (Hasura would revert 3, then stop).
    let before = db.dump(false, None);
    gm(&r.path(), &db.url, &["apply", "--down", "2"])
        .expect_code(3)
        .expect_contains("no down");
    assert_eq!(db.dump(false, None), before, "something changed");
    // Dry run: Hasura's table, nothing changed.
    gm(&r.path(), &db.url, &["apply", "--down", "1", "--dry-run"])
        .expect_code(0)
        .expect_contains("VERSION")
        .expect_contains("3        down  t3");
    assert_eq!(db.applied(), vec![1, 2, 3]);
}

#[test]
fn skip_execution_writes_state_only() {
    let (r, db) = setup("apply_skip");
    gm(&r.path(), &db.url, &["apply", "--up", "1"]).expect_code(0);
    db.client()
        .batch_execute("create table t2(id int)")
        .unwrap();
    // t2 was created by hand: record 2 as applied without running it.
    gm(
        &r.path(),
        &db.url,
        &["apply", "--version", "2", "--skip-execution"],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![1, 2]);
    // Skipping a down removes the row and leaves the table.
    gm(
        &r.path(),
        &db.url,
        &[
            "apply",
            "--version",
            "2",
            "--type",
            "down",
            "--skip-execution",
        ],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![1]);
    assert_eq!(tables(&db), vec!["t1", "t2"]);
}

#[test]
fn hasura_state_table_follows_apply() {
    let (r, db) = setup("apply_hasura_state");
    db.client()
        .batch_execute("create schema hdb_catalog; create table hdb_catalog.schema_migrations (version bigint primary key, dirty boolean not null)")
        .unwrap();
    gm(&r.path(), &db.url, &["apply", "--up", "3"]).expect_code(0);
    gm(
        &r.path(),
        &db.url,
        &["apply", "--version", "2", "--type", "down"],
    )
    .expect_code(0);
    let rows = db.rows("select version::text from hdb_catalog.schema_migrations order by 1");
    assert_eq!(
        rows,
        vec![vec![Some("1".to_string())], vec![Some("3".to_string())]]
    );
}

#[test]
fn status_table_like_hasura() {
    let (mut r, db) = setup("apply_status_table");
    gm(&r.path(), &db.url, &["apply", "--up", "2"]).expect_code(0);
    // Edit applied migration 1 so the checksum column has something to say.
    r.commit(
        &[("migrations/1_t1/up.sql", "create table t1(id bigint);")],
        &[],
        "edit 1",
    );
    let run = gm(&r.path(), &db.url, &["status", "--table"]);
    let out = run.stdout.clone();
    let lines: Vec<&str> = out.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.starts_with("VERSION"))
        .unwrap_or_else(|| panic!("no table:\n{out}"));
    assert!(
        lines[head].contains("NAME")
            && lines[head].contains("SOURCE STATUS")
            && lines[head].contains("DATABASE STATUS")
    );
    let row = |v: &str| {
        lines[head + 1..]
            .iter()
            .find(|l| l.split_whitespace().next() == Some(v))
            .unwrap_or_else(|| panic!("no row {v}:\n{out}"))
            .to_string()
    };
    assert!(
        row("1").contains("Present  Present") || row("1").matches("Present").count() == 2,
        "{}",
        row("1")
    );
    assert!(row("1").contains("changed"), "{}", row("1"));
    assert!(row("2").contains("ok"), "{}", row("2"));
    assert!(row("3").contains("Not Present"), "{}", row("3"));
    let json = gm(&r.path(), &db.url, &["status", "--table", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["migrations"].as_array().unwrap().len(), 5);
    assert_eq!(doc["migrations"][0]["checksum"], "changed");
}

#[test]
fn concurrent_applies_never_lose_a_state_row() {
    let (r, db) = setup("apply_concurrent");
    db.client()
        .batch_execute("create schema hdb_catalog; create table hdb_catalog.schema_migrations (version bigint primary key, dirty boolean not null)")
        .unwrap();
    gm(&r.path(), &db.url, &["apply", "--up", "1"]).expect_code(0);
    // Four processes each apply a different version at the same moment.
    let handles: Vec<_> = (2..=5)
        .map(|v| {
            let p = r.path();
            let url = db.url.clone();
            std::thread::spawn(move || gm(&p, &url, &["apply", "--version", &v.to_string()]))
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect_code(0);
    }
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    let rows = db.rows("select version::text from hdb_catalog.schema_migrations order by version");
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(tables(&db), vec!["t1", "t2", "t3", "t4", "t5"]);
}

/// The seed page "Roll Back Applied Migrations (config v2)", step by step, with `git migrate`
/// in place of `hasura` on a database that has Hasura's catalog.
#[test]
fn seed_page_rollback_walkthrough() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("seed_walkthrough");
    db.client()
        .batch_execute(crate::test_hasura_catalog::CATALOG_DDL)
        .unwrap();
    gm(&p, &db.url, &["apply"]).expect_code(0);
    gm(&p, &db.url, &["metadata", "apply"]).expect_code(0);
    assert_eq!(db.applied().len(), 7);
    // "To roll back a particular migration version"
    gm(
        &p,
        &db.url,
        &["apply", "--version", "1700000000007", "--type", "down"],
    )
    .expect_code(0)
    .expect_contains("1 reverted");
    // "To roll back the last 2 migration versions"
    gm(&p, &db.url, &["apply", "--down", "2"])
        .expect_code(0)
        .expect_contains("2 reverted");
    assert_eq!(
        db.applied(),
        vec![1700000000001, 1700000000002, 1700000000003, 1700000000004]
    );
    // "Rolling back Hasura Metadata": check out the stable commit, apply its metadata.
    let out = std::process::Command::new("git")
        .args(["checkout", "-q", "v1.2.0"])
        .current_dir(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    gm(&p, &db.url, &["metadata", "apply"]).expect_code(0);
    gm(&p, &db.url, &["metadata", "inconsistency", "status"]).expect_code(0);
    // The result equals a fresh deploy of v1.2.0, schema and Hasura's catalog alike.
    let fresh = TestDb::new("seed_walkthrough_fresh");
    fresh
        .client()
        .batch_execute(crate::test_hasura_catalog::CATALOG_DDL)
        .unwrap();
    gm(&p, &fresh.url, &["deploy", "v1.2.0", "--yes"]).expect_code(0);
    assert_eq!(
        db.dump(true, Some("git_migrate")),
        fresh.dump(true, Some("git_migrate"))
    );
    let meta = "select metadata::text from hdb_catalog.hdb_metadata";
    assert_eq!(db.rows(meta), fresh.rows(meta));
    gm(&p, &db.url, &["status", "v1.2.0", "--exit-code"]).expect_code(0);
}

/// A config v3 project with migrations for `default` (1) and `analytics` (2), and the given
/// `databases.yaml`.
fn two_databases(databases_yaml: &str) -> TestRepo {
    let mut r = TestRepo::new();
    let mut f: Vec<(String, String)> = vec![
        (
            "config.yaml".into(),
            "version: 3\nendpoint: http://localhost:8080\nmetadata_directory: metadata\n".into(),
        ),
        ("metadata/version.yaml".into(), "version: 3\n".into()),
        (
            "metadata/databases/databases.yaml".into(),
            databases_yaml.into(),
        ),
    ];
    for (db, v) in [("default", 1), ("analytics", 2)] {
        f.push((
            format!("migrations/{db}/{v}_{db}_t/up.sql"),
            format!("create table {db}_t(id int);"),
        ));
        f.push((
            format!("migrations/{db}/{v}_{db}_t/down.sql"),
            format!("drop table {db}_t;"),
        ));
    }
    r.commit(&files(&f), &[], "two databases");
    r
}

/// A config v3 project with two databases: `--database-name` picks `migrations/<name>/` and
/// the key in Hasura's `cli_state`; a name with no folder is refused before anything runs.
#[test]
fn database_name_selects_a_config_v3_database() {
    let r = two_databases("- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB\n  tables: []\n");
    let p = r.path();
    let analytics = TestDb::new("v3_analytics");
    analytics
        .client()
        .batch_execute(
            "create schema hdb_catalog; create table hdb_catalog.hdb_version (hasura_uuid uuid primary key default gen_random_uuid(), version text not null, upgraded_on timestamptz not null default now(), cli_state jsonb not null default '{}', console_state jsonb not null default '{}')",
        )
        .unwrap();
    analytics
        .client()
        .batch_execute("insert into hdb_catalog.hdb_version (version) values ('48')")
        .unwrap();
    gm(
        &p,
        &analytics.url,
        &["apply", "--database-name", "analytics"],
    )
    .expect_code(0);
    assert_eq!(analytics.applied(), vec![2]);
    assert!(analytics.has_table("analytics_t"));
    assert!(!analytics.has_table("default_t"));
    let state = analytics
        .scalar(
            "select cli_state -> 'migrations' -> 'analytics' ->> '2' from hdb_catalog.hdb_version",
        )
        .unwrap_or_default();
    assert_eq!(state, "false");
    gm(
        &p,
        &analytics.url,
        &["status", "--database-name", "analytics", "--exit-code"],
    )
    .expect_code(0);
    // A typo is refused and names the databases there are.
    let before = analytics.dump(false, None);
    gm(
        &p,
        &analytics.url,
        &["deploy", "--yes", "--database-name", "analytycs"],
    )
    .expect_code(2)
    .expect_contains("analytics");
    assert_eq!(analytics.dump(false, None), before);
}

#[test]
fn all_databases_applies_each_through_its_own_url() {
    let r = two_databases("- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB_MAIN\n  tables: []\n- name: analytics\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB_ANALYTICS\n  tables: []\n");
    let p = r.path();
    let main = TestDb::new("all_main");
    let analytics = TestDb::new("all_analytics");
    // A missing variable names it, and nothing runs anywhere.
    crate::common::gm_env(
        &p,
        "",
        &["apply", "--all-databases"],
        &[("DB_MAIN", &main.url)],
    )
    .expect_code(2)
    .expect_contains("DB_ANALYTICS");
    assert!(!main.has_table("default_t"));
    crate::common::gm_env(
        &p,
        "",
        &["apply", "--all-databases"],
        &[("DB_MAIN", &main.url), ("DB_ANALYTICS", &analytics.url)],
    )
    .expect_code(0)
    .expect_contains("Database: analytics");
    assert_eq!(main.applied(), vec![1]);
    assert!(main.has_table("default_t") && !main.has_table("analytics_t"));
    assert_eq!(analytics.applied(), vec![2]);
    assert!(analytics.has_table("analytics_t") && !analytics.has_table("default_t"));
}
