//! `git migrate check`: each rule from real git history, hook inputs (pre-push, pre-receive in a
//! bare repository driven by a real `git push`), the index, and `Migration-Allow` trailers.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::{gm, gm_env, Run};
use git2::Oid;
use std::path::Path;
use std::process::Command;

/// A repository with a project and two good migrations; returns it and the base commit.
fn project() -> (TestRepo, Oid) {
    let mut r = TestRepo::new();
    let mut f = base_project_with(&[]);
    f.extend(migration(
        100,
        "a",
        "create table a(id int);",
        "drop table a;",
    ));
    f.extend(migration(
        200,
        "b",
        "create table b(id int);",
        "drop table b;",
    ));
    let base = r.commit(&files(&f), &[], "base");
    (r, base)
}

fn check(dir: &Path, args: &[&str]) -> Run {
    let mut a = vec!["check"];
    a.extend_from_slice(args);
    gm(dir, "", &a)
}

/// The (rule, path) pairs of a `--json` run.
fn findings(run: &Run) -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()));
    let mut out = vec![];
    for r in doc["ranges"].as_array().unwrap() {
        for f in r["findings"].as_array().unwrap() {
            if f["allowed_by"].is_null() {
                out.push((
                    f["rule"].as_str().unwrap().to_string(),
                    f["path"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn rules_of(run: &Run) -> Vec<String> {
    findings(run).into_iter().map(|(r, _)| r).collect()
}

fn range(base: Oid, tip: Oid) -> String {
    format!("{base}..{tip}")
}

#[test]
fn clean_range_passes() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            300,
            "c",
            "create table c(id int);",
            "drop table c;",
        )),
        &[],
        "add c",
    );
    let p = r.path();
    check(&p, &[&range(base, tip)])
        .expect_code(0)
        .expect_contains("ok");
    let run = check(&p, &["--json", &range(base, tip)]);
    run.expect_code(0);
    assert!(rules_of(&run).is_empty());
    // One commit alone, and the default range (no upstream: the last commit).
    check(&p, &[&tip.to_string()]).expect_code(0);
    check(&p, &[]).expect_code(0);
}

#[test]
fn empty_down_is_missing_down() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            300,
            "c",
            "create table c(id int);",
            "-- nothing to undo\n\n",
        )),
        &[],
        "add c",
    );
    let run = check(&r.path(), &["--json", &range(base, tip)]);
    run.expect_code(1);
    assert_eq!(
        findings(&run),
        vec![("missing-down".into(), "migrations/300_c/down.sql".into())]
    );
    // The text output names rule, commit, path and the hint.
    check(&r.path(), &[&range(base, tip)])
        .expect_code(1)
        .expect_contains("missing-down")
        .expect_contains(&tip.to_string()[..10])
        .expect_contains("Migration-Allow: missing-down 300");
}

#[test]
fn require_down_false_turns_the_missing_down_rule_off() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(300, "c", "create table c(id int);", "")),
        &[],
        "add c without a down",
    );
    check(&r.path(), &[&range(base, tip)]).expect_code(1);
    std::fs::write(
        r.path().join("git-migrate.yaml"),
        "policy:\n  require_down: false\n",
    )
    .unwrap();
    check(&r.path(), &[&range(base, tip)]).expect_code(0);
}

#[test]
fn deleted_down() {
    let (mut r, base) = project();
    // A new migration whose down.sql was deleted in a later commit of the range.
    r.commit(
        &files(&migration(
            300,
            "c",
            "create table c(id int);",
            "drop table c;",
        )),
        &[],
        "add c",
    );
    let tip = r.commit(&[], &["migrations/300_c/down.sql"], "drop c's down");
    let run = check(&r.path(), &["--json", &range(base, tip)]);
    assert_eq!(
        findings(&run),
        vec![("missing-down".into(), "migrations/300_c".into())]
    );
    // Attributed to the commit that removed it.
    check(&r.path(), &[&range(base, tip)]).expect_contains(&tip.to_string()[..10]);
    // The down of a migration that existed before: an edit.
    let tip2 = r.commit(&[], &["migrations/100_a/down.sql"], "drop a's down");
    let run = check(&r.path(), &["--json", &range(tip, tip2)]);
    assert_eq!(
        findings(&run),
        vec![(
            "edited-migration".into(),
            "migrations/100_a/down.sql".into()
        )]
    );
}

