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
    // Ups before the next version to compute, run together in one transaction.
    let mut pending: Vec<&ReplayStep> = Vec::new();
    for step in steps.iter().filter(|s| s.version <= last) {
        if broken.is_some() {
            break;
        }
        let v = step.version;
        if !wanted.contains(&v) {
            pending.push(step);
            continue;
        }
        if !pending.is_empty() {
            // Steps ran since the last model was read: it is not this step's "before".
            previous = None;
        }
        if let Err(e) = run_together(&mut client, &std::mem::take(&mut pending)) {
            broken = Some(e);
            break;
        }
        let before = match previous.take() {
            Some(m) => Ok(m),
            None => read(&mut client, exclude),
        };
        if let Err(e) = run_one(&mut client, step) {
            broken = Some(e);
            break;
        }
        let after = read(&mut client, exclude);
        let down = match (&before, &after) {
            (Ok(b), Ok(a)) => inverse(b, a, ComputedAt::Replay),
            (Err(e), _) | (_, Err(e)) => ComputedDown::failed(ComputedAt::Replay, e.clone()),
        };
        out.insert(v, down);
        previous = after.ok();
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
        run_together(&mut client, &steps.iter().collect::<Vec<_>>())?;
        crate::verify::fingerprint::Fingerprint::take(&mut client, exclude)
            .map_err(|e| format!("cannot read the scratch database's catalog: {e}"))
    })();
    drop(client);
    let dropped = dbs.drop_database(&name);
    let fingerprint = result?;
    dropped?;
    Ok(fingerprint)
}

/// Runs one step's up as a deployment would (in a transaction, unless it is marked
/// no-transaction).
fn run_one(client: &mut postgres::Client, step: &ReplayStep) -> Result<(), String> {
    let v = step.version;
    match &step.up {
        Ok(sql) => run_sql(client, sql)
            .map_err(|e| format!("replaying the up of {v} in the scratch database failed: {e}")),
        Err(why) => Err(format!("cannot replay the up of {v}: {why}")),
    }
}

/// Runs `steps` in one transaction, as one batch (a long history replays in about the time
/// `psql -1` takes). When that fails, or a step is marked no-transaction or unreadable, they
/// run one by one instead, so the error names the version that fails.
pub(super) fn run_together(
    client: &mut postgres::Client,
    steps: &[&ReplayStep],
) -> Result<(), String> {
    if steps.is_empty() {
        return Ok(());
    }
    let texts: Option<Vec<&str>> = steps
        .iter()
        .map(|s| {
            s.up.as_deref()
                .ok()
                .filter(|t| !crate::project::txcontrol::is_no_transaction(t))
        })
        .collect();
    if let Some(texts) = texts {
        let batch = texts.join("\n;\n");
        let together = client.transaction().and_then(|mut tx| {
            tx.batch_execute(&batch)?;
            tx.commit()
        });
        if together.is_ok() {
            return Ok(());
        }
    }
    steps.iter().try_for_each(|s| run_one(client, s))
}

fn read(client: &mut postgres::Client, exclude: &[&str]) -> Result<Model, String> {
    crate::schema::read(client, exclude).map_err(|e| e.to_string())
}
