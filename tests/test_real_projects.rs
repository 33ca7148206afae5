//! What real Hasura repositories look like, and all of it must just work: folder names with
//! spaces, leftover config v1 YAML, a project folder that moves across history, migrations that
//! rely on pgcrypto without creating it, dozens of versions merged out of order, data-only
//! migrations, re-indented metadata, legacy flat files, unrelated `config.yaml` files, and
//! `--project` when detection cannot decide.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, Run};

/// Prefixes every path of `owned` with `dir/`.
fn under(dir: &str, owned: &[(String, String)]) -> Vec<(String, String)> {
    owned
        .iter()
        .map(|(p, c)| (format!("{dir}/{p}"), c.clone()))
        .collect()
}

/// The base project files as owned pairs, optionally under `dir`.
fn base_owned(dir: Option<&str>) -> Vec<(String, String)> {
    base_project()
        .into_iter()
        .map(|(p, c)| match dir {
            Some(d) => (format!("{d}/{p}"), c.to_string()),
            None => (p.to_string(), c.to_string()),
        })
        .collect()
}

/// `(version, name)` rows of the ledger, ascending.
fn ledger_names(db: &TestDb) -> Vec<(i64, String)> {
    db.rows("SELECT version, name FROM git_migrate.migrations ORDER BY version")
        .into_iter()
        .map(|r| {
            (
                r[0].as_deref().unwrap().parse().unwrap(),
                r[1].clone().unwrap(),
            )
        })
        .collect()
}

/// The commit the last deployment recorded.
fn last_to_commit(db: &TestDb) -> Option<String> {
    db.scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
}

/// Versions of the `revert` lines of a printed plan, in printed order.
fn reverted_in_output(run: &Run) -> Vec<i64> {
    steps_in_output(run, "revert")
}

/// Versions of the `apply` lines of a printed plan, in printed order.
fn applied_in_output(run: &Run) -> Vec<i64> {
    steps_in_output(run, "apply")
}

fn steps_in_output(run: &Run, verb: &str) -> Vec<i64> {
    run.stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            if words.next() != Some(verb) {
                return None;
            }
            let label = words.next()?;
            label.split('_').next()?.parse().ok()
        })
        .collect()
}

/// Schema of everything but the ledger.
fn schema(db: &TestDb) -> String {
    db.dump(true, Some("git_migrate"))
}

