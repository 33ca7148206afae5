//! `create`, `squash`, `delete`: Hasura's `migrate create/squash/delete` on the working tree,
//! and the database state they touch (squash with a database, delete --server).

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, Run};
use std::path::Path;

/// A checked-out config v2 project with the given migrations committed.
fn project(migrations: &[(i64, &str, &str, &str)]) -> TestRepo {
    let mut repo = TestRepo::new();
    let mut all = base_project();
    let owned: Vec<Vec<(String, String)>> = migrations
        .iter()
        .map(|(v, n, up, down)| migration(*v, n, up, down))
        .collect();
    for m in &owned {
        all.extend(files(m));
    }
    repo.commit(&all, &[], "project");
    checkout(&repo);
    repo
}

fn checkout(repo: &TestRepo) {
    repo.repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
}

/// Migration folders (`<version>_<name>`) under `migrations/`, sorted by version.
fn folders(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p.join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort_by_key(|n| {
        n.split('_')
            .next()
            .and_then(|d| d.parse::<i64>().ok())
            .unwrap_or(i64::MAX)
    });
    v
}

fn read(p: &Path, rel: &str) -> String {
    std::fs::read_to_string(p.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.all()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn create_writes_both_files_with_increasing_versions() {
    let repo = project(&[(1, "a", "create table a (id int);", "drop table a;")]);
    let p = repo.path();
    let before = now_ms();
    let r = gm(
        &p,
        "",
        &[
            "create",
            "add users",
            "--up-sql",
            "create table users (id int);",
            "--down-sql",
            "drop table users;",
            "--json",
        ],
    );
    r.expect_code(0);
    let v = json(&r);
    let first = v["version"].as_i64().unwrap();
    assert!(first >= before && first <= now_ms(), "{v}");
    assert_eq!(v["name"], "add users");
    let path = v["path"].as_str().unwrap().to_string();
    assert_eq!(path, format!("migrations/{first}_add users"));
    assert_eq!(
        read(&p, &format!("{path}/up.sql")),
        "create table users (id int);"
    );
    assert_eq!(read(&p, &format!("{path}/down.sql")), "drop table users;");

    // Created right after: still a higher version, even within the same millisecond.
    let r = gm(
        &p,
        "",
        &[
            "create",
            "second",
            "--up-sql",
            "select 1;",
            "--down-sql",
            "select 2;",
        ],
    );
    r.expect_code(0).expect_contains("Created migrations/");
    let names = folders(&p);
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "1_a");
    assert_eq!(names[1], format!("{first}_add users"));
    let second: i64 = names[2].split('_').next().unwrap().parse().unwrap();
    assert!(second > first);

    // A migration from the future: the next one goes above it.
    let future = 9_000_000_000_000_i64;
    gm(
        &p,
        "",
        &[
            "create",
            "future",
            "--version",
            &future.to_string(),
            "--up-sql",
            "select 1;",
            "--down-sql",
            "select 1;",
        ],
    )
    .expect_code(0);
    let r = gm(
        &p,
        "",
        &[
            "create",
            "after",
            "--up-sql",
            "select 1;",
            "--down-sql",
            "select 1;",
            "--json",
        ],
    );
    assert_eq!(json(&r)["version"].as_i64(), Some(future + 1));
    // --version that is taken is refused.
    gm(
        &p,
        "",
        &[
            "create",
            "dup",
            "--version",
            "1",
            "--up-sql",
            "x",
            "--down-sql",
            "y",
        ],
    )
    .expect_code(2)
    .expect_contains("taken by migrations/1_a");
}

#[test]
fn create_refuses_an_empty_down() {
    let repo = project(&[]);
    let p = repo.path();
    let r = gm(&p, "", &["create", "nothing"]);
    r.expect_code(2)
        .expect_contains("no SQL given")
        .expect_contains("--down-sql")
        .expect_contains("--allow-empty-down");
    let r = gm(
        &p,
        "",
        &["create", "up_only", "--up-sql", "create table t (id int);"],
    );
    r.expect_code(2).expect_contains("pass --down-sql");
    gm(
        &p,
        "",
        &[
            "create",
            "comment_down",
            "--up-sql",
            "create table t (id int);",
            "--down-sql",
            "-- could not auto-generate\n",
        ],
    )
    .expect_code(2)
    .expect_contains("only whitespace or comments");
    assert!(!p.join("migrations").exists() || folders(&p).is_empty());

    // --allow-empty-down: created, with a warning.
    let r = gm(&p, "", &["create", "empty", "--allow-empty-down", "--json"]);
    r.expect_code(0).expect_contains("write the SQL");
    let path = json(&r)["path"].as_str().unwrap().to_string();
    assert_eq!(read(&p, &format!("{path}/up.sql")), "");
    assert_eq!(read(&p, &format!("{path}/down.sql")), "");

    // Bad names.
    for bad in ["a/b", "", " x", "a\tb"] {
        gm(&p, "", &["create", bad, "--up-sql", "x", "--down-sql", "y"])
            .expect_code(2)
            .expect_contains("invalid migration name");
    }
}

#[test]
fn create_sql_from_file() {
    let repo = project(&[]);
    let p = repo.path();
    let sql = "create table from_file (id int);\n-- with a comment\n";
    let file = p.join("up-source.sql");
    std::fs::write(&file, sql).unwrap();
    let r = gm(
        &p,
        "",
        &[
            "create",
            "ff",
            "--sql-from-file",
            file.to_str().unwrap(),
            "--down-sql",
            "drop table from_file;",
            "--json",
        ],
    );
    r.expect_code(0);
    let path = json(&r)["path"].as_str().unwrap().to_string();
    assert_eq!(read(&p, &format!("{path}/up.sql")), sql);
    assert_eq!(
        read(&p, &format!("{path}/down.sql")),
        "drop table from_file;"
    );
    gm(
        &p,
        "",
        &[
            "create",
            "missing",
            "--sql-from-file",
            "/nonexistent/x.sql",
            "--down-sql",
            "y",
        ],
    )
    .expect_code(2)
    .expect_contains("cannot read --sql-from-file");
}

const M1: (i64, &str, &str, &str) = (
    1,
    "customers",
    "create table customers (id serial primary key, name text not null);\n",
    "drop table customers;\n",
);
const M2: (i64, &str, &str, &str) = (
    2,
    "orders",
    "create table orders (id serial primary key, customer_id int not null references customers(id));\ncreate index orders_customer on orders (customer_id);\n",
    "drop table orders;\n",
);
const M3: (i64, &str, &str, &str) = (
    3,
    "customer email",
    "alter table customers add column email text;\ncreate type status as enum ('new', 'paid');\nalter table orders add column status status not null default 'new';",
    "alter table orders drop column status;\ndrop type status;\nalter table customers drop column email;",
);

#[test]
fn squash_combines_ups_in_order_and_downs_in_reverse() {
    let repo = project(&[M1, M2, M3]);
    let p = repo.path();
    let r = gm(&p, "", &["squash", "--from", "1", "--json"]);
    r.expect_code(0);
    let v = json(&r);
    let version = v["version"].as_i64().unwrap();
    assert!(version > 3);
    assert_eq!(v["squashed"], serde_json::json!([1, 2, 3]));
    assert_eq!(v["database"], serde_json::Value::Null);
    assert_eq!(v["trailer"], "Migration-Allow: edited-migration 1 2 3");
    // Hasura's default name, sources moved to squashed_<from>_to_<to>/.
    let folder = format!("{version}_squashed");
    assert_eq!(
        folders(&p),
        vec![folder.clone(), "squashed_1_to_3".to_string()]
    );
    for f in ["1_customers", "2_orders", "3_customer email"] {
        assert!(p
            .join("migrations/squashed_1_to_3")
            .join(f)
            .join("up.sql")
            .exists());
    }
    let up = read(&p, &format!("migrations/{folder}/up.sql"));
    let down = read(&p, &format!("migrations/{folder}/down.sql"));
    assert_eq!(
        up,
        format!(
            "-- from 1_customers\n{}\n-- from 2_orders\n{}\n-- from 3_customer email\n{}\n",
            M1.2, M2.2, M3.2
        )
    );
    let pos = |s: &str, n: &str| s.find(n).unwrap_or_else(|| panic!("{n} in {s}"));
    assert!(pos(&down, "-- from 3_") < pos(&down, "-- from 2_"));
    assert!(pos(&down, "-- from 2_") < pos(&down, "-- from 1_"));

    // The squashed down undoes the squashed up.
    let empty = TestDb::new("squash_empty");
    let db = TestDb::new("squash_updown");
    db.client().batch_execute(&up).unwrap();
    assert!(db.has_table("public.orders"));
    db.client().batch_execute(&down).unwrap();
    assert_eq!(db.dump(true, None), empty.dump(true, None));

    // The text output names the trailer and the command for other databases.
    let repo = project(&[M1, M2, M3]);
    let r = gm(
        &repo.path(),
        "",
        &["squash", "--from", "2", "--to", "3", "--name", "two"],
    );
    r.expect_code(0)
        .expect_contains("Migration-Allow: edited-migration 2 3")
        .expect_contains("No database given")
        .expect_contains("--state-only --version");
}

#[test]
fn squash_delete_source_and_keeping_order() {
    let repo = project(&[M1, M2, M3]);
    let p = repo.path();
    gm(
        &p,
        "",
        &[
            "squash",
            "--from",
            "1",
            "--to",
            "3",
            "--delete-source",
            "--name",
            "base",
        ],
    )
    .expect_code(0)
    .expect_contains("Deleted the source folders");
    let names = folders(&p);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("_base"));

    // Newer migrations follow the range: the squashed one keeps --to's version so that it
    // still runs before them.
    let mut repo = project(&[M1, M2, M3]);
    let p = repo.path();
    let r = gm(
        &p,
        "",
        &[
            "squash",
            "--from",
            "1",
            "--to",
            "2",
            "--delete-source",
            "--json",
        ],
    );
    r.expect_code(0);
    assert_eq!(json(&r)["version"].as_i64(), Some(2));
    assert_eq!(folders(&p), vec!["2_squashed", "3_customer email"]);
    // The result deploys to an empty database and rolls back to nothing.
    repo.commit_worktree("squash 1..2");
    let db = TestDb::new("squash_keep_order");
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![2, 3]);
    assert!(db.has_table("public.orders"));

    // Refusals: a missing down, unknown versions, a single migration.
    let repo = project(&[M1, (2, "no_down", "create table x (id int);", ""), M3]);
    let p = repo.path();
    gm(&p, "", &["squash", "--from", "1"])
        .expect_code(3)
        .expect_contains("2_no_down: down.sql is missing or empty")
        .expect_contains("--allow-empty-down");
    assert_eq!(folders(&p).len(), 3);
    gm(&p, "", &["squash", "--from", "1", "--allow-empty-down"])
        .expect_code(0)
        .expect_contains("skips 1 migration");
    let repo = project(&[M1, M2]);
    gm(&repo.path(), "", &["squash", "--from", "7"])
        .expect_code(2)
        .expect_contains("no migration 7");
    gm(&repo.path(), "", &["squash", "--from", "2"])
        .expect_code(2)
        .expect_contains("nothing to squash");
}

