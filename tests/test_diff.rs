//! `git migrate diff`: the schema (and metadata) difference between two states, each a
//! revision (replayed in a scratch database, kept as a template), `live` or the working tree.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm_env, Run};
use git_migrate_core::verify::fingerprint::{diff_ignoring_column_order, Fingerprint};

const EXCLUDED: &[&str] = &["git_migrate", "hdb_catalog"];

/// Runs git-migrate against `db` with `scratch` as the scratch server.
fn run(r: &TestRepo, db: &str, scratch: &TestDb, args: &[&str]) -> Run {
    gm_env(
        &r.path(),
        db,
        args,
        &[("GIT_MIGRATE_SCRATCH_URL", &scratch.url)],
    )
}

fn fingerprint(db: &TestDb) -> Fingerprint {
    Fingerprint::take(&mut db.client(), EXCLUDED).expect("fingerprint")
}

/// Writes `files` into the working tree (commits are made from objects alone).
pub(crate) fn write_worktree(r: &TestRepo, files: &[(String, String)]) {
    for (path, text) in files {
        let p = r.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// One commit with a table `orders`, checked out.
fn orders_repo() -> TestRepo {
    let mut r = TestRepo::new();
    let mut f = base_project_with(&[]);
    f.extend(migration(
        100,
        "orders",
        "create table orders(id serial primary key, email text);",
        "drop table orders;",
    ));
    r.commit(&files(&f), &[], "base");
    write_worktree(&r, &f);
    r
}

#[test]
fn a_diff_of_two_revisions_names_the_objects_and_its_ddl_reproduces_the_second() {
    let r = TestRepo::shop();
    let scratch = TestDb::new("diff_scratch");
    let out = run(
        &r,
        "",
        &scratch,
        &["diff", "v1.0.0", "v2.0.0", "--schema", "--schema-only"],
    );
    out.expect_code(1)
        .expect_contains("-- git migrate diff: v1.0.0 (")
        .expect_contains("-- creates table public.orders")
        .expect_contains("CREATE TABLE public.orders")
        .expect_contains("schema of v2.0.0 (");
    assert!(!out.stdout.contains("-- metadata"), "{}", out.all());

    // The script, run on a database at v1.0.0, gives the schema a fresh deploy of v2.0.0 gives.
    let a = TestDb::new("diff_a");
    crate::common::gm(&r.path(), &a.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    let mut c = a.client();
    let mut tx = c.transaction().unwrap();
    tx.batch_execute(&out.stdout)
        .unwrap_or_else(|e| panic!("the diff does not run: {e:?}\n{}", out.stdout));
    tx.commit().unwrap();
    let b = TestDb::new("diff_b");
    crate::common::gm(&r.path(), &b.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    let left = diff_ignoring_column_order(&fingerprint(&a), &fingerprint(&b));
    assert!(left.is_empty(), "the diff left differences: {left:?}");

    // A second diff of the same revisions copies the kept templates: no replay.
    let again = run(
        &r,
        "",
        &scratch,
        &["diff", "v1.0.0", "v2.0.0", "--schema-only"],
    );
    again
        .expect_code(1)
        .expect_contains("schema of v1.0.0 (")
        .expect_contains("read from the kept template");
    assert_eq!(again.stdout, out.stdout);
    let kept = scratch
        .scalar("select count(*) from pg_database where datname like 'git\\_migrate\\_tpl\\_%'");
    assert!(
        kept.and_then(|k| k.parse::<i64>().ok()).unwrap_or(0) >= 2,
        "the two replays are kept as templates"
    );
}

#[test]
fn a_diff_of_a_state_with_itself_exits_0_without_a_scratch_database() {
    let r = TestRepo::shop();
    // No scratch server can be reached: equal ups need no replay.
    let out = gm_env(
        &r.path(),
        "",
        &["diff", "v2.0.0", "v2.0.0"],
        &[(
            "GIT_MIGRATE_SCRATCH_URL",
            "postgresql://nobody@127.0.0.1:1/none",
        )],
    );
    out.expect_code(0)
        .expect_contains("-- schema: no differences")
        .expect_contains("-- metadata: no differences");
    // v1.2.0 only changed the metadata: the schema is the same as v1.1.0's.
    let out = gm_env(
        &r.path(),
        "",
        &["diff", "v1.1.0", "v1.2.0", "--json"],
        &[(
            "GIT_MIGRATE_SCRATCH_URL",
            "postgresql://nobody@127.0.0.1:1/none",
        )],
    );
    out.expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(doc["differences"], true);
    assert_eq!(doc["schema"]["statements"], serde_json::json!([]));
    assert!(!doc["metadata"].as_array().unwrap().is_empty(), "{doc}");
}

#[test]
fn live_against_a_revision_and_the_working_tree() {
    let r = orders_repo();
    let db = TestDb::new("diff_live");
    let scratch = TestDb::new("diff_live_scratch");
    crate::common::gm(&r.path(), &db.url, &["deploy", "--yes"]).expect_code(0);
    run(&r, &db.url, &scratch, &["diff", "--schema-only"])
        .expect_code(0)
        .expect_contains("-- git migrate diff: live -> HEAD = ");

    // A hand change: live -> HEAD drops it, HEAD -> live makes it.
    db.client()
        .batch_execute(
            "alter table orders add column note text; create index orders_email on orders(email);",
        )
        .unwrap();
    let out = run(&r, &db.url, &scratch, &["diff", "--schema-only", "--json"]);
    out.expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let objects = doc["schema"]["objects"].to_string();
    assert!(objects.contains("public.orders.note"), "{doc}");
    assert!(objects.contains("\"drop\""), "{doc}");
    let out = run(
        &r,
        &db.url,
        &scratch,
        &["diff", "HEAD", "live", "--schema-only"],
    );
    out.expect_code(1)
        .expect_contains("ALTER TABLE public.orders ADD COLUMN note text;")
        .expect_contains("CREATE INDEX orders_email ON public.orders USING btree (email);");

    // The working tree as the last state.
    std::fs::create_dir_all(r.path().join("migrations/200_items")).unwrap();
    std::fs::write(
        r.path().join("migrations/200_items/up.sql"),
        "create table items(id int);",
    )
    .unwrap();
    std::fs::write(
        r.path().join("migrations/200_items/down.sql"),
        "drop table items;",
    )
    .unwrap();
    run(
        &r,
        "",
        &scratch,
        &["diff", "HEAD", "--worktree", "--schema-only"],
    )
    .expect_code(1)
    .expect_contains("-> the working tree")
    .expect_contains("CREATE TABLE public.items");
    run(&r, "", &scratch, &["diff", "HEAD", "HEAD", "--worktree"])
        .expect_code(2)
        .expect_contains("at most one state with --worktree");
}

/// The one folder under migrations/ whose name ends with `_{name}`.
fn written_folder(r: &TestRepo, name: &str) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(r.path().join("migrations"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(&format!("_{name}")))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn drift_is_codified_as_a_migration_that_deploys_elsewhere_and_is_recorded_here() {
    let mut r = orders_repo();
    let db = TestDb::new("drift_one");
    let scratch = TestDb::new("drift_scratch");
    crate::common::gm(&r.path(), &db.url, &["deploy", "--yes"]).expect_code(0);
    run(
        &r,
        &db.url,
        &scratch,
        &["create", "nothing", "--from-live", "--metadata"],
    )
    .expect_code(0)
    .expect_contains("no schema difference")
    .expect_contains("exported the live metadata into metadata");
    assert!(!r.path().join("migrations").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("_nothing")));

    // A hand change on production.
    db.client()
        .batch_execute(
            "alter table orders add column note text; create index orders_email on orders(email);",
        )
        .unwrap();
    // --dry-run shows the files and writes nothing.
    let shown = run(
        &r,
        &db.url,
        &scratch,
        &["create", "fix", "--from-live", "--dry-run"],
    );
    shown
        .expect_code(0)
        .expect_contains("would create migrations/")
        .expect_contains("ALTER TABLE public.orders ADD COLUMN note text;")
        .expect_contains("proven in a scratch database");
    assert!(!r.path().join("migrations").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("_fix")));

    let out = run(&r, &db.url, &scratch, &["create", "fix", "--from-live"]);
    out.expect_code(0)
        .expect_contains("Created migrations/")
        .expect_contains("up.sql: 2 statement(s), down.sql: 2 statement(s)")
        .expect_contains("proven in a scratch database")
        .expect_contains("--skip-execution");
    let folder = written_folder(&r, "fix");
    let up = std::fs::read_to_string(folder.join("up.sql")).unwrap();
    let down = std::fs::read_to_string(folder.join("down.sql")).unwrap();
    assert!(
        up.contains("ALTER TABLE public.orders ADD COLUMN note text;"),
        "{up}"
    );
    assert!(
        up.contains("CREATE INDEX orders_email ON public.orders USING btree (email);"),
        "{up}"
    );
    assert!(down.contains("DROP INDEX public.orders_email;"), "{down}");
    assert!(
        down.contains("ALTER TABLE public.orders DROP COLUMN note;"),
        "{down}"
    );
    assert_eq!(up.matches(';').count(), 2, "{up}");

    // Committed and deployed to a second database: the two are the same.
    r.commit_worktree("codify the hand change");
    let other = TestDb::new("drift_two");
    crate::common::gm(&r.path(), &other.url, &["deploy", "--yes"]).expect_code(0);
    let left = diff_ignoring_column_order(&fingerprint(&db), &fingerprint(&other));
    assert!(left.is_empty(), "{left:?}");

    // Recorded on the first database, which already has the change: in sync.
    let version = folder
        .file_name()
        .unwrap()
        .to_string_lossy()
        .split('_')
        .next()
        .unwrap()
        .to_string();
    crate::common::gm(
        &r.path(),
        &db.url,
        &["apply", "--version", &version, "--skip-execution"],
    )
    .expect_code(0);
    let status = crate::common::gm(&r.path(), &db.url, &["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(doc["in_sync"], true, "{}", status.all());
    run(&r, &db.url, &scratch, &["diff", "--schema-only"]).expect_code(0);
}

#[test]
fn a_migration_between_two_revisions_and_its_json() {
    let r = TestRepo::shop();
    let scratch = TestDb::new("drift_revs_scratch");
    let out = run(
        &r,
        "",
        &scratch,
        &[
            "create",
            "redo",
            "--from",
            "v1.1.0",
            "--to",
            "v1.0.0",
            "--dry-run",
            "--json",
        ],
    );
    out.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(doc["written"], false);
    assert_eq!(doc["proven"], true, "{doc}");
    assert!(
        doc["up_sql"]
            .as_str()
            .unwrap()
            .contains("DROP TABLE public.orders;"),
        "{doc}"
    );
    assert!(
        doc["down_sql"]
            .as_str()
            .unwrap()
            .contains("CREATE TABLE public.orders"),
        "{doc}"
    );
    assert!(
        doc["down_destroys"].as_array().unwrap().is_empty()
            && doc["up_statements"].as_u64().unwrap() > 0,
        "{doc}"
    );
    run(
        &r,
        "",
        &scratch,
        &["create", "x", "--from", "v1.0.0", "--to", "v1.0.0"],
    )
    .expect_code(2)
    .expect_contains("the same state");
    run(&r, "", &scratch, &["create", "x", "--dry-run"]).expect_code(2);
}
