//! Fleets (issue 17): `deploy`, `rollback` and `promote` over many databases (a `--fleet FILE`,
//! or an environment's `database_urls` / `database_urls_command`), each with its own ledger and
//! its own one-transaction guarantee; canaries and `--max-failures` stop a rollout before the
//! other databases are touched; `status --fleet` groups the databases by commit and flags what
//! is wrong. Twelve databases on the test server, each a real database of its own.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::pg::TestDb;
use crate::common::{gm, gm_env, Run};
use git2::Oid;
use std::path::{Path, PathBuf};

struct Releases {
    repo: TestRepo,
    v1: Oid,
    v2: Oid,
}

/// v1 (users), v2 (orders, items), tagged.
fn releases() -> Releases {
    let mut repo = TestRepo::new();
    let m1 = migration(
        1_700_000_000_001,
        "users",
        "CREATE TABLE users (id int PRIMARY KEY);",
        "DROP TABLE users;",
    );
    let v1 = repo.commit(&files(&base_project_with(&m1)), &[], "users");
    repo.tag("v1", v1);
    let mut m2 = migration(
        1_700_000_000_002,
        "orders",
        "CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);",
        "DROP TABLE orders;",
    );
    m2.extend(migration(
        1_700_000_000_003,
        "items",
        "CREATE TABLE items (id int PRIMARY KEY, order_id int REFERENCES orders);",
        "DROP TABLE items;",
    ));
    let v2 = repo.commit(&files(&m2), &[], "orders and items");
    repo.tag("v2", v2);
    Releases { repo, v1, v2 }
}

/// `n` fresh databases, and a fleet file listing them (with a password on each line, which
/// the server's trust authentication ignores and no output may show).
fn fleet(test: &str, n: usize, dir: &Path) -> (Vec<TestDb>, PathBuf) {
    let dbs: Vec<TestDb> = (0..n)
        .map(|i| TestDb::new(&format!("{test}_{i}")))
        .collect();
    let mut text = String::from("# the tenants\n\n");
    for db in &dbs {
        text.push_str(&format!("{} password=fleet-s3cret\n", db.url));
    }
    let file = dir.join("fleet.txt");
    std::fs::write(&file, text).unwrap();
    (dbs, file)
}

fn at(db: &TestDb) -> Option<String> {
    db.scalar("SELECT to_regclass('git_migrate.deployments')::text")?;
    db.scalar(
        "SELECT to_commit FROM git_migrate.deployments WHERE status = 'ok' ORDER BY id DESC LIMIT 1",
    )
}

fn no_secret(out: &Run) {
    assert!(
        !out.all().contains("fleet-s3cret"),
        "a password was printed:\n{}",
        out.all()
    );
}

#[test]
fn a_fleet_deploys_every_database_and_rolls_back_each_to_the_target() {
    let r = releases();
    let p = r.repo.path();
    let (dbs, file) = fleet("fleet_all", 12, &p);
    let f = file.to_str().unwrap();
    let out = gm(&p, "", &["deploy", "v2", "--fleet", f, "--parallel", "4"]);
    out.expect_code(0)
        .expect_contains("Fleet: deploy v2 on 12 database(s) from")
        .expect_contains("4 at a time, halting at the first failure")
        .expect_contains("Fleet: 12 database(s) in")
        .expect_contains("12 moved, 0 failed.")
        .expect_contains("0 reverted, 3 applied");
    no_secret(&out);
    for db in &dbs {
        assert_eq!(at(db), Some(r.v2.to_string()), "{} not at v2", db.name);
        assert_eq!(
            db.applied(),
            vec![1_700_000_000_001, 1_700_000_000_002, 1_700_000_000_003]
        );
    }
    // Again: nothing to do anywhere.
    gm(&p, "", &["deploy", "v2", "--fleet", f])
        .expect_code(0)
        .expect_contains("12 already there, 0 failed.");

    // Back to v1: reverts need --yes without a terminal, as for one database.
    let out = gm(&p, "", &["rollback", "v1", "--fleet", f]);
    out.expect_code(3)
        .expect_contains("this plan reverts migrations and there is no terminal to confirm it")
        .expect_contains("0 moved, 4 failed, 8 not started");
    let out = gm(
        &p,
        "",
        &["rollback", "v1", "--fleet", f, "--yes", "--parallel", "8"],
    );
    out.expect_code(0)
        .expect_contains("12 moved, 0 failed.")
        .expect_contains("2 reverted, 0 applied");
    no_secret(&out);
    for db in &dbs {
        assert_eq!(at(db), Some(r.v1.to_string()), "{} not at v1", db.name);
        assert_eq!(db.applied(), vec![1_700_000_000_001]);
        assert!(db.has_table("users") && !db.has_table("orders"));
    }
}

