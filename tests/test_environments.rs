//! Environments (design §4, §9): `--env` takes the database from git-migrate.yaml with
//! `${VAR}` expansion, `require_tag` admits only tagged commits (lightweight or annotated),
//! `promote_from` admits only commits the source environment ran,
//! `status --env` / `status --all-envs` / `log --env` show releases, and every deployment
//! records who ran it (git identity and database role).

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm_env, Run};
use git2::Oid;

/// A project with three commits: v1.0.0 (lightweight tag), v1.1.0 (annotated tag), and an
/// untagged commit on top; git-migrate.yaml (working tree only) with staging and production.
pub struct Releases {
    pub repo: TestRepo,
    pub v1: Oid,
    pub v11: Oid,
    pub untagged: Oid,
}

pub fn releases() -> Releases {
    let mut repo = TestRepo::new();
    let m1 = migration(
        1_700_000_000_001,
        "users",
        "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1);",
        "DROP TABLE users;",
    );
    let mut first = base_project();
    first.extend(files(&m1));
    let v1 = repo.commit(&first, &[], "users");
    repo.tag("v1.0.0", v1);
    let m2 = migration(
        1_700_000_000_002,
        "orders",
        "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);",
        "DROP TABLE orders;",
    );
    let v11 = repo.commit(&files(&m2), &[], "orders");
    let sig = git2::Signature::now("Release Bot", "bot@example.invalid").unwrap();
    repo.repo
        .tag(
            "v1.1.0",
            &repo.repo.find_object(v11, None).unwrap(),
            &sig,
            "release 1.1.0",
            false,
        )
        .unwrap();
    let m3 = migration(
        1_700_000_000_003,
        "notes",
        "CREATE TABLE notes (id int PRIMARY KEY);",
        "DROP TABLE notes;",
    );
    let untagged = repo.commit(&files(&m3), &[], "notes (not released)");
    std::fs::write(
        repo.path().join("git-migrate.yaml"),
        "environments:\n  staging:\n    database_url: ${STAGING_URL}\n  production:\n    database_url: ${PROD_URL}\n    require_tag: \"v*\"\n    promote_from: staging\n",
    )
    .unwrap();
    Releases {
        repo,
        v1,
        v11,
        untagged,
    }
}

/// Runs with both environments' URLs set (and no DATABASE_URL).
pub fn run(r: &Releases, staging: &TestDb, prod: &TestDb, args: &[&str]) -> Run {
    gm_env(
        &r.repo.path(),
        "",
        args,
        &[("STAGING_URL", &staging.url), ("PROD_URL", &prod.url)],
    )
}

fn short(o: Oid) -> String {
    o.to_string()[..10].to_string()
}

#[test]
fn untagged_commit_is_refused_for_production_and_nothing_changes() {
    let r = releases();
    let (staging, prod) = (TestDb::new("env_s1"), TestDb::new("env_p1"));
    // Production is promoted from staging: a release staging never ran is refused.
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.0.0", "--env", "production", "--yes"],
    )
    .expect_code(3)
    .expect_contains("staging has never run")
    .expect_contains("deploy it to staging first");
    assert!(!prod.has_table("users"));
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.0.0", "--env", "staging", "--yes"],
    )
    .expect_code(0);
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.0.0", "--env", "production", "--yes"],
    )
    .expect_code(0);
    let before = prod.dump(false, None);
    let out = run(
        &r,
        &staging,
        &prod,
        &[
            "deploy",
            &r.untagged.to_string(),
            "--env",
            "production",
            "--yes",
        ],
    );
    out.expect_code(3)
        .expect_contains("only accepts commits tagged \"v*\"")
        .expect_contains(&format!("commit {} has no tag", short(r.untagged)))
        .expect_contains("nothing was changed")
        .expect_contains("git migrate promote");
    assert_eq!(before, prod.dump(false, None), "production changed");
    // `plan` explains the same refusal without changing anything; HEAD is the untagged commit.
    run(&r, &staging, &prod, &["plan", "--env", "production"]).expect_code(3);
    // The working tree is not a commit either.
    r.repo
        .repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "--worktree", "--env", "production", "--yes"],
    )
    .expect_code(3)
    .expect_contains("not a commit");
    // A tag that does not match the glob is named.
    r.repo.tag("nightly-7", r.untagged);
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "nightly-7", "--env", "production", "--yes"],
    )
    .expect_code(3)
    .expect_contains("is tagged nightly-7, which does not match");
    assert_eq!(before, prod.dump(false, None));
    // Staging has no require_tag: the same commit deploys there.
    run(
        &r,
        &staging,
        &prod,
        &[
            "deploy",
            &r.untagged.to_string(),
            "--env",
            "staging",
            "--yes",
        ],
    )
    .expect_code(0);
    assert!(staging.has_table("notes"));
}

