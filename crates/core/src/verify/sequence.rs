//! Running migrations up, down and up again, comparing fingerprints, and going on after a
//! finding in the history's schema (the down rolled back, or the database rebuilt).

use super::fingerprint;

use crate::project::sql::is_effectively_empty;
use crate::project::Version;
use fingerprint::{diff, Difference, Fingerprint};
use postgres::{Client, GenericClient};
use std::time::{Duration, Instant};

/// How long the migrations before the first one under test may take before their schema is
/// kept as a copy to rebuild from. A copy costs a `CREATE DATABASE … TEMPLATE` (50 to 100 ms
/// for a small schema, more for a larger one) on every run, while a rebuild is rare (a finding
/// that a rollback cannot undo); below this, the copy would slow the good path by more than a
/// few percent, and a rebuild costs at most this much more without it.
const KEEP_PREFIX_AFTER: Duration = Duration::from_secs(5);

/// One migration to run (and maybe verify).
#[derive(Clone, Debug)]
pub struct Step {
    /// Version.
    pub version: Version,
    /// `<version>_<name>` folder path, for messages.
    pub location: String,
    /// up.sql path and text.
    pub up: (String, String),
    /// down.sql path and text, if any.
    pub down: Option<(String, String)>,
    /// Whether to verify this one (else it only runs up).
    pub verify: bool,
}

/// Which script was running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The up of an earlier migration, to reach the starting schema.
    Before,
    /// The up under test.
    Up,
    /// The down under test.
    Down,
    /// The up again, after the down.
    UpAgain,
}

impl Phase {
    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Before => "applying an earlier migration",
            Phase::Up => "up",
            Phase::Down => "down",
            Phase::UpAgain => "up again after down",
        }
    }
}

/// What verifying one migration found.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The down brought the schema back exactly; up ran again.
    Reversed,
    /// There is no down to verify, or only whitespace and comments (the `missing-down` rule
    /// reports it).
    NoDown,
    /// A script failed.
    SqlFailed {
        /// Which.
        phase: Phase,
        /// The file.
        path: String,
        /// The server's error, with position when known.
        message: String,
    },
    /// The schema after down differs from before up.
    NotReversed {
        /// Object by object.
        differences: Vec<Difference>,
    },
    /// Not run: the schema it starts from could not be built.
    NotRun {
        /// Why, naming the migration that failed (for example "the up of migration 300
        /// (migrations/300_x/up.sql) failed").
        cause: String,
    },
}

/// The result for one verified migration.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Version.
    pub version: Version,
    /// Folder path.
    pub location: String,
    /// What happened.
    pub outcome: Outcome,
}

/// Why verification as a whole could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The fingerprint query failed.
    #[error("cannot read the catalog of the scratch database: {0}")]
    Fingerprint(String),
    /// The prelude failed.
    #[error("the prelude SQL failed in the scratch database: {0}")]
    Prelude(String),
    /// A scratch database could not be created, opened or dropped.
    #[error("{0}")]
    Scratch(String),
}

/// Scratch databases on one server, made and dropped by [`verify_sequence`]. Whatever it
/// leaves (after an error) is the implementor's to drop.
pub trait ScratchDatabases {
    /// Creates a database and returns its name: an empty one, or a copy of `template` (a
    /// database made here, with no session open on it).
    fn create(&mut self, template: Option<&str>) -> Result<String, String>;
    /// Opens a session on a database made by [`ScratchDatabases::create`].
    fn connect(&mut self, name: &str) -> Result<Client, String>;
    /// Drops a database made by [`ScratchDatabases::create`], ending any session on it.
    fn drop_database(&mut self, name: &str) -> Result<(), String>;
    /// The names of the template databases kept by [`ScratchDatabases::keep_as_template`].
    /// Servers that keep none have none.
    fn kept_templates(&mut self) -> Result<Vec<String>, String> {
        Ok(vec![])
    }
    /// Keeps `made` (a database made by [`ScratchDatabases::create`], with no session open on
    /// it) as the template `name`, for later runs to copy. `false` when it was not kept (the
    /// server keeps none, or another run kept the same template first): `made` is then still
    /// the caller's.
    fn keep_as_template(&mut self, made: &str, name: &str) -> Result<bool, String> {
        let _ = (made, name);
        Ok(false)
    }
}

