//! What the commands print is a contract (issue 14, item 5): stdout, stderr and the exit code of
//! the main flows of every command, and every command's `--help`, are snapshots
//! (`tests/snapshots/`, reviewed with `cargo insta review` or by reading the diff).
//!
//! The transcripts are made stable by naming what varies from run to run: the test database's
//! connection string is `[DATABASE]`, its name `[DB]`, the repository's temp folder `[REPO]`,
//! other temp paths `[TMP]`, the binary's path `[BIN]`, the database role `[ROLE]`, durations `[ELAPSED]`, wall-clock times `[TIME]`, new migration
//! versions `[VERSION]`. Commit ids are not replaced: the fixtures are committed with fixed
//! identities and dates, so they are the same on every run.

use crate::common::git::{files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, gm_env, Run};
use std::path::Path;

/// One command's transcript: what was typed, the exit code, stdout and stderr.
fn transcript(args: &[&str], run: &Run) -> String {
    let mut t = format!("$ git migrate {}\nexit: {}\n", args.join(" "), run.code);
    if !run.stdout.is_empty() {
        t.push_str("--- stdout\n");
        t.push_str(&run.stdout);
    }
    if !run.stderr.is_empty() {
        t.push_str("--- stderr\n");
        t.push_str(&run.stderr);
    }
    t
}

/// Replaces what differs between runs with a name for it.
fn stable(text: &str, repo: Option<&Path>, db: Option<&TestDb>) -> String {
    let mut t = text.replace(env!("CARGO_BIN_EXE_git-migrate"), "[BIN]");
    if let Some(db) = db {
        t = t.replace(&db.url, "[DATABASE]").replace(&db.name, "[DB]");
    }
    if let Some(repo) = repo {
        let p = repo.to_string_lossy();
        t = t
            .replace(&format!("{p}/"), "[REPO]/")
            .replace(&*p, "[REPO]");
    }
    t
}

/// The regular-expression filters applied after [`stable`].
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        // Temp folders of scratch servers and test clusters.
        (r"/tmp/[A-Za-z0-9._/-]+", "[TMP]"),
        // Durations: "12 ms", "1.3 s", "0.42s", "(3ms)".
        (r"\b\d+(\.\d+)? ?(ms|µs|s)\b", "[ELAPSED]"),
        (
            r#""(seconds|elapsed_ms|ms)": [0-9.e-]+"#,
            r#""$1": "[ELAPSED]""#,
        ),
        // Wall-clock times as the ledger and log show them.
        (
            r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?( ?[A-Z]{2,5}|[+-]\d{2}(:?\d{2})?|Z)?",
            "[TIME]",
        ),
        // Migration versions made now (`create`): milliseconds since 1970, from mid-2025 on (the
        // fixtures' versions are from 2023 and stay as they are).
        (r"\b(17[5-9]\d{10}|1[89]\d{11})(\b|_)", "[VERSION]$2"),
        // The database role the tests connect as: `postgres` as root (CI), the user's own name
        // on a laptop, where the harness runs the server as that user.
        (r"\(role [^)]+\)", "(role [ROLE])"),
        // How a revision's schema was made depends on the templates other tests kept on the
        // shared server.
        (
            r"(schema of [^:\n]+): (read from the kept template|[^\n]*replayed)",
            "$1: [REPLAYED]",
        ),
        // Process ids in scratch database names.
        (
            r"git_migrate_(verify|replay)_\d+_\d+",
            "git_migrate_${1}_[PID]_[N]",
        ),
    ]
}

