//! Deploying forward, across branches, and what deploy refuses.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;

#[test]
fn deploy_forward_records_commit_ledger_and_metadata() {
    let repo = TestRepo::shop();
    let db = TestDb::new("deploy_forward");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1700000000001, 1700000000002]);
    let r = gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"]);
    r.expect_code(0).expect_contains("5 applied");
    assert_eq!(db.applied().len(), 7);
    assert!(db.has_table("public.reviews"));
    let v2 = repo
        .repo
        .revparse_single("v2.0.0")
        .unwrap()
        .id()
        .to_string();
    assert_eq!(
        db.scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some(v2.as_str())
    );
    assert_eq!(
        db.scalar("SELECT commit FROM git_migrate.metadata")
            .as_deref(),
        Some(v2.as_str())
    );
    // The metadata snapshot is the v2.0.0 one: reviews tracked, search_products function.
    assert_eq!(
        db.scalar("SELECT snapshot->'functions'->0->'function'->>'name' FROM git_migrate.metadata")
            .as_deref(),
        Some("search_products")
    );
    // Applied rows name their commit and keep a copy of the down SQL.
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.migrations WHERE down_sql IS NOT NULL AND up_sha256 LIKE 'sha256:%'").as_deref(),
        Some("7")
    );
    // Deploying the same commit again does nothing.
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"])
        .expect_code(0)
        .expect_contains("nothing to do");
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.deployments")
            .as_deref(),
        Some("2")
    );
    // status agrees.
    gm(&p, &db.url, &["status", "--exit-code"])
        .expect_code(0)
        .expect_contains("in sync");
}

#[test]
fn read_commands_never_create_the_ledger() {
    let repo = TestRepo::shop();
    let db = TestDb::new("read_only");
    let p = repo.path();
    gm(&p, &db.url, &["status"]).expect_code(0);
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(1);
    gm(&p, &db.url, &["plan", "v2.0.0"])
        .expect_code(0)
        .expect_contains("apply   1700000000007");
    gm(&p, &db.url, &["deploy", "v2.0.0", "--dry-run"]).expect_code(0);
    gm(&p, &db.url, &["log"]).expect_code(0);
    assert!(!db.has_table("git_migrate.migrations"));
    assert!(!db.has_table("public.customers"));
}

#[test]
fn deploy_sibling_branch_reverts_then_applies() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    let root = repo.commit(&base, &[], "base");
    let m2 = migration(2, "b", "create table b (id int);", "drop table b;");
    let m3 = migration(3, "c", "create table c (id int);", "drop table c;");
    let mut fb = files(&m2);
    fb.extend(files(&m3));
    let feature_b = repo.commit_on(vec![root], &fb, &[], "feature b", None);
    let m4 = migration(4, "d", "create table d (id int);", "drop table d;");
    let feature_d = repo.commit_on(vec![root], &files(&m4), &[], "feature d", None);
    repo.branch("b", feature_b);
    repo.branch("d", feature_d);
    let db = TestDb::new("sibling");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "b", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 2, 3]);
    let plan = gm(&p, &db.url, &["plan", "d"]);
    plan.expect_code(0);
    let order: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("revert") || l.trim_start().starts_with("apply"))
        .map(|l| l.split_whitespace().take(2).last().unwrap())
        .collect();
    assert_eq!(order, vec!["3_c", "2_b", "4_d"]);
    // Without a terminal and without --yes a revert is refused, and nothing changes.
    gm(&p, &db.url, &["deploy", "d"])
        .expect_code(3)
        .expect_contains("--yes");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    gm(&p, &db.url, &["deploy", "d", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 4]);
    assert!(db.has_table("public.d") && !db.has_table("public.b") && !db.has_table("public.c"));
}