/// Runs a migration script as a deployment would: in a transaction, unless it is marked
/// no-transaction. The error names the line and column when the server gives a position.
pub fn run_sql(client: &mut Client, sql: &str) -> Result<(), String> {
    let no_tx = is_no_transaction(sql);
    let res = if no_tx {
        client.batch_execute(sql)
    } else {
        client.transaction().and_then(|mut t| {
            t.batch_execute(sql)?;
            t.commit()
        })
    };
    res.map_err(|e| describe(sql, &e))
}

/// The server's error, with the line and column in `sql` when it gives a position.
fn describe(sql: &str, e: &postgres::Error) -> String {
    let mut msg = crate::db::describe_pg_error(e);
    if let Some(db) = e.as_db_error() {
        if let Some(postgres::error::ErrorPosition::Original(p)) = db.position() {
            let (line, col) = crate::project::sql::line_col(sql, *p as usize);
            msg = format!("line {line}, column {col}: {msg}");
        }
    }
    msg
}

use crate::project::txcontrol::is_no_transaction;

/// Whether a failure or a rollback of `sql`, run by [`run_sql`] or [`run_down`], leaves
/// nothing of it behind: it runs in a transaction and does not end that transaction itself
/// (the `transaction-control` rule's `COMMIT`, `END`, …).
fn rolls_back(sql: &str) -> bool {
    !is_no_transaction(sql) && crate::project::txcontrol::transaction_control(sql).is_empty()
}

fn take(client: &mut impl GenericClient, exclude: &[&str]) -> Result<Fingerprint, VerifyError> {
    Fingerprint::take(client, exclude)
        .map_err(|e| VerifyError::Fingerprint(crate::db::describe_pg_error(&e)))
}

/// Runs a down and compares the schema after it with `before`: the differences, or
/// `Ok(Err(message))` when the down fails.
///
/// A down that runs in a transaction is fingerprinted before its commit, and rolled back
/// instead when the schema differs: the database is then back at the up's schema, the
/// history's, so the migrations after it need no rebuilt database (issue 12). When the schema
/// is the same it commits, as it would on its own.
fn run_down(
    client: &mut Client,
    sql: &str,
    before: &Fingerprint,
    exclude: &[&str],
) -> Result<Result<Vec<Difference>, String>, VerifyError> {
    if is_no_transaction(sql) {
        if let Err(m) = run_sql(client, sql) {
            return Ok(Err(m));
        }
        return Ok(Ok(diff(before, &take(client, exclude)?)));
    }
    let mut t = match client.transaction() {
        Ok(t) => t,
        Err(e) => return Ok(Err(describe(sql, &e))),
    };
    // On an error the transaction is dropped, which rolls it back.
    if let Err(e) = t.batch_execute(sql) {
        return Ok(Err(describe(sql, &e)));
    }
    let differences = diff(before, &take(&mut t, exclude)?);
    if differences.is_empty() {
        if let Err(e) = t.commit() {
            return Ok(Err(describe(sql, &e)));
        }
    } else {
        t.rollback().map_err(|e| {
            VerifyError::Scratch(format!(
                "cannot roll back a down in the scratch database: {}",
                crate::db::describe_pg_error(&e)
            ))
        })?;
    }
    Ok(Ok(differences))
}

