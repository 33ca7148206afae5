//! Computed downs (issue 13): a migration without a usable down is rolled back with a down
//! computed from the schema, captured when it was applied or computed by replaying the applied
//! history in a scratch database, and the result is fingerprint-equal to a fresh deploy of the
//! target.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, gm_env, Run};
use crate::test_end_state::wrong_downs;
use git2::Oid;
use git_migrate_core::verify::fingerprint::{diff_ignoring_column_order, Fingerprint};

const EXCLUDED: &[&str] = &["git_migrate", "hdb_catalog"];

/// The differences between two databases' schemas (column order left out), described.
fn differences(a: &TestDb, b: &TestDb) -> Vec<String> {
    let fa = Fingerprint::take(&mut a.client(), EXCLUDED).expect("fingerprint");
    let fb = Fingerprint::take(&mut b.client(), EXCLUDED).expect("fingerprint");
    diff_ignoring_column_order(&fa, &fb)
        .iter()
        .map(|d| d.against_recorded())
        .collect()
}

/// A: tables t and parent. B: migrations as `hasura migrate create` and the console leave them,
/// with empty downs: a table with a foreign key, an index, a trigger and its function, an enum
/// and a column, a NOT NULL added and a view.
fn empty_downs() -> (TestRepo, Oid, Oid) {
    let mut r = TestRepo::new();
    let mut f = base_project_with(&migration(
        100,
        "t",
        "create table parent (id int primary key);\n\
         create table t (id int primary key, name text, parent_id int references parent(id));\n\
         insert into parent values (1), (2);\n\
         insert into t values (1, 'a', 1), (2, null, 2);",
        "drop table t; drop table parent;",
    ));
    f.extend(migration(
        110,
        "v",
        "create view t_names as select id, name from t;",
        "drop view t_names;",
    ));
    let a = r.commit(&files(&f), &[], "A");
    let mut g = migration(
        200,
        "orders",
        "create type status as enum ('new', 'paid');\n\
         create table orders (id serial primary key, t_id int not null references t(id), status status not null default 'new');\n\
         create index orders_t on orders (t_id);\n\
         insert into orders (t_id) values (1), (2);",
        "",
    );
    g.extend(migration(
        210,
        "touch",
        "create function touch() returns trigger language plpgsql as $$ begin return new; end $$;\n\
         create trigger t_touch before update on t for each row execute function touch();\n\
         update t set name = '' where name is null;\n\
         alter table t alter column name set not null;",
        "-- Could not auto-generate a down migration.\n-- Please write an appropriate down migration for the SQL below:\n",
    ));
    g.extend(migration(
        220,
        "drop_view",
        "drop view t_names;\nalter table t add column email text;",
        "",
    ));
    let b = r.commit(&files(&g), &[], "B");
    (r, a, b)
}

