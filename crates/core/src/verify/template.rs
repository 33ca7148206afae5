//! The schema a project's migrations leave, replayed once and kept (issue 15): the first
//! replay of a history in a scratch server is kept there as a template database named by a
//! digest of what it ran, so the next run that needs the same schema costs a
//! `CREATE DATABASE … TEMPLATE` instead of the replay.
//!
//! The key is the digest of what the replay runs (the prelude and each migration's version
//! and runnable up SQL), not the migrations folder's tree id: a tree id changes when a
//! `down.sql` does, and two trees with the same ups leave the same schema. A template is kept
//! on the server of `--scratch-url` across runs (the oldest beyond
//! [`KEPT_TEMPLATES`](super::scratch_server::KEPT_TEMPLATES) are dropped); on a throwaway
//! cluster it lasts as long as the run.

use super::replay::{run_together, ReplayStep};
use super::sequence::{run_sql, ScratchDatabases};
use crate::schema::Model;

/// The name every kept template starts with.
pub const TEMPLATE_PREFIX: &str = "git_migrate_tpl_";

/// Bumped when the way a replay runs changes, so older templates are not taken for new ones.
const REPLAY_FORMAT: &str = "git-migrate replay 1";

/// The digest that names the schema `steps` leave after `prelude`. `None` when a step cannot
/// be read (such a history is never kept).
pub fn replay_key(prelude: Option<&str>, steps: &[ReplayStep]) -> Option<String> {
    let mut text = String::from(REPLAY_FORMAT);
    text.push('\0');
    text.push_str(prelude.unwrap_or_default());
    for s in steps {
        let up = s.up.as_deref().ok()?;
        text.push_str(&format!("\0{}\0{}", s.version, up));
    }
    Some(crate::checksum::sha256_hex(text.as_bytes()))
}

/// The template database name for a key: the prefix and 32 hex digits of the digest.
pub fn template_name(key: &str) -> String {
    let hex = key.strip_prefix("sha256:").unwrap_or(key);
    format!("{TEMPLATE_PREFIX}{}", &hex[..hex.len().min(32)])
}

/// A scratch database holding the schema of a replayed history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The database (made by the [`ScratchDatabases`]; the caller drops it).
    pub database: String,
    /// Whether it was copied from a kept template (no replay ran).
    pub from_template: bool,
}

/// A new scratch database with the schema `steps` leave when run in order after `prelude`: a
/// copy of the kept template when there is one, else made by replaying them (and the replay
/// kept as the template for the next run).
pub fn replayed_database(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[ReplayStep],
) -> Result<Replayed, String> {
    let prelude = prelude.filter(|p| !p.trim().is_empty());
    let template = replay_key(prelude, steps).map(|k| template_name(&k));
    if let Some(t) = &template {
        if dbs.find_template(t)? {
            // A copy fails only when something holds the template open; replay instead.
            if let Ok(database) = dbs.create(Some(t)) {
                return Ok(Replayed {
                    database,
                    from_template: true,
                });
            }
        }
    }
    let made = replay_into(dbs, prelude, steps)?;
    if let Some(t) = &template {
        if dbs.keep_as_template(&made, t)? {
            // Another run may prune it between the two statements: replay again then.
            let database = match dbs.create(Some(t)) {
                Ok(d) => d,
                Err(_) => replay_into(dbs, prelude, steps)?,
            };
            return Ok(Replayed {
                database,
                from_template: false,
            });
        }
    }
    Ok(Replayed {
        database: made,
        from_template: false,
    })
}

/// A new scratch database with `prelude` and `steps` run in it (dropped again on failure).
fn replay_into(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[ReplayStep],
) -> Result<String, String> {
    let made = dbs.create(None)?;
    let replay = (|| {
        let mut client = dbs.connect(&made)?;
        if let Some(p) = prelude {
            run_sql(&mut client, p)
                .map_err(|e| format!("the prelude SQL failed in the scratch database: {e}"))?;
        }
        run_together(&mut client, &steps.iter().collect::<Vec<_>>())
    })();
    match replay {
        Ok(()) => Ok(made),
        Err(e) => {
            let _ = dbs.drop_database(&made);
            Err(e)
        }
    }
}

/// The schema model `steps` leave after `prelude` (from a kept template when there is one),
/// and whether the template was there. The scratch database is dropped after.
pub fn model_of(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[ReplayStep],
    exclude: &[&str],
) -> Result<(Model, bool), String> {
    let replayed = replayed_database(dbs, prelude, steps)?;
    let read = dbs.connect(&replayed.database).and_then(|mut client| {
        crate::schema::read(&mut client, exclude)
            .map_err(|e| format!("cannot read the scratch database's schema: {e}"))
    });
    let dropped = dbs.drop_database(&replayed.database);
    let model = read?;
    dropped?;
    Ok((model, replayed.from_template))
}
