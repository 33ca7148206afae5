//! Connections as libpq makes them (docs/connections.md): sslmode and sslrootcert against a
//! real TLS server with a certificate made by the test, PGSSLMODE/PGSSLROOTCERT, the password
//! file and PGPASSWORD.

use crate::common::git::{base_project, files, migration, TestRepo};
use crate::common::tcp::{server, write_with_mode, TlsDb, PASSWORD, TLS_ONLY_USER, USER};
use crate::common::{gm, gm_env, Run};
use std::path::Path;

/// A repository with one migration creating table `a`.
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
    repo.commit(&base, &[], "one");
    repo
}

/// Runs with `DATABASE_URL=url` and `env`; fails on a crash or an undocumented exit code.
fn run(dir: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let r = gm_env(dir, url, args, env);
    assert!(
        !r.all().contains("panicked") && (0..=5).contains(&r.code),
        "git-migrate {args:?} crashed:\n{}",
        r.all()
    );
    assert!(
        !r.all().contains("S3cr3t-pa55word"),
        "the password leaked:\n{}",
        r.all()
    );
    r
}

/// `error:` and `hint:` lines on stderr.
#[track_caller]
fn expect_error_with_hint(r: &Run) {
    assert!(
        r.stderr.lines().any(|l| l.starts_with("error: "))
            && r.stderr.lines().any(|l| l.starts_with("hint: ")),
        "no error: and hint: lines:\n{}",
        r.all()
    );
}

fn ca() -> String {
    server().ca.display().to_string()
}

fn wrong_ca() -> String {
    server().wrong_ca.display().to_string()
}

#[test]
fn verify_full_against_the_servers_ca_deploys() {
    let repo = repo();
    let p = repo.path();
    let db = TlsDb::new("verify_full_ok");
    // The TLS-only role proves the connection really used TLS (plaintext is rejected for it).
    for host in ["127.0.0.1", "localhost"] {
        let url = db.url_as(
            TLS_ONLY_USER,
            Some(PASSWORD),
            host,
            &format!("sslmode=verify-full&sslrootcert={}", ca()),
        );
        run(&p, &url, &["status"], &[]).expect_code(0);
    }
    let url = db.url_as(
        TLS_ONLY_USER,
        Some(PASSWORD),
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", ca()),
    );
    run(&p, &url, &["deploy", "--yes"], &[]).expect_code(0);
    assert!(db.has_table("a"));
    run(&p, &url, &["status", "--json"], &[])
        .expect_code(0)
        .expect_contains("\"pending\"");
    // The key=value form too.
    let kv = format!(
        "host=127.0.0.1 port={} dbname={} user={TLS_ONLY_USER} password={PASSWORD} sslmode=verify-full sslrootcert='{}'",
        server().port,
        db.name,
        ca()
    );
    run(&p, &kv, &["log"], &[]).expect_code(0);
}

#[test]
fn verify_full_with_the_wrong_ca_fails_and_changes_nothing() {
    let repo = repo();
    let p = repo.path();
    let db = TlsDb::new("wrong_ca");
    let url = db.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", wrong_ca()),
    );
    for args in [&["deploy", "--yes"][..], &["status"]] {
        let r = run(&p, &url, args, &[]);
        r.expect_code(4)
            .expect_contains("certificate verify failed")
            .expect_contains(&format!(
                "(sslmode=verify-full, sslrootcert={})",
                wrong_ca()
            ))
            .expect_contains("not signed by a trusted CA");
        expect_error_with_hint(&r);
        assert!(
            r.stderr.contains("hint: ") && r.stderr.contains(&wrong_ca()),
            "{}",
            r.all()
        );
    }
    assert!(!db.has_ledger() && !db.has_table("a"), "something changed");
    // `require` with a root certificate file given checks the chain too (libpq).
    let url = db.url(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={}", wrong_ca()),
    );
    run(&p, &url, &["status"], &[])
        .expect_code(4)
        .expect_contains("certificate verify failed");
}

#[test]
fn host_name_not_in_the_certificate() {
    let repo = repo();
    let p = repo.path();
    let db = TlsDb::new("wrong_host");
    // The certificate is for localhost and 127.0.0.1; connect to the same server by another name.
    let query = |mode: &str| format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}", ca());
    let url = db.url_as(
        TLS_ONLY_USER,
        Some(PASSWORD),
        "gm-wrong-name.invalid",
        &query("verify-full"),
    );
    let r = run(&p, &url, &["deploy", "--yes"], &[]);
    r.expect_code(4)
        .expect_contains("certificate verify failed")
        .expect_contains("gm-wrong-name.invalid")
        .expect_contains("sslmode=verify-ca");
    expect_error_with_hint(&r);
    assert!(!db.has_ledger());
    // verify-ca checks the chain only.
    let url = db.url_as(
        TLS_ONLY_USER,
        Some(PASSWORD),
        "gm-wrong-name.invalid",
        &query("verify-ca"),
    );
    run(&p, &url, &["deploy", "--yes"], &[]).expect_code(0);
    assert!(db.has_table("a"));
    // But not a chain from another CA.
    let url = db.url_as(
        TLS_ONLY_USER,
        Some(PASSWORD),
        "gm-wrong-name.invalid",
        &format!(
            "hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={}",
            wrong_ca()
        ),
    );
    run(&p, &url, &["status"], &[])
        .expect_code(4)
        .expect_contains("sslmode=verify-ca");
}

