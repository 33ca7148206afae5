//! The proven end state: a deploy or rollback to a commit this database was at before ends
//! with the schema recorded then, or rolls back naming what differs; `status` reports a schema
//! changed outside git-migrate.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;
use git2::Oid;

/// A: table t. B: a trigger whose down leaves its function behind, and a dropped column
/// whose down re-adds it without its NOT NULL (two downs the Hasura console writes).
pub(crate) fn wrong_downs() -> (TestRepo, Oid, Oid) {
    let mut r = TestRepo::new();
    let f = base_project_with(&migration(
        100,
        "t",
        "create table t (id int primary key, name text not null default '');",
        "drop table t;",
    ));
    let a = r.commit(&files(&f), &[], "A");
    let mut g = migration(
        200,
        "touch",
        "create function touch() returns trigger language plpgsql as $$ begin return new; end $$;\n\
         create trigger t_touch before update on t for each row execute function touch();",
        "drop trigger t_touch on t;",
    );
    g.extend(migration(
        300,
        "drop_name",
        "alter table t drop column name;",
        "alter table t add column name text default '';",
    ));
    let b = r.commit(&files(&g), &[], "B");
    (r, a, b)
}

#[test]
fn a_rollback_whose_downs_do_not_reverse_their_ups_is_refused_naming_the_objects() {
    let (r, a, b) = wrong_downs();
    let db = TestDb::new("end_state_wrong_downs");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &b.to_string(), "--yes"]).expect_code(0);
    let before = db.dump_ignoring_failed_attempts();
    let run = gm(&p, &db.url, &["rollback", &a.to_string(), "--yes"]);
    run.expect_code(3)
        .expect_contains("the end state is not proven")
        .expect_contains("function public.touch()")
        .expect_contains("public.t.name: not null changed: true → false")
        .expect_contains("--allow-mismatch");
    // The re-added column is last now: column order is not part of the proof.
    assert!(!run.all().contains("position"), "{}", run.all());
    assert_eq!(
        db.dump_ignoring_failed_attempts(),
        before,
        "nothing changed"
    );
    assert_eq!(db.applied(), vec![100, 200, 300]);
    assert_eq!(
        db.scalar("SELECT status FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("failed")
    );

    // --allow-mismatch commits, and the deployment row says what differed.
    gm(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--yes", "--allow-mismatch"],
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![100]);
    let note = db
        .scalar("SELECT plan->>'end_state_mismatch' FROM git_migrate.deployments WHERE status = 'ok' ORDER BY id DESC LIMIT 1")
        .unwrap_or_default();
    assert!(note.contains("public.touch()"), "{note}");
}

#[test]
fn a_faithful_round_trip_is_proven_and_every_deployment_records_its_schema() {
    let (mut r, a, _) = wrong_downs();
    // A third commit whose down is exact.
    let c = r.commit(
        &files(&migration(
            400,
            "u",
            "create table u (x int not null, y text);\ncomment on table u is 'u';",
            "drop table u;",
        )),
        &[],
        "C",
    );
    let db = TestDb::new("end_state_round_trip");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &c.to_string(), "--yes"]).expect_code(0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM git_migrate.deployments WHERE schema_digest LIKE 'sha256:%' AND schema_fingerprint IS NOT NULL")
            .as_deref(),
        Some("2")
    );
    // Back to C's parent (B) is not proven (never deployed here); back to A is, and fails
    // only because B's downs are wrong; C → B → C is proven and exact.
    let b = r.repo.find_commit(c).unwrap().parent_id(0).unwrap();
    gm(&p, &db.url, &["rollback", &b.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["deploy", &c.to_string(), "--yes"]).expect_code(0);
    assert_eq!(db.applied(), vec![100, 200, 300, 400]);
    gm(&p, &db.url, &["status", "--exit-code"]).expect_code(0);
}