#[test]
fn lightweight_and_annotated_tags_are_accepted() {
    let r = releases();
    let (staging, prod) = (TestDb::new("env_s2"), TestDb::new("env_p2"));
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.0.0", "--env", "staging", "--yes"],
    )
    .expect_code(0);
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.1.0", "--env", "staging", "--yes"],
    )
    .expect_code(0);
    // v1.0.0 is lightweight; v1.1.0 annotated. Naming the commit id works as well as the tag.
    run(
        &r,
        &staging,
        &prod,
        &["deploy", &r.v1.to_string(), "--env", "production", "--yes"],
    )
    .expect_code(0);
    assert!(prod.has_table("users") && !prod.has_table("orders"));
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.1.0", "--env", "production", "--yes"],
    )
    .expect_code(0);
    assert!(prod.has_table("orders"));
    assert_eq!(
        prod.scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some(r.v11.to_string().as_str())
    );
    // Rolling production back to a release is allowed; to an untagged commit is not.
    run(
        &r,
        &staging,
        &prod,
        &["rollback", "v1.0.0", "--env", "production", "--yes"],
    )
    .expect_code(0);
    assert!(!prod.has_table("orders"));
}

#[test]
fn production_asks_for_confirmation_of_every_change() {
    let r = releases();
    let (staging, prod) = (TestDb::new("env_s3"), TestDb::new("env_p3"));
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.0.0", "--env", "staging", "--yes"],
    )
    .expect_code(0);
    // No terminal and no --yes: a forward-only deploy is refused too, because production has
    // require_tag (which implies confirm: true).
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.0.0", "--env", "production"],
    )
    .expect_code(3)
    .expect_contains("asks for confirmation");
    assert!(!prod.has_table("users"));
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.0.0", "--env", "production", "--yes"],
    )
    .expect_code(0);
}

#[test]
fn a_missing_variable_is_named() {
    let r = releases();
    let out = gm_env(
        &r.repo.path(),
        "",
        &["status", "--env", "production"],
        &[("STAGING_URL", "postgresql://nobody@127.0.0.1:1/x")],
    );
    out.expect_code(2)
        .expect_contains("${PROD_URL}")
        .expect_contains("not set")
        .expect_contains("export PROD_URL=");
    // An unknown environment lists the known ones.
    gm_env(&r.repo.path(), "", &["status", "--env", "prod"], &[])
        .expect_code(2)
        .expect_contains("no such environment")
        .expect_contains("staging, production");
}

#[test]
fn database_url_flag_wins_over_env_and_env_over_database_url_variable() {
    let r = releases();
    let (staging, prod, other) = (
        TestDb::new("env_s4"),
        TestDb::new("env_p4"),
        TestDb::new("env_o4"),
    );
    // DATABASE_URL points at `other`; --env staging must win over it.
    let out = gm_env(
        &r.repo.path(),
        &other.url,
        &["deploy", "v1.0.0", "--env", "staging", "--yes"],
        &[("STAGING_URL", &staging.url), ("PROD_URL", &prod.url)],
    );
    out.expect_code(0);
    assert!(staging.has_table("users") && !other.has_table("users"));
    // --database-url wins over --env (the environment's rules still apply).
    let out = gm_env(
        &r.repo.path(),
        "",
        &[
            "deploy",
            "v1.0.0",
            "--env",
            "production",
            "--database-url",
            &other.url,
            "--yes",
        ],
        &[("STAGING_URL", &staging.url), ("PROD_URL", &prod.url)],
    );
    out.expect_code(0);
    assert!(other.has_table("users") && !prod.has_table("users"));
}

