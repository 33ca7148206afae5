//! Bad input: every case gives a short error with a hint and the right exit code, never panics,
//! and writes nothing to the database.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, gm_env, Run};
use std::path::Path;

/// Runs the binary and checks that it did not crash, whatever the exit code.
#[track_caller]
fn run(dir: &Path, url: &str, args: &[&str]) -> Run {
    checked(gm(dir, url, args), args)
}

/// Fails on a panic, an "internal error" or an exit code outside the documented 0..=5.
#[track_caller]
fn checked(r: Run, args: &[&str]) -> Run {
    let all = r.all();
    assert!(
        !all.contains("panicked") && !all.contains("internal error"),
        "git-migrate {args:?} crashed:\n{all}"
    );
    assert!(
        (0..=5).contains(&r.code),
        "git-migrate {args:?} exited with {}:\n{all}",
        r.code
    );
    r
}

/// stderr has an `error:` line and a `hint:` line.
#[track_caller]
fn expect_error_with_hint(r: &Run) {
    assert!(
        r.stderr.lines().any(|l| l.starts_with("error: ")),
        "no `error:` line:\n{}",
        r.all()
    );
    assert!(
        r.stderr.lines().any(|l| l.starts_with("hint: ")),
        "no `hint:` line:\n{}",
        r.all()
    );
}

/// Nothing of git-migrate exists in the database: no ledger schema, no ledger table.
#[track_caller]
fn assert_untouched(db: &TestDb) {
    assert!(!db.has_table("git_migrate.migrations"));
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'git_migrate'")
            .as_deref(),
        Some("0"),
        "the ledger schema was created"
    );
}

/// First 10 hex digits of a commit id, as messages show it.
fn short(c: git2::Oid) -> String {
    c.to_string()[..10].to_string()
}

/// The unix socket directory of the test cluster, parsed out of `host=<dir> port=…`.
fn socket_dir(db: &TestDb) -> String {
    let rest = db
        .url
        .strip_prefix("host=")
        .unwrap_or_else(|| panic!("unexpected test URL {}", db.url));
    if let Some(quoted) = rest.strip_prefix('\'') {
        quoted[..quoted.find('\'').unwrap()].to_string()
    } else {
        rest.split_whitespace().next().unwrap().to_string()
    }
}

/// A repository with the base project and one migration creating table `a`, tagged `v1`.
fn one_migration_repo() -> (TestRepo, git2::Oid) {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(
        1,
        "a",
        "create table a (id int primary key);\ninsert into a values (1);",
        "drop table a;",
    );
    base.extend(files(&m1));
    let c1 = repo.commit(&base, &[], "one");
    repo.tag("v1", c1);
    (repo, c1)
}

// ---------------------------------------------------------------------------------------------
// config.yaml

#[test]
fn malformed_config_yaml_names_file_line_column_and_commit() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    base.retain(|(p, _)| *p != "config.yaml");
    // Line 3 is indented under a scalar: "mapping values are not allowed" at 3:21.
    base.push((
        "config.yaml",
        "version: 2\nendpoint: http://localhost:8080\n  metadata_directory: metadata\n",
    ));
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    let c = repo.commit(&base, &[], "broken config");
    let db = TestDb::new("bad_config_yaml");
    let p = repo.path();
    let located = format!("config.yaml:3:21 @ {}", short(c));
    for args in [
        &["deploy", "--yes"][..],
        &["deploy", "HEAD", "--yes"],
        &["deploy", "--dry-run"],
        &["plan", "HEAD"],
        &["status"],
    ] {
        let r = run(&p, &db.url, args);
        r.expect_code(2).expect_contains(&located);
        expect_error_with_hint(&r);
    }
    assert_untouched(&db);
    assert!(!db.has_table("public.a"));
}