/// Every database's dump, but for the rows of failed attempts.
fn dumps(dbs: &[TestDb]) -> Vec<String> {
    dbs.iter()
        .map(|d| d.dump_ignoring_failed_attempts())
        .collect()
}

/// Makes database `db` fail v2: a table of that name exists already.
fn conflict(db: &TestDb) {
    db.client()
        .batch_execute("CREATE TABLE orders (x int)")
        .unwrap();
}

#[test]
fn a_failed_canary_stops_the_rollout_before_the_others_are_touched() {
    let r = releases();
    let p = r.repo.path();
    let (dbs, file) = fleet("fleet_canary", 12, &p);
    let f = file.to_str().unwrap();
    gm(&p, "", &["deploy", "v1", "--fleet", f]).expect_code(0);
    conflict(&dbs[0]);
    let before = dumps(&dbs);
    let out = gm(
        &p,
        "",
        &[
            "deploy",
            "v2",
            "--fleet",
            f,
            "--canary",
            "1",
            "--max-failures",
            "5",
        ],
    );
    out.expect_code(4)
        .expect_contains("the first 1 as canaries")
        .expect_contains(&format!("FAILED  {}", label(&dbs[0])))
        .expect_contains("relation \"orders\" already exists")
        .expect_contains("halted: a canary failed; the 11 database(s) not started are unchanged")
        .expect_contains("0 moved, 1 failed, 11 not started")
        .expect_contains("error: 1 of 12 database(s) failed, 11 not started");
    no_secret(&out);
    for (db, before) in dbs.iter().zip(&before) {
        assert_eq!(
            &db.dump_ignoring_failed_attempts(),
            before,
            "{} changed",
            db.name
        );
        assert_eq!(at(db), Some(r.v1.to_string()));
    }
    // The canary's failed attempt is in its own ledger, and only there.
    assert_eq!(
        dbs[0].scalar("SELECT count(*) FROM git_migrate.deployments WHERE status = 'failed'"),
        Some("1".into())
    );
    assert_eq!(
        dbs[1].scalar("SELECT count(*) FROM git_migrate.deployments WHERE status = 'failed'"),
        Some("0".into())
    );
}