#[test]
fn status_and_log_show_releases_and_actors() {
    let r = releases();
    let (staging, prod) = (TestDb::new("env_s5"), TestDb::new("env_p5"));
    // Who deploys: git's user.name/user.email from the repository's config.
    let mut cfg = r.repo.repo.config().unwrap();
    cfg.set_str("user.name", "Jane Doe").unwrap();
    cfg.set_str("user.email", "jane@example.invalid").unwrap();
    let as_jane = |args: &[&str]| {
        gm_env(
            &r.repo.path(),
            "",
            args,
            &[
                ("STAGING_URL", &staging.url),
                ("PROD_URL", &prod.url),
                ("GIT_MIGRATE_ACTOR", ""),
            ],
        )
    };
    as_jane(&["deploy", "v1.0.0", "--env", "staging", "--yes"]).expect_code(0);
    as_jane(&["deploy", "v1.0.0", "--env", "production", "--yes"]).expect_code(0);
    as_jane(&["deploy", "v1.1.0", "--env", "staging", "--yes"]).expect_code(0);
    let role = prod.scalar("SELECT current_user").unwrap();
    assert_eq!(
        prod.scalar("SELECT actor FROM git_migrate.deployments")
            .unwrap(),
        format!("Jane Doe <jane@example.invalid> (role {role})")
    );

    let out = run(&r, &staging, &prod, &["status", "--env", "production"]);
    out.expect_code(0)
        .expect_contains(
            "environment production (requires a tag matching \"v*\"), promoted from staging",
        )
        .expect_contains("release     v1.0.0; HEAD is 2 commit(s) ahead")
        .expect_contains("by Jane Doe <jane@example.invalid>");
    let out = run(
        &r,
        &staging,
        &prod,
        &["status", "--env", "production", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["environment"]["tags"], serde_json::json!(["v1.0.0"]));
    assert_eq!(v["environment"]["head_ahead_by"], 2);

    // The table of all environments.
    let out = run(&r, &staging, &prod, &["status", "--all-envs"]);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("ENVIRONMENT"), "{}", out.stdout);
    let staging_line = lines.iter().find(|l| l.starts_with("staging")).unwrap();
    assert!(
        staging_line.contains(&short(r.v11)) && staging_line.contains("v1.1.0"),
        "{staging_line}"
    );
    let prod_line = lines.iter().find(|l| l.starts_with("production")).unwrap();
    assert!(
        prod_line.contains("v1.0.0") && prod_line.contains(" 2 "),
        "{prod_line}"
    );
    let out = run(&r, &staging, &prod, &["status", "--all-envs", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["environments"][1]["name"], "production");
    assert_eq!(v["environments"][1]["commit"], r.v1.to_string());
    assert_eq!(v["environments"][0]["behind_head"], 1);

    // log --env: from -> to with tags, counts, status, actor.
    as_jane(&["deploy", "v1.1.0", "--env", "production", "--yes"]).expect_code(0);
    let out = run(&r, &staging, &prod, &["log", "--env", "production"]);
    out.expect_code(0)
        .expect_contains("environment production")
        .expect_contains(&format!(
            "deploy   v1.0.0 ({}) -> v1.1.0 ({})  -0 +1  ok",
            short(r.v1),
            short(r.v11)
        ))
        .expect_contains("by Jane Doe <jane@example.invalid>");
    let out = run(
        &r,
        &staging,
        &prod,
        &["log", "--env", "production", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["environment"], "production");
    assert_eq!(
        v["deployments"][0]["to_tags"],
        serde_json::json!(["v1.1.0"])
    );
    assert_eq!(
        v["deployments"][0]["from_tags"],
        serde_json::json!(["v1.0.0"])
    );
    assert!(v["deployments"][0]["duration_ms"].is_number());
}

#[test]
fn a_failed_deploy_is_recorded_and_shown() {
    let mut r = releases();
    let (staging, prod) = (TestDb::new("env_s6"), TestDb::new("env_p6"));
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.1.0", "--env", "staging", "--yes"],
    )
    .expect_code(0);
    let bad = migration(
        1_700_000_000_004,
        "broken",
        "CREATE TABLE broken (id int);\nSELECT 1/0;",
        "DROP TABLE broken;",
    );
    let c = r.repo.commit(&files(&bad), &[], "broken");
    r.repo.tag("v1.2.0", c);
    let before = staging.dump(true, Some("git_migrate"));
    let out = run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.2.0", "--env", "staging", "--yes"],
    );
    out.expect_code(4)
        .expect_contains("division by zero")
        .expect_contains("recorded as deployment #");
    assert_eq!(before, staging.dump(true, Some("git_migrate")));
    assert!(!staging.has_table("broken"));
    // The database is still at v1.1.0 (failed rows never move it).
    let out = run(&r, &staging, &prod, &["status", "--env", "staging"]);
    out.expect_contains("release     v1.1.0")
        .expect_contains("last try")
        .expect_contains("FAILED");
    let out = run(&r, &staging, &prod, &["log", "--env", "staging"]);
    out.expect_contains("failed")
        .expect_contains("error: up migration");
}