#[test]
fn other_bad_config_yaml_shapes_are_configuration_errors() {
    let (mut repo, c1) = one_migration_repo();
    let db = TestDb::new("bad_config_shapes");
    let p = repo.path();
    run(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    // A key written twice is not among them: the later value wins, with a warning
    // (test_revision_settings).
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "unsupported version",
            b"version: 4\n",
            "unsupported config version 4",
        ),
        (
            "version not a number",
            b"version: two\n",
            "config.yaml:1:10",
        ),
        (
            "tab indentation",
            b"version: 2\n\tendpoint: x\n",
            "config.yaml:2:1",
        ),
        ("a list", b"- version\n- 2\n", "config.yaml:1:1"),
        (
            "not UTF-8",
            b"version: 2\nendpoint: http://caf\xe9\n",
            "config.yaml",
        ),
    ];
    for (what, config, needle) in cases {
        let c = repo.commit_bytes(
            vec![c1],
            &[("config.yaml".to_string(), config.to_vec())],
            &[],
            what,
            None,
        );
        let rev = c.to_string();
        for args in [&["deploy", &rev, "--yes"][..], &["status", &rev]] {
            let r = run(&p, &db.url, args);
            r.expect_code(2)
                .expect_contains(needle)
                .expect_contains(&format!(" @ {}", short(c)));
        }
    }
    assert_eq!(before, db.dump(false, None));
}

#[test]
fn config_v1_is_refused_with_a_clear_message() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    base.retain(|(p, _)| *p != "config.yaml");
    base.push(("config.yaml", "endpoint: http://localhost:8080\n"));
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    let c = repo.commit(&base, &[], "config v1");
    let db = TestDb::new("config_v1");
    let p = repo.path();
    for args in [&["deploy", "--yes"][..], &["plan", "HEAD"], &["status"]] {
        let r = run(&p, &db.url, args);
        r.expect_code(2)
            .expect_contains("config v1")
            .expect_contains(&format!("config.yaml @ {}", short(c)))
            // What to do about it.
            .expect_contains("hasura scripts update-project-v2");
    }
    // An empty config.yaml has no `version` key either.
    repo.commit(&[("config.yaml", "")], &[], "empty config");
    run(&p, &db.url, &["deploy", "--yes"])
        .expect_code(2)
        .expect_contains("config v1");
    assert_untouched(&db);
}

