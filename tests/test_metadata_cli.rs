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
    let before = db.dump_ignoring_failed_attempts();
    let r = gm(&p, &db.url, &["deploy", "--yes"]);
    r.expect_code(3)
        .expect_contains("does not match the schema")
        .expect_contains("phone")
        .expect_contains("select permission for role user")
        .expect_contains("--allow-inconsistent-metadata");
    assert_eq!(
        before,
        db.dump_ignoring_failed_attempts(),
        "an inconsistent deploy changed the database"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.deployments WHERE status = 'failed'")
            .as_deref(),
        Some("1"),
        "the failed attempt is recorded"
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

/// A config v3 project with two sources and per-table files, for `metadata diff A B` between
/// revisions (content addressing: files shared by both revisions are not parsed).
fn v3_project() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "config.yaml",
            "version: 3\nendpoint: http://localhost:8080\nmetadata_directory: metadata\n",
        ),
        ("metadata/version.yaml", "version: 3\n"),
        (
            "metadata/databases/databases.yaml",
            "- name: default\n  kind: postgres\n  configuration: {connection_info: {database_url: {from_env: DB}}}\n  tables: \"!include default/tables/tables.yaml\"\n\
             - name: other\n  kind: postgres\n  configuration: {connection_info: {database_url: {from_env: OTHER}}}\n  tables: \"!include other/tables/tables.yaml\"\n",
        ),
        (
            "metadata/databases/default/tables/tables.yaml",
            "- \"!include public_a.yaml\"\n- \"!include public_b.yaml\"\n- \"!include public_c.yaml\"\n",
        ),
        (
            "metadata/databases/default/tables/public_a.yaml",
            "table:\n  name: a\n  schema: public\nselect_permissions: !include perms/a_select.yaml\n",
        ),
        (
            "metadata/databases/default/tables/perms/a_select.yaml",
            "- role: user\n  permission:\n    columns: [id, name]\n    filter: {}\n",
        ),
        (
            "metadata/databases/default/tables/public_b.yaml",
            "table:\n  name: b\n  schema: public\n",
        ),
        (
            "metadata/databases/default/tables/public_c.yaml",
            "table:\n  name: c\n  schema: public\nselect_permissions:\n  - role: user\n    permission: {columns: [id], filter: {}}\n",
        ),
        (
            "metadata/databases/other/tables/tables.yaml",
            "- \"!include public_d.yaml\"\n",
        ),
        (
            "metadata/databases/other/tables/public_d.yaml",
            "table:\n  name: d\n  schema: public\n",
        ),
    ]
}

/// The `object change` pairs of `metadata diff A B --json`.
fn v3_changes(p: &std::path::Path, a: &str, b: &str) -> Vec<String> {
    let r = gm(p, "", &["metadata", "diff", a, b, "--json"]);
    r.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let details: Vec<&str> = c["details"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect();
            format!(
                "{} {} {}{}",
                c["section"].as_str().unwrap(),
                c["object"].as_str().unwrap(),
                c["change"].as_str().unwrap(),
                if details.is_empty() {
                    String::new()
                } else {
                    format!(": {}", details.join("; "))
                }
            )
        })
        .collect()
}

#[test]
fn v3_diff_of_a_table_file_moved_to_another_source() {
    // The same blob in both revisions, but included by the other source: its sentinels do not
    // match, so both snapshots are built in full.
    let mut repo = TestRepo::new();
    let p = repo.path();
    let base = v3_project();
    let c1 = repo.commit(&base, &[], "two sources");
    let c_file = base
        .iter()
        .find(|(f, _)| f.ends_with("public_c.yaml"))
        .unwrap()
        .1;
    let c2 = repo.commit(
        &[
            (
                "metadata/databases/default/tables/tables.yaml",
                "- \"!include public_a.yaml\"\n- \"!include public_b.yaml\"\n",
            ),
            (
                "metadata/databases/other/tables/tables.yaml",
                "- \"!include public_d.yaml\"\n- \"!include public_c.yaml\"\n",
            ),
            ("metadata/databases/other/tables/public_c.yaml", c_file),
        ],
        &["metadata/databases/default/tables/public_c.yaml"],
        "c moves to the other source",
    );
    repo.tag("one", c1);
    repo.tag("two", c2);
    assert_eq!(
        v3_changes(&p, "one", "two"),
        [
            "tables default.public.c removed",
            "tables other.public.c added"
        ]
    );
    assert_eq!(
        v3_changes(&p, "two", "one"),
        [
            "tables default.public.c added",
            "tables other.public.c removed"
        ]
    );
    gm(&p, "", &["metadata", "diff", "one", "two"])
        .expect_code(0)
        .expect_contains("table other.public.c added");
}