/// The databases of one run: where the migrations run, and a copy of the history's schema to
/// rebuild from after a finding that a rollback cannot undo.
///
/// The copy is made only when it is needed (at the first such finding, or after a slow
/// prefix), and it moves forward with each rebuild: the ups since the last rebuild are replayed
/// into it, and the new working database is a copy of it. So a rebuild costs one `CREATE
/// DATABASE … TEMPLATE` and the ups since the previous one, whatever the length of the history,
/// and a run without rebuilds makes one database, as before.
struct Scratch<'a> {
    dbs: &'a mut dyn ScratchDatabases,
    prelude: Option<&'a str>,
    /// The database the migrations run in.
    working: String,
    /// A database (no session open on it) with the prelude and the ups of the first `n`
    /// steps: the history's schema, never verified in.
    snapshot: Option<(String, usize)>,
    /// [`KEEP_PREFIX_AFTER`], but for tests.
    keep_prefix_after: Duration,
}

impl Scratch<'_> {
    fn prelude(&self, client: &mut Client) -> Result<(), VerifyError> {
        match self.prelude {
            Some(p) => client
                .batch_execute(p)
                .map_err(|e| VerifyError::Prelude(crate::db::describe_pg_error(&e))),
            None => Ok(()),
        }
    }

    /// Keeps the working database, which `client` is the only session of, as the snapshot of
    /// the first `n` steps, and goes on in a copy of it.
    fn keep_as_snapshot(&mut self, client: Client, n: usize) -> Result<Client, VerifyError> {
        drop(client);
        if let Some((old, _)) = self.snapshot.take() {
            self.dbs.drop_database(&old).map_err(VerifyError::Scratch)?;
        }
        let copy = self
            .dbs
            .create(Some(&self.working))
            .map_err(VerifyError::Scratch)?;
        self.snapshot = Some((std::mem::replace(&mut self.working, copy), n));
        self.dbs
            .connect(&self.working)
            .map_err(VerifyError::Scratch)
    }

    /// Replaces the working database with one holding the prelude and the ups of the first
    /// `n` steps, as a deploy of the history would. `Ok(Err(cause))` when an up that ran
    /// before fails on the way (something outside the database, such as a role a down left
    /// behind, stops it): there is no database to go on in then.
    fn rebuild(
        &mut self,
        client: &mut Client,
        steps: &[Step],
        n: usize,
    ) -> Result<Result<(), String>, VerifyError> {
        let (snapshot, from, fresh) = match self.snapshot.take() {
            Some((name, from)) => (name, from, false),
            None => (
                self.dbs.create(None).map_err(VerifyError::Scratch)?,
                0,
                true,
            ),
        };
        let mut c = self.dbs.connect(&snapshot).map_err(VerifyError::Scratch)?;
        if fresh {
            self.prelude(&mut c)?;
        }
        for s in &steps[from..n] {
            if let Err(message) = run_sql(&mut c, &s.up.1) {
                drop(c);
                self.dbs
                    .drop_database(&snapshot)
                    .map_err(VerifyError::Scratch)?;
                return Ok(Err(format!(
                    "{} failed when the history was replayed into a rebuilt scratch database after a finding: {message}",
                    s.up.0
                )));
            }
        }
        drop(c);
        let copy = self
            .dbs
            .create(Some(&snapshot))
            .map_err(VerifyError::Scratch)?;
        self.snapshot = Some((snapshot, n));
        let fresh = self.dbs.connect(&copy).map_err(VerifyError::Scratch)?;
        drop(std::mem::replace(client, fresh));
        let old = std::mem::replace(&mut self.working, copy);
        self.dbs.drop_database(&old).map_err(VerifyError::Scratch)?;
        Ok(Ok(()))
    }
}