#[test]
fn edited_applied_migration() {
    let (mut r, base) = project();
    let tip = r.commit(
        &[("migrations/100_a/up.sql", "create table a(id bigint);")],
        &[],
        "widen a",
    );
    let run = check(&r.path(), &["--json", &range(base, tip)]);
    assert_eq!(
        findings(&run),
        vec![("edited-migration".into(), "migrations/100_a/up.sql".into())]
    );
    // Deleting a whole migration is an edit too.
    let tip2 = r.commit(&[], &["migrations/200_b"], "remove b");
    let run = check(&r.path(), &["--json", &range(tip, tip2)]);
    assert_eq!(
        findings(&run),
        vec![("edited-migration".into(), "migrations/200_b".into())]
    );
}

#[test]
fn merged_branch_with_lower_version_is_out_of_order() {
    let (mut r, base) = project();
    // A feature branch adds 250; main meanwhile adds 300; the branch is merged into main.
    let feature = r.commit_on(
        vec![base],
        &files(&migration(
            250,
            "feature",
            "create table f(id int);",
            "drop table f;",
        )),
        &[],
        "feature",
        None,
    );
    let main = r.commit(
        &files(&migration(
            300,
            "main",
            "create table m(id int);",
            "drop table m;",
        )),
        &[],
        "main",
    );
    let merge = r.commit_on(
        vec![main, feature],
        &files(&migration(
            250,
            "feature",
            "create table f(id int);",
            "drop table f;",
        )),
        &[],
        "Merge feature",
        Some("HEAD"),
    );
    let run = check(&r.path(), &["--json", &range(main, merge)]);
    assert_eq!(
        findings(&run),
        vec![("out-of-order".into(), "migrations/250_feature".into())]
    );
    // The feature branch alone, against its own base, is fine.
    check(&r.path(), &[&range(base, feature)]).expect_code(0);
}

