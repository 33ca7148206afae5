//! The `transaction-control` check rule from real git history: a `COMMIT` in a new migration is
//! flagged at its line; what only looks like one (a `BEGIN ATOMIC` body, `$$ COMMIT $$`, a
//! comment) is not; a `Migration-Allow` trailer allows it; no-transaction migrations are exempt.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::{gm, Run};
use git2::Oid;
use std::path::Path;

/// A repository with a project and one good migration; returns it and the base commit.
fn project() -> (TestRepo, Oid) {
    let mut r = TestRepo::new();
    let mut f = base_project_with(&[]);
    f.extend(migration(
        100,
        "a",
        "create table a(id int);",
        "drop table a;",
    ));
    let base = r.commit(&files(&f), &[], "base");
    (r, base)
}

fn check(dir: &Path, args: &[&str]) -> Run {
    let mut a = vec!["check"];
    a.extend_from_slice(args);
    gm(dir, "", &a)
}

/// The open (not allowed) findings of a `--json` run: (rule, path, message).
fn findings(run: &Run) -> Vec<(String, String, String)> {
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()));
    let mut out = vec![];
    for r in doc["ranges"].as_array().unwrap() {
        for f in r["findings"].as_array().unwrap() {
            if f["allowed_by"].is_null() {
                out.push((
                    f["rule"].as_str().unwrap().to_string(),
                    f["path"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn range(base: Oid, tip: Oid) -> String {
    format!("{base}..{tip}")
}

#[test]
fn commit_in_a_new_migration_is_flagged_at_its_line() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            200,
            "backfill",
            "alter table a add column b int;\n-- batch one\nupdate a set b = 1;\n  COMMIT;\nupdate a set b = 2;\n",
            "alter table a drop column b;",
        )),
        &[],
        "backfill",
    );
    let run = check(&r.path(), &["--json", &range(base, tip)]);
    run.expect_code(1);
    let f = findings(&run);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "transaction-control");
    assert_eq!(f[0].1, "migrations/200_backfill/up.sql");
    assert!(
        f[0].2
            .contains("migrations/200_backfill/up.sql:4:3: COMMIT"),
        "{}",
        f[0].2
    );
    // The text output: rule, commit, path, the line, and the executor's hint.
    check(&r.path(), &[&range(base, tip)])
        .expect_code(1)
        .expect_contains("transaction-control")
        .expect_contains(&tip.to_string()[..10])
        .expect_contains("migrations/200_backfill/up.sql:4:3: COMMIT")
        .expect_contains("git-migrate already runs each deployment in one transaction")
        .expect_contains("Migration-Allow: transaction-control 200");
}

#[test]
fn look_alikes_are_not_flagged() {
    let (mut r, base) = project();
    let mut f = migration(
        200,
        "atomic",
        "create function two() returns int language sql\nbegin atomic\n  select 1;\n  select case when true then 2 end;\nend;\n",
        "drop function two();",
    );
    f.extend(migration(
        300,
        "dollar",
        "create function f() returns text language sql as $$ select 'COMMIT' $$;\nselect $tag$ COMMIT; ROLLBACK; $tag$;\ndo $$ begin perform 1; end $$;\n",
        "drop function f();",
    ));
    f.extend(migration(
        400,
        "comments",
        "-- COMMIT;\n/* BEGIN; /* nested */ COMMIT; */\nselect E'\\'; commit; \\'';\ncreate table commit_log (\"begin\" int, \"end\" int);\n",
        "drop table commit_log; -- rollback;",
    ));
    // A no-transaction migration runs outside the transaction: exempt.
    f.extend(migration(
        500,
        "no_tx",
        "-- git-migrate:no-transaction\ncommit;\n",
        "select 1;",
    ));
    let tip = r.commit(&files(&f), &[], "look-alikes");
    let run = check(&r.path(), &["--json", &range(base, tip)]);
    let got: Vec<_> = findings(&run)
        .into_iter()
        .filter(|f| f.0 == "transaction-control")
        .collect();
    assert_eq!(got, vec![], "{}", run.all());
    run.expect_code(0);
}

#[test]
fn trailer_allows_it() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            200,
            "chunks",
            "update a set id = id;\ncommit;\nbegin;\nupdate a set id = id + 0;\n",
            "select 1;",
        )),
        &[],
        "Backfill in two transactions\n\nMigration-Allow: transaction-control 200\n",
    );
    check(&r.path(), &[&range(base, tip)])
        .expect_code(0)
        .expect_contains("transaction-control")
        .expect_contains("allowed");
    // The down file is checked too, and the trailer names versions.
    let tip2 = r.commit(
        &files(&migration(
            300,
            "other",
            "create table c(id int);",
            "drop table c;\nend;\n",
        )),
        &[],
        "other\n\nMigration-Allow: transaction-control 999\n",
    );
    let run = check(&r.path(), &["--json", &range(base, tip2)]);
    run.expect_code(1);
    let f = findings(&run);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].1, "migrations/300_other/down.sql");
    assert!(
        f[0].2.contains("migrations/300_other/down.sql:2:1: end"),
        "{}",
        f[0].2
    );
}
