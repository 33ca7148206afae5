//! Real histories the Hasura CLI accepted: whole-file transaction wrappers, legacy `up.yaml`
//! migrations and edited applied migrations deploy and roll back.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;
use git2::Oid;

/// A repository with the base project and `extra` files in one commit.
fn repo_with(extra: &[(String, String)]) -> (TestRepo, Oid) {
    let mut r = TestRepo::new();
    let c = r.commit(&files(&base_project_with(extra)), &[], "base");
    (r, c)
}

/// The Hasura console's "modify primary key" migration, wrapped as the console writes it.
const CONSOLE_PK_UP: &str = "BEGIN TRANSACTION;\nALTER TABLE \"public\".\"items\" DROP CONSTRAINT \"items_pkey\";\n\nALTER TABLE \"public\".\"items\"\n    ADD CONSTRAINT \"items_pkey\" PRIMARY KEY (\"id\", \"code\");\nCOMMIT TRANSACTION;\n";
const CONSOLE_PK_DOWN: &str = "BEGIN TRANSACTION;\nALTER TABLE \"public\".\"items\" DROP CONSTRAINT \"items_pkey\";\n\nALTER TABLE \"public\".\"items\"\n    ADD CONSTRAINT \"items_pkey\" PRIMARY KEY (\"id\");\nCOMMIT TRANSACTION;\n";

fn pk_columns(db: &TestDb) -> String {
    db.scalar(
        "SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM pg_index i \
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = 'public.items'::regclass AND i.indisprimary",
    )
    .unwrap_or_default()
}

#[test]
fn console_transaction_wrapper_deploys_and_rolls_back_in_one_transaction() {
    let (mut r, base) = repo_with(&migration(
        100,
        "items",
        "create table items (id int primary key, code text not null default 'x');",
        "drop table items;",
    ));
    let pk = r.commit(
        &files(&migration(200, "modify_pk", CONSOLE_PK_UP, CONSOLE_PK_DOWN)),
        &[],
        "console: modify primary key",
    );
    let db = TestDb::new("history_wrapper");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &base.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["plan", &pk.to_string()])
        .expect_code(0)
        .expect_contains("apply 200_modify_pk: transaction wrapper ignored (BEGIN TRANSACTION … COMMIT TRANSACTION): the deployment is one transaction");
    gm(&p, &db.url, &["deploy", &pk.to_string(), "--yes"]).expect_code(0);
    assert_eq!(pk_columns(&db), "code,id");
    gm(&p, &db.url, &["rollback", &base.to_string(), "--yes"])
        .expect_code(0)
        .expect_contains("revert 200_modify_pk: transaction wrapper ignored");
    assert_eq!(pk_columns(&db), "id");
    assert_eq!(db.applied(), vec![100]);

    // A failure after the wrapped migration, in the same deploy, leaves nothing behind: the
    // wrapper did not commit early.
    let broken = r.commit(
        &files(&migration(
            300,
            "broken",
            "create table later (x int);\nselect * from no_such_table;",
            "drop table later;",
        )),
        &[],
        "broken",
    );
    let before = db.dump_ignoring_failed_attempts();
    let run = gm(&p, &db.url, &["deploy", &broken.to_string(), "--yes"]);
    run.expect_code(4).expect_contains("no_such_table");
    assert_eq!(db.dump_ignoring_failed_attempts(), before);
    assert_eq!(pk_columns(&db), "id");
    assert_eq!(db.applied(), vec![100]);

    // `check` reports the wrapper as a note, not a finding (the linter, which finds the
    // primary key's lock, is left out: this is about the wrapper).
    gm(&p, "", &["check", &format!("{base}..{pk}"), "--no-lint"])
        .expect_code(0)
        .expect_contains("note: transaction-wrapper");
}

#[test]
fn transaction_control_mid_file_is_still_refused() {
    let (mut r, base) = repo_with(&migration(
        100,
        "a",
        "create table a (x int);",
        "drop table a;",
    ));
    let bad = r.commit(
        &files(&migration(
            200,
            "mid_commit",
            "BEGIN;\ncreate table b (x int);\nCOMMIT;\ncreate table c (x int);\n",
            "drop table c; drop table b;",
        )),
        &[],
        "mid-file commit",
    );
    let db = TestDb::new("history_mid_commit");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &base.to_string(), "--yes"]).expect_code(0);
    let before = db.dump_ignoring_failed_attempts();
    gm(&p, &db.url, &["deploy", &bad.to_string(), "--yes"])
        .expect_code(3)
        .expect_contains("migrations/200_mid_commit/up.sql")
        .expect_contains("COMMIT");
    assert_eq!(db.dump_ignoring_failed_attempts(), before);
    assert!(!db.has_table("public.b"));
    gm(&p, "", &["check", &format!("{base}..{bad}")])
        .expect_code(1)
        .expect_contains("transaction-control");
}

