//! `seed apply` (from a revision, one transaction) and `seed create` (optionally from tables).

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;

const SCHEMA: &str = "create table items (id int primary key, name text not null);\n";

/// A checked-out project with one migration creating `items`, plus `extra` files.
fn project(extra: &[(&str, &str)]) -> TestRepo {
    let mut repo = TestRepo::new();
    let mut all = base_project();
    let m = migration(1, "items", SCHEMA, "drop table items;");
    all.extend(files(&m));
    all.extend(extra.iter().copied());
    repo.commit(&all, &[], "project");
    repo.repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    repo
}

fn names(db: &TestDb) -> Vec<String> {
    db.rows("select name from items order by id")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

#[test]
fn seed_apply_runs_every_file_of_head_in_one_transaction() {
    let mut repo = project(&[
        (
            "seeds/1_first.sql",
            "insert into items values (1, 'one');\n",
        ),
        (
            "seeds/2_second.sql",
            "insert into items values (2, 'two');\n\ninsert into items values (1, 'again');\n",
        ),
    ]);
    let p = repo.path();
    let db = TestDb::new("seed_tx");
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);

    // The second file fails on its second statement: nothing of the first file stays.
    let r = gm(&p, &db.url, &["seed", "apply"]);
    r.expect_code(4)
        .expect_contains("seed file seeds/2_second.sql failed")
        .expect_contains("seeds/2_second.sql:3:1")
        .expect_contains("23505")
        .expect_contains("insert into items values (1, 'again');");
    assert!(names(&db).is_empty());

    // Fixed in a new commit: both files run, in name order.
    repo.commit(
        &[(
            "seeds/2_second.sql",
            "insert into items values (2, 'two');\n",
        )],
        &[],
        "fix seed",
    );
    let r = gm(&p, &db.url, &["seed", "apply"]);
    r.expect_code(0)
        .expect_contains("Applied 2 seed file(s)")
        .expect_contains("seeds/1_first.sql");
    assert_eq!(names(&db), vec!["one", "two"]);
    // No state is kept: running again runs them again (and fails on the duplicate keys).
    gm(&p, &db.url, &["seed", "apply"]).expect_code(4);
    assert_eq!(names(&db), vec!["one", "two"]);
    // Nothing recorded in the ledger.
    assert_eq!(
        db.scalar("select count(*) from git_migrate.deployments")
            .as_deref(),
        Some("1")
    );
}

#[test]
fn seed_apply_from_the_worktree_a_revision_and_chosen_files() {
    let mut repo = project(&[("seeds/1_a.sql", "insert into items values (1, 'a');\n")]);
    let first = repo.head().unwrap().to_string();
    repo.commit(
        &[
            ("seeds/2_b.sql", "insert into items values (2, 'b');\n"),
            ("seeds/sub/3_c.sql", "insert into items values (3, 'c');\n"),
            ("seeds/README.md", "not sql"),
        ],
        &[],
        "more seeds",
    );
    let p = repo.path();
    let db = TestDb::new("seed_sources");
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);

    // A file that is only in the working tree is not read from HEAD.
    std::fs::write(
        p.join("seeds/4_local.sql"),
        "insert into items values (4, 'local');\n",
    )
    .unwrap();
    gm(&p, &db.url, &["seed", "apply", "--file", "4_local.sql"])
        .expect_code(2)
        .expect_contains("no such seed file")
        .expect_contains("--worktree");
    gm(
        &p,
        &db.url,
        &["seed", "apply", "--worktree", "--file", "4_local.sql"],
    )
    .expect_code(0);
    assert_eq!(names(&db), vec!["local"]);

    // --file picks files (relative to the seeds folder, or with the folder), in the given order.
    gm(
        &p,
        &db.url,
        &[
            "seed",
            "apply",
            "-f",
            "sub/3_c.sql",
            "--file",
            "seeds/2_b.sql",
        ],
    )
    .expect_code(0);
    assert_eq!(names(&db), vec!["b", "c", "local"]);
    gm(&p, &db.url, &["seed", "apply", "-f", "README.md"])
        .expect_code(2)
        .expect_contains("must end in .sql");

    // A revision: only what that commit had.
    db.client().batch_execute("delete from items").unwrap();
    let r = gm(&p, &db.url, &["seed", "apply", &first, "--dry-run"]);
    r.expect_code(0).expect_contains("seeds/1_a.sql");
    assert!(!r.stdout.contains("2_b"), "{}", r.all());
    gm(&p, &db.url, &["seed", "apply", &first]).expect_code(0);
    assert_eq!(names(&db), vec!["a"]);

    // Every file of HEAD, subfolders included, in name order.
    db.client().batch_execute("delete from items").unwrap();
    let r = gm(&p, &db.url, &["seed", "apply", "--json"]);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["files"],
        serde_json::json!(["seeds/1_a.sql", "seeds/2_b.sql", "seeds/sub/3_c.sql"])
    );
    assert_eq!(names(&db), vec!["a", "b", "c"]);
}

