//! Forward-only (issue 16, item 5: "never backwards by accident"): `deploy --forward-only` and
//! an environment's `forward_only: true` refuse a deploy that reverts migrations or goes to an
//! older commit (exit 3, nothing changed), as migrations run when a pod starts need: an old pod
//! that restarts must not take the database back. `rollback`, and a deploy without the rule
//! (`--no-forward-only` on such an environment), stay the explicit ways back.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, gm_env, Run};
use git2::Oid;

/// v1 (users), v2 (orders), v2.0.1 (no migration change, metadata only), v3 (notes), and a
/// branch `other` from v1 with its own migration (it lacks v2's orders).
struct Releases {
    repo: TestRepo,
    v1: Oid,
    v2: Oid,
    v201: Oid,
}

fn releases() -> Releases {
    let mut repo = TestRepo::new();
    let m1 = migration(
        1_700_000_000_001,
        "users",
        "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1);",
        "DROP TABLE users;",
    );
    let v1 = repo.commit(&files(&base_project_with(&m1)), &[], "users");
    repo.tag("v1", v1);
    let m2 = migration(
        1_700_000_000_002,
        "orders",
        "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);",
        "DROP TABLE orders;",
    );
    let v2 = repo.commit(&files(&m2), &[], "orders");
    repo.tag("v2", v2);
    let v201 = repo.commit(
        &[(
            "metadata/tables.yaml",
            "- table:\n    schema: public\n    name: orders\n",
        )],
        &[],
        "track orders (metadata only)",
    );
    repo.tag("v2.0.1", v201);
    let m3 = migration(
        1_700_000_000_003,
        "notes",
        "CREATE TABLE notes (id int PRIMARY KEY);",
        "DROP TABLE notes;",
    );
    let v3 = repo.commit(&files(&m3), &[], "notes");
    repo.tag("v3", v3);
    let m4 = migration(
        1_700_000_000_004,
        "tags",
        "CREATE TABLE tags (id int PRIMARY KEY);",
        "DROP TABLE tags;",
    );
    let other = repo.commit_on(vec![v1], &files(&m4), &[], "tags (a branch)", None);
    repo.branch("other", other);
    std::fs::write(
        repo.path().join("git-migrate.yaml"),
        "environments:\n  pods:\n    database_url: ${PODS_URL}\n    forward_only: true\n",
    )
    .unwrap();
    Releases { repo, v1, v2, v201 }
}

fn short(o: Oid) -> String {
    o.to_string()[..10].to_string()
}

/// Runs against the `pods` environment's database (no DATABASE_URL).
fn pods(r: &Releases, db: &TestDb, args: &[&str]) -> Run {
    gm_env(&r.repo.path(), "", args, &[("PODS_URL", &db.url)])
}

#[test]
fn forward_only_flag_refuses_an_older_release_and_changes_nothing() {
    let r = releases();
    let p = r.repo.path();
    let db = TestDb::new("fwd_flag");
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    let out = gm(&p, &db.url, &["deploy", "v1", "--forward-only", "--yes"]);
    out.expect_code(3)
        .expect_contains("cannot deploy v1: 1 problem(s), nothing was changed")
        .expect_contains(&format!(
            "forward-only: the database is at v2 ({}), and v1 ({}) is an older commit: deploying it would revert 1 migration(s)",
            short(r.v2),
            short(r.v1)
        ))
        .expect_contains("would revert 1700000000002_orders")
        .expect_contains("git migrate rollback v1")
        .expect_contains("without --forward-only: git migrate deploy v1");
    // The dry run shows the same refusal; nothing changed either way.
    gm(
        &p,
        &db.url,
        &["deploy", "v1", "--forward-only", "--dry-run"],
    )
    .expect_code(3)
    .expect_contains("forward-only: the database is at v2");
    assert_eq!(
        before,
        db.dump(false, None),
        "a refused deploy changed the database"
    );
    assert_eq!(db.applied(), vec![1_700_000_000_001, 1_700_000_000_002]);

    // Forward passes: a newer release applies, and the deployed commit itself is nothing to do.
    gm(&p, &db.url, &["deploy", "v3", "--forward-only", "--yes"])
        .expect_code(0)
        .expect_contains("1 applied");
    assert!(db.has_table("notes"));
    gm(&p, &db.url, &["deploy", "v3", "--forward-only", "--yes"]).expect_code(0);

    // A branch that lacks migrations the database has is refused too.
    let before = db.dump(false, None);
    gm(&p, &db.url, &["deploy", "other", "--forward-only", "--yes"])
        .expect_code(3)
        .expect_contains("lacks 2 of its migration(s): deploying it would revert 2 migration(s)")
        .expect_contains("would revert 1700000000003_notes")
        .expect_contains("would revert 1700000000002_orders");
    assert_eq!(before, db.dump(false, None));

    // Without the flag, an explicit deploy still goes back.
    gm(&p, &db.url, &["deploy", "v1", "--yes"])
        .expect_code(0)
        .expect_contains("2 reverted");
    assert_eq!(db.applied(), vec![1_700_000_000_001]);
}