#[test]
fn squash_with_a_database_records_the_new_version_in_place_of_the_old() {
    let mut repo = project(&[M1, M2, M3]);
    let p = repo.path();
    let db = TestDb::new("squash_ledger");
    // Hasura's table, kept in step by deploy and by squash.
    db.client()
        .batch_execute(
            "create schema hdb_catalog; create table hdb_catalog.schema_migrations (version bigint primary key, dirty boolean not null);",
        )
        .unwrap();
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 2, 3]);
    db.client()
        .batch_execute("insert into customers (name) values ('kept');")
        .unwrap();
    let schema_before = db.dump(true, Some("git_migrate"));

    let r = gm(&p, &db.url, &["squash", "--from", "1", "--delete-source"]);
    r.expect_code(0)
        .expect_contains("had all 3 applied")
        .expect_contains("no SQL ran")
        .expect_contains("Migration-Allow: edited-migration 1 2 3");
    let names = folders(&p);
    assert_eq!(names.len(), 1);
    let version: i64 = names[0].split('_').next().unwrap().parse().unwrap();
    assert_eq!(db.applied(), vec![version]);
    assert_eq!(
        db.scalar("select string_agg(version::text, ',') from hdb_catalog.schema_migrations")
            .as_deref(),
        Some(version.to_string().as_str())
    );
    assert_eq!(
        db.scalar("select kind || ' ' || target_ref from git_migrate.deployments order by id desc limit 1")
            .as_deref(),
        Some(format!("repair squash 1..3 into {version}").as_str())
    );
    // The stored down is the combined one.
    assert!(db
        .scalar(&format!(
            "select down_sql from git_migrate.migrations where version = {version}"
        ))
        .unwrap()
        .starts_with("-- from 3_customer email"));

    // Commit with the trailer: check accepts it; deploying the commit runs nothing.
    repo.commit_worktree(
        "Squash the first migrations\n\nMigration-Allow: edited-migration 1 2 3\n",
    );
    gm(&p, &db.url, &["check"]).expect_code(0);
    let r = gm(&p, &db.url, &["deploy", "--yes"]);
    r.expect_code(0).expect_contains("0 reverted, 0 applied");
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
    assert_eq!(db.applied(), vec![version]);
    assert_eq!(db.dump(true, Some("git_migrate")), schema_before);
    assert_eq!(
        db.scalar("select name from customers").as_deref(),
        Some("kept")
    );
    // Going back to the commit before the squash runs the squashed down, then the originals.
    gm(&p, &db.url, &["deploy", "HEAD~1", "--yes"])
        .expect_code(0)
        .expect_contains("1 reverted, 3 applied");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    assert_eq!(db.dump(true, Some("git_migrate")), schema_before);
}