#[test]
fn failure_in_second_of_three_leaves_everything_identical() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(
        1,
        "a",
        "create table a (id int primary key, v text);\ninsert into a values (1, 'x');",
        "drop table a;",
    );
    base.extend(files(&m1));
    let c1 = repo.commit(&base, &[], "one");
    repo.tag("v1", c1);
    let m2 = migration(2, "b", "create table b (id int);", "drop table b;");
    let m3 = migration(
        3,
        "broken",
        "alter table a add column w int;\n\nupdate a set v = 'y';\nalter tabel a drop column v;\n",
        "select 1;",
    );
    let m4 = migration(4, "d", "create table d (id int);", "drop table d;");
    let mut f = files(&m2);
    f.extend(files(&m3));
    f.extend(files(&m4));
    f.push((
        "metadata/tables.yaml",
        "- table:\n    schema: public\n    name: a\n",
    ));
    let c2 = repo.commit(&f, &[], "three more, one broken");
    let db = TestDb::new("atomic");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = db.dump_ignoring_failed_attempts();
    let r = gm(&p, &db.url, &["deploy", "HEAD", "--yes"]);
    r.expect_code(4)
        .expect_contains("3_broken")
        .expect_contains(&format!(
            "migrations/3_broken/up.sql @ {}",
            &c2.to_string()[..10]
        ))
        .expect_contains("up.sql @")
        .expect_contains(":4:7")
        .expect_contains("nothing changed");
    assert_eq!(
        before,
        db.dump_ignoring_failed_attempts(),
        "the failed deploy changed the database"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.deployments WHERE status = 'failed'")
            .as_deref(),
        Some("1"),
        "the failed attempt is recorded"
    );
}

#[test]
fn runtime_error_deep_in_a_long_file_is_located() {
    // 4,000 statements, the 3,217th fails at run time only when the rows before it exist: the
    // replay runs in batches and must still land on the right statement and line.
    let mut up = String::from("create table t (id int primary key);\n");
    for i in 1..3216 {
        up.push_str(&format!("insert into t values ({i});\n"));
    }
    up.push_str("select 1 / (count(*) - 3215) from t;\n");
    for i in 3216..4000 {
        up.push_str(&format!("insert into t values ({i});\n"));
    }
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m = migration(1, "long", &up, "drop table t;");
    base.extend(files(&m));
    repo.commit(&base, &[], "x");
    let db = TestDb::new("runtime_error_long");
    let before = db.dump_ignoring_failed_attempts();
    gm(&repo.path(), &db.url, &["deploy", "--yes"])
        .expect_code(4)
        .expect_contains("1_long")
        .expect_contains(":3217:1: division by zero")
        .expect_contains("failing statement: #3217")
        .expect_contains("select 1 / (count(*) - 3215) from t;");
    assert_eq!(before, db.dump_ignoring_failed_attempts());
}

#[test]
fn a_session_ended_at_commit_is_reported_as_uncertain() {
    // A deferred constraint trigger terminates its own backend while COMMIT runs: the server
    // answers COMMIT with FATAL 57P01. What happened to the transaction is not something the
    // client can know from that answer (here it was rolled back; when an operator terminates the
    // session just after the commit record, it was committed: a kill trial caught the tool
    // saying "nothing was changed" then), so the tool must not claim either.
    let up = "create table t (id int);\n\
        create function bye() returns trigger language plpgsql as $$\n\
        begin perform pg_terminate_backend(pg_backend_pid()); return null; end $$;\n\
        create constraint trigger bye after insert on t deferrable initially deferred\n\
          for each row execute function bye();\n\
        insert into t values (1);\n";
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m = migration(1, "bye", up, "drop table t; drop function bye();");
    base.extend(files(&m));
    repo.commit(&base, &[], "x");
    let db = TestDb::new("commit_fatal");
    let before = db.dump_ignoring_failed_attempts();
    let r = gm(&repo.path(), &db.url, &["deploy", "--yes"]);
    r.expect_code(4)
        .expect_contains("while committing")
        .expect_contains("57P01")
        .expect_contains("may or may not have been committed")
        .expect_contains("git migrate status");
    assert!(!r.all().contains("nothing was changed"), "{}", r.all());
    assert_eq!(before, db.dump_ignoring_failed_attempts());
}