#[test]
fn duplicate_version_and_bad_names() {
    let (mut r, base) = project();
    let mut f = migration(300, "one", "create table one(id int);", "drop table one;");
    f.extend(migration(
        300,
        "two",
        "create table two(id int);",
        "drop table two;",
    ));
    f.push((
        "migrations/v400_typo/up.sql".into(),
        "create table t(id int);".into(),
    ));
    f.push(("migrations/500_x/Down.sql".into(), "drop table x;".into()));
    f.push(("migrations/500_x/up.sql".into(), "create table x();".into()));
    let tip = r.commit(&files(&f), &[], "mistakes");
    let run = check(&r.path(), &["--json", &range(base, tip)]);
    let got = findings(&run);
    assert!(
        got.contains(&("duplicate-version".into(), "migrations/300_one".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("bad-name".into(), "migrations/v400_typo".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("bad-name".into(), "migrations/500_x/Down.sql".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("missing-down".into(), "migrations/500_x".into())),
        "{got:?}"
    );
    assert_eq!(got.len(), 4, "{got:?}");
}

#[test]
fn no_transaction_with_several_statements() {
    let (mut r, base) = project();
    let tip = r.commit(
        &files(&migration(
            300,
            "idx",
            "-- git-migrate:no-transaction\ncreate index concurrently a_i on a(id);\ncreate index concurrently b_i on b(id);\n",
            "drop index a_i; drop index b_i;",
        )),
        &[],
        "indexes",
    );
    let run = check(&r.path(), &["--json", &range(base, tip)]);
    assert_eq!(
        findings(&run),
        vec![(
            "no-transaction-mixed".into(),
            "migrations/300_idx/up.sql".into()
        )]
    );
}

#[test]
fn metadata_rules() {
    let (mut r, base) = project();
    let bad_yaml = r.commit(
        &[(
            "metadata/tables.yaml",
            "- table: {schema: public, name: a\n",
        )],
        &[],
        "bad yaml",
    );
    let run = check(&r.path(), &["--json", &range(base, bad_yaml)]);
    assert_eq!(
        findings(&run),
        vec![("metadata-parse".into(), "metadata/tables.yaml".into())]
    );
    check(&r.path(), &[&range(base, bad_yaml)]).expect_contains("metadata/tables.yaml:");

    // A config v3 project with a broken !include.
    let mut v3 = TestRepo::new();
    let ok = v3.commit(
        &[
            ("config.yaml", "version: 3\nendpoint: http://localhost:8080\nmetadata_directory: metadata\n"),
            ("metadata/version.yaml", "version: 3\n"),
            (
                "metadata/databases/databases.yaml",
                "- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB\n  tables: \"!include default/tables/tables.yaml\"\n",
            ),
            ("metadata/databases/default/tables/tables.yaml", "- \"!include public_a.yaml\"\n"),
            ("metadata/databases/default/tables/public_a.yaml", "table:\n  name: a\n  schema: public\n"),
        ],
        &[],
        "v3",
    );
    let broken = v3.commit(
        &[(
            "metadata/databases/default/tables/tables.yaml",
            "- \"!include public_a.yaml\"\n- \"!include public_missing.yaml\"\n",
        )],
        &[],
        "broken include",
    );
    check(&v3.path(), &[&range(ok, ok)]).expect_code(0);
    let run = check(&v3.path(), &["--json", &range(ok, broken)]);
    assert_eq!(
        rules_of(&run),
        vec!["metadata-include".to_string()],
        "{}",
        run.all()
    );
    check(&v3.path(), &[&range(ok, broken)]).expect_contains("public_missing.yaml");
}

#[test]
fn trailer_allows_an_intended_irreversible_migration() {
    let (mut r, base) = project();
    let tip = r.commit(
        &[("migrations/300_drop_legacy/up.sql", "drop table a;")],
        &[],
        "Drop the legacy table\n\nMigration-Allow: missing-down 300\n",
    );
    check(&r.path(), &[&range(base, tip)])
        .expect_code(0)
        .expect_contains("allowed");
    // Another version is not allowed by it.
    let tip2 = r.commit(
        &[("migrations/400_x/up.sql", "select 1;")],
        &[],
        "more\n\nMigration-Allow: missing-down 999\nMigration-Allow: no-such-rule 400\n",
    );
    let run = check(&r.path(), &[&range(base, tip2)]);
    run.expect_code(1)
        .expect_contains("missing-down")
        .expect_contains("unreadable allowance");
    // GIT_MIGRATE_ALLOW does the same for the index (no commit message yet).
    let run = gm_env(
        &r.path(),
        "",
        &["check", &range(base, tip2)],
        &[("GIT_MIGRATE_ALLOW", "missing-down 400")],
    );
    run.expect_code(0);
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .expect("git runs");
    out
}

#[test]
fn staged_checks_the_index() {
    let (r, _) = project();
    let p = r.path();
    git(&p, &["reset", "-q", "--hard"]);
    check(&p, &["--staged"]).expect_code(0);
    std::fs::create_dir_all(p.join("migrations/300_c")).unwrap();
    std::fs::write(p.join("migrations/300_c/up.sql"), "create table c();").unwrap();
    std::fs::write(p.join("migrations/300_c/down.sql"), "").unwrap();
    // Not staged yet: the index is still clean.
    check(&p, &["--staged"]).expect_code(0);
    git(&p, &["add", "migrations"]);
    let run = check(&p, &["--staged", "--json"]);
    run.expect_code(1);
    assert_eq!(
        findings(&run),
        vec![("missing-down".into(), "migrations/300_c/down.sql".into())]
    );
    check(&p, &["--staged"]).expect_contains("the index");
}

#[test]
fn pre_push_input() {
    let (mut r, base) = project();
    let tip = r.commit(
        &[("migrations/300_c/up.sql", "create table c();")],
        &[],
        "c",
    );
    let zero = "0000000000000000000000000000000000000000";
    let run_with = |input: String| {
        let mut cmd = crate::common::gm_command(
            &r.path(),
            "",
            &["check", "--pre-push", "origin", "url"],
            &[],
        );
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        Run::from_output(&child.wait_with_output().unwrap())
    };
    // An update of a branch the remote has at `base`.
    run_with(format!("refs/heads/main {tip} refs/heads/main {base}\n"))
        .expect_code(1)
        .expect_contains("missing-down");
    // A deletion pushes nothing to check.
    run_with(format!("(delete) {zero} refs/heads/old {base}\n")).expect_code(0);
    // Nothing new.
    run_with(format!("refs/heads/main {base} refs/heads/main {base}\n")).expect_code(0);
    // A new branch with no remote-tracking refs: everything is new, and 300 lacks a down.
    run_with(format!("refs/heads/topic {tip} refs/heads/topic {zero}\n"))
        .expect_code(1)
        .expect_contains("300");
    // Garbage input is a usage error, not a pass.
    run_with("not a pre-push line\n".into()).expect_code(2);
}

#[test]
fn pre_receive_in_bare_repository_refuses_then_accepts() {
    // Server: a bare repository with a pre-receive hook calling the binary.
    let server = TestRepo::bare();
    let hook = server.path().join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nexec '{}' check --pre-receive\n",
            env!("CARGO_BIN_EXE_git-migrate")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let (mut r, _) = project();
    let p = r.path();
    let url = server.path().to_string_lossy().into_owned();
    git(&p, &["remote", "add", "origin", &url]);
    // The first push of a new branch, all good.
    let out = git(&p, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A push that adds a migration without a down is refused, and the ref does not move.
    let bad = r.commit(
        &[("migrations/300_c/up.sql", "create table c();")],
        &[],
        "c",
    );
    let out = git(&p, &["push", "origin", "HEAD:refs/heads/main"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "push was accepted:\n{err}");
    assert!(err.contains("missing-down"), "{err}");
    assert!(err.contains("pre-receive hook declined"), "{err}");
    let server_main = server.repo.refname_to_id("refs/heads/main").unwrap();
    assert_ne!(server_main, bad);
    // Fixed in a new commit: accepted.
    let fixed = r.commit(
        &[("migrations/300_c/down.sql", "drop table c;")],
        &[],
        "c down",
    );
    let out = git(&p, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.repo.refname_to_id("refs/heads/main").unwrap(), fixed);
    // A new branch and a deletion in one push.
    let out = git(&p, &["push", "-q", "origin", "HEAD:refs/heads/topic"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = git(&p, &["push", "-q", "origin", ":refs/heads/topic"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_range_is_a_usage_error() {
    let (r, _) = project();
    check(&r.path(), &["nope..HEAD"])
        .expect_code(2)
        .expect_contains("nope");
    check(&r.path(), &["a", "b"]).expect_code(2);
}

#[test]
fn installed_pre_commit_hook_refuses_a_commit_without_down() {
    let (r, _) = project();
    let p = r.path();
    git(&p, &["reset", "-q", "--hard"]);
    gm(&p, "", &["hooks", "install", "--pre-commit"]).expect_code(0);
    let head = r.head().unwrap();
    std::fs::create_dir_all(p.join("migrations/300_c")).unwrap();
    std::fs::write(p.join("migrations/300_c/up.sql"), "create table c();").unwrap();
    git(&p, &["add", "migrations"]);
    let out = git(&p, &["commit", "-qm", "c without down"]);
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "commit was accepted:\n{err}");
    assert!(err.contains("missing-down"), "{err}");
    assert_eq!(r.head().unwrap(), head, "HEAD moved");
    // With the down, the same commit goes through.
    std::fs::write(p.join("migrations/300_c/down.sql"), "drop table c;").unwrap();
    git(&p, &["add", "migrations"]);
    let out = git(&p, &["commit", "-qm", "c with down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(r.head().unwrap(), head);
}

#[test]
fn config_v3_checks_every_database_folder() {
    let mut r = TestRepo::new();
    let base = r.commit(
        &[
            (
                "config.yaml",
                "version: 3\nendpoint: http://localhost:8080\nmetadata_directory: metadata\n",
            ),
            ("metadata/version.yaml", "version: 3\n"),
            ("metadata/databases/databases.yaml", "[]\n"),
            ("migrations/default/1_a/up.sql", "create table a();"),
            ("migrations/default/1_a/down.sql", "drop table a;"),
        ],
        &[],
        "v3",
    );
    let tip = r.commit(
        &[
            ("migrations/analytics/2_b/up.sql", "create table b();"),
            ("migrations/default/3_c/up.sql", "create table c();"),
            ("migrations/default/3_c/down.sql", "drop table c;"),
        ],
        &[],
        "two databases",
    );
    let run = check(&r.path(), &["--json", &range(base, tip)]);
    assert_eq!(
        findings(&run),
        vec![("missing-down".into(), "migrations/analytics/2_b".into())]
    );
    // --database-name narrows the check to one database.
    check(
        &r.path(),
        &["--database-name", "default", &range(base, tip)],
    )
    .expect_code(0);
}