/// Snapshots one transcript under `name`.
fn snap(name: &str, text: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for (re, with) in filters() {
        settings.add_filter(re, with);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// Runs `git migrate ARGS` against `db` in `repo` and snapshots the transcript.
fn step(name: &str, repo: &TestRepo, db: &TestDb, args: &[&str]) -> Run {
    let run = gm(&repo.path(), &db.url, args);
    snap(
        name,
        stable(&transcript(args, &run), Some(&repo.path()), Some(db)),
    );
    run
}

#[test]
fn the_command_line_definition_is_consistent() {
    // clap's own checks: no duplicate flags, conflicts that name real arguments, and so on.
    git_migrate::cli::command().debug_assert();
}

/// Every command's and subcommand's `--help`: the documentation users read first.
#[test]
fn help_of_every_command() {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut paths = Vec::new();
    walk(&git_migrate::cli::command(), vec![], &mut paths);
    assert!(paths.len() > 25, "every command is listed: {paths:?}");
    let dir = tempfile::tempdir().unwrap();
    for path in paths {
        if path.last().map(String::as_str) == Some("help") {
            continue; // clap's own `help` subcommands
        }
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = gm(dir.path(), "", &args);
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", path.join("_"))
        };
        assert_eq!(run.code, 0, "{args:?}: {}", run.all());
        snap(&name, transcript(&args, &run));
    }
}

/// The shop fixture from an empty database to v2.0.0 and back: status, plan, deploy, log and
/// rollback, in text and JSON, and the errors on the way.
#[test]
fn deploy_and_rollback_flow() {
    let repo = TestRepo::shop();
    let db = TestDb::new("snap_flow");
    step("flow_01_status_empty", &repo, &db, &["status"]);
    step("flow_02_plan", &repo, &db, &["plan", "v1.1.0"]).expect_code(0);
    step("flow_03_deploy", &repo, &db, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    step(
        "flow_04_deploy_forward",
        &repo,
        &db,
        &["deploy", "v2.0.0", "--yes"],
    )
    .expect_code(0);
    step("flow_05_status", &repo, &db, &["status"]).expect_code(0);
    step("flow_06_status_json", &repo, &db, &["status", "--json"]).expect_code(0);
    step("flow_07_log", &repo, &db, &["log"]).expect_code(0);
    step(
        "flow_08_plan_back_json",
        &repo,
        &db,
        &["plan", "v1.0.0", "--json"],
    )
    .expect_code(0);
    step(
        "flow_09_rollback_dry_run",
        &repo,
        &db,
        &["rollback", "v1.0.0", "--dry-run"],
    )
    .expect_code(0);
    step(
        "flow_10_rollback",
        &repo,
        &db,
        &["rollback", "v1.0.0", "--yes"],
    )
    .expect_code(0);
    step(
        "flow_11_rollback_is_not_forward",
        &repo,
        &db,
        &["rollback", "v2.0.0", "--yes"],
    );
    step(
        "flow_12_unknown_revision",
        &repo,
        &db,
        &["deploy", "v9.9.9", "--yes"],
    )
    .expect_code(2);
    step(
        "flow_13_deploy_json",
        &repo,
        &db,
        &["deploy", "v1.2.0", "--yes", "--json"],
    )
    .expect_code(0);
    step(
        "flow_14_already_there",
        &repo,
        &db,
        &["deploy", "v1.2.0", "--yes"],
    )
    .expect_code(0);
}

/// Errors before any database work: none given, a URL that does not parse, a refusal.
#[test]
fn errors_name_what_and_what_to_do() {
    let repo = TestRepo::shop();
    let p = repo.path();
    let run = gm(&p, "", &["status"]);
    snap(
        "error_no_database",
        stable(&transcript(&["status"], &run), Some(&p), None),
    );
    let args = ["status", "--database-url", "postgresql://u:s3cret@[::1"];
    let run = gm(&p, "", &args);
    assert!(!run.all().contains("s3cret"), "{}", run.all());
    snap(
        "error_bad_url",
        stable(&transcript(&args, &run), Some(&p), None),
    );
    // A missing down refuses the rollback, names the migration, and says what gets past it.
    let mut r = TestRepo::new();
    let m1 = crate::common::git::base_project_with(&migration(
        1_000,
        "first",
        "CREATE TABLE a (id int);",
        "DROP TABLE a;",
    ));
    let m2 = migration(2_000, "second", "CREATE TABLE b (id int);", "");
    let c1 = r.commit(&files(&m1), &[], "one");
    r.tag("v1", c1);
    let two = files(&m2);
    let c2 = r.commit(&two, &[], "two");
    r.tag("v2", c2);
    let db = TestDb::new("snap_refused");
    gm(&r.path(), &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    step(
        "error_rollback_refused_empty_down",
        &r,
        &db,
        &["rollback", "v1", "--yes"],
    )
    .expect_code(3);
    step(
        "error_rollback_refused_json",
        &r,
        &db,
        &["rollback", "v1", "--yes", "--json"],
    )
    .expect_code(3);
}

/// The metadata alone, and Hasura's `migrate apply` flags.
#[test]
fn metadata_and_hasura_apply_flows() {
    let repo = TestRepo::shop();
    let db = TestDb::new("snap_meta");
    gm(&repo.path(), &db.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    step(
        "metadata_diff",
        &repo,
        &db,
        &["metadata", "diff", "v1.0.0", "v1.2.0"],
    );
    step(
        "metadata_apply",
        &repo,
        &db,
        &["metadata", "apply", "v1.0.0", "--yes"],
    );
    step("apply_up_all", &repo, &db, &["apply", "--up", "all"]).expect_code(0);
    step("apply_down_one", &repo, &db, &["apply", "--down", "1"]).expect_code(0);
    step("apply_status_after", &repo, &db, &["status"]);
}

/// `check` over a range and `verify` of a revision (in scratch databases on the test server).
#[test]
fn check_and_verify_flows() {
    let repo = TestRepo::shop();
    let db = TestDb::new("snap_check");
    step("check_range", &repo, &db, &["check", "v1.0.0..v2.0.0"]);
    step(
        "check_range_json",
        &repo,
        &db,
        &["check", "v1.0.0..v2.0.0", "--json"],
    );
    // The tool makes its scratch databases on the test server, from this one.
    let scratch = TestDb::new("snap_scratch");
    let run = gm_env(
        &repo.path(),
        &db.url,
        &["verify", "v1.1.0"],
        &[("GIT_MIGRATE_SCRATCH_URL", scratch.url.as_str())],
    );
    snap(
        "verify_revision",
        stable(
            &transcript(&["verify", "v1.1.0"], &run),
            Some(&repo.path()),
            Some(&db),
        ),
    );
    assert_eq!(run.code, 0, "{}", run.all());
}

/// The other authoring commands: squash a range, delete a migration, write a seed, and export the
/// deployed metadata (each in the working tree, with a database that has the history applied).
#[test]
fn squash_delete_seed_and_export_flows() {
    let repo = TestRepo::shop();
    let db = TestDb::new("snap_squash");
    gm(&repo.path(), &db.url, &["deploy", "v2.0.0", "--yes"]).expect_code(0);
    step(
        "squash_range",
        &repo,
        &db,
        &[
            "squash",
            "--from",
            "1700000000006",
            "--version",
            "1700000000008",
            "--name",
            "seeded_ratings",
        ],
    )
    .expect_code(0);
    step("squash_status_after", &repo, &db, &["status", "--worktree"]);
    step(
        "delete_refused_applied",
        &repo,
        &db,
        &["delete", "--version", "1700000000008"],
    );
    step(
        "seed_create",
        &repo,
        &db,
        &[
            "seed",
            "create",
            "products",
            "--sql",
            "INSERT INTO products DEFAULT VALUES;",
        ],
    )
    .expect_code(0);
    step("metadata_export", &repo, &db, &["metadata", "export"]).expect_code(0);
}

/// Authoring in the working tree: create, then the hooks that guard commits.
#[test]
fn authoring_and_hooks_flows() {
    let repo = TestRepo::shop();
    let db = TestDb::new("snap_author");
    step(
        "create_migration",
        &repo,
        &db,
        &[
            "create",
            "add_notes",
            "--up-sql",
            "CREATE TABLE notes (id int);",
            "--down-sql",
            "DROP TABLE notes;",
        ],
    )
    .expect_code(0);
    // PATH without the folders a developer may have installed git-migrate in, so that the note
    // about the binary the hooks call is the same everywhere.
    let args = ["hooks", "install"];
    let run = gm_env(&repo.path(), &db.url, &args, &[("PATH", "/usr/bin:/bin")]);
    snap(
        "hooks_install",
        stable(&transcript(&args, &run), Some(&repo.path()), Some(&db)),
    );
    run.expect_code(0);
    step("hooks_uninstall", &repo, &db, &["hooks", "uninstall"]).expect_code(0);
}

/// `git migrate completions bash` completes commands and their options, for `git-migrate …` and
/// through git's own completion for `git migrate …`; the other shells get a script; `man --out`
/// writes one page per command.
#[test]
fn completions_and_man_pages() {
    let dir = tempfile::tempdir().unwrap();
    let run = gm(dir.path(), "", &["completions", "bash"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let script = dir.path().join("git-migrate.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    let complete = |words: &str, function: &str| {
        let line = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; {function}; echo \"${{COMPREPLY[*]}}\"",
            script.display()
        );
        let out = std::process::Command::new("bash")
            .args(["--norc", "-c", &line])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let direct =
        "_git__migrate git-migrate \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"";
    assert_eq!(complete("git-migrate roll", direct), "rollback");
    assert_eq!(complete("git-migrate rollback --dry", direct), "--dry-run");
    assert_eq!(complete("git migrate dep", "_git_migrate"), "deploy");
    assert_eq!(complete("git migrate metadata ap", "_git_migrate"), "apply");
    assert_eq!(
        complete("git migrate deploy --verify-t", "_git_migrate"),
        "--verify-target"
    );
    for (shell, marker) in [
        ("zsh", "#compdef git-migrate"),
        ("fish", "complete -c git-migrate"),
    ] {
        let run = gm(dir.path(), "", &["completions", shell]);
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(run.stdout.contains(marker), "{shell}: {}", run.stdout);
    }
    let run = gm(dir.path(), "", &["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{}", run.all());
    let out = dir.path().join("man");
    let run = gm(dir.path(), "", &["man", "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all());
    for page in [
        "git-migrate.1",
        "git-migrate-deploy.1",
        "git-migrate-metadata-apply.1",
    ] {
        let text = std::fs::read_to_string(out.join(page)).unwrap();
        assert!(text.contains(".TH "), "{page}: {text}");
    }
    let deploy = std::fs::read_to_string(out.join("git-migrate-deploy.1")).unwrap();
    assert!(deploy.contains("\\-\\-verify\\-target"), "{deploy}");
    let main_page = gm(dir.path(), "", &["man"]);
    assert_eq!(main_page.code, 0);
    assert!(main_page.stdout.starts_with(".ie"), "{}", main_page.stdout);
    assert!(
        main_page.stdout.contains("Exit codes"),
        "{}",
        main_page.stdout
    );
}

/// `diff` between revisions and against the database, and a hand change written as a migration.
#[test]
fn diff_and_drift_flows() {
    let repo = TestRepo::shop();
    let db = TestDb::new("snap_diff");
    let scratch = TestDb::new("snap_diff_scratch");
    let env = [("GIT_MIGRATE_SCRATCH_URL", scratch.url.as_str())];
    let run_step = |name: &str, args: &[&str]| {
        let run = gm_env(&repo.path(), &db.url, args, &env);
        snap(
            name,
            stable(&transcript(args, &run), Some(&repo.path()), Some(&db)),
        );
        run
    };
    assert_eq!(
        run_step("diff_revisions", &["diff", "v1.1.0", "v2.0.0"]).code,
        1
    );
    run_step(
        "diff_revisions_json",
        &["diff", "v1.0.0", "v1.1.0", "--schema-only", "--json"],
    );
    assert_eq!(
        run_step("diff_same", &["diff", "v1.1.0", "v1.2.0", "--schema-only"]).code,
        0
    );
    assert_eq!(
        gm(&repo.path(), &db.url, &["deploy", "v2.0.0", "--yes"]).code,
        0
    );
    db.client()
        .batch_execute("create index orders_created on orders(created_at); alter table products add column barcode text unique;")
        .unwrap();
    run_step("diff_drift", &["diff", "v2.0.0", "live", "--schema-only"]);
    let run = run_step(
        "create_from_live_dry_run",
        &["create", "hotfix", "--from-live", "--dry-run"],
    );
    assert_eq!(run.code, 0, "{}", run.all());
}
