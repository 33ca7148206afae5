//! The password never appears in any output: every command that connects, with the password
//! from the URL, PGPASSWORD, ~/.pgpass, --database-url and an environment's ${VAR}, on success
//! and on every kind of failure, against a server that really checks it (scram-sha-256 over
//! TLS). tests/test_bad_input.rs has the older socket-only variant.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::tcp::{server, write_with_mode, TlsDb, PASSWORD, USER};
use crate::common::{gm_env, Run};
use std::path::Path;

/// Any spelling of the password that would give it away.
const LEAKS: [&str; 3] = [
    "S3cr3t-pa55word",
    "S3cr3t-pa55word%21",
    "UzNjcjN0LXBhNTV3b3JkI",
];

/// v1: table a and a seed; v2: table b; `bad` (not on HEAD): a migration whose SQL fails.
fn repo() -> TestRepo {
    let mut repo = TestRepo::new();
    let mut base = base_project();
    let m1 = migration(
        1,
        "a",
        "create table a (id int primary key);",
        "drop table a;",
    );
    base.extend(files(&m1));
    base.push((
        "seeds/1_a.sql",
        "insert into a values (1) on conflict do nothing;\n",
    ));
    let c1 = repo.commit(&base, &[], "one");
    repo.tag("v1", c1);
    let m2 = migration(2, "b", "create table b (id int);", "drop table b;");
    let c2 = repo.commit(&files(&m2), &[], "two");
    repo.tag("v2", c2);
    let m3 = migration(
        3,
        "bad",
        "create table c (id int);\nselect * from no_such_table_for_secrets;",
        "drop table c;",
    );
    let c3 = repo.commit_on(vec![c2], &files(&m3), &[], "bad", None);
    repo.tag("bad", c3);
    // A working tree, for `metadata export`.
    repo.repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    repo
}

/// Runs and checks that no spelling of the password is in stdout or stderr.
#[track_caller]
fn run(dir: &Path, how: &How, args: &[&str]) -> Run {
    let mut all_args: Vec<&str> = args.to_vec();
    if let Some(flag) = &how.flag {
        all_args.extend(["--database-url", flag.as_str()]);
    }
    let env: Vec<(&str, &str)> = how.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = gm_env(dir, &how.url, &all_args, &env);
    for leak in LEAKS {
        assert!(
            !r.stdout.contains(leak) && !r.stderr.contains(leak),
            "{}: git-migrate {args:?} printed the password:\n{}",
            how.name,
            r.all()
        );
    }
    assert!(
        (0..=5).contains(&r.code) && !r.all().contains("panicked"),
        "{}: git-migrate {args:?} crashed:\n{}",
        how.name,
        r.all()
    );
    r
}

/// Where the password comes from.
struct How {
    name: &'static str,
    /// DATABASE_URL ("" for none).
    url: String,
    /// --database-url.
    flag: Option<String>,
    env: Vec<(&'static str, String)>,
}

/// Every command that connects, in an order where each one has something to do; the password
/// is right, so each must also succeed (or refuse for its own reasons).
fn every_command(p: &Path, how: &How, db: &TlsDb, scratch_url: &str) {
    let ok = |args: &[&str]| {
        run(p, how, args).expect_code(0);
    };
    ok(&["status"]);
    ok(&["status", "--json"]);
    ok(&["plan", "v2"]);
    ok(&["plan", "v2", "--json"]);
    ok(&["deploy", "v1", "--dry-run"]);
    ok(&["deploy", "v1", "--yes", "-v"]);
    assert!(db.has_table("a"), "{}: deploy did nothing", how.name);
    ok(&["seed", "apply", "v1"]);
    ok(&["log"]);
    ok(&["log", "--json"]);
    ok(&["apply", "--up", "all"]);
    assert!(db.has_table("b"), "{}: apply did nothing", how.name);
    ok(&["apply", "--down", "1"]);
    ok(&["deploy", "v2", "--yes", "--json"]);
    ok(&["rollback", "--yes"]);
    ok(&["rollback", "v1", "--yes", "--json"]);
    run(p, how, &["metadata", "diff"]);
    ok(&["metadata", "apply", "--yes"]);
    ok(&["metadata", "export"]);
    run(p, how, &["adopt", "--dry-run"]);
    run(p, how, &["repair", "--done", "1", "--yes"]).expect_code(3);
    ok(&["verify", "--scratch-url", scratch_url]);
    // A deploy whose SQL fails: rolled back, the server's error shown.
    run(p, how, &["deploy", "bad", "--yes"])
        .expect_code(4)
        .expect_contains("no_such_table_for_secrets");
    ok(&["status", "--json"]);
    // The authoring commands that read the database state.
    ok(&["seed", "create", "dump", "--from-table", "a"]);
    run(p, how, &["squash", "--from", "1"]);
    run(p, how, &["delete", "--version", "1", "--server", "--force"]);
    // Nothing stored it either.
    let stored = db.scalar(&format!(
        "SELECT count(*) FROM (SELECT to_jsonb(d)::text AS t FROM git_migrate.deployments d
           UNION ALL SELECT to_jsonb(m)::text FROM git_migrate.migrations m) x
          WHERE t LIKE '%{}%'",
        LEAKS[0]
    ));
    assert_eq!(
        stored.as_deref(),
        Some("0"),
        "{}: stored in the ledger",
        how.name
    );
}

