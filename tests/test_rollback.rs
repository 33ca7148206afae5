//! Rolling back: to an ancestor tag (equal to a fresh deploy of it), across a metadata-only
//! commit, without an argument, when downs are missing or empty, and when the deployed commit
//! is gone from the repository.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;

fn ledger_rows(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.rows("SELECT version, name, up_sha256, down_sha256, up_blob FROM git_migrate.migrations ORDER BY version")
}

#[test]
fn rollback_to_ancestor_equals_fresh_deploy() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let rolled = TestDb::new("rolled");
    gm(&p, &rolled.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    gm(&p, &rolled.url, &["rollback", "v1.0.0", "--yes"])
        .expect_code(0)
        .expect_contains("5 reverted");
    let fresh = TestDb::new("fresh");
    gm(&p, &fresh.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(
        rolled.dump(true, Some("git_migrate")),
        fresh.dump(true, Some("git_migrate")),
        "schema after rollback differs from a fresh deploy of v1.0.0"
    );
    assert_eq!(ledger_rows(&rolled), ledger_rows(&fresh));
    let meta = "SELECT sha256, commit, tree_id FROM git_migrate.metadata";
    assert_eq!(rolled.rows(meta), fresh.rows(meta));
    let v1 = repo
        .repo
        .revparse_single("v1.0.0")
        .unwrap()
        .id()
        .to_string();
    assert_eq!(
        rolled
            .scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        rolled
            .scalar("SELECT kind FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("rollback")
    );
    // Data from the data-only migration is gone, data of v1.0.0 tables is intact. Sequence
    // positions are not transactional in PostgreSQL (the seed migration used ids), so they
    // are left out of the comparison.
    let data = |db: &TestDb| {
        db.dump(false, Some("git_migrate"))
            .lines()
            .filter(|l| !l.contains("pg_catalog.setval"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(data(&rolled), data(&fresh));
}

#[test]
fn rollback_across_metadata_only_commit() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("meta_only");
    gm(&p, &db.url, &["deploy", "v1.2.0", "--yes"]).expect_code(0);
    let price = "SELECT snapshot::text LIKE '%price%' FROM git_migrate.metadata";
    assert_eq!(db.scalar(price).as_deref(), Some("t"));
    let before_schema = db.dump(true, Some("git_migrate"));
    let r = gm(&p, &db.url, &["rollback", "v1.1.0", "--yes"]);
    r.expect_code(0)
        .expect_contains("0 reverted")
        .expect_contains("metadata updated")
        .expect_contains("table public.products changed");
    assert_eq!(db.scalar(price).as_deref(), Some("f"));
    assert_eq!(before_schema, db.dump(true, Some("git_migrate")));
    let fresh = TestDb::new("meta_only_fresh");
    gm(&p, &fresh.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    let meta = "SELECT sha256, commit FROM git_migrate.metadata";
    assert_eq!(db.rows(meta), fresh.rows(meta));
}

#[test]
fn rollback_without_argument_undoes_the_last_deployment() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("rollback_noarg");
    gm(&p, &db.url, &["rollback", "--yes"])
        .expect_code(3)
        .expect_contains("nothing to roll back");
    gm(&p, &db.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["rollback", "--yes"])
        .expect_code(0)
        .expect_contains("v1.1.0");
    assert_eq!(db.applied().len(), 4);
    // Rolling back the first deployment goes back to the empty state.
    gm(&p, &db.url, &["rollback", "v1.0.0", "--yes"]).expect_code(0);
    let r = gm(&p, &db.url, &["rollback", "v2.0.0", "--yes"]);
    r.expect_code(3)
        .expect_contains("use `git migrate deploy v2.0.0`");
    assert_eq!(db.applied().len(), 2);
}

#[test]
fn rollback_to_before_first_deployment_empties_the_schema() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("rollback_empty");
    let empty = db.dump(true, Some("git_migrate"));
    gm(&p, &db.url, &["deploy", "v1.1.0", "--yes", "--no-prelude"]).expect_code(0);
    gm(&p, &db.url, &["rollback", "--yes"]).expect_code(0);
    assert!(db.applied().is_empty());
    assert_eq!(empty, db.dump(true, Some("git_migrate")));
}

#[test]
fn missing_empty_and_comment_only_downs_refuse_before_anything_runs() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    let c1 = repo.commit(&base, &[], "one");
    repo.tag("v1", c1);
    let m2 = migration(2, "empty", "create table b (id int);", "");
    let m3 = migration(
        3,
        "comments",
        "create table c (id int);",
        "-- Could not auto-generate a down migration.\n-- Please write an appropriate down migration for the SQL below:\n-- create table c (id int);\n",
    );
    let mut f = files(&m2);
    f.extend(files(&m3));
    f.push(("migrations/4_nodown/up.sql", "create table d (id int);"));
    f.push(("migrations/5_fine/up.sql", "create table e (id int);"));
    f.push(("migrations/5_fine/down.sql", "drop table e;"));
    repo.commit(&f, &[], "four more");
    let db = TestDb::new("downs");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("3 migration(s) to apply have no usable down.sql");
    let before = db.dump(false, None);
    let r = gm(&p, &db.url, &["rollback", "v1", "--yes"]);
    r.expect_code(3)
        .expect_contains("cannot revert 4_nodown: it has no down migration")
        .expect_contains("cannot revert 3_comments: its down migration is empty")
        .expect_contains("cannot revert 2_empty: its down migration is empty")
        .expect_contains("--allow-empty-down");
    assert_eq!(
        before,
        db.dump(false, None),
        "a refused rollback changed something"
    );
    gm(
        &p,
        &db.url,
        &["rollback", "v1", "--yes", "--allow-empty-down"],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![1]);
    // 5 was really reverted; the no-op ones left their tables (nothing ran for them).
    assert!(!db.has_table("public.e"));
    assert!(db.has_table("public.b") && db.has_table("public.c") && db.has_table("public.d"));
}

#[test]
fn down_from_supplies_a_down_written_later() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "");
    base.extend(files(&m1));
    repo.commit(&base, &[], "one");
    let db = TestDb::new("down_from");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    let fixed = repo.commit(
        &[("migrations/1_a/down.sql", "drop table a;")],
        &[],
        "write the down",
    );
    repo.branch("fix", fixed);
    // The deployed commit's down is empty (the code that actually ran): refused.
    gm(&p, &db.url, &["rollback", "--yes"])
        .expect_code(3)
        .expect_contains("its down migration is empty");
    assert!(db.has_table("public.a"));
    let r = gm(&p, &db.url, &["rollback", "--yes", "--down-from", "fix"]);
    r.expect_code(0);
    assert!(db.applied().is_empty());
    assert!(!db.has_table("public.a"));
}

#[test]
fn rollback_uses_ledger_down_when_deployed_commit_is_gone() {
    // Deploy from one repository, then roll back from another clone whose history was
    // rewritten (force-push): the deployed commit does not exist there.
    let mut original = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    original.commit(&base, &[], "one");
    let m2 = migration(2, "b", "create table b (id int);", "drop table b;");
    original.commit(&files(&m2), &[], "two");
    let db = TestDb::new("ledger_down");
    gm(&original.path(), &db.url, &["deploy", "--yes"]).expect_code(0);

    let mut rewritten = TestRepo::new();
    let mut base2 = base_project();
    base2.extend(files(&m1));
    let only_one = rewritten.commit(&base2, &[], "one (rewritten)");
    rewritten.tag("v1", only_one);
    let r = gm(&rewritten.path(), &db.url, &["rollback", "v1", "--yes"]);
    r.expect_code(0)
        .expect_contains("using the down SQL stored in the ledger")
        .expect_contains("not in this repository");
    assert_eq!(db.applied(), vec![1]);
    assert!(!db.has_table("public.b"));
}