#[test]
fn seed_apply_refuses_transaction_control_and_empty_folders() {
    let repo = project(&[(
        "seeds/1_tx.sql",
        "insert into items values (1, 'x');\ncommit;\ninsert into items values (2, 'y');\n",
    )]);
    let p = repo.path();
    let db = TestDb::new("seed_refusals");
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["seed", "apply"])
        .expect_code(2)
        .expect_contains("seeds/1_tx.sql:2:1")
        .expect_contains("one transaction");
    assert!(names(&db).is_empty());
    // A BEGIN … COMMIT around the whole file means what the seeds do anyway: it runs, said so.
    let repo = project(&[(
        "seeds/1_tx.sql",
        "BEGIN;\ninsert into items values (1, 'x');\nCOMMIT;\n",
    )]);
    gm(&repo.path(), &db.url, &["seed", "apply"])
        .expect_code(0)
        .expect_contains("transaction wrapper ignored (BEGIN … COMMIT)");
    assert_eq!(names(&db), vec!["x"]);
    let repo = project(&[]);
    gm(&repo.path(), &db.url, &["seed", "apply"])
        .expect_code(2)
        .expect_contains("no seed files");
}

#[test]
fn seed_create_from_tables_round_trips() {
    let repo = project(&[]);
    let p = repo.path();
    let schema = "create table things (
        id serial primary key,
        label text,
        tags text[],
        doc jsonb,
        flag boolean,
        at timestamptz,
        raw bytea,
        amount numeric(10,2),
        doubled int generated always as (id * 2) stored
    );
    create table \"Mixed Case\" (k int generated always as identity primary key, v text);";
    let source = TestDb::new("seed_create_source");
    source
        .client()
        .batch_execute(&format!(
            "{schema};
            insert into things (label, tags, doc, flag, at, raw, amount) values
              ('it''s \"quoted\"', '{{a,b}}', '{{\"k\": [1, null]}}', true, '2024-01-02 03:04:05+00', '\\x00ff', 12.5),
              (null, null, null, null, null, null, null),
              (E'back\\\\slash\\nnew line', '{{}}', '[]', false, 'infinity', '', -1);
            insert into \"Mixed Case\" (v) values ('x'), ('y');"
        ))
        .unwrap();
    let r = gm(
        &p,
        &source.url,
        &[
            "seed",
            "create",
            "snapshot",
            "--from-table",
            "public.things",
            "--from-table",
            "Mixed Case",
            "--json",
        ],
    );
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["tables"][0]["rows"], 3);
    assert_eq!(v["tables"][1]["table"], "public.Mixed Case");
    let path = v["path"].as_str().unwrap().to_string();
    assert!(
        path.starts_with("seeds/") && path.ends_with("_snapshot.sql"),
        "{path}"
    );
    let text = std::fs::read_to_string(p.join(&path)).unwrap();
    assert!(!text.contains("doubled"), "{text}");
    assert!(text.contains("OVERRIDING SYSTEM VALUE"), "{text}");

    // Into another database with the same schema: the same rows, sequences moved on.
    let target = TestDb::new("seed_create_target");
    target.client().batch_execute(schema).unwrap();
    gm(&p, &target.url, &["seed", "apply", "--worktree"]).expect_code(0);
    let all = "select * from things order by id";
    assert_eq!(target.rows(all), source.rows(all));
    let mixed = "select * from \"Mixed Case\" order by k";
    assert_eq!(target.rows(mixed), source.rows(mixed));
    target
        .client()
        .batch_execute("insert into things (label) values ('next'); insert into \"Mixed Case\" (v) values ('z');")
        .unwrap();
    assert_eq!(
        target.scalar("select max(id) from things").as_deref(),
        Some("4")
    );
    assert_eq!(
        target
            .scalar("select max(k) from \"Mixed Case\"")
            .as_deref(),
        Some("3")
    );

    // Unknown tables are named; plain seed files get a template or the given SQL.
    gm(
        &p,
        &source.url,
        &["seed", "create", "x", "--from-table", "public.nope"],
    )
    .expect_code(2)
    .expect_contains("no such table");
    let r = gm(
        &p,
        "",
        &[
            "seed",
            "create",
            "by hand",
            "--sql",
            "-- rows\ninsert into things (label) values ('h');",
            "--json",
        ],
    );
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let text = std::fs::read_to_string(p.join(v["path"].as_str().unwrap())).unwrap();
    assert_eq!(text, "-- rows\ninsert into things (label) values ('h');");
    gm(&p, "", &["seed", "create", "a/b"])
        .expect_code(2)
        .expect_contains("invalid seed name");
}