#[test]
fn the_password_never_appears_in_output() {
    let repo = repo();
    let p = repo.path();
    let s = server();
    let host = "127.0.0.1";
    let tls = format!("sslmode=verify-full&sslrootcert={}", s.ca.display());

    // (a) In DATABASE_URL.
    let db = TlsDb::new("secret_url");
    let how = How {
        name: "DATABASE_URL",
        url: db.url(host, &tls),
        flag: None,
        env: vec![],
    };
    every_command(&p, &how, &db, &db.url(host, &tls));

    // (b) PGPASSWORD, the URL without a password.
    let db = TlsDb::new("secret_pgpassword");
    let how = How {
        name: "PGPASSWORD",
        url: db.url_as(USER, None, host, &tls),
        flag: None,
        env: vec![("PGPASSWORD", PASSWORD.to_string())],
    };
    every_command(&p, &how, &db, &db.url_as(USER, None, host, &tls));

    // (c) ~/.pgpass (HOME is the repository).
    let db = TlsDb::new("secret_pgpass");
    write_with_mode(
        &p,
        ".pgpass",
        &format!("{host}:*:*:{USER}:{PASSWORD}\n"),
        0o600,
    );
    let how = How {
        name: "~/.pgpass",
        url: db.url_as(USER, None, host, &tls),
        flag: None,
        env: vec![],
    };
    every_command(&p, &how, &db, &db.url_as(USER, None, host, &tls));
    // Moved out of HOME; PGPASSFILE names it for case (e).
    let kept = tempfile::tempdir().unwrap();
    let pgpass = kept.path().join("pgpass");
    std::fs::rename(p.join(".pgpass"), &pgpass).unwrap();

    // (d) --database-url, no DATABASE_URL.
    let db = TlsDb::new("secret_flag");
    let how = How {
        name: "--database-url",
        url: String::new(),
        flag: Some(db.url(host, &tls)),
        env: vec![],
    };
    every_command(&p, &how, &db, &db.url(host, &tls));

    // (e) --env NAME, git-migrate.yaml's database_url: ${VAR}.
    let db = TlsDb::new("secret_env");
    let prod = TlsDb::new("secret_env_prod");
    std::fs::write(
        p.join("git-migrate.yaml"),
        "environments:\n  staging:\n    database_url: ${GM_SECRET_TEST_URL}\n  production:\n    database_url: ${GM_SECRET_PROD_URL}\n    promote_from: staging\n",
    )
    .unwrap();
    let how = How {
        name: "--env",
        url: String::new(),
        flag: None,
        env: vec![
            ("GM_SECRET_TEST_URL", db.url(host, &tls)),
            // The password file supplies production's password.
            ("GM_SECRET_PROD_URL", prod.url_as(USER, None, host, &tls)),
            ("PGPASSFILE", pgpass.display().to_string()),
        ],
    };
    for args in [
        &["status", "--env", "staging"][..],
        &["deploy", "v1", "--env", "staging", "--yes"],
        &["status", "--all-envs"],
        &["status", "--all-envs", "--json"],
        &["promote", "staging", "production", "--yes"],
        &["log", "--env", "production", "--json"],
    ] {
        run(&p, &how, args).expect_code(0);
    }
    assert!(prod.has_table("a"), "promote did nothing");
    std::fs::remove_file(p.join("git-migrate.yaml")).unwrap();
}

