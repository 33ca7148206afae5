//! Config v3 projects (metadata with `!include`, migrations per database) and a v2 → v3 layout
//! change in history.

use crate::common::git::TestRepo;
use crate::common::gm;
use crate::common::pg::TestDb;

fn tag_commit(repo: &TestRepo, tag: &str) -> String {
    repo.repo.revparse_single(tag).unwrap().id().to_string()
}

#[test]
fn v3_project_deploys_and_rolls_back_like_a_fresh_deploy() {
    let repo = TestRepo::fixture("shop-v3");
    let p = repo.path();
    let db = TestDb::new("v3_rollback");
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"])
        .expect_code(0)
        .expect_contains("7 applied");
    assert_eq!(
        db.scalar("SELECT snapshot->>'version' FROM git_migrate.metadata")
            .as_deref(),
        Some("3")
    );
    // Per-table files were included: the default source tracks reviews.
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM git_migrate.metadata, jsonb_array_elements(snapshot->'sources'->0->'tables') t \
             WHERE t->'table'->>'name' = 'reviews'"
        )
        .as_deref(),
        Some("1")
    );
    gm(&p, &db.url, &["rollback", "v1.0.0", "--yes"]).expect_code(0);
    let fresh = TestDb::new("v3_fresh");
    gm(&p, &fresh.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(
        db.dump(true, Some("git_migrate")),
        fresh.dump(true, Some("git_migrate"))
    );
    let meta = "SELECT sha256, commit FROM git_migrate.metadata";
    assert_eq!(db.rows(meta), fresh.rows(meta));
}

#[test]
fn v3_metadata_only_commit_rolls_back_alone() {
    let repo = TestRepo::fixture("shop-v3");
    let p = repo.path();
    let db = TestDb::new("v3_meta_only");
    gm(&p, &db.url, &["deploy", "v1.2.0", "--yes"]).expect_code(0);
    let r = gm(&p, &db.url, &["rollback", "v1.1.0", "--yes"]);
    r.expect_code(0)
        .expect_contains("0 reverted")
        .expect_contains("metadata updated")
        .expect_contains("table public.products changed");
    assert_eq!(
        db.scalar("SELECT commit FROM git_migrate.metadata")
            .as_deref(),
        Some(tag_commit(&repo, "v1.1.0").as_str())
    );
}

#[test]
fn v2_and_v3_layouts_of_the_same_project_differ_only_in_version() {
    // The same metadata content written in the two layouts: the only change is the format.
    let v2 = TestRepo::fixture("shop");
    let v3 = TestRepo::fixture("shop-v3");
    for tag in ["v1.0.0", "v1.1.0", "v1.2.0", "v2.0.0"] {
        let db = TestDb::new(&format!("layouts_{}", tag.replace('.', "_")));
        gm(&v2.path(), &db.url, &["deploy", tag, "--yes"]).expect_code(0);
        let r = gm(&v3.path(), &db.url, &["metadata", "diff", tag, "--json"]);
        r.expect_code(0);
        let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let changes: Vec<String> = doc["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {} {}", c["section"], c["object"], c["change"]))
            .collect();
        assert!(
            changes.iter().all(|c| c.starts_with("\"version\"")),
            "{tag}: the v2 and v3 layouts differ beyond the version: {changes:?}"
        );
    }
}