#[test]
fn squash_state_only_moves_another_database() {
    let mut repo = project(&[M1, M2, M3]);
    let p = repo.path();
    let staging = TestDb::new("squash_staging");
    let prod = TestDb::new("squash_prod");
    gm(&p, &staging.url, &["deploy", "--yes"]).expect_code(0);
    gm(&p, &prod.url, &["deploy", "--yes"]).expect_code(0);
    let r = gm(&p, &staging.url, &["squash", "--from", "1", "--json"]);
    r.expect_code(0);
    let v = json(&r);
    let version = v["version"].as_i64().unwrap();
    assert_eq!(v["database"]["recorded"], true);
    let cmd = v["state_only_command"].as_str().unwrap();
    assert!(
        cmd.contains(&format!("--from 1 --to 3 --state-only --version {version}")),
        "{cmd}"
    );
    repo.commit_worktree("squash\n\nMigration-Allow: edited-migration 1 2 3\n");

    // prod still has 1..3: a plain deploy would revert them; --state-only moves its state.
    gm(&p, &prod.url, &["plan"])
        .expect_code(0)
        .expect_contains("revert");
    let v = version.to_string();
    let args = [
        "squash",
        "--from",
        "1",
        "--to",
        "3",
        "--state-only",
        "--version",
        v.as_str(),
    ];
    gm(&p, &prod.url, &args)
        .expect_code(0)
        .expect_contains("no SQL ran");
    assert_eq!(prod.applied(), vec![version]);
    gm(&p, &prod.url, &args)
        .expect_code(0)
        .expect_contains("nothing to do");
    gm(&p, &prod.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("0 reverted, 0 applied");
    // A wrong range is refused.
    gm(
        &p,
        &staging.url,
        &[
            "squash",
            "--from",
            "2",
            "--to",
            "3",
            "--state-only",
            "--version",
            v.as_str(),
        ],
    )
    .expect_code(2)
    .expect_contains("is not the squash of 2..3");
    // --state-only needs a database.
    gm(&p, "", &args)
        .expect_code(2)
        .expect_contains("no database is given");
}

#[test]
fn squash_refuses_a_partly_applied_range() {
    let mut repo = project(&[M1, M2]);
    let p = repo.path();
    let db = TestDb::new("squash_partial");
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    let m3 = migration(M3.0, M3.1, M3.2, M3.3);
    repo.commit(&files(&m3), &[], "m3");
    checkout(&repo);
    let r = gm(&p, &db.url, &["squash", "--from", "1"]);
    r.expect_code(3)
        .expect_contains("out of sync")
        .expect_contains("not applied: 3_customer email");
    assert_eq!(
        folders(&p),
        vec!["1_customers", "2_orders", "3_customer email"]
    );
    assert_eq!(db.applied(), vec![1, 2]);
    // A squashed file that differs from what ran is refused too.
    std::fs::write(
        p.join("migrations/1_customers/up.sql"),
        "create table customers (id int);",
    )
    .unwrap();
    gm(&p, &db.url, &["squash", "--from", "1", "--to", "2"])
        .expect_code(3)
        .expect_contains("1_customers: the ledger has sha256:");
    assert_eq!(db.applied(), vec![1, 2]);
}

#[test]
fn delete_files_and_server_state() {
    let repo = project(&[M1, M2, M3]);
    let p = repo.path();
    // Without a database: the folder goes, nothing else.
    gm(&p, "", &["delete", "--version", "3"])
        .expect_code(0)
        .expect_contains("Deleted migrations/3_customer email");
    assert_eq!(folders(&p), vec!["1_customers", "2_orders"]);
    gm(&p, "", &["delete", "--version", "9"])
        .expect_code(2)
        .expect_contains("no migration 9");

    // With a database that has it applied: refused unless --force.
    let db = TestDb::new("delete_state");
    gm(&p, &db.url, &["deploy", "--worktree", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 2]);
    gm(&p, &db.url, &["delete", "--version", "2"])
        .expect_code(3)
        .expect_contains("applied in")
        .expect_contains("git migrate delete --server --version 2");
    assert_eq!(folders(&p).len(), 2);

    // --server: the state row goes, the files and the table stay, nothing runs.
    let r = gm(&p, &db.url, &["delete", "--server", "--version", "2"]);
    r.expect_code(0)
        .expect_contains("Removed 1 version(s)")
        .expect_contains("No SQL ran");
    assert_eq!(db.applied(), vec![1]);
    assert!(db.has_table("public.orders"));
    assert_eq!(folders(&p).len(), 2);
    assert_eq!(
        db.scalar("select kind from git_migrate.deployments order by id desc limit 1")
            .as_deref(),
        Some("repair")
    );
    gm(&p, &db.url, &["delete", "--server", "--version", "2"])
        .expect_code(3)
        .expect_contains("does not record 2");
    // Now the files of 2 can go without --force.
    gm(&p, &db.url, &["delete", "--version", "2"]).expect_code(0);
    gm(&p, &db.url, &["delete", "--version", "1", "--force"]).expect_code(0);
    assert!(folders(&p).is_empty());

    // --all asks; without a terminal it refuses unless --force.
    let repo = project(&[M1, M2]);
    let p = repo.path();
    gm(&p, "", &["delete", "--all"])
        .expect_code(3)
        .expect_contains("--force");
    assert_eq!(folders(&p).len(), 2);
    gm(&p, "", &["delete", "--all", "--force"]).expect_code(0);
    assert!(folders(&p).is_empty());
    let db = TestDb::new("delete_all_state");
    let repo = project(&[M1, M2]);
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["delete", "--server", "--all"]).expect_code(3);
    let r = gm(
        &p,
        &db.url,
        &["delete", "--server", "--all", "--force", "--json"],
    );
    r.expect_code(0);
    assert_eq!(json(&r)["deleted"], serde_json::json!([1, 2]));
    assert!(db.applied().is_empty());
    assert!(db.has_table("public.orders"));
    // Exactly one of --version / --all.
    gm(&p, "", &["delete"]).expect_code(2);
}

