//! Proof that a migration written from a schema difference (`create --from-live`, issue 15)
//! does what it says: in a scratch database in the FROM state, its up gives the TO schema, its
//! down gives the FROM schema back, and its up runs again.

use super::fingerprint::{diff_ignoring_column_order, Fingerprint};
use super::replay::ReplayStep;
use super::sequence::{run_sql, ScratchDatabases};
use super::template::replayed_database;
use crate::schema::Model;

/// Where the scratch database starts.
pub enum Start<'a> {
    /// A project's migrations, replayed (or copied from their kept template).
    Replay(&'a [ReplayStep]),
    /// A schema model (the live one): made in a database holding only the prelude, by the
    /// differ's statements.
    Model(&'a Model),
}

/// What the round trip found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundTrip {
    /// Up gave TO, down gave FROM back, up ran again.
    Reversed,
    /// A script failed: which (`up`, `down`, `up again`) and the server's error.
    Failed {
        /// `up`, `down` or `up again`.
        phase: &'static str,
        /// The error, with the line and column when the server gives one.
        error: String,
    },
    /// Up ran but the schema is not TO's: the statements still needed.
    UpDiffers(Vec<String>),
    /// Down ran but the schema is not FROM's: the differences.
    NotReversed(Vec<String>),
}

impl std::fmt::Display for RoundTrip {
    /// Why the migration is not proven (empty when it is).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoundTrip::Reversed => Ok(()),
            RoundTrip::Failed { phase, error } => {
                write!(f, "its {phase} failed in a scratch database: {error}")
            }
            RoundTrip::UpDiffers(missing) => write!(
                f,
                "its up does not give the target schema; still needed:\n- {}",
                missing.join("\n- ")
            ),
            RoundTrip::NotReversed(left) => write!(
                f,
                "its down does not give the starting schema back:\n- {}",
                left.join("\n- ")
            ),
        }
    }
}

/// Runs `up`, `down` and `up` again in a scratch database in the `start` state (dropped after),
/// comparing the schema after the first up with `to` and after the down with the start.
pub fn round_trip(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    start: Start<'_>,
    (up, down): (&str, &str),
    to: &Model,
    exclude: &[&str],
) -> Result<RoundTrip, String> {
    let database = match start {
        Start::Replay(steps) => replayed_database(dbs, prelude, steps)?.database,
        Start::Model(model) => {
            let made = replayed_database(dbs, prelude, &[])?.database;
            let built = (|| {
                let mut client = dbs.connect(&made)?;
                let empty = read(&mut client, exclude)?;
                let statements = crate::schema::diff(&empty, model).map_err(|e| e.to_string())?;
                run_sql(&mut client, &crate::schema::script(&statements))
                    .map_err(|e| format!("cannot rebuild the live schema in scratch: {e}"))
            })();
            if let Err(e) = built {
                let _ = dbs.drop_database(&made);
                return Err(e);
            }
            made
        }
    };
    let result = (|| -> Result<RoundTrip, String> {
        let mut client = dbs.connect(&database)?;
        let before = fingerprint(&mut client, exclude)?;
        if let Err(error) = run_sql(&mut client, up) {
            return Ok(RoundTrip::Failed { phase: "up", error });
        }
        let after_up = read(&mut client, exclude)?;
        let missing = crate::schema::diff(&after_up, to).map_err(|e| e.to_string())?;
        if !missing.is_empty() {
            return Ok(RoundTrip::UpDiffers(
                missing.iter().map(|s| s.to_string()).collect(),
            ));
        }
        if let Err(error) = run_sql(&mut client, down) {
            return Ok(RoundTrip::Failed {
                phase: "down",
                error,
            });
        }
        let after_down = fingerprint(&mut client, exclude)?;
        let left = diff_ignoring_column_order(&before, &after_down);
        if !left.is_empty() {
            return Ok(RoundTrip::NotReversed(
                left.iter().map(|d| d.to_string()).collect(),
            ));
        }
        if let Err(error) = run_sql(&mut client, up) {
            return Ok(RoundTrip::Failed {
                phase: "up again",
                error,
            });
        }
        Ok(RoundTrip::Reversed)
    })();
    let dropped = dbs.drop_database(&database);
    let verdict = result?;
    dropped?;
    Ok(verdict)
}

fn read(client: &mut postgres::Client, exclude: &[&str]) -> Result<Model, String> {
    crate::schema::read(client, exclude)
        .map_err(|e| format!("cannot read the scratch database's schema: {e}"))
}

fn fingerprint(client: &mut postgres::Client, exclude: &[&str]) -> Result<Fingerprint, String> {
    Fingerprint::take(client, exclude)
        .map_err(|e| format!("cannot read the scratch database's catalog: {e}"))
}
