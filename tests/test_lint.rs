//! The migration linter in `check` (issue 16): squawk's lock rules with git-migrate's profile,
//! `down-drops-data`, `up-drops-tracked`, `Migration-Allow` trailers and `lint:` settings.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::{gm, Run};
use git2::Oid;

/// A project with a table `orders` (and metadata tracking it, its `email` column exposed to
/// the `user` role); returns it and the base commit.
fn project() -> (TestRepo, Oid) {
    let mut r = TestRepo::new();
    let mut f = base_project_with(&[]);
    f.retain(|(p, _)| p != "metadata/tables.yaml");
    f.push((
        "metadata/tables.yaml".into(),
        "- table:\n    schema: public\n    name: orders\n  select_permissions:\n    - role: user\n      permission:\n        columns: [id, email]\n        filter: {}\n".into(),
    ));
    f.extend(migration(
        100,
        "orders",
        "create table orders(id bigint primary key, email text, note text, total int, customer_id bigint);\ncreate table customers(id bigint primary key);",
        "drop table orders;\ndrop table customers;",
    ));
    let base = r.commit(&files(&f), &[], "base");
    (r, base)
}

fn check_json(r: &TestRepo, base: Oid, tip: Oid) -> (Run, Vec<serde_json::Value>) {
    let run = gm(
        &r.path(),
        "",
        &["check", &format!("{base}..{tip}"), "--json"],
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()));
    let findings = doc["ranges"][0]["findings"].as_array().unwrap().clone();
    (run, findings)
}

fn open(findings: &[serde_json::Value]) -> Vec<(String, u64)> {
    findings
        .iter()
        .filter(|f| f["allowed_by"].is_null())
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn lock_rules_are_reported_with_file_line_and_commit_and_a_trailer_allows_one() {
    let (mut r, base) = project();
    let up = "-- a release\ncreate index orders_email on orders(email);\nalter table orders add constraint orders_customer foreign key (customer_id) references customers(id);\nalter table orders alter column total type bigint;\n";
    let tip = r.commit(
        &files(&migration(200, "locks", up, "alter table orders alter column total type int;\nalter table orders drop constraint orders_customer;\ndrop index orders_email;")),
        &[],
        "locks",
    );
    let (run, findings) = check_json(&r, base, tip);
    run.expect_code(1);
    let got = open(&findings);
    for want in [
        ("require-concurrent-index-creation", 2),
        ("constraint-missing-not-valid", 3),
        ("changing-column-type", 4),
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1)),
            "{want:?} not in {got:?}"
        );
    }
    // The text names file:line@commit and the fix.
    let text = gm(&r.path(), "", &["check", &format!("{base}..{tip}")]);
    text.expect_code(1)
        .expect_contains(&format!(
            "require-concurrent-index-creation  migrations/200_locks/up.sql:2@{}",
            &tip.to_string()[..10]
        ))
        .expect_contains("Migration-Allow: require-concurrent-index-creation 200");

    // A trailer allows one of them; the others stay.
    let allowed = r.commit(
        &files(&[(
            "migrations/200_locks/README".to_string(),
            "why\n".to_string(),
        )]),
        &[],
        "Document the release\n\nMigration-Allow: changing-column-type 200\n",
    );
    let (_, findings) = check_json(&r, base, allowed);
    let got = open(&findings);
    assert!(
        !got.iter().any(|(r, _)| r == "changing-column-type"),
        "{got:?}"
    );
    assert!(
        got.iter().any(|(r, _)| r == "constraint-missing-not-valid"),
        "{got:?}"
    );

    // --no-lint leaves the linter out.
    gm(
        &r.path(),
        "",
        &["check", &format!("{base}..{tip}"), "--no-lint"],
    )
    .expect_code(0);
}

#[test]
fn a_down_that_drops_what_its_up_did_not_create_is_reported() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            200,
            "note",
            "alter table orders add column status text;",
            "alter table orders drop column status;\nalter table orders drop column note;",
        )),
        &[],
        "status",
    );
    let (run, findings) = check_json(&r, base, tip);
    run.expect_code(1);
    let f = findings
        .iter()
        .find(|f| f["rule"] == "down-drops-data")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(f["path"], "migrations/200_note/down.sql");
    assert_eq!(f["line"], 2);
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("column public.orders.note"),
        "{f}"
    );
    assert_eq!(open(&findings).len(), 1, "{findings:#?}");
}