#[test]
fn squash_and_delete_keep_hasura_state_in_step_without_a_ledger() {
    let repo = project(&[M1, M2, M3]);
    let p = repo.path();
    let db = TestDb::new("squash_hasura_only");
    // A database the Hasura CLI manages: its tables, its two state stores, no ledger.
    db.client()
        .batch_execute(&format!(
            "{}; {}; {};
             create schema hdb_catalog;
             create table hdb_catalog.schema_migrations (version bigint primary key, dirty boolean not null);
             insert into hdb_catalog.schema_migrations values (1, false), (2, false), (3, false);
             create table hdb_catalog.hdb_version (hasura_uuid uuid, version text, cli_state jsonb not null default '{{}}');
             insert into hdb_catalog.hdb_version (version, cli_state) values
               ('47', '{{\"migrations\": {{\"default\": {{\"1\": false, \"2\": false, \"3\": false}}, \"other\": {{\"9\": false}}}}, \"settings\": {{\"migration_mode\": \"true\"}}}}');",
            M1.2, M2.2, M3.2
        ))
        .unwrap();
    let r = gm(
        &p,
        &db.url,
        &["squash", "--from", "1", "--delete-source", "--json"],
    );
    r.expect_code(0);
    let version = json(&r)["version"].as_i64().unwrap();
    assert!(
        !db.has_table("git_migrate.migrations"),
        "no ledger is created"
    );
    assert_eq!(
        db.scalar("select string_agg(version::text, ',') from hdb_catalog.schema_migrations")
            .as_deref(),
        Some(version.to_string().as_str())
    );
    assert_eq!(
        db.scalar("select cli_state::text from hdb_catalog.hdb_version")
            .map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap()),
        Some(serde_json::json!({
            "migrations": {"default": {version.to_string(): false}, "other": {"9": false}},
            "settings": {"migration_mode": "true"}
        }))
    );
    // delete --server forgets it in both stores.
    let v = version.to_string();
    gm(&p, &db.url, &["delete", "--server", "--version", &v])
        .expect_code(0)
        .expect_contains("hdb_catalog.schema_migrations, hdb_catalog.hdb_version.cli_state");
    assert_eq!(
        db.scalar("select count(*) from hdb_catalog.schema_migrations")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        db.scalar("select cli_state -> 'migrations' ->> 'default' from hdb_catalog.hdb_version")
            .as_deref(),
        Some("{}")
    );
    assert!(db.has_table("public.orders"));
}

