//! `check --verify` and `git migrate verify`: each new migration runs up, down and up again in a
//! scratch database, and a down that leaves something behind is named object by object.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm_env, Run};
use git2::Oid;

fn project() -> (TestRepo, Oid) {
    let mut r = TestRepo::new();
    let mut f = base_project_with(&[]);
    f.extend(migration(
        100,
        "orders",
        "create table orders(id serial primary key, email text, status text);",
        "drop table orders;",
    ));
    let base = r.commit(&files(&f), &[], "base");
    (r, base)
}

/// `check --verify BASE..TIP` with the test cluster as the scratch server.
fn verify_range(r: &TestRepo, base: Oid, tip: Oid, scratch: &TestDb) -> Run {
    verify_range_pid(r, base, tip, scratch).0
}

/// [`verify_range`], and the pid of the process that ran, whose scratch databases are named
/// `git_migrate_verify_<pid>_<n>`.
fn verify_range_pid(r: &TestRepo, base: Oid, tip: Oid, scratch: &TestDb) -> (Run, u32) {
    run_pid(
        r,
        &["check", "--verify", "--no-lint", &format!("{base}..{tip}")],
        scratch,
    )
}

/// Runs git-migrate with `args` and the test cluster as the scratch server; returns what it
/// printed and its pid.
fn run_pid(r: &TestRepo, args: &[&str], scratch: &TestDb) -> (Run, u32) {
    let child = crate::common::gm_command(
        &r.path(),
        "",
        args,
        &[("GIT_MIGRATE_SCRATCH_URL", &scratch.url)],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("the git-migrate binary runs");
    let pid = child.id();
    (Run::from_output(&child.wait_with_output().unwrap()), pid)
}

/// How many scratch databases the process `pid` left on the scratch server. Other tests share
/// the server and make their own at the same time, so only this process's count.
fn scratch_left(scratch: &TestDb, pid: u32) -> Option<String> {
    scratch.scalar(&format!(
        "select count(*) from pg_database where datname like 'git\\_migrate\\_verify\\_{pid}\\_%'"
    ))
}

/// A new migration whose down forgets `leftover`: --verify must name it.
fn catches(up: &str, down: &str, expect: &[&str]) {
    let (mut r, base) = project();
    let tip = r.commit(&files(&migration(200, "change", up, down)), &[], "change");
    let scratch = TestDb::new("verify_scratch");
    let run = verify_range(&r, base, tip, &scratch);
    run.expect_code(1).expect_contains("verify-down");
    for e in expect {
        run.expect_contains(e);
    }
    run.expect_contains("migrations/200_change/down.sql");
}

#[test]
fn verify_catches_a_sequence_left_behind() {
    catches(
        "create sequence ticket_seq;",
        "select 1;",
        &["sequence public.ticket_seq exists after down"],
    );
}

#[test]
fn verify_catches_an_index_left_behind() {
    catches(
        "create index orders_email_idx on orders(email);",
        "-- forgot the index\nselect 1;",
        &["index public.orders_email_idx", "exists after down"],
    );
}

#[test]
fn verify_catches_a_type_left_behind() {
    catches(
        "create type mood as enum ('happy', 'sad'); alter table orders add column mood mood;",
        "alter table orders drop column mood;",
        &["type public.mood", "exists after down"],
    );
}

#[test]
fn verify_catches_a_column_default_left_behind() {
    catches(
        "alter table orders alter column status set default 'new';",
        "select 1;",
        &["column public.orders.status", "default"],
    );
}

#[test]
fn verify_passes_a_correct_down_and_reports_sql_failures() {
    let (mut r, base) = project();
    let good = r.commit(
        &files(&migration(
            200,
            "good",
            "create sequence ticket_seq; create index orders_email_idx on orders(email); create type mood as enum ('a'); alter table orders alter column status set default 'new';",
            "alter table orders alter column status drop default; drop type mood; drop index orders_email_idx; drop sequence ticket_seq;",
        )),
        &[],
        "good",
    );
    let scratch = TestDb::new("verify_good");
    let (run, first) = verify_range_pid(&r, base, good, &scratch);
    run.expect_code(0);
    // A down that fails is reported with the file and the server's message.
    let bad = r.commit(
        &files(&migration(
            300,
            "bad",
            "create table t3(id int);",
            "drop table no_such_table;",
        )),
        &[],
        "bad",
    );
    let (run, second) = verify_range_pid(&r, good, bad, &scratch);
    run.expect_code(1)
        .expect_contains("verify-sql")
        .expect_contains("migrations/300_bad/down.sql")
        .expect_contains("no_such_table");
    // The scratch databases were dropped again, after a pass and after a failure.
    assert_eq!(scratch_left(&scratch, first).as_deref(), Some("0"));
    assert_eq!(scratch_left(&scratch, second).as_deref(), Some("0"));
}

#[test]
fn verify_whole_history_in_a_throwaway_cluster() {
    // The shop fixture's every migration, without --scratch-url: the tool starts its own server.
    let repo = TestRepo::shop();
    let run = gm_env(&repo.path(), "", &["verify", "v2.0.0", "--json"], &[]);
    run.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(doc["verified"].as_u64().unwrap() >= 5, "{doc}");
    assert_eq!(doc["verified"], doc["reversed"], "{doc}");
}

#[test]
fn verify_every_pushed_ref_on_one_server() {
    // Two branches pushed at once, each with a new migration whose down leaves a sequence.
    let (mut r, base) = project();
    let a = r.commit_on(
        vec![base],
        &files(&migration(200, "a", "create sequence a_seq;", "select 1;")),
        &[],
        "a",
        Some("refs/heads/a"),
    );
    let b = r.commit_on(
        vec![base],
        &files(&migration(300, "b", "create sequence b_seq;", "select 1;")),
        &[],
        "b",
        Some("refs/heads/b"),
    );
    let scratch = TestDb::new("verify_push");
    let mut cmd = crate::common::gm_command(
        &r.path(),
        "",
        &["check", "--verify", "--pre-push", "origin", "url"],
        &[("GIT_MIGRATE_SCRATCH_URL", &scratch.url)],
    );
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    write!(
        child.stdin.take().unwrap(),
        "refs/heads/a {a} refs/heads/a {base}\nrefs/heads/b {b} refs/heads/b {base}\n"
    )
    .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("sequence public.a_seq exists after down"),
        "{text}"
    );
    assert!(
        text.contains("sequence public.b_seq exists after down"),
        "{text}"
    );
    assert_eq!(scratch_left(&scratch, pid).as_deref(), Some("0"));
}