#[test]
fn an_up_that_drops_a_column_the_metadata_still_uses_is_reported() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            200,
            "drop_email",
            "alter table orders drop column email;\nalter table orders drop column note;",
            "alter table orders add column email text;\nalter table orders add column note text;",
        )),
        &[],
        "drop email",
    );
    let (run, findings) = check_json(&r, base, tip);
    run.expect_code(1);
    let tracked: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["rule"] == "up-drops-tracked")
        .collect();
    assert_eq!(
        tracked.len(),
        1,
        "email is exposed, note is not: {findings:#?}"
    );
    assert_eq!(tracked[0]["line"], 1);
    assert!(
        tracked[0]["message"]
            .as_str()
            .unwrap()
            .contains("column public.orders.email"),
        "{}",
        tracked[0]
    );
    // The same commit untracking the column: nothing to report.
    let fixed = r.commit(
        &files(&[(
            "metadata/tables.yaml".to_string(),
            "- table:\n    schema: public\n    name: orders\n  select_permissions:\n    - role: user\n      permission:\n        columns: [id]\n        filter: {}\n".to_string(),
        )]),
        &[],
        "untrack email",
    );
    let (_, findings) = check_json(&r, base, fixed);
    assert!(
        !findings.iter().any(|f| f["rule"] == "up-drops-tracked"),
        "{findings:#?}"
    );
}

#[test]
fn lint_settings_change_severities_and_unknown_rules_are_refused() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            200,
            "idx",
            "create index orders_email on orders(email);",
            "drop index orders_email;",
        )),
        &[],
        "index",
    );
    let write = |text: &str| std::fs::write(r.path().join("git-migrate.yaml"), text).unwrap();
    write("lint:\n  rules:\n    require-concurrent-index-creation: warning\n");
    let (run, findings) = check_json(&r, base, tip);
    run.expect_code(0);
    assert!(findings
        .iter()
        .any(|f| f["rule"] == "require-concurrent-index-creation"));
    write("lint:\n  enabled: false\n");
    let (run, findings) = check_json(&r, base, tip);
    run.expect_code(0);
    assert!(findings.is_empty(), "{findings:#?}");
    write("lint:\n  rules:\n    no-such-rule: error\n");
    gm(&r.path(), "", &["check", &format!("{base}..{tip}")])
        .expect_code(2)
        .expect_contains("no-such-rule");
    write("lint:\n  pg_version: 10\n  rules:\n    prefer-text-field: error\n");
    gm(&r.path(), "", &["check", &format!("{base}..{tip}")]).expect_code(1);
}

#[test]
fn plan_and_deploy_warn_about_the_migrations_they_run_and_never_refuse() {
    let (mut r, _) = project();
    let db = crate::common::pg::TestDb::new("lint_plan");
    // A deploy that creates the table and its index together: the table is new, no warning.
    let first = gm(&r.path(), &db.url, &["plan", "HEAD"]);
    first.expect_code(0);
    assert!(!first.stderr.contains("lint "), "{}", first.all());
    gm(&r.path(), &db.url, &["deploy", "--yes"]).expect_code(0);
    let tip = r.commit(
        &files(&migration(
            200,
            "idx",
            "\ncreate index orders_email on orders(email);",
            "drop index orders_email;",
        )),
        &[],
        "index",
    );
    let plan = gm(&r.path(), &db.url, &["plan", "HEAD"]);
    plan.expect_code(0).expect_contains(&format!(
        "warning: lint require-concurrent-index-creation: migrations/200_idx/up.sql:2@{}",
        &tip.to_string()[..10]
    ));
    gm(&r.path(), &db.url, &["deploy", "--yes"])
        .expect_code(0)
        .expect_contains("lint require-concurrent-index-creation");
}

#[test]
fn create_index_concurrently_outside_a_no_transaction_migration_is_reported_even_alone() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            200,
            "cic",
            "create index concurrently orders_email on orders(email);",
            "drop index orders_email;",
        )),
        &[],
        "cic",
    );
    let (run, findings) = check_json(&r, base, tip);
    run.expect_code(1);
    assert_eq!(
        open(&findings),
        vec![("concurrently-in-transaction".to_string(), 1)],
        "{findings:#?}"
    );
    // Marked, it runs outside the transaction, as PostgreSQL requires: nothing to report.
    let marked = r.commit(
        &files(&migration(
            200,
            "cic",
            "-- git-migrate:no-transaction\ncreate index concurrently orders_email on orders(email);",
            "-- git-migrate:no-transaction\ndrop index concurrently orders_email;",
        )),
        &[],
        "mark it",
    );
    let (run, findings) = check_json(&r, base, marked);
    run.expect_code(0);
    assert!(open(&findings).is_empty(), "{findings:#?}");
}