#[test]
fn require_and_prefer_use_tls_without_a_root_certificate() {
    let repo = repo();
    let p = repo.path();
    let db = TlsDb::new("require");
    for query in ["sslmode=require", "sslmode=prefer", "", "sslmode=allow"] {
        let url = db.url_as(TLS_ONLY_USER, Some(PASSWORD), "127.0.0.1", query);
        run(&p, &url, &["status"], &[]).expect_code(0);
    }
    let url = db.url_as(
        TLS_ONLY_USER,
        Some(PASSWORD),
        "127.0.0.1",
        "sslmode=require",
    );
    run(&p, &url, &["deploy", "--yes"], &[]).expect_code(0);
    assert!(db.has_table("a"));
    // prefer with a root certificate that does not fit: the handshake fails, and libpq (and
    // git-migrate) then tries plaintext, which this role may use and the TLS-only one may not.
    let query = format!("sslmode=prefer&sslrootcert={}", wrong_ca());
    run(&p, &db.url("127.0.0.1", &query), &["status"], &[]).expect_code(0);
    let url = db.url_as(TLS_ONLY_USER, Some(PASSWORD), "127.0.0.1", &query);
    run(&p, &url, &["status"], &[])
        .expect_code(4)
        .expect_contains("no encryption")
        .expect_contains("TLS was tried first and failed: server certificate verify failed");
}

#[test]
fn disable_against_a_hostssl_only_role_fails_clearly() {
    let repo = repo();
    let p = repo.path();
    let db = TlsDb::new("disable");
    let url = db.url_as(
        TLS_ONLY_USER,
        Some(PASSWORD),
        "127.0.0.1",
        "sslmode=disable",
    );
    let r = run(&p, &url, &["deploy", "--yes"], &[]);
    r.expect_code(4)
        .expect_contains("no encryption")
        .expect_contains("only over TLS");
    expect_error_with_hint(&r);
    assert!(!db.has_ledger());
    // The other role may use plaintext.
    let url = db.url("127.0.0.1", "sslmode=disable");
    run(&p, &url, &["status"], &[]).expect_code(0);
}

#[test]
fn pgsslmode_and_pgsslrootcert_are_defaults() {
    let repo = repo();
    let p = repo.path();
    let db = TlsDb::new("pgsslmode");
    let url = db.url_as(TLS_ONLY_USER, Some(PASSWORD), "127.0.0.1", "");
    let wrong = wrong_ca();
    let right = ca();
    run(
        &p,
        &url,
        &["status"],
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &wrong)],
    )
    .expect_code(4)
    .expect_contains(&format!("sslrootcert={wrong}"));
    run(
        &p,
        &url,
        &["status"],
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &right)],
    )
    .expect_code(0);
    run(&p, &url, &["status"], &[("PGSSLMODE", "disable")])
        .expect_code(4)
        .expect_contains("no encryption");
    // The connection string wins over the environment.
    let url = db.url_as(
        TLS_ONLY_USER,
        Some(PASSWORD),
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={right}"),
    );
    run(
        &p,
        &url,
        &["status"],
        &[("PGSSLMODE", "disable"), ("PGSSLROOTCERT", &wrong)],
    )
    .expect_code(0);
    // And with no URL at all, from the PG* variables.
    let port = server().port.to_string();
    run(
        &p,
        "",
        &["status"],
        &[
            ("PGHOST", "localhost"),
            ("PGPORT", &port),
            ("PGUSER", TLS_ONLY_USER),
            ("PGPASSWORD", PASSWORD),
            ("PGDATABASE", &db.name),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", &right),
        ],
    )
    .expect_code(0);
}