/// Good migrations around two bad downs: 300's leaves its table and 500's an index, each of
/// which would stop the up from running again. 300's down runs in a transaction (it is rolled
/// back), 500's outside one (the scratch database is rebuilt). 400 and 600 build on 300's and
/// 500's tables, so they pass only in the schema the history says.
fn two_bad_downs() -> (TestRepo, Oid, Oid) {
    let (mut r, base) = project();
    let mut f = migration(
        200,
        "status_default",
        "alter table orders alter column status set default 'new';",
        "alter table orders alter column status drop default;",
    );
    f.extend(migration(
        300,
        "tickets",
        "create table tickets(id int primary key, title text);",
        "-- forgot the table\nselect 1;",
    ));
    f.extend(migration(
        400,
        "ticket_note",
        "alter table tickets add column note text;",
        "alter table tickets drop column note;",
    ));
    f.extend(migration(
        500,
        "labels",
        "create table labels(id int, ticket int); create index orders_email_idx on orders(email);",
        "-- git-migrate:no-transaction\ndrop table labels;",
    ));
    f.extend(migration(
        600,
        "label_name",
        "alter table labels add column name text;",
        "alter table labels drop column name;",
    ));
    let tip = r.commit(&files(&f), &[], "two bad downs");
    (r, base, tip)
}

