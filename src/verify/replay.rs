//! Downs computed by replay (issue 13): the applied history runs again in a scratch database,
//! and around each migration that needs a computed down the schema model is read before and
//! after its up. The same [`inverse`] as at apply time turns the two into the down.

use std::collections::{BTreeMap, BTreeSet};

use super::sequence::{run_sql, ScratchDatabases};
use crate::project::Version;
use crate::schema::{inverse, ComputedAt, ComputedDown, Model};

/// One applied migration to replay: its up SQL as it ran, or why it cannot be read.
#[derive(Clone, Debug)]
pub struct ReplayStep {
    /// Version.
    pub version: Version,
    /// The runnable up SQL (a whole-file transaction wrapper blanked), or why it is unknown.
    pub up: Result<String, String>,
}

/// Replays `steps` (the applied history in version order, up to the last version of `wanted`)
/// in a new scratch database after `prelude`, and computes the down of every version of
/// `wanted`. A version whose down cannot be computed (the replay failed at or before it, or its
/// schema holds an object kind outside the model) gets a [`ComputedDown::failed`] naming why.
/// Only a scratch database that cannot be made is an error.
pub fn computed_downs(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[ReplayStep],
    wanted: &BTreeSet<Version>,
    exclude: &[&str],
) -> Result<BTreeMap<Version, ComputedDown>, String> {
    let mut out = BTreeMap::new();
    let Some(last) = wanted.iter().next_back().copied() else {
        return Ok(out);
    };
    let name = dbs.create(None)?;
    let mut client = dbs.connect(&name)?;
    let mut broken: Option<String> = None;
    if let Some(p) = prelude.filter(|p| !p.trim().is_empty()) {
        if let Err(e) = run_sql(&mut client, p) {
            broken = Some(format!(
                "the prelude SQL failed in the scratch database: {e}"
            ));
        }
    }
    // The model after the previous step, when it was read (the next one's "before").
    let mut previous: Option<Model> = None;
    for step in steps.iter().filter(|s| s.version <= last) {
        let v = step.version;
        let want = wanted.contains(&v);
        if broken.is_some() {
            break;
        }
        let before = match (want, previous.take()) {
            (false, _) => None,
            (true, Some(m)) => Some(Ok(m)),
            (true, None) => Some(read(&mut client, exclude)),
        };
        let ran = match &step.up {
            Ok(sql) => run_sql(&mut client, sql).map_err(|e| {
                format!("replaying the up of {v} in the scratch database failed: {e}")
            }),
            Err(why) => Err(format!("cannot replay the up of {v}: {why}")),
        };
        if let Err(e) = ran {
            broken = Some(e);
            break;
        }
        if let Some(before) = before {
            let after = read(&mut client, exclude);
            let down = match (&before, &after) {
                (Ok(b), Ok(a)) => inverse(b, a, ComputedAt::Replay),
                (Err(e), _) | (_, Err(e)) => ComputedDown::failed(ComputedAt::Replay, e.clone()),
            };
            out.insert(v, down);
            previous = after.ok();
        }
    }
    drop(client);
    let dropped = dbs.drop_database(&name);
    for v in wanted {
        if !out.contains_key(v) {
            let why = broken.clone().unwrap_or_else(|| {
                format!("version {v} is not in the applied history that was replayed")
            });
            out.insert(*v, ComputedDown::failed(ComputedAt::Replay, why));
        }
    }
    dropped?;
    Ok(out)
}

/// The fingerprint of the schema `steps` leave, run in order after `prelude` in a new scratch
/// database (dropped after).
pub fn schema_of(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[ReplayStep],
    exclude: &[&str],
) -> Result<crate::verify::fingerprint::Fingerprint, String> {
    let name = dbs.create(None)?;
    let mut client = dbs.connect(&name)?;
    let result = (|| {
        if let Some(p) = prelude.filter(|p| !p.trim().is_empty()) {
            run_sql(&mut client, p)
                .map_err(|e| format!("the prelude SQL failed in the scratch database: {e}"))?;
        }
        for step in steps {
            let v = step.version;
            match &step.up {
                Ok(sql) => run_sql(&mut client, sql).map_err(|e| {
                    format!("replaying the up of {v} in the scratch database failed: {e}")
                })?,
                Err(why) => return Err(format!("cannot replay the up of {v}: {why}")),
            }
        }
        crate::verify::fingerprint::Fingerprint::take(&mut client, exclude)
            .map_err(|e| format!("cannot read the scratch database's catalog: {e}"))
    })();
    drop(client);
    let dropped = dbs.drop_database(&name);
    let fingerprint = result?;
    dropped?;
    Ok(fingerprint)
}

fn read(client: &mut postgres::Client, exclude: &[&str]) -> Result<Model, String> {
    crate::schema::read(client, exclude).map_err(|e| e.to_string())
}