#[test]
fn status_names_a_schema_changed_outside_git_migrate() {
    let (r, a, _) = wrong_downs();
    let db = TestDb::new("end_state_drift");
    let p = r.path();
    gm(&p, &db.url, &["deploy", &a.to_string(), "--yes"]).expect_code(0);
    gm(&p, &db.url, &["status", "--exit-code", &a.to_string()]).expect_code(0);
    db.client()
        .batch_execute("ALTER TABLE t ADD COLUMN hand_made int")
        .unwrap();
    gm(&p, &db.url, &["status", "--exit-code", &a.to_string()])
        .expect_code(1)
        .expect_contains("the schema changed outside git-migrate since deployment #1")
        .expect_contains("public.t.hand_made");
    let json = gm(&p, &db.url, &["status", "--json", &a.to_string()]);
    json.expect_code(0)
        .expect_contains("\"since_deployment\": 1")
        .expect_contains("public.t.hand_made");
}

/// Production deploy roles are rarely superusers (a managed server has none): the end state is
/// read and proven with what any role may read of the catalog.
#[test]
fn an_owner_role_that_is_not_a_superuser_deploys_proves_and_sees_drift() {
    let (r, a, b) = wrong_downs();
    let db = TestDb::new("end_state_owner_role");
    let role = format!("gm_owner_{}", db.name);
    db.client()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT CREATE ON DATABASE {} TO {role}; \
             GRANT CREATE, USAGE ON SCHEMA public TO {role}",
            db.name
        ))
        .unwrap();
    let url = db.url.replace("user=postgres", &format!("user={role}"));
    assert_ne!(url, db.url, "unexpected test URL {}", db.url);
    let p = r.path();
    gm(
        &p,
        &url,
        &["deploy", &a.to_string(), "--yes", "--no-prelude"],
    )
    .expect_code(0);
    gm(
        &p,
        &url,
        &["deploy", &b.to_string(), "--yes", "--no-prelude"],
    )
    .expect_code(0);
    gm(&p, &url, &["rollback", &a.to_string(), "--yes"])
        .expect_code(3)
        .expect_contains("function public.touch()");
    gm(&p, &url, &["status", "--exit-code", &b.to_string()]).expect_code(0);
    db.client()
        .batch_execute(&format!(
            "SET ROLE {role}; ALTER TABLE t ADD COLUMN by_hand int"
        ))
        .unwrap();
    gm(&p, &url, &["status", "--exit-code", &b.to_string()])
        .expect_code(1)
        .expect_contains("public.t.by_hand");
}

#[test]
fn verify_target_proves_a_rollback_to_a_commit_never_deployed_here_against_a_scratch_replay() {
    let (r, a, b) = wrong_downs();
    let db = TestDb::new("end_state_verify_target");
    let scratch = TestDb::new("end_state_verify_target_scratch");
    let p = r.path();
    let env = [("GIT_MIGRATE_SCRATCH_URL", scratch.url.as_str())];
    // Straight to B: A was never deployed here, so nothing is recorded to prove against.
    crate::common::gm_env(
        &p,
        &db.url,
        &["deploy", &b.to_string(), "--yes", "--verify-target"],
        &env,
    )
    .expect_code(0)
    .expect_contains("--verify-target");
    let before = db.dump_ignoring_failed_attempts();
    let run = crate::common::gm_env(
        &p,
        &db.url,
        &["rollback", &a.to_string(), "--yes", "--verify-target"],
        &env,
    );
    run.expect_code(3)
        .expect_contains("a scratch replay of the target's migrations")
        .expect_contains("function public.touch()")
        .expect_contains("--compute-downs=all");
    assert_eq!(
        db.dump_ignoring_failed_attempts(),
        before,
        "nothing changed"
    );
    // Computing every down from the schema lands where the replay does.
    crate::common::gm_env(
        &p,
        &db.url,
        &[
            "rollback",
            &a.to_string(),
            "--yes",
            "--verify-target",
            "--compute-downs=all",
        ],
        &env,
    )
    .expect_code(0);
    assert_eq!(db.applied(), vec![100]);
}