/// Whether the working database may no longer hold the history's schema after `outcome`, so
/// that the migrations after it need a rebuilt one.
fn needs_rebuild(outcome: &Outcome, down_sql: &str) -> bool {
    match outcome {
        Outcome::Reversed | Outcome::NoDown | Outcome::NotRun { .. } => false,
        // The down failed or was rolled back (see `run_down`): the schema is the up's, unless
        // the down ran outside a transaction or ended it itself.
        Outcome::SqlFailed {
            phase: Phase::Down, ..
        }
        | Outcome::NotReversed { .. } => !rolls_back(down_sql),
        // The down committed and the schema came back, but something the fingerprint does not
        // see (rows, a role) stopped the up.
        Outcome::SqlFailed { .. } => true,
    }
}

/// Runs the steps in order in scratch databases from `dbs`, and drops them again. `progress`
/// is told about each verified migration as it finishes.
///
/// A finding does not stop the run: every migration is verified and every leftover named
/// (issue 12). A down that leaves something behind is rolled back when it ran in a
/// transaction, which leaves the up's schema, the history's. When that cannot be done (a
/// no-transaction down, a down that commits itself, an up that fails again after its down
/// because of rows or a role the down left), the working database is rebuilt to the history's
/// schema (see [`Scratch`]). When an up fails in a correctly built schema, the migration's own
/// SQL is broken: the migrations after it are reported as not run, naming it, since they may
/// depend on it.
pub fn verify_sequence(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[Step],
    exclude_schemas: &[&str],
    progress: impl FnMut(&Verified),
) -> Result<Vec<Verified>, VerifyError> {
    run_steps(
        dbs,
        prelude,
        steps,
        exclude_schemas,
        KEEP_PREFIX_AFTER,
        progress,
    )
}

fn run_steps(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[Step],
    exclude_schemas: &[&str],
    keep_prefix_after: Duration,
    mut progress: impl FnMut(&Verified),
) -> Result<Vec<Verified>, VerifyError> {
    let working = dbs.create(None).map_err(VerifyError::Scratch)?;
    let mut scratch = Scratch {
        dbs,
        prelude,
        working,
        snapshot: None,
        keep_prefix_after,
    };
    let out = verify_in(&mut scratch, steps, exclude_schemas, &mut progress);
    // Dropped on success and on error alike; an error dropping them only matters when the
    // run itself went well.
    let mut dropped = scratch.dbs.drop_database(&scratch.working);
    if let Some((s, _)) = &scratch.snapshot {
        dropped = dropped.and(scratch.dbs.drop_database(s));
    }
    let out = out?;
    dropped.map_err(VerifyError::Scratch)?;
    Ok(out)
}

