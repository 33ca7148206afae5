//! Running migrations up, down and up again, comparing fingerprints.

use super::fingerprint;

use crate::check::rules::NO_TRANSACTION_MARKER;
use crate::project::Version;
use fingerprint::{diff, Difference, Fingerprint};
use postgres::Client;

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
    /// There is no down to verify (the `missing-down` rule reports it).
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
    /// Not run because an earlier migration failed.
    NotRun,
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
}

fn run_sql(client: &mut Client, sql: &str) -> Result<(), String> {
    let no_tx = sql.lines().next().map(str::trim_end) == Some(NO_TRANSACTION_MARKER);
    let res = if no_tx {
        client.batch_execute(sql)
    } else {
        client.transaction().and_then(|mut t| {
            t.batch_execute(sql)?;
            t.commit()
        })
    };
    res.map_err(|e| {
        let mut msg = crate::db::describe_pg_error(&e);
        if let Some(db) = e.as_db_error() {
            if let Some(postgres::error::ErrorPosition::Original(p)) = db.position() {
                let (line, col) = crate::project::sql::line_col(sql, *p as usize);
                msg = format!("line {line}, column {col}: {msg}");
            }
        }
        msg
    })
}

fn take(client: &mut Client, exclude: &[&str]) -> Result<Fingerprint, VerifyError> {
    Fingerprint::take(client, exclude)
        .map_err(|e| VerifyError::Fingerprint(crate::db::describe_pg_error(&e)))
}

/// Runs the steps in order in `client`'s (scratch) database. `progress` is told about each
/// verified migration as it finishes.
pub fn verify_sequence(
    client: &mut Client,
    prelude: Option<&str>,
    steps: &[Step],
    exclude_schemas: &[&str],
    mut progress: impl FnMut(&Verified),
) -> Result<Vec<Verified>, VerifyError> {
    if let Some(p) = prelude {
        client
            .batch_execute(p)
            .map_err(|e| VerifyError::Prelude(crate::db::describe_pg_error(&e)))?;
    }
    let mut out = Vec::new();
    let mut broken: Option<String> = None;
    for s in steps {
        let mut done = |v: Verified, out: &mut Vec<Verified>| {
            progress(&v);
            out.push(v);
        };
        if broken.is_some() {
            if s.verify {
                done(
                    Verified {
                        version: s.version,
                        location: s.location.clone(),
                        outcome: Outcome::NotRun,
                    },
                    &mut out,
                );
            }
            continue;
        }
        if !s.verify {
            if let Err(message) = run_sql(client, &s.up.1) {
                broken = Some(s.location.clone());
                // Report it against the first migration under test that cannot be reached.
                if let Some(next) = steps.iter().find(|n| n.verify && n.version > s.version) {
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
        let Some(down) = &s.down else {
            // Nothing to verify; still apply it so later migrations see the right schema.
            let outcome = match run_sql(client, &s.up.1) {
                Ok(()) => Outcome::NoDown,
                Err(message) => {
                    broken = Some(s.location.clone());
                    Outcome::SqlFailed {
                        phase: Phase::Up,
                        path: s.up.0.clone(),
                        message,
                    }
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
        let before = take(client, exclude_schemas)?;
        let fail = |phase, path: &str, message| Outcome::SqlFailed {
            phase,
            path: path.to_string(),
            message,
        };
        let outcome = if let Err(m) = run_sql(client, &s.up.1) {
            fail(Phase::Up, &s.up.0, m)
        } else if let Err(m) = run_sql(client, &down.1) {
            fail(Phase::Down, &down.0, m)
        } else {
            let after = take(client, exclude_schemas)?;
            let differences = diff(&before, &after);
            let again = run_sql(client, &s.up.1);
            match (differences.is_empty(), again) {
                (true, Ok(())) => Outcome::Reversed,
                (true, Err(m)) => fail(Phase::UpAgain, &s.up.0, m),
                (false, again) => {
                    if again.is_err() {
                        // What the down left behind stops the up: later ones cannot run.
                        broken = Some(s.location.clone());
                    }
                    Outcome::NotReversed { differences }
                }
            }
        };
        if matches!(outcome, Outcome::SqlFailed { .. }) {
            broken = Some(s.location.clone());
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