#[test]
fn max_failures_halts_the_rest_and_status_groups_the_fleet() {
    let r = releases();
    let p = r.repo.path();
    let (dbs, file) = fleet("fleet_halt", 12, &p);
    let f = file.to_str().unwrap();
    gm(&p, "", &["deploy", "v1", "--fleet", f]).expect_code(0);
    conflict(&dbs[5]);
    let before = dumps(&dbs);
    // One at a time: 0..4 move, 5 fails, and with --max-failures 0 nothing after it starts.
    let out = gm(
        &p,
        "",
        &["deploy", "v2", "--fleet", f, "--parallel", "1", "--json"],
    );
    out.expect_code(4);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["done"], 5);
    assert_eq!(doc["failed"], 1);
    assert_eq!(doc["not_started"], 6);
    assert_eq!(doc["halted"], "max-failures");
    let statuses: Vec<&str> = doc["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    let mut expected = vec!["done"; 5];
    expected.push("failed");
    expected.extend(["not-started"; 6]);
    assert_eq!(statuses, expected);
    assert_eq!(doc["databases"][5]["exit_code"], 4);
    assert!(doc["databases"][5]["result"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("failed"));
    no_secret(&out);
    for (i, db) in dbs.iter().enumerate() {
        if i < 5 {
            assert_eq!(at(db), Some(r.v2.to_string()));
        } else {
            assert_eq!(
                &db.dump_ignoring_failed_attempts(),
                &before[i],
                "{i} changed"
            );
        }
    }

    // status --fleet: v2 (the target) 5, v1 7; the failed attempt is flagged.
    let out = gm(&p, "", &["status", "v2", "--fleet", f]);
    out.expect_code(0)
        .expect_contains("fleet       12 database(s) from")
        .expect_contains("flagged     1 database(s)")
        .expect_contains(&format!("{}  last attempt FAILED", label(&dbs[5])))
        .expect_contains("5 of 12 database(s) at v2 with nothing flagged");
    no_secret(&out);
    let row = |c: Oid| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&c.to_string()[..10]))
            .unwrap_or_else(|| panic!("no row for {c}:\n{}", out.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row(r.v2)[1..], ["v2", "5", "target"]);
    assert_eq!(row(r.v1)[1..], ["v1", "7"]);
    // The hand-made table that made it fail is drift too.
    out.expect_contains(&format!(
        "{}  drift: the schema changed outside git-migrate",
        label(&dbs[5])
    ));
    let out = gm(&p, "", &["status", "v2", "--fleet", f, "--json"]);
    out.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["groups"][0]["commit"], r.v2.to_string());
    assert_eq!(doc["groups"][0]["databases"], 5);
    assert_eq!(doc["groups"][0]["at_target"], true);
    assert_eq!(doc["groups"][1]["tags"][0], "v1");
    assert_eq!(doc["groups"][1]["databases"], 7);
    assert_eq!(doc["in_sync"], 5);
    assert_eq!(doc["databases"][5]["last"]["status"], "failed");
    gm(&p, "", &["status", "v2", "--fleet", f, "--exit-code"]).expect_code(1);

    // A schema changed by hand is flagged as drift; an unreachable database fails the read.
    dbs[2]
        .client()
        .batch_execute("ALTER TABLE users ADD COLUMN note text")
        .unwrap();
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("host=/nonexistent-socket-dir dbname=gone password=fleet-s3cret\n");
    std::fs::write(&file, text).unwrap();
    let out = gm(&p, "", &["status", "v2", "--fleet", f]);
    out.expect_code(4)
        .expect_contains(&format!(
            "{}  drift: the schema changed outside git-migrate since deployment #",
            label(&dbs[2])
        ))
        .expect_contains("unreachable: ")
        .expect_contains("1 of 13 database(s) could not be read");
    no_secret(&out);
}

/// How a test database is shown: its redacted connection string.
fn label(db: &TestDb) -> String {
    let socket = db
        .url
        .split(' ')
        .find_map(|kv| kv.strip_prefix("host="))
        .unwrap()
        .to_string();
    let port = db
        .url
        .split(' ')
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap()
        .to_string();
    format!("{socket}:{port}/{}", db.name)
}