// 1. Folder names with spaces.
#[test]
fn migration_folders_with_spaces_deploy_and_roll_back() {
    let mut repo = TestRepo::new();
    let mut f = base_owned(None);
    f.extend(migration(
        1700000000001,
        "create users table",
        "create table users (id int primary key, name text not null);",
        "drop table users;",
    ));
    let c1 = repo.commit(&files(&f), &[], "create users table");
    let m2 = migration(
        1700000000002,
        "add email column",
        "alter table users add column email text;",
        "alter table users drop column email;",
    );
    let c2 = repo.commit(&files(&m2), &[], "add email column");
    let (c1s, c2s) = (c1.to_string(), c2.to_string());
    let db = TestDb::new("spaces");
    let p = repo.path();

    gm(&p, &db.url, &["plan", &c2s])
        .expect_code(0)
        .expect_contains("apply   1700000000001_create users table")
        .expect_contains("apply   1700000000002_add email column");
    gm(&p, &db.url, &["deploy", &c2s, "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(
        ledger_names(&db),
        vec![
            (1700000000001, "create users table".to_string()),
            (1700000000002, "add email column".to_string()),
        ]
    );
    assert!(db.has_table("public.users"));
    let has_email = "SELECT count(*) FROM information_schema.columns \
                     WHERE table_name = 'users' AND column_name = 'email'";
    assert_eq!(db.scalar(has_email).as_deref(), Some("1"));
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);

    let r = gm(&p, &db.url, &["rollback", &c1s, "--yes"]);
    r.expect_code(0)
        .expect_contains("revert  1700000000002_add email column")
        .expect_contains("migrations/1700000000002_add email column/down.sql")
        .expect_contains("1 reverted, 0 applied");
    assert_eq!(db.applied(), vec![1700000000001]);
    assert_eq!(db.scalar(has_email).as_deref(), Some("0"));
    assert_eq!(last_to_commit(&db).as_deref(), Some(c1s.as_str()));

    // Equal to a fresh deploy of the first commit.
    let fresh = TestDb::new("spaces_fresh");
    gm(&p, &fresh.url, &["deploy", &c1s, "--yes"]).expect_code(0);
    assert_eq!(schema(&db), schema(&fresh));

    // And forward again.
    gm(&p, &db.url, &["deploy", &c2s, "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);
    assert_eq!(db.scalar(has_email).as_deref(), Some("1"));
}

// 2. Leftover config v1 up.yaml / down.yaml beside the SQL files.
#[test]
fn leftover_v1_yaml_files_are_ignored() {
    let mut repo = TestRepo::new();
    let mut f = base_owned(None);
    f.extend(migration(
        1700000000001,
        "init",
        "create table accounts (id int primary key);",
        "drop table accounts;",
    ));
    f.push((
        "migrations/1700000000001_init/up.yaml".into(),
        "[]\n".into(),
    ));
    f.push((
        "migrations/1700000000001_init/down.yaml".into(),
        "[]\n".into(),
    ));
    let c1 = repo.commit(&files(&f), &[], "init");
    let mut f2 = migration(
        1700000000002,
        "profiles",
        "create table profiles (id int primary key, account_id int references accounts(id));",
        "drop table profiles;",
    );
    f2.push((
        "migrations/1700000000002_profiles/down.yaml".into(),
        "[]".into(),
    ));
    let c2 = repo.commit(&files(&f2), &[], "profiles");
    let (c1s, c2s) = (c1.to_string(), c2.to_string());
    let db = TestDb::new("v1_yaml");
    let p = repo.path();

    gm(&p, &db.url, &["status", &c2s]).expect_code(0);
    gm(&p, &db.url, &["deploy", &c2s, "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);
    assert!(db.has_table("public.accounts") && db.has_table("public.profiles"));
    // The stored down is the SQL one, never the YAML.
    assert_eq!(
        db.scalar("SELECT down_sql FROM git_migrate.migrations WHERE version = 1700000000002")
            .as_deref(),
        Some("drop table profiles;")
    );
    gm(&p, &db.url, &["status", &c2s, "--exit-code"]).expect_code(0);

    gm(&p, &db.url, &["rollback", &c1s, "--yes"])
        .expect_code(0)
        .expect_contains("1 reverted");
    assert_eq!(db.applied(), vec![1700000000001]);
    assert!(db.has_table("public.accounts") && !db.has_table("public.profiles"));
    gm(&p, &db.url, &["status", &c1s, "--exit-code"]).expect_code(0);
}

// 3. The project folder moves from the root to hasura/ between two commits.
#[test]
fn project_folder_moving_between_commits() {
    let mut repo = TestRepo::new();
    let tables = "- table:\n    schema: public\n    name: users\n";
    let mut root = base_owned(None);
    root.retain(|(p, _)| p != "metadata/tables.yaml");
    root.push(("metadata/tables.yaml".into(), tables.into()));
    let m1 = migration(
        1700000000001,
        "users",
        "create table users (id int primary key);",
        "drop table users;",
    );
    let m2 = migration(
        1700000000002,
        "users_name",
        "alter table users add column name text;",
        "alter table users drop column name;",
    );
    root.extend(m1.clone());
    root.extend(m2.clone());
    let c1 = repo.commit(&files(&root), &[], "project at the root");

    // Move everything under hasura/ and add a migration.
    let mut moved = under("hasura", &root);
    moved.extend(under(
        "hasura",
        &migration(
            1700000000003,
            "posts",
            "create table posts (id int primary key, user_id int references users(id));",
            "drop table posts;",
        ),
    ));
    moved.push(("README.md".into(), "# app\n".into()));
    let c2 = repo.commit(
        &files(&moved),
        &["config.yaml", "migrations", "metadata"],
        "move the project to hasura/, add posts",
    );
    let (c1s, c2s) = (c1.to_string(), c2.to_string());
    {
        // The second commit really has nothing at the root any more.
        let tree = repo.repo.find_commit(c2).unwrap().tree().unwrap();
        assert!(tree.get_name("config.yaml").is_none());
        assert!(tree.get_name("migrations").is_none());
        assert!(tree.get_path("hasura/config.yaml".as_ref()).is_ok());
    }
    let db = TestDb::new("moving_folder");
    let p = repo.path();

    gm(&p, &db.url, &["deploy", &c1s, "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);

    let plan = gm(&p, &db.url, &["plan", &c2s]);
    plan.expect_code(0);
    assert_eq!(reverted_in_output(&plan), Vec::<i64>::new());
    assert_eq!(applied_in_output(&plan), vec![1700000000003]);

    let r = gm(&p, &db.url, &["deploy", &c2s, "--yes"]);
    r.expect_code(0).expect_contains("0 reverted, 1 applied");
    assert!(
        !r.stdout.contains("metadata updated"),
        "moving the same metadata folder is not a metadata change:\n{}",
        r.all()
    );
    assert_eq!(
        db.applied(),
        vec![1700000000001, 1700000000002, 1700000000003]
    );
    assert!(db.has_table("public.posts"));
    assert_eq!(last_to_commit(&db).as_deref(), Some(c2s.as_str()));
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);

    let r = gm(&p, &db.url, &["rollback", &c1s, "--yes"]);
    r.expect_code(0)
        .expect_contains("hasura/migrations/1700000000003_posts/down.sql")
        .expect_contains("1 reverted, 0 applied");
    assert_eq!(reverted_in_output(&r), vec![1700000000003]);
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);
    assert!(db.has_table("public.users") && !db.has_table("public.posts"));
    assert_eq!(last_to_commit(&db).as_deref(), Some(c1s.as_str()));
    gm(&p, &db.url, &["status", &c1s, "--exit-code"]).expect_code(0);

    let fresh = TestDb::new("moving_folder_fresh");
    gm(&p, &fresh.url, &["deploy", &c1s, "--yes"]).expect_code(0);
    assert_eq!(schema(&db), schema(&fresh));
    let ledger =
        "SELECT version, name, up_sha256, down_sha256 FROM git_migrate.migrations ORDER BY version";
    assert_eq!(db.rows(ledger), fresh.rows(ledger));

    // Forward again, then `rollback` without a revision: the state before the last deployment
    // is read at the root of the first commit while the deployed one has hasura/.
    gm(&p, &db.url, &["deploy", &c2s, "--yes"])
        .expect_code(0)
        .expect_contains("0 reverted, 1 applied");
    let r = gm(&p, &db.url, &["rollback", "--yes"]);
    r.expect_code(0).expect_contains("1 reverted, 0 applied");
    assert_eq!(reverted_in_output(&r), vec![1700000000003]);
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);
    assert_eq!(last_to_commit(&db).as_deref(), Some(c1s.as_str()));
}

// 4. A migration relying on pgcrypto without creating it.
#[test]
fn pgcrypto_prelude_on_first_deploy() {
    let mut repo = TestRepo::new();
    let mut f = base_owned(None);
    f.extend(migration(
        1700000000001,
        "users",
        "create table u (\n  id uuid primary key default gen_random_uuid(),\n  pw text default crypt('x', gen_salt('bf'))\n);\n",
        "drop table u;",
    ));
    repo.commit(&files(&f), &[], "users with hashed passwords");
    let p = repo.path();
    let has_pgcrypto = "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'";

    // Without the prelude, on a fresh database: fails, and nothing changed.
    let bare = TestDb::new("no_prelude");
    assert_eq!(bare.scalar(has_pgcrypto).as_deref(), Some("0"));
    let before = bare.dump(false, None);
    let r = gm(&p, &bare.url, &["deploy", "--yes", "--no-prelude"]);
    r.expect_code(4)
        .expect_contains("1700000000001_users")
        .expect_contains("gen_salt")
        .expect_contains("nothing changed");
    assert_eq!(
        before,
        bare.dump(false, None),
        "the failed deploy changed the database"
    );
    assert!(!bare.has_table("public.u"));
    assert!(!bare.has_table("git_migrate.migrations"));
    assert_eq!(bare.scalar(has_pgcrypto).as_deref(), Some("0"));

    // With the default prelude (on the same, still fresh, database): works.
    gm(&p, &bare.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert_eq!(bare.applied(), vec![1700000000001]);
    assert_eq!(bare.scalar(has_pgcrypto).as_deref(), Some("1"));
    bare.client()
        .batch_execute("INSERT INTO u DEFAULT VALUES")
        .unwrap();
    assert_eq!(
        bare.scalar("SELECT pw = crypt('x', pw) FROM u").as_deref(),
        Some("t")
    );

    // And on another fresh database, the first deploy just works.
    let db = TestDb::new("prelude");
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1700000000001]);
    assert!(db.has_table("public.u"));
    assert_eq!(db.scalar(has_pgcrypto).as_deref(), Some("1"));
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
}

// 5. Dozens of versions merged out of order.
#[test]
fn dozens_of_versions_merged_out_of_order() {
    let mut repo = TestRepo::new();
    let mk = |prefix: &str, v: i64| {
        migration(
            v,
            &format!("{prefix}{v}"),
            &format!("create table {prefix}{v} (id int primary key);"),
            &format!("drop table {prefix}{v};"),
        )
    };
    let main_versions: Vec<i64> = (1..=30).map(|i| i * 10).collect();
    let feature_versions: Vec<i64> = (0..25).map(|i| 11 + 2 * i).collect();
    assert_eq!(feature_versions.last(), Some(&59));

    // main: one commit per version; the feature branch starts at the commit of version 20.
    let mut branch_point = None;
    let mut main_tip = None;
    for (i, v) in main_versions.iter().enumerate() {
        let mut f = if i == 0 { base_owned(None) } else { vec![] };
        f.extend(mk("m", *v));
        let c = repo.commit(&files(&f), &[], &format!("main: add {v}"));
        if *v == 20 {
            branch_point = Some(c);
        }
        main_tip = Some(c);
    }
    let (branch_point, main_tip) = (branch_point.unwrap(), main_tip.unwrap());
    let mut feature_tip = branch_point;
    let mut feature_files = Vec::new();
    for chunk in feature_versions.chunks(5) {
        let mut f = Vec::new();
        for v in chunk {
            f.extend(mk("f", *v));
        }
        feature_tip = repo.commit_on(
            vec![feature_tip],
            &files(&f),
            &[],
            &format!("feature: add {chunk:?}"),
            None,
        );
        feature_files.extend(f);
    }
    repo.branch("feature/many", feature_tip);

    let db = TestDb::new("ooo_dozens");
    let p = repo.path();
    let main_s = main_tip.to_string();
    gm(&p, &db.url, &["deploy", &main_s, "--yes"])
        .expect_code(0)
        .expect_contains("30 applied");
    assert_eq!(db.applied(), main_versions);

    let merge = repo.commit_on(
        vec![main_tip, feature_tip],
        &files(&feature_files),
        &[],
        "Merge branch 'feature/many'",
        Some("HEAD"),
    );
    let merge_short = &merge.to_string()[..10];
    let r = gm(&p, &db.url, &["deploy", "--yes"]);
    r.expect_code(0)
        .expect_contains("0 reverted, 25 applied")
        .expect_contains("Merge branch 'feature/many'");
    assert_eq!(applied_in_output(&r), feature_versions);
    for v in &feature_versions {
        let label = format!("{v}_f{v}: out of order: arrived with merge {merge_short}");
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with("warning:") && l.contains(&label)),
            "no warning naming the merge for {v}:\n{}",
            r.all()
        );
    }
    let mut all: Vec<i64> = main_versions
        .iter()
        .chain(feature_versions.iter())
        .copied()
        .collect();
    all.sort();
    assert_eq!(db.applied(), all);
    assert!(db.has_table("public.f11") && db.has_table("public.f59"));
    assert_eq!(last_to_commit(&db), Some(merge.to_string()));
    gm(&p, &db.url, &["status", "--exit-code"])
        .expect_code(0)
        .expect_contains("in sync");

    // Rolling back to the pre-merge main commit reverts exactly the merged ones, newest first.
    let r = gm(&p, &db.url, &["rollback", &main_s, "--yes"]);
    r.expect_code(0).expect_contains("25 reverted, 0 applied");
    let mut expected: Vec<i64> = feature_versions.clone();
    expected.reverse();
    assert_eq!(reverted_in_output(&r), expected);
    assert_eq!(db.applied(), main_versions);
    assert!(!db.has_table("public.f11") && !db.has_table("public.f59"));
    assert!(db.has_table("public.m10") && db.has_table("public.m300"));
    gm(&p, &db.url, &["status", &main_s, "--exit-code"]).expect_code(0);
    let fresh = TestDb::new("ooo_dozens_fresh");
    gm(&p, &fresh.url, &["deploy", &main_s, "--yes"]).expect_code(0);
    assert_eq!(schema(&db), schema(&fresh));
}

