//! `git migrate metadata diff` and `metadata apply`.

use crate::common::git::TestRepo;
use crate::common::gm;
use crate::common::pg::TestDb;

#[test]
fn diff_between_two_revisions_needs_no_database() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let r = gm(&p, "", &["metadata", "diff", "v1.1.0", "v1.2.0"]);
    r.expect_code(0).expect_contains("table public.products");
    assert_eq!(
        r.stdout.lines().filter(|l| l.starts_with("  ")).count(),
        1,
        "exactly one object changed between v1.1.0 and v1.2.0:\n{}",
        r.stdout
    );
    gm(&p, "", &["metadata", "diff", "v1.2.0", "v1.2.0"])
        .expect_code(0)
        .expect_contains("no differences");
    let j = gm(&p, "", &["metadata", "diff", "v1.0.0", "v2.0.0", "--json"]);
    j.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let objects: Vec<String> = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["object"].as_str().unwrap(),
                c["change"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "public.orders added",
        "public.reviews added",
        "public.product_ratings added",
        "public.search_products added",
    ] {
        assert!(
            objects.iter().any(|o| o == expected),
            "{expected} missing from {objects:?}"
        );
    }
}

#[test]
fn metadata_apply_changes_only_the_metadata() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("metadata_apply");
    gm(&p, &db.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    let schema = db.dump(true, Some("git_migrate"));
    let ledger = db.rows("SELECT version FROM git_migrate.migrations ORDER BY version");
    gm(&p, &db.url, &["metadata", "diff", "v1.2.0"])
        .expect_code(0)
        .expect_contains("table public.products");
    gm(&p, &db.url, &["metadata", "apply", "v1.2.0", "--yes"])
        .expect_code(0)
        .expect_contains("Applied the metadata of");
    assert_eq!(schema, db.dump(true, Some("git_migrate")));
    assert_eq!(
        ledger,
        db.rows("SELECT version FROM git_migrate.migrations ORDER BY version")
    );
    let v12 = repo
        .repo
        .revparse_single("v1.2.0")
        .unwrap()
        .id()
        .to_string();
    assert_eq!(
        db.scalar("SELECT commit FROM git_migrate.metadata")
            .as_deref(),
        Some(v12.as_str())
    );
    assert_eq!(
        db.scalar("SELECT kind FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("metadata")
    );
    // The database is still at v1.1.0 for migrations: status names that commit.
    gm(&p, &db.url, &["status", "v1.1.0"]).expect_contains("deployed    v1.1.0");
    gm(&p, &db.url, &["metadata", "diff", "v1.2.0"])
        .expect_code(0)
        .expect_contains("no differences");
    gm(&p, &db.url, &["metadata", "apply", "v1.2.0", "--yes"])
        .expect_code(0)
        .expect_contains("already matches");
}

#[test]
fn metadata_naming_a_dropped_column_aborts_the_deploy() {
    use crate::common::git::{base_project, files, migration};
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(
        1,
        "users",
        "create table users (id int primary key, email text, phone text);",
        "drop table users;",
    );
    base.extend(files(&m1));
    base.retain(|(p, _)| *p != "metadata/tables.yaml");
    base.push((
        "metadata/tables.yaml",
        "- table:\n    schema: public\n    name: users\n  select_permissions:\n    - role: user\n      permission:\n        columns: [id, email, phone]\n        filter: {phone: {_is_null: false}}\n",
    ));
    repo.commit(&base, &[], "users");
    let db = TestDb::new("dropped_column");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    // A migration drops `phone`, but the metadata still names it.
    let m2 = migration(
        2,
        "drop_phone",
        "alter table users drop column phone;",
        "alter table users add column phone text;",
    );
    repo.commit(&files(&m2), &[], "drop phone");
    let before = db.dump(false, None);
    let r = gm(&p, &db.url, &["deploy", "--yes"]);
    r.expect_code(3)
        .expect_contains("does not match the schema")
        .expect_contains("phone")
        .expect_contains("select permission for role user")
        .expect_contains("--allow-inconsistent-metadata");
    assert_eq!(
        before,
        db.dump(false, None),
        "an inconsistent deploy changed the database"
    );
    gm(
        &p,
        &db.url,
        &["deploy", "--yes", "--allow-inconsistent-metadata"],
    )
    .expect_code(0)
    .expect_contains("inconsistent metadata (allowed)");
    assert_eq!(db.applied(), vec![1, 2]);
}

#[test]
fn unified_diff_format() {
    let repo = TestRepo::shop();
    let r = gm(
        &repo.path(),
        "",
        &[
            "metadata", "diff", "v1.1.0", "v1.2.0", "--format", "unified",
        ],
    );
    r.expect_code(0)
        .expect_contains("--- v1.1.0")
        .expect_contains("+++ v1.2.0");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with('+') && l.contains("price")),
        "the added column shows as a + line:\n{}",
        r.stdout
    );
}

