//! Hostile input: broken, huge, binary, symlinked, LFS-pointer and hand-edited things. Every
//! case deploys a base first (so there is something to lose), runs the hostile command, and
//! checks a clear error (what, where, a hint), the exit code of design §13 and that nothing
//! changed (a full `pg_dump` and the ledger rows, before and after).
//!
//! More bad-input cases (config.yaml errors, unknown revisions, empty repositories, trees and
//! blobs as revisions, option-like revisions, bigint versions, invalid UTF-8 in up.sql,
//! malformed tables.yaml, connection and password cases) are in `test_bad_input.rs`.

use crate::common::git::{Entry, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, gm_command, Run};
use git2::{Oid, Signature, Time};
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Harness

const CONFIG_V2: &str =
    "version: 2\nendpoint: http://localhost:8080\nmetadata_directory: metadata\n";
const CONFIG_V3: &str =
    "version: 3\nendpoint: http://localhost:8080\nmetadata_directory: metadata\n";
const UP1: &str = "create table a (id int primary key);\ninsert into a values (1);\n";
const DOWN1: &str = "drop table a;\n";
const TABLES_V2: &str = "- table:\n    schema: public\n    name: a\n";

/// The base project, config v2: migration 1 creates and fills table `a`, the metadata tracks it.
fn base_v2() -> Vec<(String, Entry)> {
    vec![
        file("config.yaml", CONFIG_V2),
        file("metadata/version.yaml", "version: 2\n"),
        file("metadata/tables.yaml", TABLES_V2),
        file("migrations/1_a/up.sql", UP1),
        file("migrations/1_a/down.sql", DOWN1),
    ]
}

/// The same project in the config v3 layout.
fn base_v3() -> Vec<(String, Entry)> {
    vec![
        file("config.yaml", CONFIG_V3),
        file("metadata/version.yaml", "version: 3\n"),
        file(
            "metadata/databases/databases.yaml",
            "- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n      database_url:\n        from_env: DB\n  tables: \"!include default/tables/tables.yaml\"\n  functions: \"!include default/functions/functions.yaml\"\n",
        ),
        file(
            "metadata/databases/default/tables/tables.yaml",
            "- \"!include public_a.yaml\"\n",
        ),
        file(
            "metadata/databases/default/tables/public_a.yaml",
            "table:\n  schema: public\n  name: a\n",
        ),
        file("metadata/databases/default/functions/functions.yaml", "[]\n"),
        file("migrations/default/1_a/up.sql", UP1),
        file("migrations/default/1_a/down.sql", DOWN1),
    ]
}

fn file(path: &str, content: &str) -> (String, Entry) {
    (path.to_string(), Entry::File(content.as_bytes().to_vec()))
}

fn bytes(path: &str, content: &[u8]) -> (String, Entry) {
    (path.to_string(), Entry::File(content.to_vec()))
}

/// A repository and a database deployed at the base commit.
struct World {
    repo: TestRepo,
    db: TestDb,
    base: Oid,
}

/// The database as a whole and the ledger rows on their own (also in the dump; listed apart so
/// that a failure shows them plainly).
#[derive(Debug, PartialEq)]
struct State {
    dump: String,
    ledger: Vec<Vec<Option<String>>>,
}

impl World {
    /// The config v2 base project, deployed.
    fn new(test: &str) -> World {
        World::with(test, base_v2())
    }

    /// The config v3 base project, deployed.
    fn v3(test: &str) -> World {
        World::with(test, base_v3())
    }

    fn with(test: &str, base: Vec<(String, Entry)>) -> World {
        let repo = TestRepo::new();
        let db = TestDb::new(test);
        let mut w = World {
            repo,
            db,
            base: Oid::ZERO_SHA1,
        };
        w.base = w.commit_on(&[], &base, &[], "base");
        w.repo.repo.set_head_detached(w.base).unwrap();
        w.repo.tag("base", w.base);
        w.run(&["deploy", "base", "--yes"]).expect_code(0);
        assert_eq!(w.db.applied(), vec![1]);
        w
    }

    fn path(&self) -> std::path::PathBuf {
        self.repo.path()
    }

    /// A commit on top of the base with `entries` added and `delete` removed (HEAD unchanged).
    fn commit(&mut self, entries: &[(String, Entry)], delete: &[&str]) -> Oid {
        let base = self.base;
        self.commit_on(&[base], entries, delete, "hostile")
    }

    /// [`World::commit`] for plain text files.
    fn commit_files(&mut self, files: &[(&str, &str)]) -> Oid {
        let entries: Vec<(String, Entry)> = files.iter().map(|(p, c)| file(p, c)).collect();
        self.commit(&entries, &[])
    }

    fn commit_on(
        &mut self,
        parents: &[Oid],
        entries: &[(String, Entry)],
        delete: &[&str],
        msg: &str,
    ) -> Oid {
        self.repo
            .commit_entries(parents, entries, delete, msg, None)
    }

    /// Runs the binary in the repository against the database; never a crash.
    #[track_caller]
    fn run(&self, args: &[&str]) -> Run {
        checked(gm(&self.path(), &self.db.url, args), args)
    }

    fn state(&self) -> State {
        state_of(&self.db)
    }

    /// Runs a hostile command: it must fail with `code`, an `error:` line, a `hint:` line and
    /// every needle in its output, and leave the database exactly as it was.
    #[track_caller]
    fn refused(&self, args: &[&str], code: i32, needles: &[&str]) -> Run {
        let before = self.state();
        let r = self.run(args);
        expect_failure(&r, args, code, needles);
        assert_eq!(before, self.state(), "{args:?} changed the database");
        r
    }

    /// [`World::refused`] for `plan REV` and `deploy REV --yes`: both read everything the plan
    /// needs before anything runs.
    #[track_caller]
    fn refused_rev(&self, rev: Oid, code: i32, needles: &[&str]) {
        let rev = rev.to_string();
        self.refused(&["plan", &rev], code, needles);
        self.refused(&["deploy", &rev, "--yes"], code, needles);
    }
}