// 6. Data-only migrations.
#[test]
fn data_only_migrations_deploy_and_roll_back() {
    let mut repo = TestRepo::new();
    let mut f = base_owned(None);
    f.extend(migration(
        1700000000001,
        "settings",
        "create table settings (key text primary key, value text not null);\n\
         insert into settings values ('theme', 'light'), ('lang', 'en');\n\
         create table prices (sku text primary key, cents int not null);\n\
         insert into prices values ('a', 100), ('b', 250), ('c', 999);\n",
        "drop table prices;\ndrop table settings;\n",
    ));
    let c1 = repo.commit(&files(&f), &[], "settings and prices");
    let m2 = migration(
        1700000000002,
        "seed settings",
        "insert into settings values ('currency', 'EUR'), ('tz', 'UTC');\n\
         update settings set value = 'dark' where key = 'theme';\n",
        "delete from settings where key in ('currency', 'tz');\n\
         update settings set value = 'light' where key = 'theme';\n",
    );
    let c2 = repo.commit(&files(&m2), &[], "seed settings");
    let m3 = migration(
        1700000000003,
        "double prices",
        "update prices set cents = cents * 2;\ndelete from prices where sku = 'c';\n",
        "insert into prices values ('c', 1998);\nupdate prices set cents = cents / 2;\n",
    );
    let c3 = repo.commit(&files(&m3), &[], "double prices");
    let (c1s, c3s) = (c1.to_string(), c3.to_string());
    let _ = c2;
    let db = TestDb::new("data_only");
    let p = repo.path();
    let data = |db: &TestDb| {
        (
            db.rows("SELECT key, value FROM settings ORDER BY key"),
            db.rows("SELECT sku, cents FROM prices ORDER BY sku"),
        )
    };

    gm(&p, &db.url, &["deploy", &c1s, "--yes"]).expect_code(0);
    let before = data(&db);
    let schema_before = schema(&db);

    gm(&p, &db.url, &["deploy", &c3s, "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(
        db.applied(),
        vec![1700000000001, 1700000000002, 1700000000003]
    );
    assert_eq!(
        db.scalar("SELECT value FROM settings WHERE key = 'theme'")
            .as_deref(),
        Some("dark")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM settings").as_deref(),
        Some("4")
    );
    assert_eq!(
        db.rows("SELECT sku, cents FROM prices ORDER BY sku"),
        vec![
            vec![Some("a".to_string()), Some("200".to_string())],
            vec![Some("b".to_string()), Some("500".to_string())],
        ]
    );
    assert_eq!(
        schema_before,
        schema(&db),
        "data-only migrations changed the schema"
    );

    let r = gm(&p, &db.url, &["rollback", &c1s, "--yes"]);
    r.expect_code(0).expect_contains("2 reverted");
    assert_eq!(reverted_in_output(&r), vec![1700000000003, 1700000000002]);
    assert_eq!(db.applied(), vec![1700000000001]);
    assert_eq!(before, data(&db), "data after rollback differs");
    assert_eq!(schema_before, schema(&db));
}

// 7. Re-indented metadata is not a metadata change.
#[test]
fn reindented_metadata_is_not_a_change() {
    let mut repo = TestRepo::new();
    let tables_a = "\
- table:
    schema: public
    name: users
  select_permissions:
  - role: user
    permission:
      columns:
      - id
      - name
      filter:
        id:
          _eq: X-Hasura-User-Id
- table:
    schema: public
    name: posts
  object_relationships:
  - name: author
    using:
      foreign_key_constraint_on: user_id
";
    // Same content: 4-space indentation, flow style, keys and tables in another order.
    let tables_b = "\
-   object_relationships:
        -   using: {foreign_key_constraint_on: user_id}
            name: author
    table: {name: posts, schema: public}
-   select_permissions:
        -   permission:
                filter: {id: {_eq: X-Hasura-User-Id}}
                columns: [id, name]
            role: user
    table:
        name: users
        schema: public
";
    let mut f = base_owned(None);
    f.retain(|(p, _)| p != "metadata/tables.yaml");
    f.push(("metadata/tables.yaml".into(), tables_a.into()));
    f.extend(migration(
        1700000000001,
        "users_posts",
        "create table users (id int primary key, name text);\n\
         create table posts (id int primary key, user_id int references users(id));\n",
        "drop table posts;\ndrop table users;\n",
    ));
    let a = repo.commit(&files(&f), &[], "users and posts, tracked");
    let db = TestDb::new("reindent");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("metadata updated");
    let meta = "SELECT sha256 FROM git_migrate.metadata";
    let sha_a = db.scalar(meta);
    assert!(sha_a.is_some());

    let b = repo.commit(
        &[("metadata/tables.yaml", tables_b)],
        &[],
        "re-indent tables.yaml",
    );
    assert_ne!(
        repo.repo
            .find_commit(a)
            .unwrap()
            .tree()
            .unwrap()
            .get_path("metadata".as_ref())
            .unwrap()
            .id(),
        repo.repo
            .find_commit(b)
            .unwrap()
            .tree()
            .unwrap()
            .get_path("metadata".as_ref())
            .unwrap()
            .id(),
        "the metadata folder must really differ in git"
    );
    gm(&p, &db.url, &["status", "--exit-code"])
        .expect_code(0)
        .expect_contains("metadata    in sync");
    let plan = gm(&p, &db.url, &["plan", "HEAD"]);
    plan.expect_code(0).expect_contains("nothing to change");
    assert!(
        !plan.stdout.contains("metadata:"),
        "re-indentation shown as a metadata change:\n{}",
        plan.all()
    );
    let r = gm(&p, &db.url, &["deploy", "--yes"]);
    r.expect_code(0).expect_contains("0 reverted, 0 applied");
    assert!(
        !r.stdout.contains("metadata updated"),
        "re-indentation reported as a metadata update:\n{}",
        r.all()
    );
    assert_eq!(last_to_commit(&db), Some(b.to_string()));
    assert_eq!(db.scalar(meta), sha_a);
    assert_eq!(db.applied(), vec![1700000000001]);
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
}

// 8. Legacy flat migration files.
#[test]
fn legacy_flat_files_deploy_and_roll_back() {
    let mut repo = TestRepo::new();
    let mut f = base_owned(None);
    f.push((
        "migrations/1700000000001_init.up.sql".into(),
        "create table items (id int primary key, label text);".into(),
    ));
    f.push((
        "migrations/1700000000001_init.down.sql".into(),
        "drop table items;".into(),
    ));
    let c1 = repo.commit(&files(&f), &[], "init (flat)");
    let mut f2 = vec![
        (
            "migrations/1700000000002_tags.up.sql".to_string(),
            "create table tags (id int primary key, item_id int references items(id));".to_string(),
        ),
        (
            "migrations/1700000000002_tags.down.sql".to_string(),
            "drop table tags;".to_string(),
        ),
    ];
    // A folder-style migration beside the flat ones.
    f2.extend(migration(
        1700000000003,
        "items_price",
        "alter table items add column price int;",
        "alter table items drop column price;",
    ));
    let c2 = repo.commit(&files(&f2), &[], "tags (flat) and price (folder)");
    let (c1s, c2s) = (c1.to_string(), c2.to_string());
    let db = TestDb::new("flat_files");
    let p = repo.path();

    gm(&p, &db.url, &["deploy", &c1s, "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert_eq!(ledger_names(&db), vec![(1700000000001, "init".to_string())]);
    assert!(db.has_table("public.items"));
    let fresh_c1 = schema(&db);

    gm(&p, &db.url, &["deploy", &c2s, "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(
        ledger_names(&db),
        vec![
            (1700000000001, "init".to_string()),
            (1700000000002, "tags".to_string()),
            (1700000000003, "items_price".to_string()),
        ]
    );
    assert!(db.has_table("public.tags"));
    assert_eq!(
        db.scalar("SELECT down_sql FROM git_migrate.migrations WHERE version = 1700000000002")
            .as_deref(),
        Some("drop table tags;")
    );
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);

    let r = gm(&p, &db.url, &["rollback", &c1s, "--yes"]);
    r.expect_code(0)
        .expect_contains("migrations/1700000000002_tags.down.sql")
        .expect_contains("2 reverted");
    assert_eq!(reverted_in_output(&r), vec![1700000000003, 1700000000002]);
    assert_eq!(db.applied(), vec![1700000000001]);
    assert!(!db.has_table("public.tags"));
    assert_eq!(fresh_c1, schema(&db));
}

// 9. An unrelated config.yaml elsewhere does not confuse detection.
#[test]
fn unrelated_config_yaml_does_not_confuse_detection() {
    // Migrations under hasura/, a frontend config.yaml (and a deeper one) elsewhere.
    let mut repo = TestRepo::new();
    let mut f = base_owned(Some("hasura"));
    f.extend(under(
        "hasura",
        &migration(
            1700000000001,
            "init",
            "create table orders (id int primary key);",
            "drop table orders;",
        ),
    ));
    f.push((
        "frontend/config.yaml".into(),
        "version: 2\napiUrl: http://localhost:3000\n".into(),
    ));
    f.push((
        "frontend/src/settings/config.yaml".into(),
        "theme: dark\n".into(),
    ));
    f.push(("frontend/package.json".into(), "{}\n".into()));
    repo.commit(&files(&f), &[], "app with hasura/ and a frontend");
    let db = TestDb::new("unrelated_config");
    let p = repo.path();
    gm(&p, &db.url, &["plan"])
        .expect_code(0)
        .expect_contains("apply   1700000000001_init");
    gm(&p, &db.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert_eq!(db.applied(), vec![1700000000001]);
    assert!(db.has_table("public.orders"));
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);

    // The same with the project in a folder that is neither the root nor hasura/: the
    // unrelated config.yaml files (one inside node_modules, even with a migrations folder) do
    // not count as candidates.
    let mut repo = TestRepo::new();
    let mut f = base_owned(Some("backend"));
    f.extend(under(
        "backend",
        &migration(
            1700000000001,
            "init",
            "create table invoices (id int primary key);",
            "drop table invoices;",
        ),
    ));
    f.push((
        "frontend/config.yaml".into(),
        "apiUrl: http://localhost:3000\n".into(),
    ));
    f.push((
        "frontend/node_modules/some-pkg/config.yaml".into(),
        "version: 2\n".into(),
    ));
    f.push((
        "frontend/node_modules/some-pkg/migrations/1_x/up.sql".into(),
        "select 1;".into(),
    ));
    repo.commit(&files(&f), &[], "app with backend/ and a frontend");
    let db = TestDb::new("unrelated_config_backend");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert_eq!(db.applied(), vec![1700000000001]);
    assert!(db.has_table("public.invoices"));
}

// 10. --project when two project folders exist.
#[test]
fn project_flag_overrides_ambiguous_detection() {
    let mut repo = TestRepo::new();
    let mut f = base_owned(Some("db1"));
    f.extend(under(
        "db1",
        &migration(
            1700000000001,
            "one",
            "create table from_db1 (id int);",
            "drop table from_db1;",
        ),
    ));
    f.extend(base_owned(Some("db2")));
    f.extend(under(
        "db2",
        &migration(
            1700000000001,
            "two",
            "create table from_db2 (id int);",
            "drop table from_db2;",
        ),
    ));
    f.extend(under(
        "db2",
        &migration(
            1700000000002,
            "two_more",
            "create table from_db2_more (id int);",
            "drop table from_db2_more;",
        ),
    ));
    let c = repo.commit(&files(&f), &[], "two projects");
    let db = TestDb::new("two_projects");
    let p = repo.path();

    for args in [
        vec!["deploy", "--yes"],
        vec!["plan", "HEAD"],
        vec!["status"],
    ] {
        let r = gm(&p, &db.url, &args);
        r.expect_code(2)
            .expect_contains("db1")
            .expect_contains("db2");
        assert!(
            r.stderr.contains("error:"),
            "no error line for {args:?}:\n{}",
            r.all()
        );
    }
    assert!(!db.has_table("git_migrate.migrations"));
    assert!(!db.has_table("public.from_db1") && !db.has_table("public.from_db2"));

    gm(&p, &db.url, &["--project", "db2", "plan", "HEAD"])
        .expect_code(0)
        .expect_contains("apply   1700000000001_two")
        .expect_contains("apply   1700000000002_two_more");
    gm(&p, &db.url, &["deploy", "--project", "db2", "--yes"])
        .expect_code(0)
        .expect_contains("2 applied");
    assert_eq!(
        ledger_names(&db),
        vec![
            (1700000000001, "two".to_string()),
            (1700000000002, "two_more".to_string()),
        ]
    );
    assert!(db.has_table("public.from_db2") && db.has_table("public.from_db2_more"));
    assert!(!db.has_table("public.from_db1"));
    assert_eq!(last_to_commit(&db), Some(c.to_string()));
    gm(&p, &db.url, &["status", "--project", "db2", "--exit-code"]).expect_code(0);

    // The other project deploys into another database.
    let db1 = TestDb::new("two_projects_db1");
    gm(&p, &db1.url, &["deploy", "--project", "db1", "--yes"]).expect_code(0);
    assert_eq!(db1.applied(), vec![1700000000001]);
    assert!(db1.has_table("public.from_db1") && !db1.has_table("public.from_db2"));
}