#[test]
fn v3_diff_sees_a_change_below_an_unchanged_file() {
    // public_a.yaml is the same blob in both revisions, but it includes a file that changed:
    // it must be read and its include followed, not skipped.
    let mut repo = TestRepo::new();
    let p = repo.path();
    let c1 = repo.commit(&v3_project(), &[], "two sources");
    let c2 = repo.commit(
        &[
            (
                "metadata/databases/default/tables/perms/a_select.yaml",
                "- role: user\n  permission:\n    columns: [id, name, email]\n    filter: {}\n",
            ),
            // A changed table next to unchanged ones, and one unchanged table file removed.
            (
                "metadata/databases/default/tables/public_b.yaml",
                "table:\n  name: b\n  schema: public\nselect_permissions:\n  - role: user\n    permission: {columns: [id], filter: {}}\n",
            ),
            (
                "metadata/databases/other/tables/tables.yaml",
                "[]\n",
            ),
        ],
        &["metadata/databases/other/tables/public_d.yaml"],
        "a's permission gains a column",
    );
    repo.tag("one", c1);
    repo.tag("two", c2);
    assert_eq!(
        v3_changes(&p, "one", "two"),
        [
            "tables default.public.a changed: select permission for role user: columns +email",
            "tables default.public.b changed: select permission for role user added",
            "tables other.public.d removed",
        ]
    );
    // The unified diff (full snapshots) shows the same change.
    let r = gm(
        &p,
        "",
        &["metadata", "diff", "one", "two", "--format", "unified"],
    );
    r.expect_code(0);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with('+') && l.contains("email")),
        "{}",
        r.stdout
    );
}

#[test]
fn v3_diff_of_equal_metadata_trees_reads_nothing() {
    // Metadata that does not even parse: with equal metadata trees it is never read.
    let mut repo = TestRepo::new();
    let p = repo.path();
    let mut broken = v3_project();
    broken.retain(|(f, _)| !f.ends_with("public_b.yaml"));
    broken.push((
        "metadata/databases/default/tables/public_b.yaml",
        "table: [b\n",
    ));
    let c1 = repo.commit(&broken, &[], "two sources, b broken");
    // A commit that changes only a migration: the metadata folder's tree is the same.
    let c2 = repo.commit(
        &[(
            "migrations/default/1_init/up.sql",
            "create table a (id int primary key);",
        )],
        &[],
        "a migration",
    );
    repo.tag("one", c1);
    repo.tag("two", c2);
    gm(&p, "", &["metadata", "diff", "one", "two"])
        .expect_code(0)
        .expect_contains("no differences between one and two");
    assert!(v3_changes(&p, "one", "two").is_empty());
    // Different trees are read, except files the same in both (a plain table file is not even
    // parsed): the list of changes does not see the broken file, which did not change. The
    // unified diff builds both snapshots in full, and meets it.
    let c3 = repo.commit(&[("metadata/network.yaml", "{}\n")], &[], "network file");
    repo.tag("three", c3);
    gm(&p, "", &["metadata", "diff", "two", "three"])
        .expect_code(0)
        .expect_contains("no differences between");
    gm(
        &p,
        "",
        &["metadata", "diff", "two", "three", "--format", "unified"],
    )
    .expect_code(2)
    .expect_contains("public_b.yaml");

    // Equal content under other blobs (re-indented) is no difference either.
    let mut repo = TestRepo::new();
    let p = repo.path();
    let c1 = repo.commit(&v3_project(), &[], "two sources");
    let c2 = repo.commit(
        &[(
            "metadata/databases/default/tables/public_b.yaml",
            "table: {name: b, schema: public}\n",
        )],
        &[],
        "reformat b",
    );
    repo.tag("one", c1);
    repo.tag("two", c2);
    gm(&p, "", &["metadata", "diff", "one", "two"])
        .expect_code(0)
        .expect_contains("no differences between");
}