#[test]
fn runtime_error_names_migration_and_rolls_back() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    let m2 = migration(
        2,
        "div",
        "create table b (id int);\nselect 1/0;",
        "drop table b;",
    );
    base.extend(files(&m1));
    base.extend(files(&m2));
    repo.commit(&base, &[], "x");
    let db = TestDb::new("runtime_error");
    let r = gm(&repo.path(), &db.url, &["deploy", "--yes"]);
    r.expect_code(4)
        .expect_contains("2_div")
        .expect_contains("division by zero")
        .expect_contains("22012")
        .expect_contains("up.sql @ ")
        .expect_contains(":2:1: division by zero")
        .expect_contains("failing statement: #2");
    assert!(!db.has_table("public.a"));
    assert!(
        !db.has_table("git_migrate.migrations"),
        "the ledger must not exist after a failed first deploy"
    );
}

#[test]
fn modified_after_apply_is_refused_with_both_checksums() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    let c1 = repo.commit(&base, &[], "one");
    let db = TestDb::new("modified");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    let c2 = repo.commit(
        &[("migrations/1_a/up.sql", "create table a (id bigint);")],
        &[],
        "edit",
    );
    let r = gm(&p, &db.url, &["deploy", "--yes"]);
    r.expect_code(3)
        .expect_contains("1_a was modified after it was applied")
        .expect_contains(&c1.to_string()[..10])
        .expect_contains("sha256:")
        .expect_contains("repair --accept 1");
    let _ = c2;
    let r = gm(&p, &db.url, &["plan", "HEAD", "--json"]);
    r.expect_code(3)
        .expect_contains("\"kind\": \"modified-after-apply\"");
    // status reports it without failing (exit 1 with --exit-code).
    gm(&p, &db.url, &["status", "--exit-code"])
        .expect_code(1)
        .expect_contains("modified after it was applied");
}

#[test]
fn out_of_order_merge_aware() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    let root = repo.commit(&base, &[], "base");
    // A feature branch adds version 2 while main goes on to version 3.
    let m2 = migration(
        2,
        "from_branch",
        "create table b (id int);",
        "drop table b;",
    );
    let feature = repo.commit_on(vec![root], &files(&m2), &[], "feature", None);
    let m3 = migration(3, "main", "create table c (id int);", "drop table c;");
    let main3 = repo.commit(&files(&m3), &[], "main moves on");
    let db = TestDb::new("ooo_merge");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 3]);
    // Merge the feature: tree = main + version 2.
    let merge = repo.commit_on(
        vec![main3, feature],
        &files(&m2),
        &[],
        "Merge branch 'feature'",
        Some("HEAD"),
    );
    let r = gm(&p, &db.url, &["deploy", "--yes"]);
    r.expect_code(0)
        .expect_contains(&merge.to_string()[..10])
        .expect_contains("Merge branch 'feature'")
        .expect_contains("out of order");
    assert_eq!(db.applied(), vec![1, 2, 3]);
}

#[test]
fn out_of_order_gap_present_at_deployed_commit_is_refused() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    let m2 = migration(2, "b", "create table b (id int);", "drop table b;");
    let m3 = migration(3, "c", "create table c (id int);", "drop table c;");
    base.extend(files(&m1));
    base.extend(files(&m3));
    repo.commit(&base, &[], "base");
    let db = TestDb::new("ooo_gap");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    // Someone deletes the ledger row of nothing... simulate a gap: version 2 was present at the
    // deployed commit but never applied (e.g. applied by hand elsewhere, then reverted).
    let c2 = repo.commit(&files(&m2), &[], "add 2 (in the same line of history)");
    // Pretend the database was deployed at c2 without applying 2 (by an older git-migrate
    // that recorded no schema: a recorded one would make the end-state proof refuse the
    // deploy below, since c2's real schema has table b).
    db.client()
        .execute(
            "UPDATE git_migrate.deployments SET to_commit = $1, schema_fingerprint = NULL",
            &[&c2.to_string()],
        )
        .unwrap();
    gm(&p, &db.url, &["deploy", "--yes"])
        .expect_code(3)
        .expect_contains("2_b is out of order")
        .expect_contains("already present at the deployed commit");
    assert_eq!(db.applied(), vec![1, 3]);
    gm(&p, &db.url, &["deploy", "--yes", "--allow-out-of-order"]).expect_code(0);
    assert_eq!(db.applied(), vec![1, 2, 3]);
}

