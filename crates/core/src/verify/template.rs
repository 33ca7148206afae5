//! The schema a project's migrations leave, replayed once and kept (issue 15): the first
//! replay of a history in a scratch server is kept there as a template database named by a
//! digest of what it ran, so the next run that needs the same schema reads it (or copies it,
//! `CREATE DATABASE … TEMPLATE`, to change it) instead of replaying.
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

/// The digests that name the schema after each prefix of `steps` (after `prelude`): the first
/// names the prelude alone, the last the whole history. Each is the digest of the one before
/// and the next step, so a history that extends another shares its digests. `None` when a
/// step cannot be read (such a history is never kept).
pub fn prefix_keys(prelude: Option<&str>, steps: &[ReplayStep]) -> Option<Vec<String>> {
    let mut key = crate::checksum::sha256_hex(
        format!("{REPLAY_FORMAT}\0{}", prelude.unwrap_or_default()).as_bytes(),
    );
    let mut keys = Vec::with_capacity(steps.len() + 1);
    keys.push(key.clone());
    for s in steps {
        let up = s.up.as_deref().ok()?;
        key = crate::checksum::sha256_hex(format!("{key}\0{}\0{up}", s.version).as_bytes());
        keys.push(key.clone());
    }
    Some(keys)
}

/// The digest that names the schema `steps` leave after `prelude` (the last of
/// [`prefix_keys`]).
pub fn replay_key(prelude: Option<&str>, steps: &[ReplayStep]) -> Option<String> {
    prefix_keys(prelude, steps).and_then(|mut k| k.pop())
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
    /// How many of the steps came from a kept template (all of them: no replay ran).
    pub from_template: usize,
    /// How many steps ran.
    pub replayed: usize,
}

/// Where a history's schema is.
enum Place {
    /// In the kept template of that name (never to be changed or dropped by the caller).
    Kept(String),
    /// In a scratch database made for the caller (the caller drops it): it could not be kept.
    Made(String),
}

/// The database holding the schema `steps` leave after `prelude`: the kept template of the
/// whole history when there is one; else the kept template of its longest kept prefix copied and
/// the steps after it run (or the whole history replayed), kept for the next run. How many steps
/// came from a template and how many ran.
fn kept_or_made(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[ReplayStep],
) -> Result<(Place, usize, usize), String> {
    let names: Option<Vec<String>> =
        prefix_keys(prelude, steps).map(|keys| keys.iter().map(|k| template_name(k)).collect());
    let Some(names) = names else {
        let made = replay_into(dbs, None, prelude, steps)?;
        return Ok((Place::Made(made), 0, steps.len()));
    };
    let kept = dbs.kept_templates()?;
    let base = (0..names.len()).rev().find(|i| kept.contains(&names[*i]));
    let whole = &names[steps.len()];
    if base == Some(steps.len()) {
        return Ok((Place::Kept(whole.clone()), steps.len(), 0));
    }
    let (made, from) = match base {
        // A copy fails when another run just dropped the template: replay all then.
        Some(b) => match replay_into(dbs, Some(&names[b]), None, &steps[b..]) {
            Ok(made) => (made, b),
            Err(_) => (replay_into(dbs, None, prelude, steps)?, 0),
        },
        None => (replay_into(dbs, None, prelude, steps)?, 0),
    };
    let place = if dbs.keep_as_template(&made, whole)? {
        Place::Kept(whole.clone())
    } else {
        Place::Made(made)
    };
    Ok((place, from, steps.len() - from))
}

/// A new scratch database with the schema `steps` leave when run in order after `prelude`: a
/// copy of the history's kept template (made first when there is none, see [`kept_or_made`]).
pub fn replayed_database(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[ReplayStep],
) -> Result<Replayed, String> {
    let prelude = prelude.filter(|p| !p.trim().is_empty());
    let (place, from_template, replayed) = kept_or_made(dbs, prelude, steps)?;
    let database = match place {
        Place::Made(made) => made,
        // Another run may drop it between the two statements: replay all then.
        Place::Kept(t) => match dbs.create(Some(&t)) {
            Ok(d) => d,
            Err(_) => {
                return Ok(Replayed {
                    database: replay_into(dbs, None, prelude, steps)?,
                    from_template: 0,
                    replayed: steps.len(),
                })
            }
        },
    };
    Ok(Replayed {
        database,
        from_template,
        replayed,
    })
}