#[test]
fn seeds_of_a_config_v3_project_live_per_database() {
    let mut repo = TestRepo::new();
    repo.commit(
        &[
            (
                "config.yaml",
                "version: 3\nendpoint: http://localhost:8080\n",
            ),
            ("metadata/version.yaml", "version: 3\n"),
            ("metadata/databases/databases.yaml", "[]\n"),
            ("migrations/default/1_items/up.sql", SCHEMA),
            ("migrations/default/1_items/down.sql", "drop table items;"),
            (
                "seeds/default/1_a.sql",
                "insert into items values (1, 'a');\n",
            ),
            (
                "seeds/other/1_b.sql",
                "insert into items values (2, 'b');\n",
            ),
        ],
        &[],
        "v3",
    );
    repo.repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    let p = repo.path();
    let db = TestDb::new("seed_v3");
    db.client().batch_execute(SCHEMA).unwrap();
    gm(&p, &db.url, &["seed", "apply"]).expect_code(0);
    assert_eq!(names(&db), vec!["a"]);
    gm(&p, &db.url, &["seed", "apply", "--database-name", "other"]).expect_code(0);
    assert_eq!(names(&db), vec!["a", "b"]);
    let r = gm(
        &p,
        "",
        &[
            "seed",
            "create",
            "more",
            "--database-name",
            "other",
            "--json",
        ],
    );
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["path"].as_str().unwrap().starts_with("seeds/other/"));
    // create in a v3 project writes migrations/<database>/.
    let r = gm(
        &p,
        "",
        &[
            "create",
            "two",
            "--up-sql",
            "select 1;",
            "--down-sql",
            "select 1;",
            "--json",
        ],
    );
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["path"]
        .as_str()
        .unwrap()
        .starts_with("migrations/default/"));
}

#[test]
fn a_seed_whose_session_ends_at_commit_is_reported_as_uncertain() {
    // A deferred trigger ends its own session during COMMIT (FATAL 57P01): the tool cannot
    // know whether the seeds committed, so it must not say "nothing was changed".
    let repo = project(&[(
        "seeds/1_bye.sql",
        "create function bye() returns trigger language plpgsql as $$\n\
         begin perform pg_terminate_backend(pg_backend_pid()); return null; end $$;\n\
         create constraint trigger bye after insert on items deferrable initially deferred\n\
           for each row execute function bye();\n\
         insert into items values (1, 'one');\n",
    )]);
    let p = repo.path();
    let db = TestDb::new("seed_commit_fatal");
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    let r = gm(&p, &db.url, &["seed", "apply"]);
    r.expect_code(4)
        .expect_contains("while committing")
        .expect_contains("57P01")
        .expect_contains("may or may not have been committed");
    assert!(!r.all().contains("nothing was changed"), "{}", r.all());
    assert!(names(&db).is_empty());
}