#[test]
fn an_environment_names_its_fleet_and_promote_moves_it() {
    let r = releases();
    let p = r.repo.path();
    let staging = TestDb::new("fleet_env_staging");
    let tenants: Vec<TestDb> = (0..3)
        .map(|i| TestDb::new(&format!("fleet_env_t{i}")))
        .collect();
    let list = p.join("list-tenants.sh");
    std::fs::write(
        &list,
        format!(
            "#!/bin/sh\necho '# from the service registry'\necho '{}'\necho '{}'\n",
            tenants[1].url, tenants[2].url
        ),
    )
    .unwrap();
    std::fs::write(
        p.join("git-migrate.yaml"),
        format!(
            "environments:\n  staging:\n    database_url: ${{STAGING_URL}}\n  tenants:\n    promote_from: staging\n    database_urls:\n      - ${{T0_URL}}\n      - \"{}\"\n  registry:\n    database_urls_command: sh {}\n",
            tenants[1].url,
            list.display()
        ),
    )
    .unwrap();
    let env = [
        ("STAGING_URL", staging.url.as_str()),
        ("T0_URL", tenants[0].url.as_str()),
    ];
    // One database of a fleet cannot be planned without naming it.
    gm_env(&p, "", &["plan", "v1", "--env", "tenants"], &env)
        .expect_code(2)
        .expect_contains(
            "environment tenants is a fleet of databases; this command runs on one database",
        )
        .expect_contains("pick one with --database-url");
    // promote_from holds for every database of the fleet: v1 never ran on staging.
    gm_env(
        &p,
        "",
        &["deploy", "v1", "--env", "tenants", "--parallel", "1"],
        &env,
    )
    .expect_code(3)
    .expect_contains("0 moved, 1 failed, 1 not started");
    gm_env(&p, "", &["deploy", "v1", "--env", "staging"], &env).expect_code(0);
    gm_env(&p, "", &["deploy", "v1", "--env", "tenants"], &env)
        .expect_code(0)
        .expect_contains("from environments.tenants.database_urls")
        .expect_contains("2 moved, 0 failed.");
    // staging moves on; promote copies its commit to every tenant.
    gm_env(&p, "", &["deploy", "v2", "--env", "staging"], &env).expect_code(0);
    let out = gm_env(&p, "", &["promote", "staging", "tenants"], &env);
    out.expect_code(0)
        .expect_contains("Promoting staging -> tenants")
        .expect_contains("Fleet: promote staging -> tenants (v2) on 2 database(s)")
        .expect_contains("2 moved, 0 failed.");
    assert_eq!(at(&tenants[0]), Some(r.v2.to_string()));
    assert_eq!(at(&tenants[1]), Some(r.v2.to_string()));
    assert_eq!(at(&tenants[2]), None, "tenant 2 is not in that environment");
    gm_env(&p, "", &["status", "v2", "--env", "tenants"], &env)
        .expect_code(0)
        .expect_contains("fleet       2 database(s) from environments.tenants.database_urls")
        .expect_contains("in sync: all 2 database(s) at v2");
    // status --all-envs shows a fleet's one commit, or says its databases disagree.
    let out = gm_env(&p, "", &["status", "--all-envs"], &env);
    out.expect_code(4).expect_contains(
        "error: its databases are at 2 different commits; see `git migrate status --env registry`",
    );
    let tenants_row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("tenants "))
        .unwrap();
    assert!(
        tenants_row.contains(&r.v2.to_string()[..10]) && tenants_row.contains(" v2 "),
        "{tenants_row}"
    );
    // The command's list: tenants 1 and 2; 1 is there already.
    let out = gm_env(&p, "", &["deploy", "v2", "--env", "registry"], &env);
    out.expect_code(0)
        .expect_contains("from environments.registry.database_urls_command")
        .expect_contains("1 moved, 1 already there, 0 failed.");
    assert_eq!(at(&tenants[2]), Some(r.v2.to_string()));
    // --database-url picks one database of a fleet environment, under its rules.
    gm_env(
        &p,
        "",
        &[
            "status",
            "--env",
            "tenants",
            "--database-url",
            &tenants[0].url,
        ],
        &env,
    )
    .expect_code(0)
    .expect_contains("environment tenants");
    // A list with a database twice is refused before anything runs.
    let twice = p.join("twice.txt");
    std::fs::write(&twice, format!("{0}\n{0}\n", tenants[0].url)).unwrap();
    gm(
        &p,
        "",
        &["deploy", "v1", "--fleet", twice.to_str().unwrap(), "--yes"],
    )
    .expect_code(2)
    .expect_contains("lines 1 and 2 name the same database");
    assert_eq!(at(&tenants[0]), Some(r.v2.to_string()));
    // A fleet and one database at once, or a plan file over a fleet: refused, nothing runs.
    let one = p.join("one.txt");
    std::fs::write(&one, format!("{}\n", tenants[0].url)).unwrap();
    let one = one.to_str().unwrap();
    gm(
        &p,
        "",
        &[
            "deploy",
            "v1",
            "--fleet",
            one,
            "--database-url",
            &tenants[0].url,
        ],
    )
    .expect_code(2)
    .expect_contains("--fleet and --database-url name different databases");
    gm(&p, "", &["deploy", "--plan", "plan.json", "--fleet", one])
        .expect_code(2)
        .expect_contains("a plan file holds the plan of one database; it cannot run over a fleet");
    // A failing list command stops before anything runs.
    std::fs::write(
        p.join("git-migrate.yaml"),
        "environments:\n  broken:\n    database_urls_command: echo 'registry down' >&2; exit 7\n",
    )
    .unwrap();
    gm(&p, "", &["deploy", "v1", "--env", "broken"])
        .expect_code(4)
        .expect_contains("environments.broken.database_urls_command")
        .expect_contains("registry down");
    assert_eq!(at(&tenants[0]), Some(r.v2.to_string()));
}