/// Deploys v1, then for each config.yaml on top of v1: deploy and plan must exit 2 naming
/// config.yaml and the commit, and the database must not change.
fn assert_config_refused(test: &str, cases: &[(&str, &str)]) {
    let (mut repo, c1) = one_migration_repo();
    let db = TestDb::new(test);
    let p = repo.path();
    run(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    for (what, config) in cases {
        let c = repo.commit_on(vec![c1], &[("config.yaml", config)], &[], what, None);
        let rev = c.to_string();
        for args in [&["plan", &rev][..], &["deploy", &rev, "--yes"]] {
            let r = run(&p, &db.url, args);
            assert_eq!(
                r.code,
                2,
                "{what}: {args:?} should be refused as a configuration error:\n{}",
                r.all()
            );
            r.expect_contains("config.yaml").expect_contains(&short(c));
            expect_error_with_hint(&r);
        }
        assert_eq!(before, db.dump(false, None), "{what}: the database changed");
    }
}

/// Folders in config.yaml that climb out of the repository are configuration errors, not git
/// failures.
#[test]
fn config_folders_above_the_repository_root_are_refused() {
    assert_config_refused(
        "dirs_above_root",
        &[
            (
                "migrations above the root",
                "version: 2\nmigrations_directory: ../outside\n",
            ),
            (
                "metadata above the root",
                "version: 2\nmetadata_directory: ../meta\n",
            ),
        ],
    );
}

/// Absolute folders in config.yaml are configuration errors; they must never be read as "no
/// migrations" (a deploy would revert everything) or "no metadata" (a deploy would wipe it).
#[test]
fn absolute_config_folders_are_refused_not_read_as_empty() {
    assert_config_refused(
        "absolute_dirs",
        &[
            (
                "absolute migrations",
                "version: 2\nmigrations_directory: /etc\n",
            ),
            (
                "absolute metadata",
                "version: 2\nmetadata_directory: /meta\n",
            ),
        ],
    );
}

/// `--project` naming a folder above the repository root is a usage error.
#[test]
fn project_flag_above_the_repository_root_is_a_usage_error() {
    let (repo, _) = one_migration_repo();
    let db = TestDb::new("project_above_root");
    let p = repo.path();
    for dir in ["..", "../x"] {
        for args in [
            &["status", "--project", dir][..],
            &["deploy", "--yes", "--project", dir],
        ] {
            let r = run(&p, &db.url, args);
            r.expect_code(2).expect_contains("--project");
        }
    }
    assert_untouched(&db);
}

// ---------------------------------------------------------------------------------------------
// Revisions

#[test]
fn unknown_revision_is_a_usage_error_with_a_hint() {
    let repo = TestRepo::shop();
    let db = TestDb::new("unknown_rev");
    let p = repo.path();
    for args in [
        &["deploy", "nosuchtag", "--yes"][..],
        &["deploy", "nosuchtag", "--dry-run"],
        &["plan", "nosuchtag"],
        &["status", "nosuchtag"],
        &["rollback", "nosuchtag", "--yes"],
        // A well-formed commit id that is not in the repository.
        &[
            "deploy",
            "0123456789abcdef0123456789abcdef01234567",
            "--yes",
        ],
    ] {
        let r = run(&p, &db.url, args);
        r.expect_code(2)
            .expect_contains(&format!("unknown revision '{}'", args[1]));
        expect_error_with_hint(&r);
        r.expect_contains("git rev-parse")
            .expect_contains("git fetch --tags");
    }
    assert_untouched(&db);
}

#[test]
fn unknown_revision_after_a_deploy_changes_nothing() {
    let repo = TestRepo::shop();
    let db = TestDb::new("unknown_rev_deployed");
    let p = repo.path();
    run(&p, &db.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    run(&p, &db.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    run(&p, &db.url, &["deploy", "v9.9.9", "--yes"])
        .expect_code(2)
        .expect_contains("v9.9.9");
    run(&p, &db.url, &["rollback", "v0.0.1", "--yes"]).expect_code(2);
    // The revision to read down SQL from is unknown, and the revert needs it.
    run(
        &p,
        &db.url,
        &["rollback", "v1.0.0", "--yes", "--down-from", "nosuchtag"],
    )
    .expect_code(2)
    .expect_contains("nosuchtag");
    assert_eq!(before, db.dump(false, None));
}

#[test]
fn a_revision_naming_a_tree_or_blob_is_not_a_commit() {
    let (repo, c1) = one_migration_repo();
    let tree = repo.repo.find_commit(c1).unwrap().tree().unwrap();
    repo.repo
        .tag_lightweight("treetag", tree.as_object(), true)
        .unwrap();
    let db = TestDb::new("tree_rev");
    let p = repo.path();
    let tree_id = tree.id().to_string();
    for rev in ["HEAD^{tree}", "treetag", tree_id.as_str()] {
        let r = run(&p, &db.url, &["deploy", rev, "--yes"]);
        r.expect_code(2)
            .expect_contains("does not point at a commit")
            .expect_contains("tree");
        expect_error_with_hint(&r);
        run(&p, &db.url, &["plan", rev]).expect_code(2);
        run(&p, &db.url, &["status", rev]).expect_code(2);
    }
    // A blob.
    let r = run(&p, &db.url, &["deploy", "HEAD:config.yaml", "--yes"]);
    r.expect_code(2)
        .expect_contains("does not point at a commit")
        .expect_contains("blob");
    assert_untouched(&db);
}

#[test]
fn revision_that_looks_like_an_option_is_handled_sanely() {
    let (repo, c1) = one_migration_repo();
    let db = TestDb::new("option_rev");
    let p = repo.path();
    // git does not allow a branch named like an option, so `-- -x` can only be unknown.
    assert!(repo
        .repo
        .branch("-x", &repo.repo.find_commit(c1).unwrap(), true)
        .is_err());
    // After `--`, `--help` is a revision name, and no such revision exists.
    run(&p, &db.url, &["deploy", "--yes", "--", "--help"])
        .expect_code(2)
        .expect_contains("unknown revision '--help'");
    run(&p, &db.url, &["plan", "--", "-x"])
        .expect_code(2)
        .expect_contains("unknown revision '-x'");
    run(&p, &db.url, &["status", "--", "--all"])
        .expect_code(2)
        .expect_contains("unknown revision '--all'");
    // Ranges are not revisions.
    run(&p, &db.url, &["deploy", "--yes", "--", "..HEAD"])
        .expect_code(2)
        .expect_contains("'..HEAD'");
    run(&p, &db.url, &["deploy", "--yes", "v1..HEAD"]).expect_code(2);
    // Without `--`, an unknown option is a usage error from the argument parser.
    let r = run(&p, &db.url, &["deploy", "-x", "--yes"]);
    r.expect_code(2);
    assert!(r.stderr.contains("'-x'"), "{}", r.all());
    run(&p, &db.url, &["deploy", "--lock-timeout", "soon", "--yes"]).expect_code(2);
    assert_untouched(&db);
}

#[test]
fn empty_repository_gives_a_clear_error() {
    for bare in [false, true] {
        let repo = if bare {
            TestRepo::bare()
        } else {
            TestRepo::new()
        };
        let db = TestDb::new(if bare { "empty_bare" } else { "empty_repo" });
        let p = repo.path();
        for args in [
            &["status"][..],
            &["status", "--exit-code"],
            &["plan"],
            &["plan", "HEAD"],
            &["deploy", "--yes"],
            &["deploy", "HEAD", "--yes"],
            &["rollback", "HEAD", "--yes"],
        ] {
            let r = run(&p, &db.url, args);
            r.expect_code(2);
            assert!(
                r.stderr.lines().any(|l| l.starts_with("error: ")),
                "{args:?}: no error line:\n{}",
                r.all()
            );
            // Not only "unknown revision 'HEAD'" with a hint to fetch tags: say what is wrong.
            r.expect_contains("no commits");
        }
        // Reading the index of an empty repository finds no project (or no index at all).
        let r = run(&p, &db.url, &["status", "--staged"]);
        r.expect_code(2);
        r.expect_contains(if bare { "bare" } else { "config.yaml" });
        // The history is empty, and reading it is not an error.
        run(&p, &db.url, &["log"])
            .expect_code(0)
            .expect_contains("no deployments recorded");
        assert_untouched(&db);
    }
}

#[test]
fn staged_or_worktree_together_with_a_revision_is_a_usage_error() {
    let (repo, _) = one_migration_repo();
    let db = TestDb::new("staged_and_rev");
    let p = repo.path();
    for args in [
        &["deploy", "HEAD", "--staged", "--yes"][..],
        &["deploy", "v1", "--worktree", "--yes"],
        &["plan", "HEAD", "--staged"],
        &["status", "HEAD", "--staged"],
        &["rollback", "v1", "--staged", "--yes"],
    ] {
        let r = run(&p, &db.url, args);
        r.expect_code(2);
        assert!(
            r.stderr.contains("--staged") || r.stderr.contains("--worktree"),
            "{args:?}: the message does not name the flag:\n{}",
            r.all()
        );
    }
    // The two flags exclude each other.
    run(&p, &db.url, &["deploy", "--staged", "--worktree", "--yes"]).expect_code(2);
    assert_untouched(&db);
}

/// The database is at a commit this clone does not have, and the target is "before the last
/// deployment": the commit to read is missing, which is a clear git failure.
#[test]
fn rollback_to_a_commit_missing_from_the_clone_is_a_clear_failure() {
    let shop = TestRepo::shop();
    let db = TestDb::new("missing_commit");
    run(&shop.path(), &db.url, &["deploy", "v1.0.0", "--yes"]).expect_code(0);
    run(&shop.path(), &db.url, &["deploy", "v1.1.0", "--yes"]).expect_code(0);
    let v1 = shop
        .repo
        .revparse_single("v1.0.0")
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id();
    let before = db.dump(false, None);
    // Another repository that has never seen the shop's commits.
    let mut other = TestRepo::new();
    other.commit(&base_project(), &[], "unrelated");
    let p = other.path();
    let r = run(&p, &db.url, &["rollback", "--yes"]);
    r.expect_code(4)
        .expect_contains(&v1.to_string()[..10])
        .expect_contains("not in this clone");
    expect_error_with_hint(&r);
    assert_eq!(before, db.dump(false, None));
    // Looking does not fail because of the missing commit.
    run(&p, &db.url, &["status"]);
    run(&p, &db.url, &["log"]).expect_code(0);
    assert_eq!(before, db.dump(false, None));
}

// ---------------------------------------------------------------------------------------------
// Migration folders

#[test]
fn non_numeric_folders_are_skipped_silently() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "a", "create table a (id int);", "drop table a;");
    base.extend(files(&m1));
    base.push((
        "migrations/squashed_1_to_2/up.sql",
        "this is not sql and must never run;",
    ));
    base.push(("migrations/default/up.sql", "neither is this;"));
    base.push(("migrations/README.md", "# notes\n"));
    repo.commit(&base, &[], "skippable folders");
    let db = TestDb::new("squashed_skipped");
    let p = repo.path();
    for args in [&["plan", "HEAD"][..], &["status"], &["deploy", "--yes"]] {
        let r = run(&p, &db.url, args);
        assert!(
            r.code == 0 || (args[0] == "status" && r.code == 1),
            "{args:?}:\n{}",
            r.all()
        );
        assert!(
            !r.all().contains("squashed_1_to_2") && !r.all().contains("migrations/default"),
            "skipped folders are skipped silently:\n{}",
            r.all()
        );
    }
    assert_eq!(db.applied(), vec![1]);
    assert!(db.has_table("public.a"));
}

#[test]
fn version_beyond_bigint_names_the_folder() {
    let (mut repo, _) = one_migration_repo();
    let db = TestDb::new("bigint_version");
    let p = repo.path();
    run(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    repo.commit(
        &[
            (
                "migrations/99999999999999999999_x/up.sql",
                "create table x (id int);",
            ),
            (
                "migrations/99999999999999999999_x/down.sql",
                "drop table x;",
            ),
            ("migrations/2_b/up.sql", "create table b (id int);"),
            ("migrations/2_b/down.sql", "drop table b;"),
        ],
        &[],
        "huge version",
    );
    for args in [
        &["deploy", "--yes"][..],
        &["plan", "HEAD"],
        &["status"],
        &["deploy", "HEAD", "--dry-run"],
    ] {
        let r = run(&p, &db.url, args);
        r.expect_code(2)
            .expect_contains("migrations/99999999999999999999_x")
            .expect_contains("bigint");
        expect_error_with_hint(&r);
    }
    assert_eq!(before, db.dump(false, None));
    assert!(!db.has_table("public.b"));

    // The same on a fresh database: nothing is created.
    let fresh = TestDb::new("bigint_version_fresh");
    run(&p, &fresh.url, &["deploy", "--yes"]).expect_code(2);
    assert_untouched(&fresh);
}

#[test]
fn duplicate_versions_name_both_folders() {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(1, "init", "create table i (id int);", "drop table i;");
    let a = migration(5, "a", "create table a (id int);", "drop table a;");
    let b = migration(5, "b", "create table b (id int);", "drop table b;");
    base.extend(files(&m1));
    base.extend(files(&a));
    base.extend(files(&b));
    repo.commit(&base, &[], "two fives");
    let db = TestDb::new("duplicate_versions");
    let p = repo.path();
    for args in [&["deploy", "--yes"][..], &["plan", "HEAD"], &["status"]] {
        let r = run(&p, &db.url, args);
        r.expect_code(2)
            .expect_contains("duplicate migration version 5")
            .expect_contains("migrations/5_a")
            .expect_contains("migrations/5_b");
        expect_error_with_hint(&r);
    }
    assert_untouched(&db);
    assert!(!db.has_table("public.i"));

    // A folder and a legacy flat file with the same version are duplicates too.
    let mut flat = TestRepo::new();
    let mut base = base_project();
    base.extend(files(&m1));
    base.extend(files(&a));
    base.push(("migrations/5_c.up.sql", "create table c (id int);"));
    flat.commit(&base, &[], "folder and flat file");
    run(&flat.path(), &db.url, &["deploy", "--yes"])
        .expect_code(2)
        .expect_contains("migrations/5_a")
        .expect_contains("migrations/5_c");
    assert_untouched(&db);
}

#[test]
fn invalid_utf8_in_up_sql_fails_and_changes_nothing() {
    let (mut repo, c1) = one_migration_repo();
    let db = TestDb::new("invalid_utf8");
    let p = repo.path();
    run(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    let owned = |path: &str, bytes: &[u8]| (path.to_string(), bytes.to_vec());
    let c2 = repo.commit_bytes(
        vec![c1],
        &[
            owned("migrations/2_b/up.sql", b"create table b (id int);"),
            owned("migrations/2_b/down.sql", b"drop table b;"),
            owned(
                "migrations/3_latin1/up.sql",
                b"create table c (name text default 'caf\xe9');\n",
            ),
            owned("migrations/3_latin1/down.sql", b"drop table c;"),
            owned("migrations/4_d/up.sql", b"create table d (id int);"),
            owned("migrations/4_d/down.sql", b"drop table d;"),
        ],
        &[],
        "latin-1 migration",
        Some("HEAD"),
    );
    let r = run(&p, &db.url, &["deploy", "--yes"]);
    r.expect_code(4)
        .expect_contains("migrations/3_latin1/up.sql")
        .expect_contains(&short(c2))
        .expect_contains("UTF-8");
    assert_eq!(before, db.dump(false, None));
    assert_eq!(db.applied(), vec![1]);
    assert!(!db.has_table("public.b") && !db.has_table("public.d"));

    // On a fresh database too: no ledger, no tables.
    let fresh = TestDb::new("invalid_utf8_fresh");
    run(&p, &fresh.url, &["deploy", "--yes"])
        .expect_code(4)
        .expect_contains("migrations/3_latin1/up.sql");
    assert!(!fresh.has_table("git_migrate.migrations"));
    assert!(!fresh.has_table("public.a") && !fresh.has_table("public.b"));
}

// ---------------------------------------------------------------------------------------------
// Metadata

#[test]
fn malformed_metadata_yaml_names_file_line_column_and_commit() {
    let (mut repo, _) = one_migration_repo();
    let db = TestDb::new("bad_tables_yaml");
    let fresh = TestDb::new("bad_tables_yaml_fresh");
    let p = repo.path();
    run(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    let m2 = migration(2, "b", "create table b (id int);", "drop table b;");
    let mut f = files(&m2);
    // Line 3: "name: a: b" is "mapping values are not allowed" at 3:12.
    f.push((
        "metadata/tables.yaml",
        "- table:\n    schema: public\n    name: a: b\n",
    ));
    let c2 = repo.commit(&f, &[], "broken metadata");
    let located = format!("metadata/tables.yaml:3:12 @ {}", short(c2));
    for (d, args) in [
        (&db, &["deploy", "--yes"][..]),
        (&db, &["deploy", "--dry-run"]),
        (&db, &["plan", "HEAD"]),
        (&db, &["status"]),
        (&fresh, &["deploy", "HEAD", "--yes"]),
    ] {
        let r = run(&p, &d.url, args);
        r.expect_code(2).expect_contains(&located);
        expect_error_with_hint(&r);
    }
    assert_eq!(before, db.dump(false, None));
    assert_untouched(&fresh);
}

#[test]
fn metadata_tables_yaml_as_a_mapping_is_refused() {
    let (mut repo, _) = one_migration_repo();
    let db = TestDb::new("tables_mapping");
    let fresh = TestDb::new("tables_mapping_fresh");
    let p = repo.path();
    run(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    let c2 = repo.commit(
        &[(
            "metadata/tables.yaml",
            "table:\n  schema: public\n  name: a\n",
        )],
        &[],
        "tables as a mapping",
    );
    for (d, args) in [
        (&db, &["deploy", "--yes"][..]),
        (&db, &["plan", "HEAD"]),
        (&db, &["status"]),
        (&fresh, &["deploy", "--yes"]),
    ] {
        let r = run(&p, &d.url, args);
        r.expect_code(2)
            .expect_contains(&format!("metadata/tables.yaml @ {}", short(c2)))
            .expect_contains("list");
        expect_error_with_hint(&r);
    }
    assert_eq!(before, db.dump(false, None));
    assert_untouched(&fresh);
}

// ---------------------------------------------------------------------------------------------
// The database connection

#[test]
fn unreachable_database_is_a_failure_with_a_hint() {
    let (repo, _) = one_migration_repo();
    let p = repo.path();
    let no_server = tempfile::Builder::new()
        .prefix("gm-nosrv-")
        .tempdir()
        .unwrap();
    let urls = [
        "host=/nonexistent port=5432 user=postgres dbname=x".to_string(),
        format!(
            "host={} port=5432 user=postgres dbname=x",
            no_server.path().display()
        ),
        format!(
            "postgresql://postgres@/x?host={}",
            no_server.path().display()
        ),
    ];
    for url in &urls {
        for args in [
            &["status"][..],
            &["status", "--json"],
            &["plan", "HEAD"],
            &["deploy", "--yes"],
            &["rollback", "v1", "--yes"],
            &["log"],
        ] {
            let r = run(&p, url, args);
            r.expect_code(4).expect_contains("cannot connect");
            expect_error_with_hint(&r);
        }
        // The same through the flag.
        run(&p, "", &["status", "--database-url", url])
            .expect_code(4)
            .expect_contains("cannot connect");
    }
}

#[test]
fn missing_database_or_role_is_a_failure() {
    let (repo, _) = one_migration_repo();
    let db = TestDb::new("wrong_name_role");
    let sock = socket_dir(&db);
    let p = repo.path();
    let no_db = format!("host={sock} port=5432 user=postgres dbname=gm_no_such_database");
    let no_role = format!(
        "host={sock} port=5432 user=gm_no_such_role dbname={}",
        db.name
    );
    for (url, needle) in [
        (&no_db, "database \"gm_no_such_database\" does not exist"),
        (&no_role, "role \"gm_no_such_role\" does not exist"),
    ] {
        for args in [
            &["status"][..],
            &["plan", "HEAD"],
            &["deploy", "--yes"],
            &["log"],
        ] {
            let r = run(&p, url, args);
            r.expect_code(4)
                .expect_contains("cannot connect")
                .expect_contains(needle);
            expect_error_with_hint(&r);
        }
    }
    assert_untouched(&db);
}

#[test]
fn malformed_database_url_is_a_usage_error() {
    let (repo, _) = one_migration_repo();
    let p = repo.path();
    for url in [
        "notaurl",
        "host=/tmp port=notaport dbname=x",
        "postgresql://postgres@/x?host=/tmp&bogus_option=1",
    ] {
        for args in [&["status"][..], &["deploy", "--yes"]] {
            let r = run(&p, url, args);
            r.expect_code(2).expect_contains("invalid database URL");
            expect_error_with_hint(&r);
        }
    }
}

#[test]
fn no_database_given_names_the_flag() {
    let (repo, _) = one_migration_repo();
    let p = repo.path();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["plan", "HEAD"],
        &["deploy", "--yes"],
        &["rollback", "--yes"],
        &["log"],
    ] {
        let r = run(&p, "", args);
        r.expect_code(2)
            .expect_contains("no database given")
            .expect_contains("--database-url");
        expect_error_with_hint(&r);
    }
}

/// `--database-url ""` (e.g. `--database-url "$DATABASE_URL"` with the variable unset) is no
/// database either, not an attempt to connect to libpq's defaults.
#[test]
fn empty_database_url_flag_is_no_database() {
    let (repo, _) = one_migration_repo();
    let p = repo.path();
    for args in [
        &["status", "--database-url", ""][..],
        &["deploy", "--yes", "--database-url", ""],
    ] {
        let r = run(&p, "", args);
        r.expect_code(2)
            .expect_contains("no database given")
            .expect_contains("--database-url");
    }
}

#[test]
fn passwords_never_appear_in_output() {
    let (repo, _) = one_migration_repo();
    let db = TestDb::new("password_redacted");
    let sock = socket_dir(&db);
    let p = repo.path();
    const SECRET: &str = "Sup3rS3cret";
    let check = |r: &Run, what: &str| {
        assert!(
            !r.stdout.contains(SECRET) && !r.stderr.contains(SECRET),
            "{what}: the password leaked:\n{}",
            r.all()
        );
    };
    let commands: [&[&str]; 10] = [
        &["status"],
        &["status", "--json"],
        &["plan", "HEAD"],
        &["plan", "HEAD", "--json"],
        &["deploy", "--yes"],
        &["deploy", "--yes", "--json"],
        &["deploy", "--dry-run", "--json"],
        &["rollback", "v1", "--yes", "--json"],
        &["log"],
        &["log", "--json"],
    ];
    // The database does not exist: every command fails, and the error shows the URL with the
    // password as `***`.
    let missing = [
        format!("postgresql://postgres:{SECRET}@/nonexistentdb?host={sock}"),
        format!("host={sock} port=5432 user=postgres password={SECRET} dbname=nonexistentdb"),
        format!("postgresql:///nonexistentdb?host={sock}&user=postgres&password={SECRET}"),
    ];
    for url in &missing {
        for args in commands {
            let r = run(&p, url, args);
            r.expect_code(4).expect_contains("***");
            check(&r, &format!("DATABASE_URL={url}, {args:?}"));
            let mut flagged = args.to_vec();
            flagged.extend(["--database-url", url.as_str()]);
            let r = run(&p, "", &flagged);
            r.expect_code(4).expect_contains("***");
            check(&r, &format!("--database-url {url}, {args:?}"));
        }
    }
    // From PGPASSWORD.
    for args in commands {
        let r = checked(
            gm_env(
                &p,
                "",
                args,
                &[
                    ("PGHOST", &sock),
                    ("PGUSER", "postgres"),
                    ("PGDATABASE", "nonexistentdb"),
                    ("PGPASSWORD", SECRET),
                ],
            ),
            args,
        );
        r.expect_code(4);
        check(&r, &format!("PGPASSWORD, {args:?}"));
    }
    // URLs that do not even parse.
    for url in [
        format!("postgresql://postgres:{SECRET}@/nonexistentdb?host={sock}&bogus_option=1"),
        format!("host={sock} password='{SECRET} dbname=nonexistentdb"),
        format!("postgresql://postgres:{SECRET}@[bad/nonexistentdb?host={sock}"),
    ] {
        for args in [&["status", "--json"][..], &["deploy", "--yes"], &["log"]] {
            let r = run(&p, &url, args);
            assert_ne!(r.code, 0);
            check(&r, &format!("DATABASE_URL={url}, {args:?}"));
        }
    }
    // An existing database (the test cluster trusts local connections, so the password is
    // accepted and ignored): successful runs do not print it either.
    let ok_url = format!("postgresql://postgres:{SECRET}@/{}?host={sock}", db.name);
    for args in [
        &["status", "--json"][..],
        &["plan", "HEAD", "--json"],
        &["deploy", "--yes", "--json"],
        &["status"],
        &["status", "--json"],
        &["log"],
        &["log", "--json"],
        &["rollback", "--yes", "--json"],
        &["deploy", "--yes", "-v"],
        &["log", "--json"],
    ] {
        let r = run(&p, &ok_url, args);
        r.expect_code(0);
        check(&r, &format!("existing database, {args:?}"));
    }
    // Nor is it stored in the ledger.
    let dump = db.dump(false, None);
    assert!(
        !dump.contains(SECRET),
        "the password is stored in the database"
    );
}