#[test]
fn the_root_certificate_file_must_exist_for_verification() {
    let repo = repo();
    let p = repo.path();
    let db = TlsDb::new("root_crt");
    // No sslrootcert: ~/.postgresql/root.crt (HOME is the repository here), which is missing.
    let url = db.url("127.0.0.1", "sslmode=verify-full");
    let default = p.join(".postgresql/root.crt");
    let r = run(&p, &url, &["deploy", "--yes"], &[]);
    r.expect_code(2)
        .expect_contains(&format!(
            "root certificate file \"{}\" does not exist",
            default.display()
        ))
        .expect_contains("sslrootcert=system");
    expect_error_with_hint(&r);
    let r = run(
        &p,
        &db.url(
            "127.0.0.1",
            "sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        ),
        &["status"],
        &[],
    );
    r.expect_code(2)
        .expect_contains("\"/nonexistent/ca.pem\" does not exist");
    assert!(!db.has_ledger());
    // Put the CA there: verify-full works without sslrootcert.
    std::fs::create_dir_all(p.join(".postgresql")).unwrap();
    std::fs::copy(&server().ca, &default).unwrap();
    run(&p, &url, &["deploy", "--yes"], &[]).expect_code(0);
    // And `require` now checks the chain (libpq): a server certificate from another CA fails.
    std::fs::copy(&server().wrong_ca, &default).unwrap();
    run(
        &p,
        &db.url("127.0.0.1", "sslmode=require"),
        &["status"],
        &[],
    )
    .expect_code(4)
    .expect_contains("certificate verify failed");
    // sslrootcert=system allows verify-full only.
    run(
        &p,
        &db.url("127.0.0.1", "sslmode=require&sslrootcert=system"),
        &["status"],
        &[],
    )
    .expect_code(2)
    .expect_contains("weak sslmode \"require\" may not be used with sslrootcert=system");
    run(
        &p,
        &db.url("127.0.0.1", "sslmode=verify-fullish"),
        &["status"],
        &[],
    )
    .expect_code(2)
    .expect_contains("invalid sslmode value");
}

#[test]
fn the_password_file_supplies_the_password() {
    let repo = repo();
    let p = repo.path();
    let db = TlsDb::new("pgpass");
    let port = server().port;
    let url = db.url_as(USER, None, "127.0.0.1", "sslmode=require");
    // Without a password the server refuses.
    let r = run(&p, &url, &["status"], &[]);
    r.expect_code(4)
        .expect_contains("password missing")
        .expect_contains("hint: the server asks for a password")
        .expect_contains("~/.pgpass");
    // ~/.pgpass (HOME is the repository here): comments, lines for other targets first,
    // escapes, wildcards; the first match wins.
    let pgpass = format!(
        "# git-migrate test\n\
         127.0.0.1:{port}:other_db:{USER}:wrong-1\n\
         127.0.0.1:{port}:*:someone\\:else:wrong-2\n\
         127.0.0.1:*:{}:{USER}:{PASSWORD}\n\
         *:*:*:*:wrong-3\n",
        db.name
    );
    write_with_mode(&p, ".pgpass", &pgpass, 0o600);
    run(&p, &url, &["deploy", "--yes"], &[]).expect_code(0);
    assert!(db.has_table("a"));
    // Group- or world-readable: ignored, with a warning naming the file.
    write_with_mode(&p, ".pgpass", &pgpass, 0o644);
    let r = run(&p, &url, &["status"], &[]);
    r.expect_code(4).expect_contains("password missing");
    assert!(
        r.stderr.contains("warning: password file")
            && r.stderr.contains(".pgpass")
            && r.stderr.contains("group or world access"),
        "{}",
        r.all()
    );
    // PGPASSFILE names another file.
    let elsewhere = tempfile::tempdir().unwrap();
    let file = write_with_mode(
        elsewhere.path(),
        "pw",
        &format!("*:*:*:{USER}:{PASSWORD}\n"),
        0o600,
    );
    let file = file.display().to_string();
    run(&p, &url, &["status"], &[("PGPASSFILE", &file)]).expect_code(0);
    // A wrong password from the file: the error says where it came from.
    let bad = write_with_mode(
        elsewhere.path(),
        "bad",
        &format!("*:*:*:{USER}:not-it\n"),
        0o600,
    );
    let r = run(
        &p,
        &url,
        &["status"],
        &[("PGPASSFILE", bad.to_str().unwrap())],
    );
    r.expect_code(4)
        .expect_contains("password authentication failed")
        .expect_contains("(line 1)");
    // PGPASSWORD comes before the file; a password in the URL before both.
    run(
        &p,
        &url,
        &["status"],
        &[
            ("PGPASSFILE", bad.to_str().unwrap()),
            ("PGPASSWORD", PASSWORD),
        ],
    )
    .expect_code(0);
    run(
        &p,
        &db.url("127.0.0.1", "sslmode=require"),
        &["status"],
        &[("PGPASSWORD", "not-it")],
    )
    .expect_code(0);
}

#[test]
fn plain_tcp_still_works_and_unix_sockets_ignore_sslmode() {
    // The main test cluster listens on a unix socket only: sslmode does not apply there.
    let repo = repo();
    let p = repo.path();
    let db = crate::common::pg::TestDb::new("socket_sslmode");
    for mode in ["verify-full", "require", "disable"] {
        let url = format!("{} sslmode={mode} sslrootcert=/nonexistent/ca.pem", db.url);
        gm(&p, &url, &["status"]).expect_code(0);
    }
}