#[test]
fn the_password_never_appears_when_connecting_fails() {
    let repo = repo();
    let p = repo.path();
    let s = server();
    let db = TlsDb::new("secret_failures");
    let tls = format!("sslmode=verify-full&sslrootcert={}", s.ca.display());
    let wrong_ca = format!("sslmode=verify-full&sslrootcert={}", s.wrong_ca.display());
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("postgresql://{USER}:{PASSWORD}@127.0.0.1:{closed}/x");
    // The right password for a role that has another one.
    let other = format!(
        "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{}?sslmode=require",
        s.port, db.name
    );
    let cases: Vec<(&str, String, i32)> = vec![
        ("connection refused", refused.clone(), 4),
        ("wrong password", other.clone(), 4),
        ("wrong CA", db.url("127.0.0.1", &wrong_ca), 4),
        ("no such database", db.url("127.0.0.1", &tls).replace(&db.name, "nonexistent_db"), 4),
        ("missing root certificate", db.url("127.0.0.1", "sslmode=verify-ca&sslrootcert=/nonexistent"), 2),
        ("bad sslmode", db.url("127.0.0.1", "sslmode=bogus"), 2),
        ("bad option", db.url("127.0.0.1", "bogus_option=1"), 2),
        (
            "key=value, wrong password",
            format!("host=127.0.0.1 port={} user=postgres password='{PASSWORD}' dbname={} sslmode=require", s.port, db.name),
            4,
        ),
    ];
    let commands: [&[&str]; 12] = [
        &["status"],
        &["status", "--json"],
        &["plan", "HEAD", "--json"],
        &["deploy", "--yes"],
        &["deploy", "--dry-run"],
        &["rollback", "v1", "--yes", "--json"],
        &["log", "--json"],
        &["apply", "--up", "all"],
        &["metadata", "apply", "--yes"],
        &["metadata", "export"],
        &["seed", "apply"],
        &["adopt", "--dry-run"],
    ];
    for (name, url, code) in &cases {
        for args in commands {
            for via_flag in [false, true] {
                let how = How {
                    name,
                    url: if via_flag { String::new() } else { url.clone() },
                    flag: via_flag.then(|| url.clone()),
                    env: vec![],
                };
                let r = run(&p, &how, args);
                assert_eq!(r.code, *code, "{name}, {args:?}:\n{}", r.all());
                r.expect_contains("***");
            }
        }
    }
    // Through PGPASSWORD and ~/.pgpass the failures are the same and silent about it.
    let no_pw = format!(
        "postgresql://postgres@127.0.0.1:{}/{}?sslmode=require",
        s.port, db.name
    );
    let how = How {
        name: "PGPASSWORD, wrong password",
        url: no_pw.clone(),
        flag: None,
        env: vec![("PGPASSWORD", PASSWORD.to_string())],
    };
    run(&p, &how, &["status"]).expect_code(4);
    write_with_mode(&p, ".pgpass", &format!("*:*:*:*:{PASSWORD}\n"), 0o600);
    let how = How {
        name: "~/.pgpass, wrong password",
        url: no_pw,
        flag: None,
        env: vec![],
    };
    run(&p, &how, &["deploy", "--yes"])
        .expect_code(4)
        .expect_contains(".pgpass");
    // verify --scratch-url with the password, against a closed port.
    let how = How {
        name: "verify --scratch-url refused",
        url: db.url("127.0.0.1", &tls),
        flag: None,
        env: vec![],
    };
    run(&p, &how, &["verify", "--scratch-url", &refused]).expect_code(4);
    std::fs::remove_file(p.join(".pgpass")).unwrap();
    // Environments whose servers refuse: one unreachable, one with a wrong password.
    std::fs::write(
        p.join("git-migrate.yaml"),
        "environments:\n  staging:\n    database_url: ${GM_SECRET_A}\n  production:\n    database_url: ${GM_SECRET_B}\n    promote_from: staging\n",
    )
    .unwrap();
    let how = How {
        name: "--env, failing",
        url: String::new(),
        flag: None,
        env: vec![
            ("GM_SECRET_A", refused.clone()),
            ("GM_SECRET_B", other.clone()),
        ],
    };
    for (args, code) in [
        (&["status", "--env", "staging"][..], 4),
        (&["deploy", "--env", "production", "--yes"], 4),
        (&["status", "--all-envs"], 4),
        (&["status", "--all-envs", "--json"], 4),
        (&["promote", "staging", "production", "--yes"], 4),
    ] {
        let r = run(&p, &how, args);
        assert_eq!(r.code, code, "{args:?}:\n{}", r.all());
    }
    std::fs::remove_file(p.join("git-migrate.yaml")).unwrap();
    assert!(!db.has_ledger(), "a failing connection changed something");
}
