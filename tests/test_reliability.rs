//! Kill trials (design §1 principle 2, §7.3): a deployment interrupted at a random moment —
//! the tool SIGKILLed, its backend terminated with `pg_terminate_backend`, or the server
//! stopped with `pg_ctl stop -m immediate` — leaves the database exactly in the state before
//! or exactly in the state after, never in between, and running the same command again reaches
//! the target without manual repair.
//!
//! The repository has 300 migrations (a table with rows, some indexes and comments, and a row
//! in `public.apply_log` counting how often each up ran); tag `base` has 100 of them, `tip` all.
//! The database also has Hasura's catalog (`hdb_catalog.schema_migrations`, `hdb_version`
//! with `cli_state`, `hdb_metadata`, `hdb_schema_notifications`), which every deployment
//! writes in the same transaction. Half of the trials deploy `base` → `tip` (200 applies), the
//! other half roll back `tip` → `base` (200 reverts). Each trial starts from a copy of a
//! template database (`CREATE DATABASE … TEMPLATE`), so the before- and after-states are known
//! exactly: they are the snapshots ([`Snapshot`]) of reference runs made once at the start.
//!
//! The moment is drawn from a seeded RNG: uniformly over a whole run (T, the median duration of
//! the uninterrupted runs of the same command so far: the reference run and the re-runs that
//! did the whole work) for trials 0-5, 12-17, …, and in the commit window (85-110 % of T) for
//! trials 6-11, 18-23, …, where the database can be caught after COMMIT while the tool has not
//! exited yet.
//!
//! `GIT_MIGRATE_TRIALS` sets the number of trials (default 8 here; `bench/reliability.sh` runs
//! 60), `GIT_MIGRATE_TRIAL_SEED` replays a run (the seed is printed first). The summary line is
//! `trials=N before=B after=A other=0 double_applies=0 lost_state_rows=0 false_reports=0`
//! (a false report: the tool exited 0 but the database is before, or said "nothing was
//! changed" but the database is after).

use crate::common::gm;
use crate::common::reliability::{
    double_applies_and_lost_rows, kill_repo, spawn_gm, terminate_tool_sessions, trial_count,
    trial_seed, wait_for_tool_sessions_to_end, CrashableCluster, Rng, Snapshot,
};
use crate::test_hasura_catalog::{live_metadata, CATALOG_DDL};
use std::time::{Duration, Instant};

const MIGRATIONS: usize = 300;
const BASE: usize = 100;

/// How a trial interrupts the tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// SIGKILL to the git-migrate process.
    Sigkill,
    /// `pg_terminate_backend` of its session.
    Terminate,
    /// `pg_ctl stop -m immediate`, then start the server again.
    ServerStop,
}

/// What the database looks like after the interruption.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Before,
    After,
    Other(Vec<String>),
}

/// Hasura's state tables as the Hasura CLI and server leave them, with nothing applied yet.
fn hasura_catalog_sql() -> String {
    format!(
        "{CATALOG_DDL}
CREATE TABLE hdb_catalog.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO hdb_catalog.hdb_metadata (id, metadata, resource_version) VALUES (1, '{}', 7);
INSERT INTO hdb_catalog.hdb_schema_notifications (id, notification, resource_version, instance_id)
VALUES (1, '{{\"metadata\":false,\"remote_schemas\":[],\"sources\":[],\"data_connectors\":[]}}', 7,
        '8d1c2f0e-3b7a-4c55-a1e2-96f4d2b0c7aa');",
        live_metadata().to_string().replace('\'', "''")
    )
}