/// Ctrl-C (here a SIGINT to the parent alone, as a CI runner sends it) is forwarded once to
/// each running database: each rolls back and exits 130; no other database starts; every
/// database is exactly as before.
#[test]
fn an_interrupt_rolls_back_the_running_databases_and_starts_no_more() {
    use crate::test_interrupt::{slow_repo, snapshot, spawn_gm, wait_for_activity, SLOW_TX};
    let repo = slow_repo(SLOW_TX);
    let p = repo.path();
    let (dbs, file) = fleet("fleet_sigint", 4, &p);
    let f = file.to_str().unwrap();
    gm(&p, "", &["deploy", "v1", "--fleet", f]).expect_code(0);
    let before: Vec<_> = dbs.iter().map(snapshot).collect();
    let mut bg = spawn_gm(&p, "", &["deploy", "v2", "--fleet", f, "--parallel", "2"]);
    wait_for_activity(&dbs[0], &mut bg, "pg_sleep", false);
    wait_for_activity(&dbs[1], &mut bg, "pg_sleep", false);
    let started = std::time::Instant::now();
    bg.signal(libc::SIGINT);
    let out = bg.finish(std::time::Duration::from_secs(20));
    out.expect_code(130)
        .expect_contains("interrupted: rolled back, nothing changed")
        .expect_contains("halted: interrupted; the 2 database(s) not started are unchanged")
        .expect_contains("0 moved, 2 failed, 2 not started");
    no_secret(&out);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the running statements were not cancelled"
    );
    for (db, before) in dbs.iter().zip(&before) {
        assert_eq!(&snapshot(db), before, "{} changed", db.name);
        assert!(!db.has_table("public.slow"));
    }
}

/// Promotion from a fleet: every database of FROM must be at the same commit, and a failed
/// attempt on any one of them blocks it.
#[test]
fn promote_from_a_fleet_needs_every_database_there() {
    let r = releases();
    let p = r.repo.path();
    let from: Vec<TestDb> = (0..2)
        .map(|i| TestDb::new(&format!("fleet_from_{i}")))
        .collect();
    let to = TestDb::new("fleet_from_prod");
    std::fs::write(
        p.join("git-migrate.yaml"),
        "environments:\n  canaries:\n    database_urls: [\"${C0}\", \"${C1}\"]\n  prod:\n    database_url: ${PROD}\n    promote_from: canaries\n",
    )
    .unwrap();
    let env = [
        ("C0", from[0].url.as_str()),
        ("C1", from[1].url.as_str()),
        ("PROD", to.url.as_str()),
    ];
    gm_env(&p, "", &["deploy", "v1", "--env", "canaries"], &env).expect_code(0);
    gm_env(
        &p,
        "",
        &[
            "deploy",
            "v2",
            "--env",
            "canaries",
            "--database-url",
            &from[0].url,
        ],
        &env,
    )
    .expect_code(0);
    // At two commits: refused, naming why.
    gm_env(&p, "", &["promote", "canaries", "prod", "--yes"], &env)
        .expect_code(4)
        .expect_contains("its databases are at 2 different commits");
    // Both at v2: promoted.
    gm_env(&p, "", &["deploy", "v2", "--env", "canaries"], &env)
        .expect_code(0)
        .expect_contains("1 moved, 1 already there, 0 failed.");
    gm_env(&p, "", &["promote", "canaries", "prod", "--yes"], &env)
        .expect_code(0)
        .expect_contains("Promoting canaries -> prod");
    assert_eq!(at(&to), Some(r.v2.to_string()));
    // A failed attempt on one database of the fleet (a rollback whose down a view blocks)
    // blocks the next promotion, though both are still at v2.
    from[1]
        .client()
        .batch_execute("CREATE VIEW item_ids AS SELECT id FROM items")
        .unwrap();
    gm_env(
        &p,
        "",
        &[
            "rollback",
            "v1",
            "--env",
            "canaries",
            "--database-url",
            &from[1].url,
            "--yes",
        ],
        &env,
    )
    .expect_code(4);
    // The other database moves later, successfully: its newer "ok" must not hide the failure.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let one = [
        "--env",
        "canaries",
        "--database-url",
        from[0].url.as_str(),
        "--yes",
    ];
    gm_env(&p, "", &[&["rollback", "v1"][..], &one].concat(), &env).expect_code(0);
    gm_env(&p, "", &[&["deploy", "v2"][..], &one].concat(), &env).expect_code(0);
    gm_env(&p, "", &["promote", "canaries", "prod", "--yes"], &env)
        .expect_code(3)
        .expect_contains("rollback")
        .expect_contains("ended failed");
    assert_eq!(at(&to), Some(r.v2.to_string()));
}