fn state_of(db: &TestDb) -> State {
    // A failed deployment is rolled back, but its attempt is recorded in the history
    // (`status = 'failed'`, for `log`): everything else must stay byte-identical.
    let ledger = if db.has_table("git_migrate.migrations") {
        let mut rows =
            db.rows("SELECT row_to_json(m)::text FROM git_migrate.migrations m ORDER BY version");
        rows.extend(db.rows(
            "SELECT row_to_json(d)::text FROM git_migrate.deployments d WHERE status <> 'failed' ORDER BY id",
        ));
        rows.extend(db.rows("SELECT row_to_json(md)::text FROM git_migrate.metadata md"));
        rows.extend(db.rows("SELECT row_to_json(v)::text FROM git_migrate.schema_version v"));
        rows
    } else {
        vec![]
    };
    State {
        dump: db.dump(false, Some("git_migrate")),
        ledger,
    }
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

/// The exit code, an `error:` line, a `hint:` line, and every needle.
#[track_caller]
fn expect_failure(r: &Run, args: &[&str], code: i32, needles: &[&str]) {
    assert_eq!(
        r.code,
        code,
        "{args:?}: unexpected exit code; output:\n{}",
        r.all()
    );
    assert!(
        r.stderr.lines().any(|l| l.starts_with("error: ")),
        "{args:?}: no `error:` line:\n{}",
        r.all()
    );
    assert!(
        r.stderr.lines().any(|l| l.starts_with("hint: ")),
        "{args:?}: no `hint:` line:\n{}",
        r.all()
    );
    for n in needles {
        assert!(
            r.all().contains(n),
            "{args:?}: the output does not contain {n:?}:\n{}",
            r.all()
        );
    }
}

/// First 10 hex digits of a commit id, as messages show it.
fn short(c: Oid) -> String {
    c.to_string()[..10].to_string()
}

// ---------------------------------------------------------------------------------------------
// Malformed metadata, in every file the build reads

/// Line 3 holds `name: a: b`: "mapping values are not allowed" at 3:12.
const BROKEN_YAML: &str = "- table:\n    schema: public\n    name: a: b\n";

#[test]
fn malformed_yaml_in_every_v2_metadata_file() {
    let mut w = World::new("hostile_yaml_v2");
    for f in [
        "version.yaml",
        "tables.yaml",
        "functions.yaml",
        "remote_schemas.yaml",
        "query_collections.yaml",
        "allow_list.yaml",
        "actions.yaml",
        "cron_triggers.yaml",
        "network.yaml",
    ] {
        let path = format!("metadata/{f}");
        let c = w.commit_files(&[(&path, BROKEN_YAML)]);
        w.refused_rev(c, 2, &[&format!("{path}:3:12 @ {}", short(c))]);
    }
}

#[test]
fn malformed_yaml_in_every_v3_metadata_file() {
    let mut w = World::v3("hostile_yaml_v3");
    for f in [
        "version.yaml",
        "databases/databases.yaml",
        "databases/default/tables/tables.yaml",
        "databases/default/tables/public_a.yaml",
        "databases/default/functions/functions.yaml",
        "actions.yaml",
        "remote_schemas.yaml",
        "query_collections.yaml",
        "allow_list.yaml",
        "cron_triggers.yaml",
        "rest_endpoints.yaml",
        "inherited_roles.yaml",
        "network.yaml",
        "api_limits.yaml",
        "graphql_schema_introspection.yaml",
        "metrics_config.yaml",
        "opentelemetry.yaml",
        "backend_configs.yaml",
    ] {
        let path = format!("metadata/{f}");
        let c = w.commit_files(&[(&path, BROKEN_YAML)]);
        w.refused_rev(c, 2, &[&format!("{path}:3:12 @ {}", short(c))]);
    }
    // A file reached through includes says how.
    let c = w.commit_files(&[(
        "metadata/databases/default/tables/public_a.yaml",
        BROKEN_YAML,
    )]);
    w.refused_rev(
        c,
        2,
        &["included via metadata/databases/databases.yaml → metadata/databases/default/tables/tables.yaml"],
    );
}

#[test]
fn invalid_utf8_in_metadata_names_the_file() {
    let mut w = World::v3("hostile_meta_utf8");
    for f in [
        "metadata/databases/default/tables/public_a.yaml",
        "metadata/actions.graphql",
        "metadata/remote_schemas.yaml",
    ] {
        let c = w.commit(&[bytes(f, b"- name: caf\xe9\n")], &[]);
        w.refused_rev(c, 2, &[&format!("{f} @ {}", short(c)), "UTF-8"]);
    }
    let mut w2 = World::new("hostile_meta_utf8_v2");
    for f in ["metadata/tables.yaml", "metadata/actions.graphql"] {
        let c = w2.commit(&[bytes(f, b"# caf\xe9\n[]\n")], &[]);
        w2.refused_rev(c, 2, &[&format!("{f} @ {}", short(c)), "UTF-8"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Includes

#[test]
fn includes_outside_the_metadata_folder_are_refused() {
    let mut w = World::v3("hostile_include_outside");
    let tables = "metadata/databases/default/tables/tables.yaml";
    let chain = "metadata/databases/databases.yaml → metadata/databases/default/tables/tables.yaml";
    for (include, needle) in [
        ("- !include /etc/passwd\n", "absolute path"),
        ("- \"!include /etc/passwd\"\n", "absolute path"),
        ("- !include C:\\Windows\\win.ini\n", "absolute path"),
        // Up to the repository root: outside the metadata folder.
        (
            "- !include ../../../../config.yaml\n",
            "leaves the metadata folder",
        ),
        // Above the repository root.
        (
            "- \"!include ../../../../../../../../etc/passwd\"\n",
            "leaves the metadata folder",
        ),
    ] {
        let c = w.commit_files(&[(tables, include)]);
        w.refused_rev(c, 2, &[chain, needle, &short(c)]);
    }
    // From a top-level file too.
    let c = w.commit_files(&[("metadata/remote_schemas.yaml", "!include ../config.yaml\n")]);
    w.refused_rev(
        c,
        2,
        &["metadata/remote_schemas.yaml", "leaves the metadata folder"],
    );
}

#[test]
fn include_cycles_and_missing_includes_name_the_chain() {
    let mut w = World::v3("hostile_include_cycle");
    let dir = "metadata/databases/default/tables";
    // a → a
    let c = w.commit_files(&[(
        &format!("{dir}/public_a.yaml"),
        "table:\n  schema: public\n  name: a\nselect_permissions: !include public_a.yaml\n",
    )]);
    w.refused_rev(
        c,
        2,
        &[
            "include cycle",
            &format!("{dir}/public_a.yaml → {dir}/public_a.yaml"),
        ],
    );
    // a → b → a
    let c = w.commit_files(&[
        (
            &format!("{dir}/public_a.yaml"),
            "table:\n  schema: public\n  name: a\nselect_permissions: !include b.yaml\n",
        ),
        (&format!("{dir}/b.yaml"), "- !include public_a.yaml\n"),
    ]);
    w.refused_rev(
        c,
        2,
        &[
            "include cycle",
            &format!("{dir}/public_a.yaml → {dir}/b.yaml → {dir}/public_a.yaml"),
        ],
    );
    // A missing file, and a databases.yaml pointing at a folder that does not exist.
    let c = w.commit_files(&[(
        &format!("{dir}/tables.yaml"),
        "- \"!include public_gone.yaml\"\n",
    )]);
    w.refused_rev(c, 2, &[&format!("{dir}/public_gone.yaml does not exist")]);
    let c = w.commit(&[], &["metadata/databases/default"]);
    w.refused_rev(
        c,
        2,
        &[
            "metadata/databases/default/tables/tables.yaml does not exist",
            "metadata/databases/databases.yaml",
        ],
    );
}

/// Config v2 metadata has no includes: a `!include` there must not become table data.
#[test]
fn includes_in_v2_metadata_are_refused() {
    let mut w = World::new("hostile_include_v2");
    for content in ["- !include /etc/passwd\n", "- \"!include public_a.yaml\"\n"] {
        let c = w.commit_files(&[("metadata/tables.yaml", content)]);
        w.refused_rev(
            c,
            2,
            &[&format!("metadata/tables.yaml @ {}", short(c)), "!include"],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SQL content: binary, NUL bytes, LFS pointers

#[test]
fn binary_up_sql_is_refused_before_anything_runs() {
    let mut w = World::new("hostile_binary_sql");
    // A PNG header and some zlib noise: NUL bytes and invalid UTF-8.
    let png: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0\x1f\xf3\xffa";
    let c = w.commit(
        &[
            file("migrations/2_b/up.sql", "create table b (id int);"),
            file("migrations/2_b/down.sql", "drop table b;"),
            bytes("migrations/3_png/up.sql", png),
            file("migrations/3_png/down.sql", "select 1;"),
        ],
        &[],
    );
    w.refused_rev(c, 4, &["migrations/3_png/up.sql", &short(c), "binary"]);
}

#[test]
fn nul_bytes_in_sql_are_refused_naming_the_line() {
    let mut w = World::new("hostile_nul_sql");
    let c = w.commit(
        &[
            file("migrations/2_b/up.sql", "create table b (id int);"),
            file("migrations/2_b/down.sql", "drop table b;"),
            bytes(
                "migrations/3_nul/up.sql",
                b"create table c (id int);\ninsert into c values (1);\0\n",
            ),
            file("migrations/3_nul/down.sql", "drop table c;"),
        ],
        &[],
    );
    w.refused_rev(c, 4, &["migrations/3_nul/up.sql:2", &short(c), "NUL"]);

    // In a down.sql: its copy could not be kept in the ledger, so the deploy is refused too.
    let nul_down = w.commit(
        &[
            file("migrations/2_b/up.sql", "create table b (id int);"),
            bytes("migrations/2_b/down.sql", b"drop table b;\n\0"),
        ],
        &[],
    );
    w.refused_rev(nul_down, 4, &["migrations/2_b/down.sql:2", "NUL"]);
    // A revert reading that down (--down-from) is refused before anything runs.
    let c3 = w.commit_files(&[
        ("migrations/2_b/up.sql", "create table b (id int);"),
        ("migrations/2_b/down.sql", "drop table b;"),
    ]);
    w.run(&["deploy", &c3.to_string(), "--yes"]).expect_code(0);
    w.refused(
        &[
            "rollback",
            "base",
            "--yes",
            "--down-from",
            &nul_down.to_string(),
        ],
        4,
        &["migrations/2_b/down.sql:2", "NUL"],
    );
}

const LFS_POINTER: &str = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";

#[test]
fn git_lfs_pointers_are_refused_naming_lfs_and_the_fix() {
    let mut w = World::new("hostile_lfs");
    let c = w.commit_files(&[
        ("migrations/2_big/up.sql", LFS_POINTER),
        ("migrations/2_big/down.sql", "drop table big;"),
    ]);
    w.refused_rev(
        c,
        4,
        &["migrations/2_big/up.sql", "Git LFS pointer", "git lfs"],
    );
    // A metadata file stored in LFS.
    let c = w.commit_files(&[("metadata/tables.yaml", LFS_POINTER)]);
    w.refused_rev(
        c,
        2,
        &["metadata/tables.yaml", "Git LFS pointer", "git lfs"],
    );
    // A down.sql stored in LFS: the revert is refused.
    let c = w.commit_files(&[
        ("migrations/2_b/up.sql", "create table b (id int);"),
        ("migrations/2_b/down.sql", LFS_POINTER),
    ]);
    w.run(&["deploy", &c.to_string(), "--yes"]).expect_code(0);
    w.refused(
        &["rollback", "base", "--yes"],
        4,
        &["migrations/2_b/down.sql", "Git LFS pointer"],
    );
}

// ---------------------------------------------------------------------------------------------
// Big files

/// Runs the binary and returns its result with wall time and peak RSS (from wait4).
// The child is reaped with wait4 (for its own rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn measured(dir: &Path, url: &str, args: &[&str]) -> (Run, std::time::Duration, u64) {
    let start = std::time::Instant::now();
    let mut child = gm_command(dir, url, args, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).unwrap();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).unwrap();
        s
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid);
    let elapsed = start.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let run = Run {
        code,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
    };
    // ru_maxrss is in KiB on Linux.
    (run, elapsed, usage.ru_maxrss as u64 * 1024)
}

const MB: usize = 1 << 20;

#[test]
fn fifty_megabyte_up_sql() {
    let mut w = World::new("hostile_big_sql");
    // A 50 MB document in one INSERT (1 MB lines), then a statement that fails on the last
    // line: read, checked, sent, refused by the server, the failing line found.
    let mut sql = String::with_capacity(50 * MB + 100);
    sql.push_str("create table big (id int, doc text);\ninsert into big values (1, '");
    while sql.len() < 50 * MB {
        sql.push_str(&"x".repeat(MB - 1));
        sql.push('\n');
    }
    sql.push_str("');\n");
    sql.push_str("selec 1;\n");
    let lines = sql.lines().count();
    let c = w.commit_files(&[
        ("migrations/2_big/up.sql", &sql),
        ("migrations/2_big/down.sql", "drop table big;"),
    ]);
    let (_, t, rss) = measured(&w.path(), &w.db.url, &["plan", &c.to_string()]);
    eprintln!(
        "50 MB up.sql, plan: {:.2}s, peak RSS {} MiB",
        t.as_secs_f64(),
        rss / MB as u64
    );
    let before = w.state();
    let (r, t, rss) = measured(&w.path(), &w.db.url, &["deploy", &c.to_string(), "--yes"]);
    eprintln!(
        "50 MB up.sql failing on its last line: {:.2}s, peak RSS {} MiB",
        t.as_secs_f64(),
        rss / MB as u64
    );
    expect_failure(
        &r,
        &["deploy"],
        4,
        &[
            "2_big failed",
            &format!(":{lines}:1: syntax error at or near \"selec\""),
        ],
    );
    assert_eq!(before, w.state());
}

#[test]
fn fifty_megabyte_metadata_file() {
    let mut w = World::new("hostile_big_meta");
    // 50 MB of tables.yaml, broken on its last line.
    let mut yaml = String::with_capacity(50 * MB + 100);
    yaml.push_str(TABLES_V2);
    while yaml.len() < 50 * MB {
        yaml.push_str(
            "# padding padding padding padding padding padding padding padding padding\n",
        );
    }
    yaml.push_str("- table: {schema: public, name: [\n");
    let lines = yaml.lines().count();
    let c = w.commit_files(&[("metadata/tables.yaml", &yaml)]);
    let before = w.state();
    let (r, t, rss) = measured(&w.path(), &w.db.url, &["deploy", &c.to_string(), "--yes"]);
    eprintln!(
        "50 MB tables.yaml broken on its last line: {:.2}s, peak RSS {} MiB",
        t.as_secs_f64(),
        rss / MB as u64
    );
    expect_failure(
        &r,
        &["deploy"],
        2,
        &[&format!("metadata/tables.yaml:{}:", lines + 1)],
    );
    assert_eq!(before, w.state());
}

// ---------------------------------------------------------------------------------------------
// Symbolic links and submodules: never followed

#[test]
fn symlinks_in_migrations_are_refused() {
    let mut w = World::new("hostile_symlink_git");
    let cases: Vec<(Vec<(String, Entry)>, &str)> = vec![
        // A folder that is a link (to a folder outside the repository).
        (
            vec![(
                "migrations/2_link".into(),
                Entry::Symlink("../../outside".into()),
            )],
            "migrations/2_link is a symbolic link",
        ),
        // An up.sql that is a link.
        (
            vec![
                (
                    "migrations/2_b/up.sql".into(),
                    Entry::Symlink("/etc/passwd".into()),
                ),
                file("migrations/2_b/down.sql", "drop table b;"),
            ],
            "migrations/2_b/up.sql is a symbolic link",
        ),
        // A down.sql that is a link.
        (
            vec![
                file("migrations/2_b/up.sql", "create table b (id int);"),
                (
                    "migrations/2_b/down.sql".into(),
                    Entry::Symlink("../1_a/down.sql".into()),
                ),
            ],
            "migrations/2_b/down.sql is a symbolic link",
        ),
        // A legacy flat file that is a link.
        (
            vec![(
                "migrations/2_flat.up.sql".into(),
                Entry::Symlink("/etc/passwd".into()),
            )],
            "migrations/2_flat.up.sql is a symbolic link",
        ),
    ];
    for (entries, needle) in cases {
        let c = w.commit(&entries, &[]);
        w.refused_rev(c, 2, &[needle, &short(c)]);
    }
    // A metadata file that is a link: not read as missing (which would clear the metadata).
    let c = w.commit(
        &[(
            "metadata/tables.yaml".into(),
            Entry::Symlink("/etc/passwd".into()),
        )],
        &[],
    );
    w.refused_rev(c, 2, &["metadata/tables.yaml", "symbolic link"]);
    // config v3: a linked per-table file.
    let mut v3 = World::v3("hostile_symlink_git_v3");
    let c = v3.commit(
        &[(
            "metadata/databases/default/tables/public_a.yaml".into(),
            Entry::Symlink("/etc/passwd".into()),
        )],
        &[],
    );
    v3.refused_rev(
        c,
        2,
        &[
            "metadata/databases/default/tables/public_a.yaml",
            "symbolic link",
        ],
    );
    // `metadata diff` reads the same files with the same reader: refused too, not read as the
    // link's target text.
    let base = v3.base.to_string();
    let c = c.to_string();
    v3.refused(
        &["metadata", "diff", &base, &c],
        2,
        &[
            "metadata/databases/default/tables/public_a.yaml",
            "symbolic link",
        ],
    );
    // So is a Git LFS pointer in place of a per-table file.
    let lfs = v3.commit(
        &[(
            "metadata/databases/default/tables/public_a.yaml".into(),
            Entry::File(LFS_POINTER.as_bytes().to_vec()),
        )],
        &[],
    );
    let lfs = lfs.to_string();
    v3.refused(
        &["metadata", "diff", &base, &lfs],
        2,
        &["public_a.yaml", "Git LFS pointer"],
    );
}

/// `--worktree` reads files on disk: a link there must not be followed out of the repository.
#[cfg(unix)]
#[test]
fn symlinks_in_the_working_tree_are_not_followed() {
    let w = World::new("hostile_symlink_disk");
    let p = w.path();
    let outside = tempfile::Builder::new()
        .prefix("gm-outside-")
        .tempdir()
        .unwrap();
    std::fs::write(
        outside.path().join("evil.sql"),
        "create table evil (id int);",
    )
    .unwrap();
    std::fs::write(
        outside.path().join("evil.yaml"),
        "- table:\n    schema: public\n    name: evil\n",
    )
    .unwrap();
    // The working tree is the base commit, checked out.
    w.repo
        .repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    let link = |target: &Path, at: &str| {
        let at = p.join(at);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&at);
        std::os::unix::fs::symlink(target, &at).unwrap();
    };
    // A linked up.sql.
    link(&outside.path().join("evil.sql"), "migrations/2_evil/up.sql");
    std::fs::write(p.join("migrations/2_evil/down.sql"), "drop table evil;").unwrap();
    for args in [
        &["deploy", "--worktree", "--yes"][..],
        &["plan", "--worktree"],
    ] {
        w.refused(
            args,
            2,
            &[
                "migrations/2_evil/up.sql is a symbolic link",
                "the working tree",
            ],
        );
    }
    std::fs::remove_dir_all(p.join("migrations/2_evil")).unwrap();
    // A linked migration folder.
    link(outside.path(), "migrations/2_evil");
    w.refused(
        &["deploy", "--worktree", "--yes"],
        2,
        &["migrations/2_evil is a symbolic link"],
    );
    std::fs::remove_file(p.join("migrations/2_evil")).unwrap();
    // A linked metadata file.
    link(&outside.path().join("evil.yaml"), "metadata/tables.yaml");
    w.refused(
        &["deploy", "--worktree", "--yes"],
        2,
        &["metadata/tables.yaml", "symbolic link"],
    );
    std::fs::remove_file(p.join("metadata/tables.yaml")).unwrap();
    // The whole metadata folder as a link.
    std::fs::rename(p.join("metadata"), outside.path().join("metadata")).unwrap();
    link(&outside.path().join("metadata"), "metadata");
    w.refused(
        &["deploy", "--worktree", "--yes"],
        2,
        &["metadata", "symbolic link"],
    );
    assert!(!w.db.has_table("public.evil"));
}

#[test]
fn submodules_in_migrations_are_refused() {
    let mut w = World::new("hostile_submodule");
    let some_commit = w.base;
    for (entries, needle) in [
        (
            vec![("migrations/2_sub".to_string(), Entry::Gitlink(some_commit))],
            "migrations/2_sub is a submodule",
        ),
        (
            vec![
                (
                    "migrations/2_b/up.sql".to_string(),
                    Entry::Gitlink(some_commit),
                ),
                file("migrations/2_b/down.sql", "drop table b;"),
            ],
            "migrations/2_b/up.sql is a submodule",
        ),
    ] {
        let c = w.commit(&entries, &[]);
        w.refused_rev(c, 2, &[needle, &short(c)]);
    }
    // The whole metadata folder as a submodule: not "no metadata".
    let c = w.commit(
        &[("metadata".to_string(), Entry::Gitlink(some_commit))],
        &["metadata"],
    );
    w.refused_rev(c, 2, &["metadata", "submodule"]);
}

// ---------------------------------------------------------------------------------------------
// Folder names

#[test]
fn unicode_spaces_and_leading_dashes_in_folder_names() {
    let mut w = World::new("hostile_names_ok");
    let c = w.commit_files(&[
        (
            "migrations/2_café ünïcode/up.sql",
            "create table café (id int);",
        ),
        ("migrations/2_café ünïcode/down.sql", "drop table café;"),
        (
            "migrations/3_with  spaces /up.sql",
            "create table spaced (id int);",
        ),
        ("migrations/3_with  spaces /down.sql", "drop table spaced;"),
        // Not `<digits>_`: skipped like `squashed_…`, never run.
        ("migrations/-4_dash/up.sql", "create table dash (id int);"),
        ("migrations/- 5_x/up.sql", "create table dash (id int);"),
    ]);
    let rev = c.to_string();
    w.run(&["deploy", &rev, "--yes"]).expect_code(0);
    assert_eq!(w.db.applied(), vec![1, 2, 3]);
    assert_eq!(
        w.db.rows("SELECT name FROM git_migrate.migrations WHERE version > 1 ORDER BY version"),
        vec![
            vec![Some("café ünïcode".into())],
            vec![Some("with  spaces ".into())]
        ]
    );
    assert!(w.db.has_table("public.café") && !w.db.has_table("public.dash"));
    // And back: names round-trip through the ledger.
    w.run(&["rollback", "base", "--yes"]).expect_code(0);
    assert_eq!(w.db.applied(), vec![1]);
}

#[test]
fn control_characters_or_bad_utf8_in_folder_names_are_refused() {
    let mut w = World::new("hostile_names_bad");
    for (folder, shown) in [
        ("2_new\nline", "2_new\\nline"),
        ("2_tab\there", "2_tab\\there"),
        ("2_esc\u{1b}[31mred", "2_esc\\u{1b}[31mred"),
    ] {
        let c = w.commit(
            &[
                file(
                    &format!("migrations/{folder}/up.sql"),
                    "create table x (id int);",
                ),
                file(&format!("migrations/{folder}/down.sql"), "drop table x;"),
            ],
            &[],
        );
        w.refused_rev(c, 2, &[shown, "control character"]);
    }
    // Bytes that are not UTF-8 in a folder name.
    let tree = {
        let repo = &w.repo.repo;
        let base_tree = repo.find_commit(w.base).unwrap().tree().unwrap();
        let up = repo.blob(b"create table x (id int);").unwrap();
        let mut folder = repo.treebuilder(None).unwrap();
        folder.insert("up.sql", up, 0o100644).unwrap();
        let folder = folder.write().unwrap();
        let migrations = base_tree.get_name("migrations").unwrap().id();
        let mut m = repo
            .treebuilder(Some(&repo.find_tree(migrations).unwrap()))
            .unwrap();
        m.insert(&b"2_caf\xe9"[..], folder, 0o040000).unwrap();
        let m = m.write().unwrap();
        let mut root = repo.treebuilder(Some(&base_tree)).unwrap();
        root.insert("migrations", m, 0o040000).unwrap();
        repo.find_tree(root.write().unwrap()).unwrap()
    };
    let sig = Signature::new("Test", "test@example.invalid", &Time::new(1_700_009_000, 0)).unwrap();
    let base = w.repo.repo.find_commit(w.base).unwrap();
    let c = w
        .repo
        .repo
        .commit(None, &sig, &sig, "latin-1 name", &tree, &[&base])
        .unwrap();
    w.refused_rev(c, 2, &["2_caf", "not valid UTF-8"]);
}

// ---------------------------------------------------------------------------------------------
// Versions in a down context

#[test]
fn version_beyond_bigint_in_a_down_context() {
    let mut w = World::new("hostile_bigint_down");
    let c2 = w.commit_files(&[
        ("migrations/2_b/up.sql", "create table b (id int);"),
        ("migrations/2_b/down.sql", "drop table b;"),
    ]);
    w.run(&["deploy", &c2.to_string(), "--yes"]).expect_code(0);
    // The revision that downs are read from has a folder whose version does not fit.
    let huge = w.commit_files(&[
        ("migrations/2_b/up.sql", "create table b (id int);"),
        ("migrations/2_b/down.sql", "drop table b;"),
        ("migrations/99999999999999999999_x/up.sql", "select 1;"),
        ("migrations/99999999999999999999_x/down.sql", "select 1;"),
    ]);
    let huge = huge.to_string();
    for args in [
        &["rollback", "base", "--yes", "--down-from", &huge][..],
        &["plan", "base", "--down-from", &huge],
        &["rollback", &huge, "--yes"],
    ] {
        w.refused(args, 2, &["migrations/99999999999999999999_x", "bigint"]);
    }
    // Hasura's `migrate apply` flags with a version that does not fit.
    for args in [
        &[
            "apply",
            "--version",
            "99999999999999999999",
            "--type",
            "down",
        ][..],
        &["apply", "--goto", "-99999999999999999999"],
        &["apply", "--down", "99999999999999999999999999"],
    ] {
        let before = w.state();
        let r = w.run(args);
        assert_eq!(r.code, 2, "{args:?}:\n{}", r.all());
        assert!(r.stderr.contains("error:"), "{}", r.all());
        assert_eq!(before, w.state());
    }
}

// ---------------------------------------------------------------------------------------------
// Revisions

#[test]
fn orphan_branch_without_a_project() {
    let mut w = World::new("hostile_orphan");
    let orphan = w.commit_on(&[], &[file("README.md", "# docs only\n")], &[], "orphan");
    w.repo.branch("gh-pages", orphan);
    for args in [
        &["deploy", "gh-pages", "--yes"][..],
        &["plan", "gh-pages"],
        &["rollback", "gh-pages", "--yes"],
        &["status", "gh-pages"],
    ] {
        w.refused(args, 2, &["no Hasura project", &short(orphan), "--project"]);
    }
}

#[test]
fn annotated_tags_of_tags_and_of_trees() {
    let w = World::new("hostile_tags");
    let g = &w.repo.repo;
    let sig = Signature::new("Test", "test@example.invalid", &Time::new(1_700_000_000, 0)).unwrap();
    let commit = g.find_object(w.base, None).unwrap();
    let t1 = g.tag("inner", &commit, &sig, "inner", false).unwrap();
    let t2 = g
        .tag(
            "outer",
            &g.find_object(t1, None).unwrap(),
            &sig,
            "tag of a tag",
            false,
        )
        .unwrap();
    let _ = g
        .tag(
            "outermost",
            &g.find_object(t2, None).unwrap(),
            &sig,
            "and again",
            false,
        )
        .unwrap();
    // A tag of a tag of a commit is that commit.
    for rev in ["outer", "outermost", &t2.to_string()] {
        let r = w.run(&["plan", rev]);
        r.expect_code(0)
            .expect_contains(&short(w.base))
            .expect_contains("nothing to change");
    }
    // Annotated tags of a tree and of a blob, and a tag of such a tag, are not commits.
    let tree = g.find_commit(w.base).unwrap().tree().unwrap();
    let tt = g
        .tag("treetag-annotated", tree.as_object(), &sig, "a tree", false)
        .unwrap();
    g.tag(
        "tag-of-treetag",
        &g.find_object(tt, None).unwrap(),
        &sig,
        "x",
        false,
    )
    .unwrap();
    let blob = g.find_object(g.blob(b"select 1;").unwrap(), None).unwrap();
    g.tag("blobtag", &blob, &sig, "a blob", false).unwrap();
    for (rev, kind) in [
        ("treetag-annotated", "tree"),
        ("tag-of-treetag", "tree"),
        ("blobtag", "blob"),
    ] {
        for args in [&["deploy", rev, "--yes"][..], &["rollback", rev, "--yes"]] {
            w.refused(args, 2, &["does not point at a commit", kind]);
        }
    }
}

#[test]
fn option_like_words_after_double_dash_are_revisions() {
    let w = World::new("hostile_dashdash");
    // `--yes` after `--` is a revision name, not a confirmation: unknown, nothing runs.
    w.refused(&["deploy", "--", "--yes"], 2, &["unknown revision '--yes'"]);
    w.refused(
        &["rollback", "--yes", "--", "-1"],
        2,
        &["unknown revision '-1'"],
    );
    w.refused(
        &["rollback", "--yes", "--", "--down-from"],
        2,
        &["unknown revision '--down-from'"],
    );
    w.refused(&["plan", "--", "-h"], 2, &["unknown revision '-h'"]);
    // An option value that looks like an option.
    w.refused(
        &["rollback", "base", "--yes", "--down-from=--help"],
        2,
        &["'--help'"],
    );
    // `-C` with a path that is not a repository.
    let nowhere = tempfile::Builder::new()
        .prefix("gm-norepo-")
        .tempdir()
        .unwrap();
    let before = w.state();
    let r = checked(
        gm(
            &w.path(),
            &w.db.url,
            &["-C", nowhere.path().to_str().unwrap(), "deploy", "--yes"],
        ),
        &["-C"],
    );
    expect_failure(&r, &["-C"], 2, &["cannot open a git repository"]);
    assert_eq!(before, w.state());
}

// ---------------------------------------------------------------------------------------------
// Timeouts and privileges

#[test]
fn statement_lock_timeout_names_the_migration() {
    let mut w = World::new("hostile_lock_timeout");
    let c = w.commit_files(&[
        (
            "migrations/2_alter/up.sql",
            "alter table a add column b int;",
        ),
        (
            "migrations/2_alter/down.sql",
            "alter table a drop column b;",
        ),
    ]);
    let rev = c.to_string();
    let before = w.state();
    // Another client holds a lock on `a` for the whole run.
    let mut holder = w.db.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let r = w.run(&[
        "deploy",
        &rev,
        "--yes",
        "--statement-lock-timeout",
        "1",
        "--lock-retries",
        "0",
    ]);
    tx.rollback().unwrap();
    expect_failure(
        &r,
        &["deploy"],
        4,
        &[
            "2_alter",
            "migrations/2_alter/up.sql",
            "lock timeout",
            "55P03",
        ],
    );
    assert_eq!(before, w.state());
    // statement_timeout the same way.
    let c = w.commit_files(&[
        ("migrations/2_slow/up.sql", "select pg_sleep(3);"),
        ("migrations/2_slow/down.sql", "select 1;"),
    ]);
    w.refused(
        &[
            "deploy",
            &c.to_string(),
            "--yes",
            "--statement-timeout",
            "1",
        ],
        4,
        &["2_slow", "statement timeout", "57014"],
    );
}

/// A role with LOGIN only: the ledger can be neither created nor read.
#[test]
fn a_role_without_privileges_is_told_what_to_grant() {
    let w = World::new("hostile_weak_role");
    let role = format!("gm_weak_{}", w.db.name);
    w.db.client()
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .unwrap();
    let weak_url = w.db.url.replace("user=postgres", &format!("user={role}"));
    assert_ne!(weak_url, w.db.url, "unexpected test URL {}", w.db.url);
    // The ledger exists (deployed by the owner) but the role cannot read it.
    let c = w.base.to_string();
    for args in [&["deploy", &c, "--yes"][..], &["status"]] {
        let before = w.state();
        let r = checked(gm(&w.path(), &weak_url, args), args);
        expect_failure(
            &r,
            args,
            4,
            &[
                "permission denied for schema git_migrate",
                "GRANT USAGE ON SCHEMA git_migrate",
            ],
        );
        assert_eq!(before, w.state());
    }
    // A database without a ledger (but with data to lose): the ledger cannot be created.
    let fresh = TestDb::new("hostile_weak_role_fresh");
    fresh
        .client()
        .batch_execute("create table keep (id int); insert into keep values (42);")
        .unwrap();
    let fresh_weak = fresh.url.replace("user=postgres", &format!("user={role}"));
    let before = state_of(&fresh);
    let r = checked(
        gm(&w.path(), &fresh_weak, &["deploy", &c, "--yes"]),
        &["deploy"],
    );
    expect_failure(
        &r,
        &["deploy"],
        4,
        &[
            "creating the ledger",
            "permission denied for database",
            &format!("GRANT CREATE ON DATABASE {}", fresh.name),
        ],
    );
    assert_eq!(before, state_of(&fresh));
}

// ---------------------------------------------------------------------------------------------
// A ledger edited by hand

/// The base and migration 2 deployed: deployments #1 (1) and #2 (2).
fn two_deployments(test: &str) -> (World, Oid) {
    let mut w = World::new(test);
    let c2 = w.commit_files(&[
        ("migrations/2_b/up.sql", "create table b (id int);"),
        ("migrations/2_b/down.sql", "drop table b;"),
    ]);
    w.run(&["deploy", &c2.to_string(), "--yes"]).expect_code(0);
    assert_eq!(w.db.applied(), vec![1, 2]);
    (w, c2)
}

fn sql(w: &World, sql: &str) {
    w.db.client().batch_execute(sql).unwrap();
}

/// `status` explains the finding; `deploy` (to the deployed commit and to the base) and
/// `rollback` refuse with exit 3 and change nothing.
#[track_caller]
fn ledger_refused(w: &World, c2: Oid, needles: &[&str]) {
    w.run(&["status", &c2.to_string()])
        .expect_contains(needles[0]);
    let c2 = c2.to_string();
    for args in [
        &["deploy", &c2, "--yes"][..],
        &["deploy", "base", "--yes"],
        &["rollback", "base", "--yes"],
        &["plan", &c2],
    ] {
        w.refused(args, 3, needles);
    }
}

#[test]
fn ledger_row_deleted_by_hand_is_detected() {
    let (w, c2) = two_deployments("hostile_ledger_row_deleted");
    sql(&w, "DELETE FROM git_migrate.migrations WHERE version = 2");
    ledger_refused(
        &w,
        c2,
        &[
            "the ledger has no row for migration 2",
            "deployment #2 applied 2",
            "--type up --skip-execution",
        ],
    );
    // The hint works: record it without running it.
    let c2s = c2.to_string();
    w.run(&[
        "apply",
        "--rev",
        &c2s,
        "--version",
        "2",
        "--type",
        "up",
        "--skip-execution",
    ])
    .expect_code(0);
    w.run(&["deploy", &c2s, "--yes"]).expect_code(0);
    assert_eq!(w.db.applied(), vec![1, 2]);
}

#[test]
fn ledger_row_inserted_by_hand_is_detected() {
    let (w, c2) = two_deployments("hostile_ledger_row_inserted");
    sql(
        &w,
        "INSERT INTO git_migrate.migrations (version, name, up_sha256) \
         VALUES (999, 'ghost', 'sha256:' || repeat('0', 64))",
    );
    ledger_refused(
        &w,
        c2,
        &[
            "row for migration 999 that no deployment applied",
            "names no deployment",
            "--version 999 --type down --skip-execution",
        ],
    );
    let c2s = c2.to_string();
    w.run(&[
        "apply",
        "--rev",
        &c2s,
        "--version",
        "999",
        "--type",
        "down",
        "--skip-execution",
    ])
    .expect_code(0);
    assert_eq!(w.db.applied(), vec![1, 2]);
    w.run(&["deploy", &c2s, "--yes"]).expect_code(0);
}

#[test]
fn ledger_checksum_tampered_is_detected() {
    let (w, c2) = two_deployments("hostile_ledger_checksum");
    // Not a checksum at all.
    sql(
        &w,
        "UPDATE git_migrate.migrations SET up_sha256 = 'tampered' WHERE version = 2",
    );
    ledger_refused(
        &w,
        c2,
        &[
            "checksum of migration 2 is not one git-migrate writes",
            "\"tampered\"",
            "repair --accept 2",
        ],
    );
    // Almost checksums: upper-case hex, a letter past f, one digit short, another prefix.
    let hex = "0123456789abcdef".repeat(4);
    for bad in [
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{}g", &hex[1..]),
        format!("sha256:{}", &hex[1..]),
        format!("sha512:{hex}"),
    ] {
        sql(
            &w,
            &format!("UPDATE git_migrate.migrations SET up_sha256 = '{bad}' WHERE version = 2"),
        );
        w.run(&["status", &c2.to_string()])
            .expect_contains("checksum of migration 2 is not one git-migrate writes")
            .expect_contains(&bad);
    }
    // A well-formed checksum that is not the file's, with the blob and folder ids gone (as
    // for a migration applied from the working tree): the file looks modified.
    sql(
        &w,
        "UPDATE git_migrate.migrations SET up_sha256 = 'sha256:' || repeat('0', 64), \
         up_blob = NULL, folder_tree = NULL WHERE version = 2",
    );
    w.refused(
        &["deploy", &c2.to_string(), "--yes"],
        3,
        &["2_b was modified after it was applied", "sha256:0000000000"],
    );
}

#[test]
fn deployment_row_deleted_by_hand_is_detected() {
    let (w, c2) = two_deployments("hostile_ledger_deployment_deleted");
    sql(&w, "DELETE FROM git_migrate.deployments WHERE id = 2");
    ledger_refused(
        &w,
        c2,
        &[
            "lost deployment #2, which applied migration 2",
            "git_migrate.deployments",
        ],
    );
    // A deleted rollback: the history says 2 is applied, the rows say it is not.
    let (w, c2) = two_deployments("hostile_ledger_rollback_deleted");
    w.run(&["rollback", "base", "--yes"]).expect_code(0);
    assert_eq!(w.db.applied(), vec![1]);
    sql(&w, "DELETE FROM git_migrate.deployments WHERE id = 3");
    ledger_refused(
        &w,
        c2,
        &[
            "the ledger has no row for migration 2",
            "deployment #2 applied 2",
        ],
    );
}

#[test]
fn metadata_row_tampered_is_detected() {
    let (w, c2) = two_deployments("hostile_ledger_metadata");
    sql(
        &w,
        "UPDATE git_migrate.metadata SET sha256 = 'sha256:' || repeat('1', 64)",
    );
    ledger_refused(
        &w,
        c2,
        &[
            "metadata row (git_migrate.metadata) was changed",
            "sha256:1111111111",
            "metadata apply",
        ],
    );
    // The hint works.
    let c2s = c2.to_string();
    w.run(&["metadata", "apply", &c2s, "--yes"]).expect_code(0);
    w.run(&["deploy", &c2s, "--yes"]).expect_code(0);
}

// ---------------------------------------------------------------------------------------------
// Layout

#[test]
fn empty_downs_refuse_hasura_style_reverts() {
    let mut w = World::new("hostile_empty_down_apply");
    let c = w.commit_files(&[
        ("migrations/2_b/up.sql", "create table b (id int);"),
        (
            "migrations/2_b/down.sql",
            "-- Could not auto-generate a down migration.\n",
        ),
    ]);
    let rev = c.to_string();
    w.run(&["deploy", &rev, "--yes"]).expect_code(0);
    for args in [
        &["apply", "--rev", &rev, "--down", "1"][..],
        &["apply", "--rev", &rev, "--version", "2", "--type", "down"],
        &["apply", "--rev", &rev, "--goto", "1"],
        &["rollback", "base", "--yes"],
    ] {
        w.refused(args, 3, &["cannot revert 2_b", "empty"]);
    }
}

#[test]
fn a_migration_folder_with_only_a_down_sql() {
    let mut w = World::new("hostile_down_only");
    for (f, folder) in [
        ("migrations/3_c/down.sql", "migrations/3_c"),
        ("migrations/4_d.down.sql", "migrations/4_d"),
    ] {
        let c = w.commit_files(&[
            ("migrations/2_b/up.sql", "create table b (id int);"),
            ("migrations/2_b/down.sql", "drop table b;"),
            (f, "drop table c;"),
        ]);
        w.refused_rev(
            c,
            2,
            &[
                &format!("migration {folder} has no up.sql"),
                &short(c),
                "add the up.sql",
            ],
        );
    }
}

#[test]
fn config_yaml_that_is_a_directory() {
    let mut w = World::new("hostile_config_dir");
    let c = w.commit(
        &[file("config.yaml/README", "not a config\n")],
        &["config.yaml"],
    );
    w.refused_rev(c, 2, &["config.yaml", "is a folder", &short(c)]);
    let rev = c.to_string();
    w.refused(
        &["deploy", &rev, "--yes", "--project", "."],
        2,
        &["config.yaml", "is a folder"],
    );
}

#[test]
fn metadata_folder_missing_does_not_clear_the_metadata() {
    let mut w = World::new("hostile_metadata_missing");
    // The folder removed, or renamed without telling config.yaml.
    let c = w.commit(&[], &["metadata"]);
    w.refused_rev(c, 3, &["has no metadata folder metadata", "would clear"]);
    let c = w.commit(
        &[
            file("hasura_metadata/version.yaml", "version: 2\n"),
            file("hasura_metadata/tables.yaml", TABLES_V2),
        ],
        &["metadata"],
    );
    w.refused_rev(
        c,
        3,
        &["has no metadata folder metadata", "metadata_directory"],
    );
    // A folder holding only version.yaml is the way to clear it on purpose.
    let c = w.commit(&[], &["metadata/tables.yaml"]);
    w.run(&["plan", &c.to_string()]).expect_code(0);
    // Rolling back to a commit from before the folder existed is allowed.
    let mut w = World::with(
        "hostile_metadata_missing_ancestor",
        vec![
            file("config.yaml", CONFIG_V2),
            file("migrations/1_a/up.sql", UP1),
            file("migrations/1_a/down.sql", DOWN1),
        ],
    );
    let c = w.commit(
        &[
            file("metadata/version.yaml", "version: 2\n"),
            file("metadata/tables.yaml", TABLES_V2),
        ],
        &[],
    );
    w.run(&["deploy", &c.to_string(), "--yes"]).expect_code(0);
    w.run(&["deploy", "base", "--yes"]).expect_code(0);
}