#[test]
fn deploy_from_a_bare_repository() {
    let mut repo = TestRepo::bare();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    let c = repo.commit(&base, &[], "one");
    repo.tag("v1", c);
    let db = TestDb::new("bare");
    gm(&repo.path(), &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![1]);
    gm(&repo.path(), &db.url, &["deploy", "--worktree", "--yes"])
        .expect_code(2)
        .expect_contains("bare");
}

#[test]
fn worktree_source_is_recorded_as_dirty() {
    let repo = TestRepo::shop();
    let db = TestDb::new("worktree");
    let p = repo.path();
    std::fs::create_dir_all(p.join("migrations/1800000000000_local")).unwrap();
    std::fs::write(
        p.join("migrations/1800000000000_local/up.sql"),
        "create table local_t (id int);",
    )
    .unwrap();
    std::fs::write(
        p.join("migrations/1800000000000_local/down.sql"),
        "drop table local_t;",
    )
    .unwrap();
    gm(&p, &db.url, &["deploy", "--worktree", "--yes"]).expect_code(0);
    assert!(db.has_table("public.local_t"));
    assert_eq!(
        db.scalar("SELECT worktree_dirty FROM git_migrate.deployments")
            .as_deref(),
        Some("t")
    );
    // The committed project does not have it: HEAD would revert it, using the stored down.
    gm(&p, &db.url, &["deploy", "HEAD", "--yes"]).expect_code(0);
    assert!(!db.has_table("public.local_t"));
}

#[test]
fn staged_source_reads_the_index_without_touching_it() {
    let repo = TestRepo::shop();
    let db = TestDb::new("staged");
    let p = repo.path();
    let before = std::fs::read(p.join(".git/index")).unwrap();
    // Stage a new migration (what `git add` would do) through git2 on the real index.
    let mut idx = repo.repo.index().unwrap();
    for (path, body) in [
        (
            "migrations/1800000000000_staged/up.sql",
            "create table staged_t (id int);",
        ),
        (
            "migrations/1800000000000_staged/down.sql",
            "drop table staged_t;",
        ),
    ] {
        let blob = repo.repo.blob(body.as_bytes()).unwrap();
        let mut entry = idx
            .get_path(std::path::Path::new("config.yaml"), 0)
            .unwrap();
        entry.id = blob;
        entry.path = path.as_bytes().to_vec();
        entry.file_size = body.len() as u32;
        idx.add(&entry).unwrap();
    }
    idx.write().unwrap();
    let staged_index = std::fs::read(p.join(".git/index")).unwrap();
    assert_ne!(before, staged_index);
    gm(&p, &db.url, &["plan", "--staged"])
        .expect_code(0)
        .expect_contains("apply   1800000000000_staged");
    gm(&p, &db.url, &["deploy", "--staged", "--yes"]).expect_code(0);
    assert!(db.has_table("public.staged_t"));
    assert_eq!(
        std::fs::read(p.join(".git/index")).unwrap(),
        staged_index,
        "the index file must not change"
    );
    assert!(
        !p.join("migrations/1800000000000_staged").exists(),
        "nothing is written to the working tree"
    );
}