/// A: migration 100 (`a_up`, `a_down`). B: migration 200 `b_name` (`b_up`, an empty down).
/// Both deployed, in that order, to a new database.
fn deployed_pair(
    test: &str,
    a_up: &str,
    a_down: &str,
    b_name: &str,
    b_up: &str,
) -> (TestRepo, Oid, Oid, TestDb) {
    let mut r = TestRepo::new();
    let a = r.commit(
        &files(&base_project_with(&migration(100, "t", a_up, a_down))),
        &[],
        "A",
    );
    let b = r.commit(&files(&migration(200, b_name, b_up, "")), &[], "B");
    let db = TestDb::new(test);
    gm(&r.path(), &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&r.path(), &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    (r, a, b, db)
}

/// A fresh deploy of `commit` in a new database, to compare with.
fn fresh(r: &TestRepo, commit: Oid, name: &str) -> TestDb {
    let db = TestDb::new(name);
    gm(
        &r.path(),
        &db.url,
        &["deploy", &commit.to_string(), "--yes"],
    )
    .expect_code(0);
    db
}

#[test]
fn missing_downs_captured_at_apply_roll_back_to_the_target_schema() {
    let (r, a, b) = empty_downs();
    let db = TestDb::new("computed_at_apply");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"])
        .expect_code(0)
        .expect_contains("their downs are computed as they are applied");
    // Each migration without a usable down has its down stored, computed at apply time.
    assert_eq!(
        db.rows("SELECT version, computed_down->>'at' FROM git_migrate.migrations WHERE computed_down IS NOT NULL ORDER BY version"),
        vec![
            vec![Some("200".into()), Some("apply".into())],
            vec![Some("210".into()), Some("apply".into())],
            vec![Some("220".into()), Some("apply".into())],
        ]
    );

    // Without the flag: refused, and the refusal says a computed down is there.
    let before = db.dump_ignoring_failed_attempts();
    gm(&p, &db.url, &["rollback", &a.to_string(), "--yes"])
        .expect_code(3)
        .expect_contains("a down computed when it was applied is stored in the ledger")
        .expect_contains("--compute-downs");
    assert_eq!(
        db.dump_ignoring_failed_attempts(),
        before,
        "nothing changed"
    );

    // The plan says where each down comes from, what it destroys, and --sql shows it.
    gm(
        &p,
        &db.url,
        &[
            "rollback",
            &a.to_string(),
            "--compute-downs",
            "--dry-run",
            "--sql",
        ],
    )
    .expect_code(0)
    .expect_contains("computed when it was applied (stored in the ledger)")
    .expect_contains("drops table public.orders and its rows")
    .expect_contains("DROP TRIGGER t_touch ON public.t")
    .expect_contains("CREATE VIEW public.t_names")
    .expect_contains("drops column public.t.email and its values (about 2 rows)")
    // The table goes first, taking its columns along, then the type its column used.
    .expect_contains("| DROP TABLE public.orders;\n          | DROP TYPE public.status;");

    gm(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs", "--yes"],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![100, 110]);
    let expected = fresh(&r, a, "computed_at_apply_fresh");
    assert_eq!(differences(&expected, &db), Vec::<String>::new());
    // The rows the ups did not remove stay (a computed down reverses the schema).
    assert_eq!(db.scalar("SELECT count(*) FROM t").as_deref(), Some("2"));
    // And forward again: the downs are captured again.
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
}

#[test]
fn missing_downs_without_a_captured_one_are_computed_by_replay() {
    let (r, a, b) = empty_downs();
    let db = TestDb::new("computed_by_replay");
    let scratch = TestDb::new("computed_by_replay_scratch");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    // As an older git-migrate or `adopt` leaves them: no computed downs.
    db.client()
        .batch_execute("UPDATE git_migrate.migrations SET computed_down = NULL")
        .unwrap();
    gm(&p, &db.url, &["rollback", &a.to_string(), "--yes"])
        .expect_code(3)
        .expect_contains("pass --compute-downs to compute one by replaying");
    let child = crate::common::gm_command(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs", "--yes"],
        &[("GIT_MIGRATE_SCRATCH_URL", scratch.url.as_str())],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("the git-migrate binary runs");
    let pid = child.id();
    let run = Run::from_output(&child.wait_with_output().unwrap());
    run.expect_code(0)
        .expect_contains("computed now by replaying the applied history")
        .expect_contains("drops table public.orders and its rows (about");
    assert_eq!(db.applied(), vec![100, 110]);
    let expected = fresh(&r, a, "computed_by_replay_fresh");
    assert_eq!(differences(&expected, &db), Vec::<String>::new());
    // The scratch database the replay made (named after the process) is gone. Other tests
    // make theirs on the same server meanwhile, so only this process's count.
    assert_eq!(
        scratch
            .scalar(&format!(
                "select count(*) from pg_database where datname like 'git\\_migrate\\_verify\\_{pid}\\_%'"
            ))
            .as_deref(),
        Some("0"),
        "{}",
        run.all()
    );
}

#[test]
fn wrong_written_downs_are_refused_by_the_proof_and_compute_downs_all_lands_exactly() {
    let (r, a, b) = wrong_downs();
    let db = TestDb::new("computed_all");
    let scratch = TestDb::new("computed_all_scratch");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    let before = db.dump_ignoring_failed_attempts();
    gm(&p, &db.url, &["rollback", &a.to_string(), "--yes"])
        .expect_code(3)
        .expect_contains("function public.touch()")
        .expect_contains("public.t.name: not null changed");
    assert_eq!(
        db.dump_ignoring_failed_attempts(),
        before,
        "nothing changed"
    );

    let env = [("GIT_MIGRATE_SCRATCH_URL", scratch.url.as_str())];
    let run = gm_env(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs=all", "--yes"],
        &env,
    );
    run.expect_code(0)
        .expect_contains("revert  300_drop_name  (down from a down computed now");
    assert_eq!(db.applied(), vec![100]);
    let expected = fresh(&r, a, "computed_all_fresh");
    assert_eq!(differences(&expected, &db), Vec::<String>::new());

    // With --compute-downs alone, the written downs run first; when the proof refuses their
    // end state, the rollback is tried again with every down computed, and says so.
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    let run = gm_env(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs", "--yes"],
        &env,
    );
    run.expect_code(0)
        .expect_contains("the end state is not proven")
        .expect_contains("trying again with every down computed from the schema");
    assert_eq!(differences(&expected, &db), Vec::<String>::new());
    assert_eq!(
        db.scalar("SELECT string_agg(status, ',' ORDER BY id) FROM (SELECT id, status FROM git_migrate.deployments ORDER BY id DESC LIMIT 2) x")
            .as_deref(),
        Some("failed,ok")
    );
    // The proof held: the rollback is recorded without a mismatch.
    assert_eq!(
        db.scalar("SELECT plan->>'end_state_mismatch' FROM git_migrate.deployments ORDER BY id DESC LIMIT 1"),
        None
    );
}

#[test]
fn an_object_kind_outside_the_model_refuses_the_computed_down_naming_it() {
    let (r, a, _, db) = deployed_pair(
        "computed_unsupported",
        "create table t (id int primary key);",
        "drop table t;",
        "rule",
        "create table log (id int);\ncreate rule t_log as on insert to t do also insert into log values (new.id);",
    );
    let p = r.path();
    let before = db.dump_ignoring_failed_attempts();
    gm(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs", "--yes"],
    )
    .expect_code(3)
    .expect_contains("cannot revert 200_rule: no down could be computed for it")
    .expect_contains("t_log")
    .expect_contains("--down-from");
    assert_eq!(
        db.dump_ignoring_failed_attempts(),
        before,
        "nothing changed"
    );
}

#[test]
fn compute_downs_policy_in_the_config_file() {
    let (r, a, b) = empty_downs();
    let db = TestDb::new("computed_policy");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    std::fs::write(
        p.join("git-migrate.yaml"),
        "policy:\n  compute_downs: true\n",
    )
    .unwrap();
    gm(&p, &db.url, &["rollback", &a.to_string(), "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![100, 110]);
}

#[test]
fn past_the_capture_limit_the_older_downs_are_computed_by_replay() {
    let (r, a, b) = empty_downs();
    let db = TestDb::new("computed_capture_limit");
    let scratch = TestDb::new("computed_capture_limit_scratch");
    let p = r.path();
    std::fs::write(p.join("git-migrate.yaml"), "policy:\n  capture_downs: 1\n").unwrap();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"])
        .expect_code(0)
        .expect_contains("the downs of the last 1 are computed as they are applied");
    assert_eq!(
        db.rows("SELECT version FROM git_migrate.migrations WHERE computed_down IS NOT NULL"),
        vec![vec![Some("220".into())]]
    );
    let env = [("GIT_MIGRATE_SCRATCH_URL", scratch.url.as_str())];
    gm_env(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs", "--yes"],
        &env,
    )
    .expect_code(0)
    .expect_contains("revert  220_drop_view  (down from a down computed when it was applied")
    .expect_contains("revert  200_orders  (down from a down computed now by replaying");
    let expected = fresh(&r, a, "computed_capture_limit_fresh");
    assert_eq!(differences(&expected, &db), Vec::<String>::new());
}

#[test]
fn a_check_constraint_the_server_prints_differently_once_recreated_still_proves() {
    // `IN (…)` on a varchar column deparses to a form that, run again, deparses differently.
    let (r, a, b, db) = deployed_pair(
        "computed_reparse",
        "create table t (id int primary key, status varchar(20) not null default 'new' check (status in ('new', 'paid')));",
        "drop table t;",
        "drop_check",
        "alter table t drop constraint t_status_check;",
    );
    let p = r.path();
    gm(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs", "--yes"],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![100]);
    // Back as the server printed it when the migration made it.
    let def =
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 't_status_check'";
    assert_eq!(
        db.scalar(def).as_deref(),
        Some("CHECK (((status)::text = ANY ((ARRAY['new'::character varying, 'paid'::character varying])::text[])))")
    );
    // The constraint is back and works.
    let err = db
        .client()
        .batch_execute("insert into t values (1, 'lost')")
        .unwrap_err();
    assert!(
        err.to_string().contains("t_status_check") || format!("{err:?}").contains("t_status_check"),
        "{err:?}"
    );
    // A real difference in a CHECK constraint is still caught: changed by hand, then captured
    // as the next deploy drops it, its computed down puts back the hand-made one.
    db.client()
        .batch_execute("alter table t drop constraint t_status_check, add constraint t_status_check check (status in ('new'))")
        .unwrap();
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    gm(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs", "--yes"],
    )
    .expect_code(3)
    .expect_contains("constraint t_status_check on public.t");
}

#[test]
fn a_replay_reads_the_schema_again_after_the_migrations_it_runs_between_two_downs() {
    // 200 and 220 have written downs (computed by replay under =all), 210 has none (its down is
    // captured at apply): the replay runs 210 between the two it computes.
    let mut r = TestRepo::new();
    let f = base_project_with(&migration(
        100,
        "t",
        "create table t (id int primary key);",
        "drop table t;",
    ));
    let a = r.commit(&files(&f), &[], "A");
    let mut g = migration(200, "a", "create table a (id int);", "drop table a;");
    g.extend(migration(210, "b", "create table b (id int);", ""));
    g.extend(migration(
        220,
        "c",
        "create table c (id int);",
        "drop table c;",
    ));
    let b = r.commit(&files(&g), &[], "B");
    let db = TestDb::new("computed_replay_gap");
    let scratch = TestDb::new("computed_replay_gap_scratch");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    let env = [("GIT_MIGRATE_SCRATCH_URL", scratch.url.as_str())];
    let run = gm_env(
        &p,
        &db.url,
        &[
            "rollback",
            &a.to_string(),
            "--compute-downs=all",
            "--yes",
            "--sql",
        ],
        &env,
    );
    run.expect_code(0)
        .expect_contains("revert  210_b  (down from a down computed when it was applied");
    // Each down drops its own table only.
    let c_down = run
        .all()
        .split("revert  220_c")
        .nth(1)
        .and_then(|rest| rest.split("revert  210_b").next())
        .unwrap_or_default()
        .to_string();
    assert!(c_down.contains("DROP TABLE public.c"), "{}", run.all());
    assert!(!c_down.contains("public.b"), "{}", run.all());
    let expected = fresh(&r, a, "computed_replay_gap_fresh");
    assert_eq!(differences(&expected, &db), Vec::<String>::new());
}

#[test]
fn a_view_over_hasuras_catalog_gets_a_computed_down() {
    // Hasura projects put views over hdb_catalog tables (scheduled events, event logs); the
    // ledger's and Hasura's schemas are outside the model, and what depends on them is not.
    let (r, a, _, db) = deployed_pair(
        "computed_hdb_view",
        "create schema hdb_catalog;\ncreate table hdb_catalog.hdb_scheduled_events (id text primary key, status text);",
        "drop schema hdb_catalog cascade;",
        "log",
        "create view public.events_log as select id, status from hdb_catalog.hdb_scheduled_events;",
    );
    let p = r.path();
    gm(
        &p,
        &db.url,
        &[
            "rollback",
            &a.to_string(),
            "--compute-downs",
            "--yes",
            "--sql",
        ],
    )
    .expect_code(0)
    .expect_contains("DROP VIEW public.events_log");
    assert_eq!(db.applied(), vec![100]);
    assert!(!db.has_table("events_log"));
}

#[test]
fn downs_of_migrations_adopted_from_the_hasura_cli_are_computed_by_replay() {
    let (r, a, b) = empty_downs();
    let db = TestDb::new("computed_adopted");
    let scratch = TestDb::new("computed_adopted_scratch");
    let p = r.path();
    // What `hasura migrate apply` leaves: the ups run one file at a time, the versions in
    // hdb_catalog.schema_migrations, no ledger.
    let mut c = db.client();
    c.batch_execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        .unwrap();
    let repo = git2::Repository::open(&p).unwrap();
    let tree = repo.find_commit(b).unwrap().tree().unwrap();
    let mut versions = Vec::new();
    for v in [100, 110, 200, 210, 220] {
        let dir = tree
            .get_path(std::path::Path::new("migrations"))
            .unwrap()
            .to_object(&repo)
            .unwrap()
            .into_tree()
            .unwrap();
        let folder = dir
            .iter()
            .find(|e| e.name().unwrap().starts_with(&format!("{v}_")))
            .unwrap();
        let up = folder
            .to_object(&repo)
            .unwrap()
            .into_tree()
            .unwrap()
            .get_name("up.sql")
            .unwrap()
            .to_object(&repo)
            .unwrap()
            .into_blob()
            .unwrap();
        c.batch_execute(std::str::from_utf8(up.content()).unwrap())
            .unwrap();
        versions.push(format!("({v}, false)"));
    }
    c.batch_execute(&format!(
        "CREATE SCHEMA hdb_catalog; CREATE TABLE hdb_catalog.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO hdb_catalog.schema_migrations VALUES {}",
        versions.join(", ")
    ))
    .unwrap();
    gm(&p, &db.url, &["adopt", "--commit", &b.to_string(), "--yes"]).expect_code(0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.migrations WHERE computed_down IS NOT NULL")
            .as_deref(),
        Some("0")
    );
    let env = [("GIT_MIGRATE_SCRATCH_URL", scratch.url.as_str())];
    gm_env(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--compute-downs", "--yes"],
        &env,
    )
    .expect_code(0)
    .expect_contains("revert  200_orders  (down from a down computed now by replaying");
    assert_eq!(db.applied(), vec![100, 110]);
    let expected = fresh(&r, a, "computed_adopted_fresh");
    assert_eq!(differences(&expected, &db), Vec::<String>::new());
    // Hasura's own state follows.
    assert_eq!(
        db.scalar("SELECT string_agg(version::text, ',' ORDER BY version) FROM hdb_catalog.schema_migrations")
            .as_deref(),
        Some("100,110")
    );
}

/// The plan of a rollback with computed downs, as a whole: the output is a contract.
#[test]
fn the_plan_of_computed_downs_reads_as_written_here() {
    let (r, a, b) = empty_downs();
    let db = TestDb::new("computed_plan_snapshot");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    let run = gm(
        &p,
        &db.url,
        &[
            "rollback",
            &a.to_string(),
            "--compute-downs",
            "--dry-run",
            "--sql",
        ],
    );
    run.expect_code(0);
    let (a, b) = (a.to_string(), b.to_string());
    // The view's text is the server's own (pg_get_viewdef): PostgreSQL 16 stopped qualifying
    // the columns of a view over one table (`SELECT id, name` where 15 printed
    // `SELECT t.id, t.name`). Either text recreates the same view.
    let q = if db.server_version_num() >= 160_000 {
        ""
    } else {
        "t."
    };
    let expected = format!(
        "Plan: rollback to {a} = {} \"A\"
  database: at {}
  revert  220_drop_view  (down from a down computed when it was applied (stored in the ledger))
          | ALTER TABLE public.t DROP COLUMN email;
          | CREATE VIEW public.t_names AS SELECT {q}id,
          |     {q}name
          |    FROM public.t;
  revert  210_touch  (down from a down computed when it was applied (stored in the ledger))
          | DROP TRIGGER t_touch ON public.t;
          | DROP FUNCTION public.touch();
          | ALTER TABLE public.t ALTER COLUMN name DROP NOT NULL;
  revert  200_orders  (down from a down computed when it was applied (stored in the ledger))
          | DROP TABLE public.orders;
          | DROP TYPE public.status;
  destroys data (computed downs):
    220_drop_view: drops column public.t.email and its values (about 2 rows)
    200_orders: drops table public.orders and its rows (about 2 rows)
  3 migration step(s), in one transaction
",
        &a[..10],
        &b[..10],
    );
    assert_eq!(run.stdout, expected);
    assert_eq!(run.stderr, "dry run: nothing was changed\n");
}