/// An older commit with the same migrations is refused too: forward-only means "never move
/// back", and the metadata would go back.
#[test]
fn forward_only_refuses_an_older_commit_with_the_same_migrations() {
    let r = releases();
    let p = r.repo.path();
    let db = TestDb::new("fwd_same");
    gm(&p, &db.url, &["deploy", "v2.0.1", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    gm(&p, &db.url, &["deploy", "v2", "--forward-only", "--yes"])
        .expect_code(3)
        .expect_contains(&format!(
            "the database is at v2.0.1 ({}), and v2 ({}) is an older commit: deploying it would revert no migration, but take the metadata back",
            short(r.v201),
            short(r.v2)
        ));
    assert_eq!(before, db.dump(false, None));
    // `rollback` is the way back, with the flag or not.
    gm(&p, &db.url, &["rollback", "v2", "--yes"]).expect_code(0);
}

#[test]
fn environment_forward_only_refuses_but_rollback_and_the_override_go_back() {
    let r = releases();
    let db = TestDb::new("fwd_env");
    pods(&r, &db, &["deploy", "v2", "--env", "pods", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    pods(&r, &db, &["deploy", "v1", "--env", "pods", "--yes"])
        .expect_code(3)
        .expect_contains(&format!(
            "the database is at v2 ({}), and v1 ({}) is an older commit",
            short(r.v2),
            short(r.v1)
        ))
        .expect_contains("environment pods has forward_only: true")
        .expect_contains("git migrate rollback v1 --env pods")
        .expect_contains("git migrate deploy v1 --env pods --no-forward-only");
    assert_eq!(
        before,
        db.dump(false, None),
        "a refused deploy changed the database"
    );

    // `rollback` is the explicit way back and is not held to the rule.
    pods(&r, &db, &["rollback", "v1", "--env", "pods", "--yes"])
        .expect_code(0)
        .expect_contains("1 reverted");
    assert_eq!(db.applied(), vec![1_700_000_000_001]);
    assert!(!db.has_table("orders"));

    // Forward is fine; `--no-forward-only` goes back on purpose.
    pods(&r, &db, &["deploy", "v3", "--env", "pods", "--yes"]).expect_code(0);
    pods(
        &r,
        &db,
        &[
            "deploy",
            "v2",
            "--env",
            "pods",
            "--no-forward-only",
            "--yes",
        ],
    )
    .expect_code(0)
    .expect_contains("1 reverted");
    assert_eq!(db.applied(), vec![1_700_000_000_001, 1_700_000_000_002]);

    // The same database without `--env` has no rule to apply.
    gm(&r.repo.path(), &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
}

#[test]
fn plan_json_shows_the_forward_only_problem() {
    let r = releases();
    let p = r.repo.path();
    let db = TestDb::new("fwd_plan");
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    let out = gm(&p, &db.url, &["plan", "v1", "--forward-only", "--json"]);
    out.expect_code(3);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let problems = v["error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert_eq!(problems[0]["kind"], "forward-only");
    assert!(problems[0]["message"]
        .as_str()
        .unwrap()
        .contains("would revert 1 migration(s)"));
    assert_eq!(v["error"]["exit_code"], 3);
    // Without the flag the plan reverts, as before.
    gm(&p, &db.url, &["plan", "v1"])
        .expect_code(0)
        .expect_contains("1700000000002_orders");

    // A plan file made without the rule is held to it when run with --forward-only.
    let file = p.join("back.plan.json");
    let file = file.to_str().unwrap();
    gm(&p, &db.url, &["plan", "v1", "--out", file]).expect_code(0);
    let before = db.dump(false, None);
    gm(
        &p,
        &db.url,
        &["deploy", "--plan", file, "--forward-only", "--yes"],
    )
    .expect_code(3)
    .expect_contains("forward-only");
    assert_eq!(before, db.dump(false, None));
}