#[test]
fn kill_trials_leave_the_database_before_or_after() {
    let trials = trial_count(8);
    let seed = trial_seed();
    println!(
        "kill trials: {trials} trials, seed {seed} (replay with GIT_MIGRATE_TRIAL_SEED={seed})"
    );
    let mut rng = Rng::new(seed);
    let t0 = Instant::now();

    let repo = kill_repo(MIGRATIONS, BASE);
    let p = repo.path();
    let mut cluster = CrashableCluster::start();

    // Templates: `at_base` (deployed to base), `at_tip` (then deployed to tip), `at_rb` (then
    // rolled back to base). Their snapshots are the states every trial is compared with.
    cluster.create_database("at_base", None);
    cluster.execute("at_base", &hasura_catalog_sql());
    gm(&p, &cluster.url("at_base"), &["deploy", "base", "--yes"]).expect_code(0);
    let timed = |db: &str, template: &str, args: &[&str]| {
        let url = cluster.create_database(db, Some(template));
        let started = Instant::now();
        gm(&p, &url, args).expect_code(0);
        started.elapsed()
    };
    let deploy_args: &[&str] = &["deploy", "tip", "--yes"];
    let rollback_args: &[&str] = &["rollback", "base", "--yes"];
    let deploy_time = timed("at_tip", "at_base", deploy_args);
    let rollback_time = timed("at_rb", "at_tip", rollback_args);
    let snap = |db: &str| Snapshot::take(&mut cluster.client(db));
    let (s_base, s_tip, s_rb) = (snap("at_base"), snap("at_tip"), snap("at_rb"));
    assert_ne!(s_base, s_tip);
    assert_ne!(s_tip, s_rb);
    // The rollback's schema and data are the base's; only the deployment history and
    // Hasura's metadata resource_version (bumped by every write) differ.
    assert_eq!(
        s_rb.differences(&s_base, 10),
        vec![
            "git_migrate.deployments: differs",
            "hdb_catalog.hdb_metadata: differs",
            "hdb_catalog.hdb_schema_notifications: differs"
        ]
    );
    // What a trial checks is there: 200 more tables, and Hasura's state follows the ledger.
    assert_eq!(
        s_tip
            .data
            .keys()
            .filter(|k| k.starts_with("data public.t_"))
            .count(),
        MIGRATIONS
    );
    for db in ["at_base", "at_tip", "at_rb"] {
        assert_eq!(
            double_applies_and_lost_rows(&mut cluster.client(db)),
            (0, 0),
            "{db}"
        );
    }
    println!(
        "kill trials: setup {:.1?}; reference runs: deploy of {} migrations {deploy_time:.2?}, \
         rollback of {} {rollback_time:.2?}",
        t0.elapsed(),
        MIGRATIONS - BASE,
        MIGRATIONS - BASE
    );

    let (mut before, mut after, mut other) = (0, 0, 0);
    let (mut double_applies, mut lost_state_rows) = (0i64, 0i64);
    let mut false_reports = 0;
    let mut finished_first = 0;
    // Durations of uninterrupted runs, per direction: the reference run, then every re-run
    // that did the whole work (the trial left the before-state). Their median is the run
    // time the delays are drawn against, so it follows the machine's load.
    let mut durations: [Vec<Duration>; 2] = [vec![deploy_time], vec![rollback_time]];
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    // (kill, deploy?) -> (before, after)
    let mut by_kind: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    let mut failures: Vec<String> = Vec::new();
    for i in 0..trials {
        let deploy = i % 2 == 0;
        let kill = [Kill::Sigkill, Kill::Terminate, Kill::ServerStop][(i / 2) % 3];
        let (template, args, s_before, s_after) = if deploy {
            ("at_base", deploy_args, &s_base, &s_tip)
        } else {
            ("at_tip", rollback_args, &s_tip, &s_rb)
        };
        let budget = median(&durations[usize::from(!deploy)]);
        let name = format!("trial_{i}");
        let url = cluster.create_database(&name, Some(template));
        // Trials 0-5, 12-17, …: anywhere in the run. Trials 6-11, 18-23, …: in the commit
        // window (the last 15 % of a reference run, or just after it), where the database can
        // be caught after the commit while the tool has not yet exited.
        let late = (i / 6) % 2 == 1;
        let (lo, hi) = if late {
            (budget * 17 / 20, budget * 11 / 10)
        } else {
            (Duration::ZERO, budget)
        };
        let delay = lo + Duration::from_micros(rng.below((hi - lo).as_micros() as u64));

        let mut bg = spawn_gm(&p, &url, args);
        let at = bg.started + delay;
        let mut ended = false;
        while Instant::now() < at {
            if bg.has_exited() {
                ended = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if !ended {
            match kill {
                Kill::Sigkill => bg.kill(),
                Kill::Terminate => {
                    // The first moment after the delay at which the tool has a session.
                    let mut c = cluster.client("postgres");
                    while terminate_tool_sessions(&mut c, &name) == 0 {
                        if bg.has_exited() {
                            ended = true;
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                Kill::ServerStop => {
                    cluster.crash();
                    cluster.restart();
                }
            }
        }
        if ended {
            finished_first += 1;
        }
        let run = bg.finish(Duration::from_secs(300));
        wait_for_tool_sessions_to_end(
            &mut cluster.client("postgres"),
            &name,
            Duration::from_secs(120),
        );

        let mut c = cluster.client(&name);
        let s = Snapshot::take(&mut c);
        let outcome = if &s == s_before {
            before += 1;
            Outcome::Before
        } else if &s == s_after {
            after += 1;
            Outcome::After
        } else {
            other += 1;
            let mut d = vec!["vs before:".to_string()];
            d.extend(s.differences(s_before, 8));
            d.push("vs after:".to_string());
            d.extend(s.differences(s_after, 8));
            Outcome::Other(d)
        };
        let (d1, l1) = double_applies_and_lost_rows(&mut c);
        drop(c);
        // What the tool said must match what happened: success means the target was reached,
        // "nothing was changed" means it was not. (An uncertain commit claims neither.)
        let false_report = match outcome {
            Outcome::Before => run.code == 0,
            Outcome::After => run.stderr.contains("nothing was changed"),
            Outcome::Other(_) => false,
        };
        if false_report {
            false_reports += 1;
        }
        let tally = by_kind
            .entry(format!(
                "{} {kill:?}",
                if deploy { "deploy" } else { "rollback" }
            ))
            .or_default();
        match outcome {
            Outcome::Before => tally.0 += 1,
            Outcome::After => tally.1 += 1,
            Outcome::Other(_) => {}
        }

        // The same command again reaches the target: no repair, no manual step.
        let started = Instant::now();
        let again = gm(&p, &url, args);
        if outcome == Outcome::Before && again.code == 0 {
            durations[usize::from(!deploy)].push(started.elapsed());
        }
        let mut c = cluster.client(&name);
        let end = Snapshot::take(&mut c);
        let (d2, l2) = double_applies_and_lost_rows(&mut c);
        drop(c);
        double_applies += d1 + d2;
        lost_state_rows += l1 + l2;

        let line = format!(
            "trial {i}: {} {kill:?} after {} ms{}{}: exit {}{}, database {}; again: exit {}, {}",
            if deploy { "deploy" } else { "rollback" },
            delay.as_millis(),
            if late { " (commit window)" } else { "" },
            if ended { " (had already finished)" } else { "" },
            run.code,
            // What the tool said about it, when it failed.
            run.stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .map(|l| format!(" ({l})"))
                .unwrap_or_default(),
            match &outcome {
                Outcome::Before => "before".to_string(),
                Outcome::After => "after".to_string(),
                Outcome::Other(d) => format!("OTHER:\n    {}", d.join("\n    ")),
            },
            again.code,
            if &end == s_after {
                "at the target".to_string()
            } else {
                format!(
                    "NOT at the target:\n    {}",
                    end.differences(s_after, 8).join("\n    ")
                )
            },
        );
        let line = if false_report {
            format!("{line}\n    FALSE REPORT: the tool's exit code or message contradicts the database")
        } else {
            line
        };
        println!("{line}");
        if matches!(outcome, Outcome::Other(_))
            || false_report
            || again.code != 0
            || &end != s_after
            || d1 + d2 + l1 + l2 != 0
        {
            failures.push(format!("{line}\n  run again: {}", again.all()));
        }
        cluster.drop_database(&name);
    }
    println!(
        "kill trials: {trials} in {:.1?} ({finished_first} had finished before the interruption)",
        t0.elapsed()
    );
    for (kind, (b, a)) in &by_kind {
        println!("kill trials: {kind}: before={b} after={a}");
    }
    println!(
        "trials={trials} before={before} after={after} other={other} \
         double_applies={double_applies} lost_state_rows={lost_state_rows} \
         false_reports={false_reports}"
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} trial(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(other, 0);
    assert_eq!(double_applies, 0);
    assert_eq!(lost_state_rows, 0);
    assert_eq!(false_reports, 0);
    assert_eq!(before + after, trials);
}
