//! Plan files (issue 15): `plan REV --out FILE` writes the reviewed plan, `deploy --plan FILE`
//! runs it only while it still holds (refused, exit 3, nothing changed, after another deploy,
//! a hand change to the schema or a hand edit of the file), `plan --show FILE` renders it
//! without a database, a rollback plan runs too, and a password never reaches the file.

use crate::common::git::{base_project_with, files, migration, TestRepo};
use crate::common::gm;
use crate::common::pg::TestDb;
use std::path::{Path, PathBuf};

/// v1: table a; v2: table b (and a migration with no-transaction-free SQL); v3: table c.
fn repo() -> TestRepo {
    let mut repo = TestRepo::new();
    let m1 = migration(
        1,
        "a",
        "create table a (id int primary key);",
        "drop table a;",
    );
    let c1 = repo.commit(&files(&base_project_with(&m1)), &[], "one");
    repo.tag("v1", c1);
    let m2 = migration(2, "b", "create table b (id int);\n", "drop table b;\n");
    let c2 = repo.commit(&files(&m2), &[], "two");
    repo.tag("v2", c2);
    let m3 = migration(3, "c", "create table c (id int);\n", "drop table c;\n");
    let c3 = repo.commit(&files(&m3), &[], "three");
    repo.tag("v3", c3);
    repo
}

fn commit_of(repo: &TestRepo, rev: &str) -> String {
    repo.repo.revparse_single(rev).unwrap().id().to_string()
}

/// The commit the ledger says the database is at.
fn deployed(db: &TestDb) -> Option<String> {
    db.scalar(
        "SELECT to_commit FROM git_migrate.deployments WHERE status = 'ok' ORDER BY id DESC LIMIT 1",
    )
}