#[test]
fn works_from_a_linked_worktree() {
    let repo = TestRepo::shop();
    let db = TestDb::new("linked_worktree");
    let wt_dir = tempfile::Builder::new().prefix("gm-wt-").tempdir().unwrap();
    let wt_path = wt_dir.path().join("wt");
    repo.repo.worktree("wt", &wt_path, None).unwrap();
    gm(&wt_path, &db.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    assert_eq!(db.applied().len(), 4);
    gm(&wt_path, &db.url, &["status"])
        .expect_code(0)
        .expect_contains("v1.1.0");
}

#[test]
fn hasura_managed_database_is_not_redeployed() {
    let repo = TestRepo::shop();
    let db = TestDb::new("hasura_managed");
    db.client()
        .batch_execute(
            "CREATE SCHEMA hdb_catalog;
             CREATE TABLE hdb_catalog.schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
             INSERT INTO hdb_catalog.schema_migrations VALUES (1700000000001, false);",
        )
        .unwrap();
    let before = db.dump(false, None);
    // 1700000000001 is adopted, not run again (its table was never created here, so the
    // first migration that needs it fails), and the adoption rolls back with the deploy.
    gm(&repo.path(), &db.url, &["deploy", "--yes"])
        .expect_code(4)
        .expect_contains("managed by the Hasura CLI")
        .expect_contains("up migration 1700000000003_create_orders failed");
    assert_eq!(before, db.dump(false, None));
}

#[test]
fn hasura_schema_migrations_kept_in_step() {
    let repo = TestRepo::shop();
    let db = TestDb::new("hasura_in_step");
    db.client()
        .batch_execute(
            "CREATE SCHEMA hdb_catalog;
             CREATE TABLE hdb_catalog.schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);",
        )
        .unwrap();
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    let hasura =
        "SELECT string_agg(version::text, ',' ORDER BY version) FROM hdb_catalog.schema_migrations";
    assert_eq!(db.scalar(hasura).unwrap().split(',').count(), 7);
    gm(&p, &db.url, &["rollback", "v1.0.0", "--yes"]).expect_code(0);
    assert_eq!(
        db.scalar(hasura).as_deref(),
        Some("1700000000001,1700000000002")
    );
}

#[test]
fn honours_git_dir_like_a_git_subcommand() {
    // Server-side hooks run with GIT_DIR set and the current directory elsewhere.
    let mut repo = TestRepo::bare();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    repo.commit(&base, &[], "one");
    let db = TestDb::new("git_dir_env");
    let elsewhere = tempfile::tempdir().unwrap();
    let git_dir = repo.path();
    crate::common::gm_env(
        elsewhere.path(),
        &db.url,
        &["deploy", "--yes"],
        &[("GIT_DIR", git_dir.to_str().unwrap())],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![1]);
}

#[test]
fn lazily_read_folders_edited_downs_and_yaml_only_folders() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "");
    base.extend(files(&m1));
    base.push((
        "migrations/2_v1_only/down.yaml",
        "- type: run_sql\n  args: {sql: select 1}\n",
    ));
    repo.commit(&base, &[], "one");
    let db = TestDb::new("lazy_folders");
    let p = repo.path();
    gm(&p, &db.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("migrations/2_v1_only holds no up.sql or up.yaml: skipped");
    assert_eq!(
        db.applied(),
        vec![1],
        "a folder with only a down.yaml is not a migration"
    );
    // Writing the missing down later changes the folder's tree id but not up.sql: not a
    // modification, and the new down is what a rollback uses.
    repo.commit(
        &[("migrations/1_a/down.sql", "drop table a;")],
        &[],
        "write the down",
    );
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
    gm(&p, &db.url, &["deploy", "--yes"]).expect_code(0);
    // Undo the deploy of the down-only change (nothing to run), then undo the first deploy:
    // the code that ran (the first commit) has an empty down, so the new one is named.
    gm(&p, &db.url, &["rollback", "--yes"]).expect_code(0);
    gm(&p, &db.url, &["rollback", "--yes"])
        .expect_code(3)
        .expect_contains("empty or only comments");
    gm(&p, &db.url, &["rollback", "--yes", "--down-from", "HEAD"]).expect_code(0);
    assert!(db.applied().is_empty());
    assert!(!db.has_table("public.a"));
}