#[test]
fn legacy_yaml_migrations_run_their_sql_and_name_what_they_skip() {
    let up_yaml = "- args:\n    cascade: false\n    sql: CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);\n  type: run_sql\n- args:\n    name: authors\n    schema: public\n  type: add_existing_table_or_view\n- args:\n    sql: |\n      CREATE TABLE books (id serial PRIMARY KEY, author_id int REFERENCES authors(id));\n  type: run_sql\n";
    let down_yaml = "- args:\n    cascade: true\n    sql: DROP TABLE books; DROP TABLE authors;\n  type: run_sql\n";
    let (mut r, base) = repo_with(&migration(
        100,
        "a",
        "create table a (x int);",
        "drop table a;",
    ));
    let yaml = r.commit(
        &[
            ("migrations/200_legacy/up.yaml", up_yaml),
            ("migrations/200_legacy/down.yaml", down_yaml),
            (
                "migrations/300_tracked/up.yaml",
                "- type: track_table\n  args:\n    name: books\n    schema: public\n",
            ),
            ("migrations/300_tracked/down.yaml", "[]\n"),
            ("migrations/400_notes/README.md", "nothing here\n"),
        ],
        &[],
        "legacy yaml migrations",
    );
    let db = TestDb::new("history_yaml");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &base.to_string(), "--yes"]).expect_code(0);
    let run = gm(&p, &db.url, &["deploy", &yaml.to_string(), "--yes"]);
    run.expect_code(0)
        .expect_contains("apply 200_legacy: legacy YAML migration, runs the SQL of its run_sql calls; skipped 1 other API call(s) (add_existing_table_or_view): the metadata comes from metadata/")
        .expect_contains("apply 300_tracked: legacy YAML migration")
        .expect_contains("(track_table)")
        .expect_contains("migrations/400_notes holds no up.sql or up.yaml: skipped");
    assert!(db.has_table("public.authors") && db.has_table("public.books"));
    assert_eq!(db.applied(), vec![100, 200, 300]);
    // The ledger keeps the SQL the down runs, and the checksum of the file as written.
    assert_eq!(
        db.scalar("SELECT down_sql FROM git_migrate.migrations WHERE version = 200")
            .as_deref(),
        Some("DROP TABLE books; DROP TABLE authors;\n;\n")
    );
    // A down.yaml of [] is an empty down: refused, then allowed with --allow-empty-down.
    gm(&p, &db.url, &["rollback", &base.to_string(), "--yes"])
        .expect_code(3)
        .expect_contains("cannot revert 300_tracked: its down migration is empty");
    gm(
        &p,
        &db.url,
        &["rollback", &base.to_string(), "--yes", "--allow-empty-down"],
    )
    .expect_code(0);
    assert!(!db.has_table("public.authors") && !db.has_table("public.books"));
    assert_eq!(db.applied(), vec![100]);
}

#[test]
fn whitespace_edits_deploy_with_a_note_and_content_edits_need_accept_edited() {
    let up = "create table t (\n  id int primary key,   \n  name text\n);   \n\n";
    let (mut r, base) = repo_with(&migration(100, "t", up, "drop table t;"));
    let db = TestDb::new("history_edits");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &base.to_string(), "--yes"]).expect_code(0);
    let sha = |db: &TestDb| {
        db.scalar("SELECT up_sha256 FROM git_migrate.migrations WHERE version = 100")
            .unwrap()
    };
    let first = sha(&db);

    // A formatter strips trailing blanks and adds a comment: accepted with a note, and the
    // ledger takes the new checksum in the same transaction as the next migration.
    let formatted = r.commit(
        &[
            (
                "migrations/100_t/up.sql",
                "-- the t table\ncreate table t (\n  id int primary key,\n  name text\n);\n",
            ),
            ("migrations/200_u/up.sql", "create table u (x int);"),
            ("migrations/200_u/down.sql", "drop table u;"),
        ],
        &[],
        "format",
    );
    gm(&p, &db.url, &["deploy", &formatted.to_string(), "--yes"])
        .expect_code(0)
        .expect_contains("100_t: only whitespace or comments changed since it was applied");
    let second = sha(&db);
    assert_ne!(first, second);
    assert!(db.has_table("public.u"));
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);

    // A content edit is refused (naming both checksums), nothing changes…
    let edited = r.commit(
        &[(
            "migrations/100_t/up.sql",
            "create table t (id int primary key, name text not null);\n",
        )],
        &[],
        "edit an applied migration",
    );
    let before = db.dump_ignoring_failed_attempts();
    gm(&p, &db.url, &["deploy", &edited.to_string(), "--yes"])
        .expect_code(3)
        .expect_contains("migration 100_t was modified after it was applied")
        .expect_contains(&second)
        .expect_contains("--accept-edited");
    assert_eq!(db.dump_ignoring_failed_attempts(), before);

    // …and accepted with --accept-edited: the ledger shows the new checksum and commit,
    // nothing of it runs.
    gm(
        &p,
        &db.url,
        &["deploy", &edited.to_string(), "--yes", "--accept-edited"],
    )
    .expect_code(0)
    .expect_contains("100_t: up file edited (accepted by --accept-edited)")
    .expect_contains(&second);
    let third = sha(&db);
    assert_ne!(third, second);
    assert_eq!(
        db.scalar("SELECT is_nullable FROM information_schema.columns WHERE table_name = 't' AND column_name = 'name'")
            .as_deref(),
        Some("YES"),
        "an accepted edit runs nothing"
    );
    assert_eq!(
        db.scalar("SELECT to_commit FROM git_migrate.deployments WHERE status = 'ok' ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some(edited.to_string().as_str())
    );
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
}