fn verify_in(
    scratch: &mut Scratch<'_>,
    steps: &[Step],
    exclude_schemas: &[&str],
    progress: &mut dyn FnMut(&Verified),
) -> Result<Vec<Verified>, VerifyError> {
    let mut client = scratch
        .dbs
        .connect(&scratch.working)
        .map_err(VerifyError::Scratch)?;
    scratch.prelude(&mut client)?;
    let mut out = Vec::new();
    let mut done = |v: Verified, out: &mut Vec<Verified>| {
        progress(&v);
        out.push(v);
    };
    // Why the migrations from here on cannot run.
    let mut stopped: Option<String> = None;
    let started = Instant::now();
    let first = steps.iter().position(|s| s.verify).unwrap_or(steps.len());
    for (i, s) in steps.iter().enumerate() {
        if let Some(cause) = &stopped {
            // (The first one may already carry the failure of an earlier up.)
            if s.verify && out.last().map(|v: &Verified| v.version) != Some(s.version) {
                done(
                    Verified {
                        version: s.version,
                        location: s.location.clone(),
                        outcome: Outcome::NotRun {
                            cause: cause.clone(),
                        },
                    },
                    &mut out,
                );
            }
            continue;
        }
        if i == first && i > 0 && started.elapsed() >= scratch.keep_prefix_after {
            // A long history before the first migration under test: keep its schema rather
            // than replay it after a finding.
            client = scratch.keep_as_snapshot(client, i)?;
        }
        let up_failed = |version: Version| {
            format!(
                "the up of migration {version} ({}) failed, and the migrations after it may depend on it",
                s.up.0
            )
        };
        if !s.verify {
            if let Err(message) = run_sql(&mut client, &s.up.1) {
                stopped = Some(up_failed(s.version));
                // Report it against the first migration under test that cannot be reached.
                if let Some(next) = steps[i + 1..].iter().find(|n| n.verify) {
                    done(
                        Verified {
                            version: next.version,
                            location: next.location.clone(),
                            outcome: Outcome::SqlFailed {
                                phase: Phase::Before,
                                path: s.up.0.clone(),
                                message,
                            },
                        },
                        &mut out,
                    );
                }
            }
            continue;
        }
        let fail = |phase, path: &str, message| Outcome::SqlFailed {
            phase,
            path: path.to_string(),
            message,
        };
        let Some(down) = s.down.as_ref().filter(|d| !is_effectively_empty(&d.1)) else {
            // Nothing to verify; still apply it so later migrations see the right schema.
            let outcome = match run_sql(&mut client, &s.up.1) {
                Ok(()) => Outcome::NoDown,
                Err(message) => {
                    stopped = Some(up_failed(s.version));
                    fail(Phase::Up, &s.up.0, message)
                }
            };
            done(
                Verified {
                    version: s.version,
                    location: s.location.clone(),
                    outcome,
                },
                &mut out,
            );
            continue;
        };
        let before = take(&mut client, exclude_schemas)?;
        let outcome = if let Err(m) = run_sql(&mut client, &s.up.1) {
            stopped = Some(up_failed(s.version));
            fail(Phase::Up, &s.up.0, m)
        } else {
            match run_down(&mut client, &down.1, &before, exclude_schemas)? {
                Err(m) => fail(Phase::Down, &down.0, m),
                Ok(differences) if !differences.is_empty() => Outcome::NotReversed { differences },
                Ok(_) => match run_sql(&mut client, &s.up.1) {
                    Ok(()) => Outcome::Reversed,
                    Err(m) => fail(Phase::UpAgain, &s.up.0, m),
                },
            }
        };
        if stopped.is_none() && needs_rebuild(&outcome, &down.1) {
            if let Err(cause) = scratch.rebuild(&mut client, steps, i + 1)? {
                stopped = Some(cause);
            }
        }
        done(
            Verified {
                version: s.version,
                location: s.location.clone(),
                outcome,
            },
            &mut out,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::txcontrol::NO_TRANSACTION_MARKER;
    use crate::scratch::Cluster;

    /// Databases on a throwaway cluster, counting what was made and what is left.
    struct OnCluster<'c> {
        cluster: &'c Cluster,
        /// The template of each database made, in order.
        made: Vec<Option<String>>,
        live: Vec<String>,
    }

    impl ScratchDatabases for OnCluster<'_> {
        fn create(&mut self, template: Option<&str>) -> Result<String, String> {
            self.made.push(template.map(str::to_string));
            let name = format!("d{}", self.made.len());
            self.cluster
                .create_database(&name, template)
                .map_err(|e| e.to_string())?;
            self.live.push(name.clone());
            Ok(name)
        }

        fn connect(&mut self, name: &str) -> Result<Client, String> {
            Client::connect(&self.cluster.url(name), postgres::NoTls).map_err(|e| e.to_string())
        }

        fn drop_database(&mut self, name: &str) -> Result<(), String> {
            self.cluster
                .drop_database(name)
                .map_err(|e| e.to_string())?;
            self.live.retain(|n| n != name);
            Ok(())
        }
    }

    fn step(version: Version, up: &str, down: &str, verify: bool) -> Step {
        Step {
            version,
            location: format!("migrations/{version}_m"),
            up: (format!("migrations/{version}_m/up.sql"), up.into()),
            down: Some((format!("migrations/{version}_m/down.sql"), down.into())),
            verify,
        }
    }

    #[test]
    fn goes_on_after_findings_from_a_kept_prefix_or_a_replayed_history() {
        let cluster = Cluster::start().expect("start scratch cluster");
        // Two migrations before the first one under test. 3, 5 and 7 leave something behind
        // that would stop their up from running again: 3 and 7 outside a transaction (the
        // database is rebuilt), 5 inside one (rolled back). 4, 6 and 8 build on what the
        // earlier ones made, so they pass only in the history's schema.
        let no_tx = format!("{NO_TRANSACTION_MARKER}\nselect 1;");
        let steps = [
            step(1, "create table a(id int);", "drop table a;", false),
            step(2, "create table b(id int);", "drop table b;", false),
            step(3, "create table c(id int);", &no_tx, true),
            step(
                4,
                "alter table c add x int; alter table a add y int;",
                "alter table c drop x; alter table a drop y;",
                true,
            ),
            step(5, "create index b_id on b(id);", "select 1;", true),
            step(6, "alter table b add z int;", "alter table b drop z;", true),
            step(7, "create sequence s7;", &no_tx, true),
            step(8, "alter table c add w int;", "alter table c drop w;", true),
        ];
        // Zero: the first database, with the prefix, is kept and the run goes on in a copy;
        // each rebuild replays the ups since the last one into the kept database and copies
        // it. Max: the first rebuild builds the kept database from nothing. The rollback
        // makes no database.
        let d1 = Some("d1".to_string());
        let d2 = Some("d2".to_string());
        for (keep_prefix_after, made) in [
            (Duration::ZERO, [None, d1.clone(), d1.clone(), d1]),
            (Duration::MAX, [None, None, d2.clone(), d2]),
        ] {
            let mut dbs = OnCluster {
                cluster: &cluster,
                made: vec![],
                live: vec![],
            };
            let got =
                run_steps(&mut dbs, None, &steps, &[], keep_prefix_after, |_| {}).expect("verify");
            let outcomes: Vec<String> = got
                .iter()
                .map(|v| match &v.outcome {
                    Outcome::NotReversed { differences } => format!(
                        "{} {}",
                        v.version,
                        differences
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    other => format!("{} {other:?}", v.version),
                })
                .collect();
            assert_eq!(
                outcomes,
                [
                    "3 table public.c exists after down",
                    "4 Reversed",
                    "5 index public.b_id exists after down",
                    "6 Reversed",
                    "7 sequence public.s7 exists after down",
                    "8 Reversed",
                ],
                "{keep_prefix_after:?}"
            );
            assert_eq!(dbs.made, made, "{keep_prefix_after:?}");
            assert!(dbs.live.is_empty(), "{:?}", dbs.live);
        }
    }

    fn sql_failed(phase: Phase) -> Outcome {
        Outcome::SqlFailed {
            phase,
            path: "m/up.sql".into(),
            message: "boom".into(),
        }
    }

    #[test]
    fn rebuild_only_when_the_schema_may_be_wrong() {
        let no_tx = format!("{NO_TRANSACTION_MARKER}\ndrop index concurrently i;");
        let commits = "drop table t; commit;";
        let not_reversed = Outcome::NotReversed {
            differences: vec![],
        };
        assert!(!needs_rebuild(&Outcome::Reversed, "drop table t;"));
        assert!(!needs_rebuild(&Outcome::NoDown, ""));
        // A down that failed or left something was rolled back: the schema is the up's, as
        // the history says. Not outside a transaction, or when it committed itself.
        for outcome in [sql_failed(Phase::Down), not_reversed] {
            assert!(!needs_rebuild(&outcome, "drop table t;"));
            assert!(needs_rebuild(&outcome, &no_tx));
            assert!(needs_rebuild(&outcome, commits));
        }
        // The down committed; what it left stopped the up.
        assert!(needs_rebuild(&sql_failed(Phase::UpAgain), "drop table t;"));
    }
}