/// A new scratch database (a copy of `template`, or empty with `prelude` run) with `steps`
/// run in it; dropped again on failure.
fn replay_into(
    dbs: &mut dyn ScratchDatabases,
    template: Option<&str>,
    prelude: Option<&str>,
    steps: &[ReplayStep],
) -> Result<String, String> {
    let made = dbs.create(template)?;
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

/// The schema model `steps` leave after `prelude`, and how many steps came from a kept
/// template and how many ran. A kept template is read in place, in a read-only session (no
/// copy: a copy of a 1,000-migration schema costs more than reading it); a database made
/// because it could not be kept is dropped after.
pub fn model_of(
    dbs: &mut dyn ScratchDatabases,
    prelude: Option<&str>,
    steps: &[ReplayStep],
    exclude: &[&str],
) -> Result<(Model, usize, usize), String> {
    let prelude = prelude.filter(|p| !p.trim().is_empty());
    let (place, from_template, replayed) = kept_or_made(dbs, prelude, steps)?;
    let read = |dbs: &mut dyn ScratchDatabases, name: &str| {
        dbs.connect(name).and_then(|mut client| {
            client
                .batch_execute("SET default_transaction_read_only = on")
                .map_err(|e| crate::db::describe_pg_error(&e))?;
            crate::schema::read(&mut client, exclude)
                .map_err(|e| format!("cannot read the scratch database's schema: {e}"))
        })
    };
    match place {
        Place::Kept(t) => match read(dbs, &t) {
            Ok(model) => Ok((model, from_template, replayed)),
            // Dropped by another run meanwhile, or a template that cannot be read: it is made
            // again.
            Err(_) => {
                let _ = dbs.drop_database(&t);
                let (place, _, _) = kept_or_made(dbs, prelude, steps)?;
                let (Place::Kept(name) | Place::Made(name)) = &place;
                let model = read(dbs, name);
                if let Place::Made(made) = &place {
                    dbs.drop_database(made)?;
                }
                Ok((model?, 0, steps.len()))
            }
        },
        Place::Made(made) => {
            let model = read(dbs, &made);
            let dropped = dbs.drop_database(&made);
            let model = model?;
            dropped?;
            Ok((model, from_template, replayed))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::ScratchServer;

    fn step(version: i64, up: &str) -> ReplayStep {
        ReplayStep {
            version,
            up: Ok(up.to_string()),
        }
    }

    #[test]
    fn keys_of_an_extended_history_share_its_prefix_and_an_unreadable_step_has_none() {
        let a = [step(1, "create table a(id int);")];
        let b = [a[0].clone(), step(2, "create table b(id int);")];
        let ka = prefix_keys(Some("p"), &a).unwrap();
        let kb = prefix_keys(Some("p"), &b).unwrap();
        assert_eq!(kb.len(), 3);
        assert_eq!(ka[..], kb[..2]);
        assert_ne!(prefix_keys(Some("q"), &a).unwrap()[1], ka[1]);
        assert_ne!(
            replay_key(Some("p"), &[step(1, "create table a(id bigint);")]),
            replay_key(Some("p"), &a)
        );
        let broken = [ReplayStep {
            version: 1,
            up: Err("unreadable".into()),
        }];
        assert_eq!(prefix_keys(None, &broken), None);
        assert!(template_name(&ka[1]).len() <= 63);
    }

    #[test]
    fn a_kept_template_is_copied_and_an_extended_history_replays_only_its_new_steps() {
        let mut server = ScratchServer::new(None);
        let mut dbs = server.databases().expect("a scratch cluster starts");
        let steps = [
            step(1, "create table a(id int primary key);"),
            step(2, "create table b(id int references a);"),
            step(3, "create index b_id on b(id);"),
        ];
        let (first, k, n) = model_of(&mut dbs, None, &steps[..2], &[]).unwrap();
        assert_eq!((k, n), (0, 2));
        let (whole, k, n) = model_of(&mut dbs, None, &steps, &[]).unwrap();
        assert_eq!((k, n), (2, 1));
        let (again, k, n) = model_of(&mut dbs, None, &steps, &[]).unwrap();
        assert_eq!((k, n), (3, 0));
        assert_eq!(again, whole);
        assert_ne!(first, whole);
        assert_eq!(dbs.kept_templates().unwrap().len(), 2);
        // A copy of a kept template is a database of the caller's, with the schema.
        let copy = replayed_database(&mut dbs, None, &steps).unwrap();
        assert_eq!((copy.from_template, copy.replayed), (3, 0));
        let mut c = dbs.connect(&copy.database).unwrap();
        assert_eq!(crate::schema::read(&mut c, &[]).unwrap(), whole);
        drop(c);
        dbs.drop_database(&copy.database).unwrap();
        // A kept template that cannot be read is made again.
        let t = template_name(&replay_key(None, &steps).unwrap());
        let mut c = dbs.connect("postgres").unwrap();
        c.batch_execute(&format!("ALTER DATABASE {t} WITH ALLOW_CONNECTIONS false"))
            .unwrap();
        drop(c);
        let (remade, k, n) = model_of(&mut dbs, None, &steps, &[]).unwrap();
        assert_eq!((k, n, remade), (0, 3, whole.clone()));
        let (_, k, n) = model_of(&mut dbs, None, &steps, &[]).unwrap();
        assert_eq!((k, n), (3, 0));
        // A failing step is an error naming it, and keeps nothing.
        let bad = [steps[0].clone(), step(9, "create table a(id int);")];
        let err = model_of(&mut dbs, None, &bad, &[]).unwrap_err();
        assert!(err.contains("9"), "{err}");
        assert_eq!(dbs.kept_templates().unwrap().len(), 2);
    }
}