fn plan_path(p: &Path) -> PathBuf {
    p.join("plan.json")
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_plan_file_deploys_what_it_holds() {
    let repo = repo();
    let p = repo.path();
    let db = TestDb::new("planfile_deploys");
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let f = plan_path(&p);
    let fs = f.to_str().unwrap();
    gm(&p, &db.url, &["plan", "v3", "--out", fs])
        .expect_code(0)
        .expect_contains("Plan: deploy to v3")
        .expect_contains("plan file written to");
    let doc = read_json(&f);
    assert_eq!(doc["format"], "git-migrate-plan/1");
    assert_eq!(doc["to"]["rev"], "v3");
    assert_eq!(doc["to"]["commit"], commit_of(&repo, "v3").as_str());
    assert_eq!(doc["from_commit"], commit_of(&repo, "v1").as_str());
    assert_eq!(doc["options"]["mode"], "deploy");
    let statements = doc["statements"].as_array().unwrap();
    let got: Vec<(i64, &str, &str)> = statements
        .iter()
        .map(|s| {
            (
                s["version"].as_i64().unwrap(),
                s["direction"].as_str().unwrap(),
                s["sql"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (2, "up", "create table b (id int);\n"),
            (3, "up", "create table c (id int);\n")
        ]
    );
    for key in ["digest", "ledger_digest", "schema_digest"] {
        assert!(
            doc[key].as_str().unwrap().starts_with("sha256:"),
            "{key}: {doc}"
        );
    }
    // Nothing ran yet.
    assert!(!db.has_table("b"));
    gm(&p, &db.url, &["deploy", "--plan", fs, "--yes"])
        .expect_code(0)
        .expect_contains("matches")
        .expect_contains("2 applied");
    assert!(db.has_table("b") && db.has_table("c"));
    assert_eq!(deployed(&db), Some(commit_of(&repo, "v3")));
    // The ledger names the revision as it was given.
    assert_eq!(
        db.scalar("SELECT target_ref FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("v3")
    );
}

#[test]
fn a_plan_file_is_refused_after_another_deploy() {
    let repo = repo();
    let p = repo.path();
    let db = TestDb::new("planfile_moved");
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let f = plan_path(&p);
    let fs = f.to_str().unwrap();
    gm(&p, &db.url, &["plan", "v3", "--out", fs]).expect_code(0);
    gm(&p, &db.url, &["deploy", "v2", "--yes"]).expect_code(0);
    let before = db.dump(false, None);
    gm(&p, &db.url, &["deploy", "--plan", fs, "--yes"])
        .expect_code(3)
        .expect_contains("the plan file no longer matches")
        .expect_contains("the deployed commit moved")
        .expect_contains("git migrate plan v3 --out");
    assert_eq!(before, db.dump(false, None), "the database changed");
    assert_eq!(deployed(&db), Some(commit_of(&repo, "v2")));
}

#[test]
fn a_plan_file_is_refused_after_a_hand_change_to_the_schema() {
    let repo = repo();
    let p = repo.path();
    let db = TestDb::new("planfile_hand_schema");
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let f = plan_path(&p);
    let fs = f.to_str().unwrap();
    gm(&p, &db.url, &["plan", "v2", "--out", fs]).expect_code(0);
    db.client()
        .batch_execute("CREATE TABLE hand_made (id int)")
        .unwrap();
    let before = db.dump(false, None);
    gm(&p, &db.url, &["deploy", "--plan", fs, "--yes"])
        .expect_code(3)
        .expect_contains("the live schema changed since the plan was made");
    assert_eq!(before, db.dump(false, None), "the database changed");
    assert!(!db.has_table("b"));
    assert_eq!(deployed(&db), Some(commit_of(&repo, "v1")));
}

#[test]
fn a_plan_file_edited_by_hand_is_refused() {
    let repo = repo();
    let p = repo.path();
    let db = TestDb::new("planfile_tampered");
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let f = plan_path(&p);
    let fs = f.to_str().unwrap();
    gm(&p, &db.url, &["plan", "v2", "--out", fs]).expect_code(0);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("create table b (id int);"));
    // One statement's SQL changed, the digest left as it was.
    std::fs::write(
        &f,
        text.replace("create table b (id int);", "create table b (id bigint);"),
    )
    .unwrap();
    let before = db.dump(false, None);
    gm(&p, &db.url, &["deploy", "--plan", fs, "--yes"])
        .expect_code(3)
        .expect_contains("edited after it was made")
        .expect_contains("git migrate plan <rev> --out");
    gm(&p, "", &["plan", "--show", fs])
        .expect_code(3)
        .expect_contains("edited after it was made");
    // A format this version does not know.
    std::fs::write(
        &f,
        text.replace("git-migrate-plan/1", "git-migrate-plan/99"),
    )
    .unwrap();
    gm(&p, &db.url, &["deploy", "--plan", fs, "--yes"])
        .expect_code(3)
        .expect_contains("format is git-migrate-plan/99");
    assert_eq!(before, db.dump(false, None), "the database changed");
    assert!(!db.has_table("b"));
    // Flags that would change the plan do not go with --plan.
    std::fs::write(&f, &text).unwrap();
    gm(&p, &db.url, &["deploy", "v2", "--plan", fs, "--yes"]).expect_code(2);
    gm(
        &p,
        &db.url,
        &["deploy", "--plan", fs, "--compute-downs", "--yes"],
    )
    .expect_code(2);
    assert!(!db.has_table("b"));
}

#[test]
fn a_password_in_the_url_never_reaches_the_plan_file() {
    const SECRET: &str = "Pl4nF1le-S3cret";
    let repo = repo();
    let p = repo.path();
    let db = TestDb::new("planfile_password");
    let rest = db.url.strip_prefix("host=").expect("host= first");
    let sock = rest[..rest.find(" port=").unwrap()].trim_matches('\'');
    // The test cluster trusts local connections: the password is accepted and ignored.
    let url = format!("postgresql://postgres:{SECRET}@/{}?host={sock}", db.name);
    let f = plan_path(&p);
    let fs = f.to_str().unwrap();
    let r = gm(&p, &url, &["plan", "v2", "--out", fs]);
    r.expect_code(0);
    assert!(!r.all().contains(SECRET), "{}", r.all());
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        !text.contains(SECRET),
        "the password is in the plan file:\n{text}"
    );
    assert!(text.contains(&db.name), "the database is named:\n{text}");
    let r = gm(&p, &url, &["deploy", "--plan", fs, "--yes"]);
    r.expect_code(0);
    assert!(!r.all().contains(SECRET), "{}", r.all());
    assert_eq!(deployed(&db), Some(commit_of(&repo, "v2")));
}

#[test]
fn plan_show_renders_the_file_without_a_database() {
    let repo = repo();
    let p = repo.path();
    let db = TestDb::new("planfile_show");
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let f = plan_path(&p);
    let fs = f.to_str().unwrap();
    gm(&p, &db.url, &["plan", "v2", "--out", fs]).expect_code(0);
    let doc = read_json(&f);
    let digest = doc["digest"].as_str().unwrap();
    // No DATABASE_URL at all.
    gm(&p, "", &["plan", "--show", fs])
        .expect_code(0)
        .expect_contains(digest)
        .expect_contains("Plan: deploy to v2")
        .expect_contains(&format!("from: {}", commit_of(&repo, "v1")))
        .expect_contains(&format!("to: v2: {}", commit_of(&repo, "v2")))
        .expect_contains("made ")
        .expect_contains("by test")
        .expect_contains("up   2_b")
        .expect_contains("| create table b (id int);")
        .expect_contains("Statements (1):");
    let r = gm(&p, "", &["plan", "--show", fs, "--json"]);
    r.expect_code(0);
    let shown: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(shown, doc);
}

#[test]
fn a_rollback_plan_file_deploys() {
    let repo = repo();
    let p = repo.path();
    let db = TestDb::new("planfile_rollback");
    gm(&p, &db.url, &["deploy", "v3", "--yes"]).expect_code(0);
    let f = plan_path(&p);
    let fs = f.to_str().unwrap();
    gm(&p, &db.url, &["plan", "--rollback", "v1", "--out", fs])
        .expect_code(0)
        .expect_contains("Plan: rollback to v1");
    let doc = read_json(&f);
    assert_eq!(doc["options"]["mode"], "rollback");
    let downs: Vec<(i64, &str)> = doc["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["version"].as_i64().unwrap(), s["sql"].as_str().unwrap()))
        .collect();
    assert_eq!(downs, vec![(3, "drop table c;\n"), (2, "drop table b;\n")]);
    gm(&p, &db.url, &["deploy", "--plan", fs, "--yes"])
        .expect_code(0)
        .expect_contains("2 reverted");
    assert_eq!(db.applied(), vec![1]);
    assert_eq!(deployed(&db), Some(commit_of(&repo, "v1")));
    assert_eq!(
        db.scalar("SELECT kind FROM git_migrate.deployments ORDER BY id DESC LIMIT 1")
            .as_deref(),
        Some("rollback")
    );
}

/// The checks before the lock passed, and the schema changed while `deploy --plan` waited for
/// the deploy lock: the executor compares the digests again under the lock and refuses.
#[test]
fn a_plan_file_is_checked_again_under_the_lock() {
    use crate::common::reliability::spawn_gm;
    use std::time::{Duration, Instant};
    let repo = repo();
    let p = repo.path();
    let db = TestDb::new("planfile_under_lock");
    gm(&p, &db.url, &["deploy", "v1", "--yes"]).expect_code(0);
    let f = plan_path(&p);
    let fs = f.to_str().unwrap();
    gm(&p, &db.url, &["plan", "v2", "--out", fs]).expect_code(0);
    // Hold the deploy lock as another deployment would (same key, transaction-scoped).
    let key = git_migrate_core::ledger::Ledger::default().lock_key();
    let mut holder = db.client();
    holder
        .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({key})"))
        .unwrap();
    let bg = spawn_gm(
        &p,
        &db.url,
        &["deploy", "--plan", fs, "--yes", "--lock-timeout", "30"],
    );
    let mut watch = db.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = watch
            .simple_query(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND NOT l.granted \
                   AND a.application_name = 'git-migrate'",
            )
            .unwrap()
            .into_iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v.parse().unwrap()),
                _ => None,
            })
            .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deploy --plan never waited for the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The hand change commits with the release of the lock.
    holder
        .batch_execute("CREATE TABLE hand_made_late (id int); COMMIT")
        .unwrap();
    bg.finish(Duration::from_secs(30))
        .expect_code(3)
        .expect_contains("the plan file is stale")
        .expect_contains("the live schema changed since the plan was made")
        .expect_contains("git migrate plan v2 --out");
    assert!(!db.has_table("b"));
    assert_eq!(deployed(&db), Some(commit_of(&repo, "v1")));
}