#[test]
fn squash_keeping_the_to_version_records_it_with_its_new_checksum() {
    let mut repo = project(&[M1, M2, M3]);
    let p = repo.path();
    let staging = TestDb::new("squash_keep_staging");
    let prod = TestDb::new("squash_keep_prod");
    gm(&p, &staging.url, &["deploy", "--yes"]).expect_code(0);
    gm(&p, &prod.url, &["deploy", "--yes"]).expect_code(0);
    let r = gm(
        &p,
        &staging.url,
        &["squash", "--from", "1", "--to", "2", "--json"],
    );
    r.expect_code(0);
    assert_eq!(json(&r)["version"].as_i64(), Some(2));
    assert_eq!(staging.applied(), vec![2, 3]);
    repo.commit_worktree("squash\n\nMigration-Allow: edited-migration 1 2\n");
    gm(&p, &staging.url, &["check"]).expect_code(0);
    gm(&p, &staging.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("0 reverted, 0 applied");

    // prod: version 2 has the old checksum there, so a deploy is refused as modified.
    gm(&p, &prod.url, &["deploy", "--yes"])
        .expect_code(3)
        .expect_contains("modified after it was applied");
    let args = [
        "squash",
        "--from",
        "1",
        "--to",
        "2",
        "--state-only",
        "--version",
        "2",
    ];
    gm(&p, &prod.url, &args)
        .expect_code(0)
        .expect_contains("no SQL ran");
    assert_eq!(prod.applied(), vec![2, 3]);
    gm(&p, &prod.url, &args)
        .expect_code(0)
        .expect_contains("nothing to do");
    gm(&p, &prod.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("0 reverted, 0 applied");
    gm(&p, &prod.url, &["status", "--exit-code"]).expect_code(0);
}