#[test]
fn rolls_back_across_a_v2_to_v3_layout_change() {
    let repo = TestRepo::fixture("shop-migrating");
    let p = repo.path();
    let db = TestDb::new("layout_change");
    gm(&p, &db.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    // v1.2.0 converts the project to config v3 (migrations move to migrations/default/).
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"])
        .expect_code(0)
        .expect_contains("3 applied");
    gm(&p, &db.url, &["rollback", "v1.1.0", "--yes"])
        .expect_code(0)
        .expect_contains("3 reverted");
    gm(&p, &db.url, &["rollback", "v1.0.0", "--yes"])
        .expect_code(0)
        .expect_contains("2 reverted");
    let fresh = TestDb::new("layout_change_fresh");
    gm(&p, &fresh.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(
        db.dump(true, Some("git_migrate")),
        fresh.dump(true, Some("git_migrate"))
    );
    let meta = "SELECT sha256 FROM git_migrate.metadata";
    assert_eq!(db.rows(meta), fresh.rows(meta));
}

#[test]
fn broken_includes_are_clear_errors() {
    let repo = TestRepo::fixture("shop-v3");
    let p = repo.path();
    let db = TestDb::new("broken_include");
    // Point an include at a file that does not exist, in a new commit.
    let mut repo = repo;
    let tables = "metadata/databases/default/tables/tables.yaml";
    let text = {
        let blob = repo
            .repo
            .revparse_single(&format!("HEAD:{tables}"))
            .unwrap()
            .peel_to_blob()
            .unwrap();
        String::from_utf8(blob.content().to_vec()).unwrap()
    };
    let broken = format!("{text}- \"!include public_missing.yaml\"\n");
    repo.commit(&[(tables, broken.as_str())], &[], "include a missing file");
    let out = gm(&p, &db.url, &["deploy", "--yes"]);
    out.expect_code(2)
        .expect_contains("public_missing.yaml")
        .expect_contains("databases.yaml");
    assert!(!db.has_table("git_migrate.migrations"));
    // A cycle.
    repo.commit(
        &[
            (
                "metadata/databases/default/tables/public_customers.yaml",
                "table:\n  schema: public\n  name: customers\nx: \"!include tables.yaml\"\n",
            ),
            (tables, text.as_str()),
        ],
        &[],
        "include cycle",
    );
    gm(&p, &db.url, &["plan", "HEAD"])
        .expect_code(2)
        .expect_contains("cycle");
}

/// Migration folders left directly under `migrations/` of a config v3 project (config.yaml
/// changed by hand, folders not moved) are read by no one; a warning says where they belong
/// instead of a silent "nothing to change". Folders where v3 reads them give no warning.
#[test]
fn v2_folders_in_a_v3_project_are_named_not_silently_skipped() {
    let mut repo = TestRepo::new();
    let db = TestDb::new("v3_flat");
    repo.commit(
        &[
            (
                "config.yaml",
                "version: 3\nendpoint: http://localhost:8080\n",
            ),
            ("metadata/version.yaml", "version: 3\n"),
            ("metadata/databases/databases.yaml", "[]\n"),
            (
                "migrations/1700000000001_users/up.sql",
                "CREATE TABLE users (id int);",
            ),
            (
                "migrations/1700000000001_users/down.sql",
                "DROP TABLE users;",
            ),
            (
                "migrations/1700000000002_orders/up.sql",
                "CREATE TABLE orders (id int);",
            ),
        ],
        &[],
        "v3 config, v2 layout",
    );
    let p = repo.path();
    gm(&p, &db.url, &["plan", "HEAD"])
        .expect_code(0)
        .expect_contains("warning: migrations/1700000000001_users and 1 more migration folder(s) @ ")
        .expect_contains("not read: config.yaml is version 3, which reads each database's migrations from migrations/<database>/ (here migrations/default/)");
    repo.commit(
        &[
            (
                "migrations/default/1700000000001_users/up.sql",
                "CREATE TABLE users (id int);",
            ),
            (
                "migrations/default/1700000000001_users/down.sql",
                "DROP TABLE users;",
            ),
        ],
        &[
            "migrations/1700000000001_users/up.sql",
            "migrations/1700000000001_users/down.sql",
            "migrations/1700000000002_orders/up.sql",
        ],
        "moved",
    );
    let out = gm(&p, &db.url, &["plan", "HEAD"]);
    out.expect_code(0).expect_contains("1700000000001_users");
    assert!(!out.all().contains("not read"), "{}", out.all());
}