#[test]
fn verify_goes_on_after_a_down_that_leaves_something_behind() {
    let (r, base, tip) = two_bad_downs();
    let scratch = TestDb::new("verify_goes_on");

    // check --verify: both leftovers named, nothing "not verified", the good ones quiet.
    let (run, check_pid) = verify_range_pid(&r, base, tip, &scratch);
    run.expect_code(1)
        .expect_contains("migrations/300_tickets/down.sql")
        .expect_contains("table public.tickets exists after down")
        .expect_contains("migrations/500_labels/down.sql")
        .expect_contains("index public.orders_email_idx exists after down");
    let all = run.all();
    assert_eq!(all.matches("verify-down").count(), 2, "{all}");
    for absent in [
        "verify-sql",
        "not verified",
        "200_status",
        "400_ticket",
        "600_label",
    ] {
        assert!(!all.contains(absent), "{absent:?} in:\n{all}");
    }

    // verify: every migration verified, the four good ones reversed, the two findings.
    let tip_rev = tip.to_string();
    let (run, verify_pid) = run_pid(&r, &["verify", &tip_rev, "--json"], &scratch);
    run.expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["verified"], 6, "{doc}");
    assert_eq!(doc["reversed"], 4, "{doc}");
    let findings = doc["findings"].as_array().unwrap();
    let got: Vec<(&str, i64)> = findings
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, [("verify-down", 300), ("verify-down", 500)], "{doc}");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .contains("table public.tickets exists after down"),
        "{doc}"
    );
    assert!(
        findings[1]["message"]
            .as_str()
            .unwrap()
            .contains("index public.orders_email_idx exists after down"),
        "{doc}"
    );
    // The progress lines say the same.
    let (run, text_pid) = run_pid(&r, &["verify", &tip_rev], &scratch);
    run.expect_code(1)
        .expect_contains("NOT REVERSED  300_tickets")
        .expect_contains("NOT REVERSED  500_labels")
        .expect_contains("ok       600_label_name")
        .expect_contains("verified 6 migration(s)");

    // Every scratch database, the rebuilt ones too, was dropped.
    for pid in [check_pid, verify_pid, text_pid] {
        assert_eq!(scratch_left(&scratch, pid).as_deref(), Some("0"));
    }
}

#[test]
fn verify_names_the_broken_up_that_stops_the_migrations_after_it() {
    // 300's own up is broken: 400 depends on it, so it is not verified, naming 300. 200, whose
    // down leaves a sequence, is still reported before it.
    let (mut r, base) = project();
    let mut f = migration(200, "seq", "create sequence s200;", "select 1;");
    f.extend(migration(
        300,
        "broken",
        "create table t300(id int);\nalter table no_such_table add column x int;",
        "drop table t300;",
    ));
    f.extend(migration(
        400,
        "after",
        "alter table t300 add column y int;",
        "alter table t300 drop column y;",
    ));
    let tip = r.commit(&files(&f), &[], "broken up");
    let scratch = TestDb::new("verify_broken_up");
    let (run, pid) = verify_range_pid(&r, base, tip, &scratch);
    run.expect_code(1)
        .expect_contains("sequence public.s200 exists after down")
        .expect_contains("up of migration 300 failed in a scratch database")
        .expect_contains("no_such_table")
        .expect_contains("migration 400 was not verified: the up of migration 300 (migrations/300_broken/up.sql) failed");
    assert_eq!(scratch_left(&scratch, pid).as_deref(), Some("0"));
}

#[test]
fn verify_reports_a_history_that_cannot_be_replayed_after_a_finding() {
    // A role is cluster-wide: the fingerprint does not see it, the down leaves it, the up
    // cannot run again, and the rebuilt database cannot replay the up either. The migrations
    // after it are reported as not verified, saying so, and no database is left.
    let role = format!("gm_verify_role_{}", std::process::id());
    let (mut r, base) = project();
    let mut f = migration(200, "role", &format!("create role {role};"), "select 1;");
    f.extend(migration(
        300,
        "next",
        "create table t300(id int);",
        "drop table t300;",
    ));
    let tip = r.commit(&files(&f), &[], "role");
    let scratch = TestDb::new("verify_replay");
    let (run, pid) = verify_range_pid(&r, base, tip, &scratch);
    scratch
        .client()
        .batch_execute(&format!("drop role if exists {role}"))
        .unwrap();
    run.expect_code(1)
        .expect_contains("up again after down of migration 200 failed")
        .expect_contains("migration 300 was not verified: migrations/200_role/up.sql failed when the history was replayed");
    assert_eq!(scratch_left(&scratch, pid).as_deref(), Some("0"));
}
