//! `git migrate promote FROM TO` (design §9): deploys to TO exactly the commit FROM's ledger
//! says it is at, shows the plan first, and refuses when FROM is not a trustworthy source (its
//! last deployment failed, it has dirty migrations, it drifted from its commit) or when TO does
//! not accept the commit, or TO is promoted from another environment.

use crate::common::git::{files, migration};
use crate::common::pg::TestDb;
use crate::test_environments::{releases, run};

#[test]
fn promote_copies_stagings_commit() {
    let r = releases();
    let (staging, prod) = (TestDb::new("pr_s1"), TestDb::new("pr_p1"));
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
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.1.0", "--env", "staging", "--yes"],
    )
    .expect_code(0);
    // --dry-run shows the plan and changes nothing.
    let before = prod.dump(false, None);
    let out = run(
        &r,
        &staging,
        &prod,
        &["promote", "staging", "production", "--dry-run"],
    );
    out.expect_code(0)
        .expect_contains("Promoting staging -> production: v1.1.0")
        .expect_contains("orders")
        .expect_contains("dry run");
    assert_eq!(before, prod.dump(false, None));
    // Without a terminal, production's confirmation needs --yes.
    run(&r, &staging, &prod, &["promote", "staging", "production"]).expect_code(3);
    assert_eq!(before, prod.dump(false, None));
    let out = run(
        &r,
        &staging,
        &prod,
        &["promote", "staging", "production", "--yes"],
    );
    out.expect_code(0).expect_contains("Deployed v1.1.0");
    assert!(prod.has_table("orders"));
    assert_eq!(
        prod.scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1"),
        staging.scalar("SELECT to_commit FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
    );
    assert_eq!(
        prod.scalar("SELECT target_ref FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("v1.1.0")
    );
    // Promoting again: already there.
    run(
        &r,
        &staging,
        &prod,
        &["promote", "staging", "production", "--yes"],
    )
    .expect_code(0)
    .expect_contains("nothing to do");
}

#[test]
fn promote_refuses_when_stagings_last_deployment_failed() {
    let mut r = releases();
    let (staging, prod) = (TestDb::new("pr_s2"), TestDb::new("pr_p2"));
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.1.0", "--env", "staging", "--yes"],
    )
    .expect_code(0);
    let bad = migration(1_700_000_000_004, "broken", "SELECT 1/0;", "SELECT 1;");
    let c = r.repo.commit(&files(&bad), &[], "broken");
    r.repo.tag("v1.2.0", c);
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.2.0", "--env", "staging", "--yes"],
    )
    .expect_code(4);
    let out = run(
        &r,
        &staging,
        &prod,
        &["promote", "staging", "production", "--yes"],
    );
    out.expect_code(3)
        .expect_contains("cannot promote staging to production; nothing was changed")
        .expect_contains("ended failed")
        .expect_contains("git migrate log --env staging");
    assert!(!prod.has_table("users"), "production was touched");
    // A successful redeploy of staging clears the way.
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.1.0", "--env", "staging", "--yes"],
    )
    .expect_code(0)
    .expect_contains("nothing to do");
    // "nothing to do" records nothing, so the failed attempt is still the newest row.
    run(
        &r,
        &staging,
        &prod,
        &["promote", "staging", "production", "--yes"],
    )
    .expect_code(3);
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
        &["promote", "staging", "production", "--yes"],
    )
    .expect_code(0);
    assert!(prod.has_table("users") && !prod.has_table("orders"));
}

#[test]
fn promote_refuses_an_untagged_commit_a_drifted_source_and_the_wrong_direction() {
    let r = releases();
    let (staging, prod) = (TestDb::new("pr_s3"), TestDb::new("pr_p3"));
    // Staging runs an untagged commit: production's require_tag refuses it.
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
    run(
        &r,
        &staging,
        &prod,
        &["promote", "staging", "production", "--yes"],
    )
    .expect_code(3)
    .expect_contains("has no tag");
    assert!(!prod.has_table("users"));
    // Staging drifted from its commit (a migration reverted by hand with Hasura's flags).
    run(
        &r,
        &staging,
        &prod,
        &["deploy", "v1.1.0", "--env", "staging", "--yes"],
    )
    .expect_code(0);
    run(
        &r,
        &staging,
        &prod,
        &["apply", "--down", "1", "--env", "staging"],
    )
    .expect_code(0);
    run(
        &r,
        &staging,
        &prod,
        &["promote", "staging", "production", "--yes"],
    )
    .expect_code(3)
    .expect_contains("not exactly at");
    assert!(!prod.has_table("users"));
    // Production has nothing deployed: there is nothing to copy from it.
    run(
        &r,
        &staging,
        &prod,
        &["promote", "production", "staging", "--yes"],
    )
    .expect_code(3)
    .expect_contains("production is at no commit");
    run(&r, &staging, &prod, &["promote", "staging", "staging"])
        .expect_code(2)
        .expect_contains("the same environment");
}

#[test]
fn promote_from_names_the_only_source() {
    let r = releases();
    let (staging, prod, dev) = (
        TestDb::new("pr_s4"),
        TestDb::new("pr_p4"),
        TestDb::new("pr_d4"),
    );
    std::fs::write(
        r.repo.path().join("git-migrate.yaml"),
        "environments:\n  dev:\n    database_url: ${DEV_URL}\n  staging:\n    database_url: ${STAGING_URL}\n  production:\n    database_url: ${PROD_URL}\n    require_tag: \"v*\"\n    promote_from: staging\n",
    )
    .unwrap();
    let out = crate::common::gm_env(
        &r.repo.path(),
        "",
        &["deploy", "v1.0.0", "--env", "dev", "--yes"],
        &[("DEV_URL", &dev.url)],
    );
    out.expect_code(0);
    let out = crate::common::gm_env(
        &r.repo.path(),
        "",
        &["promote", "dev", "production", "--yes"],
        &[
            ("DEV_URL", &dev.url),
            ("STAGING_URL", &staging.url),
            ("PROD_URL", &prod.url),
        ],
    );
    out.expect_code(3)
        .expect_contains("production is promoted from staging")
        .expect_contains("git migrate promote staging production");
    assert!(!prod.has_table("users"));
}