#[test]
fn deploy_writes_hasura_catalog_and_keeps_the_source_configuration() {
    use crate::common::git::{base_project, files, migration};
    use crate::test_hasura_catalog::{live_metadata, CATALOG_DDL};
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(
        1,
        "users",
        "create table users (id int primary key);",
        "drop table users;",
    );
    base.extend(files(&m1));
    base.retain(|(p, _)| *p != "metadata/tables.yaml");
    base.push((
        "metadata/tables.yaml",
        "- table:\n    schema: public\n    name: users\n",
    ));
    repo.commit(&base, &[], "users");
    let db = TestDb::new("hasura_catalog_deploy");
    let mut c = db.client();
    c.batch_execute(CATALOG_DDL).unwrap();
    c.execute(
        "INSERT INTO hdb_catalog.hdb_metadata (id, metadata, resource_version) VALUES (1, $1::text::json, 7)",
        &[&live_metadata().to_string()],
    )
    .unwrap();
    let config_before =
        db.scalar("SELECT metadata->'sources'->0->>'configuration' FROM hdb_catalog.hdb_metadata");
    gm(&repo.path(), &db.url, &["deploy", "--yes"]).expect_code(0);
    assert_eq!(
        db.scalar("SELECT resource_version FROM hdb_catalog.hdb_metadata")
            .as_deref(),
        Some("8")
    );
    assert_eq!(
        db.scalar("SELECT metadata->'sources'->0->>'configuration' FROM hdb_catalog.hdb_metadata"),
        config_before,
        "the live source's connection settings must be kept"
    );
    assert_eq!(
        db.scalar("SELECT metadata->'sources'->0->'tables'->0->'table'->>'name' FROM hdb_catalog.hdb_metadata").as_deref(),
        Some("users")
    );
    assert_eq!(
        db.scalar("SELECT resource_version FROM hdb_catalog.hdb_schema_notifications WHERE id = 1")
            .as_deref(),
        Some("8")
    );
    // A console edit on the server side (the table untracked) is what `metadata diff` compares.
    db.client()
        .batch_execute(
            "UPDATE hdb_catalog.hdb_metadata SET metadata = jsonb_set(metadata::jsonb, '{sources,0,tables}', '[]')::json",
        )
        .unwrap();
    gm(&repo.path(), &db.url, &["metadata", "diff"])
        .expect_code(0)
        .expect_contains("table public.users added");
}

#[test]
fn actions_from_actions_graphql_are_merged_into_hasura_catalog() {
    use crate::test_hasura_catalog::CATALOG_DDL;
    let repo = TestRepo::shop();
    let db = TestDb::new("hasura_catalog_actions");
    db.client().batch_execute(CATALOG_DDL).unwrap();
    gm(&repo.path(), &db.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    // place_order's argument and output types come from actions.graphql.
    let def = db
        .scalar("SELECT metadata->'actions'->0->'definition' FROM hdb_catalog.hdb_metadata")
        .unwrap();
    let def: serde_json::Value = serde_json::from_str(&def).unwrap();
    assert_eq!(def["type"], "mutation");
    assert_eq!(def["output_type"], "PlaceOrderOutput");
    assert!(
        def["arguments"].as_array().is_some_and(|a| !a.is_empty()),
        "{def}"
    );
    assert_eq!(
        db.scalar("SELECT metadata::jsonb ? 'actions_graphql' FROM hdb_catalog.hdb_metadata")
            .as_deref(),
        Some("f")
    );
    // --skip-hasura-catalog leaves the catalog alone.
    let before = db.scalar("SELECT resource_version FROM hdb_catalog.hdb_metadata");
    gm(
        &repo.path(),
        &db.url,
        &["deploy", "v1.2.0", "--yes", "--skip-hasura-catalog"],
    )
    .expect_code(0);
    assert_eq!(
        db.scalar("SELECT resource_version FROM hdb_catalog.hdb_metadata"),
        before
    );
}

#[test]
fn inconsistency_status_list_and_clear() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let db = TestDb::new("inconsistency_cmds");
    gm(&p, &db.url, &["metadata", "inconsistency", "status"]).expect_code(2);
    gm(&p, &db.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["metadata", "inconsistency", "status"])
        .expect_code(0)
        .expect_contains("matches the schema");
    // Someone drops a column by hand: the live metadata no longer matches.
    db.client()
        .batch_execute("ALTER TABLE orders DROP COLUMN status")
        .unwrap();
    gm(&p, &db.url, &["metadata", "inconsistency", "status"])
        .expect_code(1)
        .expect_contains("status");
    let list = gm(
        &p,
        &db.url,
        &["metadata", "inconsistency", "list", "--json"],
    );
    list.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(doc["consistent"], false);
    gm(&p, &db.url, &["metadata", "reload"]).expect_code(1);
    // Clearing the metadata makes it trivially consistent; the migrations stay.
    gm(&p, &db.url, &["metadata", "clear", "--yes"])
        .expect_code(0)
        .expect_contains("table public.orders removed");
    gm(&p, &db.url, &["metadata", "inconsistency", "status"]).expect_code(0);
    assert_eq!(db.applied().len(), 4);
}

#[test]
fn export_writes_the_live_metadata_in_the_project_layout() {
    for fixture in ["shop", "shop-v3"] {
        let repo = TestRepo::fixture(fixture);
        let p = repo.path();
        let db = TestDb::new(&format!("export_{}", fixture.replace('-', "_")));
        gm(&p, &db.url, &["deploy", "v1.2.0", "--yes"]).expect_code(0);
        // The working tree is at v2.0.0: exporting writes v1.2.0's metadata over it.
        gm(&p, &db.url, &["metadata", "export"])
            .expect_code(0)
            .expect_contains("file(s) written");
        let st = gm(&p, &db.url, &["status", "--worktree", "--json"]);
        st.expect_code(0);
        let doc: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
        assert_eq!(doc["metadata"]["in_sync"], true, "{fixture}: {}", st.stdout);
        if fixture == "shop-v3" {
            assert!(
                !p.join("metadata/databases/default/tables/public_reviews.yaml")
                    .exists(),
                "the stale per-table file of a table v1.2.0 does not track is removed"
            );
            assert!(p
                .join("metadata/databases/default/tables/public_orders.yaml")
                .exists());
        }
    }
}
