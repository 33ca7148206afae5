//! Per-revision settings: `--database-name`, the project folder, the config version and the
//! migrations directory are resolved at the revision being read; old mistakes in YAML warn.

use crate::common::git::{files, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;
use git2::Oid;

fn short(c: Oid) -> String {
    c.to_string()[..10].to_string()
}

/// A migration of a config v3 database: `<dir>/migrations/<db>/<v>_<table>/`.
fn v3_migration(dir: &str, db: &str, v: i64, table: &str) -> Vec<(String, String)> {
    let base = if dir.is_empty() {
        format!("migrations/{db}/{v}_{table}")
    } else {
        format!("{dir}/migrations/{db}/{v}_{table}")
    };
    vec![
        (
            format!("{base}/up.sql"),
            format!("create table {table} (id int);"),
        ),
        (format!("{base}/down.sql"), format!("drop table {table};")),
    ]
}

/// A config v3 project's base files in `dir` ("" = the repository root), with one source,
/// `default`, in the metadata.
fn v3_base(dir: &str) -> Vec<(String, String)> {
    let at = |p: &str| {
        if dir.is_empty() {
            p.to_string()
        } else {
            format!("{dir}/{p}")
        }
    };
    vec![
        (
            at("config.yaml"),
            "version: 3\nendpoint: http://localhost:8080\n".into(),
        ),
        (at("metadata/version.yaml"), "version: 3\n".into()),
        (
            at("metadata/databases/databases.yaml"),
            "- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB\n  tables: []\n"
                .into(),
        ),
    ]
}

/// The analytics database of a config v3 project (v1.0.0, v1.1.0) can still be deployed and
/// rolled back after HEAD became a config v2 project, which has no such database; reading
/// HEAD for it is refused, naming HEAD.
#[test]
fn old_v3_tags_deploy_and_roll_back_after_head_became_config_v2() {
    let mut r = TestRepo::new();
    let mut f = v3_base("");
    f.extend(v3_migration("", "default", 1, "main_t"));
    f.extend(v3_migration("", "analytics", 2, "a_one"));
    let v100 = r.commit(&files(&f), &[], "config v3, two databases");
    r.tag("v1.0.0", v100);
    let v110 = r.commit(
        &files(&v3_migration("", "analytics", 3, "a_two")),
        &[],
        "analytics: a_two",
    );
    r.tag("v1.1.0", v110);
    // HEAD: back to one database, config v2.
    let head = r.commit(
        &[
            (
                "config.yaml",
                "version: 2\nendpoint: http://localhost:8080\n",
            ),
            ("metadata/version.yaml", "version: 2\n"),
            ("metadata/tables.yaml", "[]\n"),
            ("migrations/4_only/up.sql", "create table only_t (id int);"),
            ("migrations/4_only/down.sql", "drop table only_t;"),
        ],
        &[
            "migrations/default",
            "migrations/analytics",
            "metadata/databases",
        ],
        "config v2",
    );
    let db = TestDb::new("rev_v3_after_v2");
    let p = r.path();
    let analytics = ["--database-name", "analytics"];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(analytics.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: &[&str]| {
        let owned = with(args);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        gm(&p, &db.url, &refs)
    };

    run(&["plan", "v1.1.0"])
        .expect_code(0)
        .expect_contains("2_a_one")
        .expect_contains("3_a_two");
    run(&["deploy", "v1.1.0", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![2, 3]);
    assert!(db.has_table("a_two") && !db.has_table("main_t"));
    run(&["status", "v1.1.0", "--exit-code"]).expect_code(0);

    // Rollback reads the downs at the deployed commit (v1.1.0), also config v3.
    run(&["rollback", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![2]);
    assert!(!db.has_table("a_two") && db.has_table("a_one"));
    run(&["status", "v1.0.0", "--exit-code"]).expect_code(0);

    // HEAD has no analytics database: refused, naming HEAD, nothing changed.
    let before = db.dump_ignoring_failed_attempts();
    let refused = run(&["deploy", "--yes"]);
    refused.expect_code(2).expect_contains(&format!(
        "--database-name analytics: config.yaml at HEAD ({}) is a config v2 project",
        short(head)
    ));
    assert!(
        !refused.all().contains("--project"),
        "no hint about the project folder:\n{}",
        refused.all()
    );
    run(&["status"])
        .expect_code(2)
        .expect_contains("config v2 project");
    assert_eq!(db.dump_ignoring_failed_attempts(), before);

    // The old tag is still found for the default database too, and HEAD (config v2) without
    // --database-name is HEAD's single database.
    let main = TestDb::new("rev_v3_after_v2_main");
    gm(&p, &main.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    assert!(main.has_table("main_t") && !main.has_table("a_one"));
    gm(&p, &main.url, &["deploy", "--yes"]).expect_code(0);
    assert_eq!(main.applied(), vec![4]);
}

/// The project moved (from `hasura/` to the root) and the analytics database was dropped from
/// HEAD: v1.0.0 still deploys with `--database-name analytics`; a revision without the
/// database is refused, naming that revision and the databases it has.
#[test]
fn a_database_missing_at_the_revision_read_is_refused_naming_the_revision() {
    let mut r = TestRepo::new();
    let mut f = v3_base("hasura");
    f.extend(v3_migration("hasura", "default", 1, "main_t"));
    f.extend(v3_migration("hasura", "analytics", 2, "a_one"));
    let v1 = r.commit(&files(&f), &[], "config v3 in hasura/");
    r.tag("v1.0.0", v1);
    let mut moved = v3_base("");
    moved.extend(v3_migration("", "default", 1, "main_t"));
    moved.extend(v3_migration("", "reporting", 5, "r_one"));
    let v2 = r.commit(
        &files(&moved),
        &["hasura"],
        "project at the root, no analytics",
    );
    r.tag("v2.0.0", v2);

    let db = TestDb::new("rev_missing_db");
    let p = r.path();
    gm(
        &p,
        &db.url,
        &["deploy", "v1.0.0", "--yes", "--database-name", "analytics"],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![2]);

    let before = db.dump_ignoring_failed_attempts();
    for args in [
        &["deploy", "v2.0.0", "--yes", "--database-name", "analytics"][..],
        &["plan", "v2.0.0", "--database-name", "analytics"][..],
        &[
            "rollback",
            "v2.0.0",
            "--yes",
            "--database-name",
            "analytics",
        ][..],
    ] {
        gm(&p, &db.url, args)
            .expect_code(2)
            .expect_contains(&format!(
                "--database-name analytics: there is no migrations/analytics/ at v2.0.0 ({})",
                short(v2)
            ))
            .expect_contains("databases at v2.0.0")
            .expect_contains("default, reporting");
    }
    // HEAD is the same commit, named as typed.
    gm(&p, &db.url, &["status", "--database-name", "analytics"])
        .expect_code(2)
        .expect_contains(&format!(
            "there is no migrations/analytics/ at HEAD ({})",
            short(v2)
        ));
    assert_eq!(db.dump_ignoring_failed_attempts(), before);

    // A typo is refused at the old tag as well.
    gm(
        &p,
        &db.url,
        &["deploy", "v1.0.0", "--yes", "--database-name", "analytcs"],
    )
    .expect_code(2)
    .expect_contains(&format!(
        "there is no hasura/migrations/analytcs/ at v1.0.0 ({})",
        short(v1)
    ))
    .expect_contains("analytics, default");

    // A database the metadata lists exists even before it has migrations.
    let listed = r.commit(
        &[(
            "metadata/databases/databases.yaml",
            "- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB\n  tables: []\n- name: analytics\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB_A\n  tables: []\n",
        )],
        &[],
        "analytics listed, no migrations",
    );
    gm(
        &p,
        &db.url,
        &["plan", &listed.to_string(), "--database-name", "analytics"],
    )
    .expect_code(0)
    .expect_contains("2_a_one");
}

/// `version:` written twice in config.yaml: the later value wins, plan and deploy warn naming
/// the file, the commit and the line, and the commit deploys; `check` shows it as a note.
#[test]
fn a_key_written_twice_in_config_yaml_warns_and_deploys() {
    let mut r = TestRepo::new();
    let c = r.commit(
        &[
            (
                "hasura/config.yaml",
                "version: 3\nendpoint: http://localhost:8080\n# fixed below\nversion: 2\n",
            ),
            ("hasura/metadata/version.yaml", "version: 2\n"),
            ("hasura/metadata/tables.yaml", "[]\n"),
            ("hasura/migrations/1_a/up.sql", "create table a (id int);"),
            ("hasura/migrations/1_a/down.sql", "drop table a;"),
        ],
        &[],
        "config with version twice",
    );
    let warning = format!(
        "warning: hasura/config.yaml @ {} line 4: duplicate key \"version\" (first at line 1); the later value wins",
        short(c)
    );
    let db = TestDb::new("rev_dup_config");
    let p = r.path();
    let plan = gm(&p, &db.url, &["plan"]);
    plan.expect_code(0).expect_contains("apply   1_a");
    assert_eq!(plan.stderr.matches(&warning).count(), 1, "{}", plan.all());
    let deployed = gm(&p, &db.url, &["deploy", "--yes"]);
    deployed.expect_code(0).expect_contains(&warning);
    assert_eq!(
        deployed.stderr.matches(&warning).count(),
        1,
        "{}",
        deployed.all()
    );
    assert_eq!(db.applied(), vec![1]);
    // The plan's JSON carries it too.
    let json = gm(&p, &db.url, &["plan", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("duplicate key \"version\"")),
        "{}",
        json.all()
    );
    // Other commands warn once at the end.
    gm(&p, &db.url, &["status", "--exit-code"])
        .expect_code(0)
        .expect_contains(&warning);
    gm(&p, &db.url, &["check", &c.to_string()])
        .expect_code(0)
        .expect_contains(&format!(
            "note: hasura/config.yaml @ {} line 4: duplicate key \"version\"",
            short(c)
        ));
}

/// A key written twice in one mapping of a metadata file (config v2 `tables.yaml`, config v3
/// per-table file): the later value wins, with a warning naming the file, commit and line.
#[test]
fn a_key_written_twice_in_metadata_warns_and_deploys() {
    // Config v2.
    let mut r = TestRepo::new();
    let c = r.commit(
        &[
            (
                "config.yaml",
                "version: 2\nendpoint: http://localhost:8080\n",
            ),
            ("metadata/version.yaml", "version: 2\n"),
            (
                "metadata/tables.yaml",
                "- table:\n    schema: public\n    name: gone\n    name: t\n",
            ),
            ("migrations/1_t/up.sql", "create table t (id int);"),
            ("migrations/1_t/down.sql", "drop table t;"),
        ],
        &[],
        "tables.yaml with name twice",
    );
    let db = TestDb::new("rev_dup_tables_v2");
    let p = r.path();
    gm(&p, &db.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains(&format!(
            "warning: metadata/tables.yaml @ {} line 4: duplicate key \"name\" (first at line 3); the later value wins",
            short(c)
        ));
    assert_eq!(
        db.scalar("SELECT snapshot->'tables'->0->'table'->>'name' FROM git_migrate.metadata")
            .as_deref(),
        Some("t")
    );

    // Config v3: the per-table file an include names.
    let mut r = TestRepo::new();
    let mut f = v3_base("");
    f.retain(|(path, _)| !path.ends_with("databases.yaml"));
    f.push((
        "metadata/databases/databases.yaml".into(),
        "- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB\n  tables: \"!include default/tables/tables.yaml\"\n".into(),
    ));
    f.push((
        "metadata/databases/default/tables/tables.yaml".into(),
        "- \"!include public_t.yaml\"\n".into(),
    ));
    f.push((
        "metadata/databases/default/tables/public_t.yaml".into(),
        "table:\n  name: t\n  schema: public\nselect_permissions: []\nselect_permissions:\n  - role: user\n    permission:\n      columns: [id]\n      filter: {}\n".into(),
    ));
    f.extend(v3_migration("", "default", 1, "t"));
    let c = r.commit(&files(&f), &[], "v3 table file with a key twice");
    let db = TestDb::new("rev_dup_tables_v3");
    let p = r.path();
    gm(&p, &db.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains(&format!(
            "warning: metadata/databases/default/tables/public_t.yaml @ {} line 5: duplicate key \"select_permissions\" (first at line 4); the later value wins",
            short(c)
        ));
    assert_eq!(
        db.scalar("SELECT snapshot->'sources'->0->'tables'->0->'select_permissions'->0->>'role' FROM git_migrate.metadata")
            .as_deref(),
        Some("user")
    );
}

/// YAML that does not parse at all still stops, naming file:line @ commit.
#[test]
fn yaml_that_does_not_parse_still_stops_naming_file_line_and_commit() {
    let mut r = TestRepo::new();
    let good = r.commit(
        &[
            (
                "config.yaml",
                "version: 2\nendpoint: http://localhost:8080\n",
            ),
            ("metadata/version.yaml", "version: 2\n"),
            ("metadata/tables.yaml", "[]\n"),
            ("migrations/1_t/up.sql", "create table t (id int);"),
            ("migrations/1_t/down.sql", "drop table t;"),
        ],
        &[],
        "good",
    );
    r.tag("good", good);
    let bad_meta = r.commit(
        &[(
            "metadata/tables.yaml",
            "- table:\n    name: t\n    name: t\n    schema: [public\n",
        )],
        &[],
        "broken tables.yaml",
    );
    r.tag("bad-meta", bad_meta);
    let bad_config = r.commit(
        &[(
            "config.yaml",
            "version: 2\nversion: 2\nendpoint: [http://localhost:8080\n",
        )],
        &[],
        "broken config.yaml",
    );
    let db = TestDb::new("rev_unparsable");
    let p = r.path();
    gm(&p, &db.url, &["deploy", "good", "--yes"]).expect_code(0);
    let before = db.dump_ignoring_failed_attempts();
    let meta = gm(&p, &db.url, &["deploy", "bad-meta", "--yes"]);
    assert_ne!(meta.code, 0, "{}", meta.all());
    meta.expect_contains("metadata/tables.yaml:")
        .expect_contains(&format!("@ {}", short(bad_meta)));
    assert!(
        !meta.all().contains("metadata/tables.yaml:0:"),
        "{}",
        meta.all()
    );
    let config = gm(&p, &db.url, &["deploy", "--yes"]);
    config
        .expect_code(2)
        .expect_contains("config.yaml:")
        .expect_contains(&format!("@ {}", short(bad_config)));
    assert!(!config.all().contains("config.yaml:0:"), "{}", config.all());
    assert_eq!(db.dump_ignoring_failed_attempts(), before);
}
