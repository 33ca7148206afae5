//! `delete --version V…`: removes migrations from the working tree, or with `--server` only
//! the database's record of them (see [`super`]).

use super::{
    io_error, migration_paths, read_applied, with_lock, write_state, AuthoringError, Database,
    StateChange,
};
use crate::project::{Migration, MigrationSet, Version};
use std::path::Path;

/// A deletion from the working tree, planned.
pub struct DeletePlan {
    /// The migrations to delete.
    pub chosen: Vec<Migration>,
}

/// Plans deleting `versions` (or `all`) from the migrations folder `dir` holding `set`.
pub fn plan_delete(
    set: &MigrationSet,
    dir: &str,
    versions: &[Version],
    all: bool,
) -> Result<DeletePlan, AuthoringError> {
    let chosen = if all {
        set.iter().cloned().collect()
    } else {
        let mut out = Vec::new();
        for v in versions {
            match set.get(*v) {
                Some(m) => out.push(m.clone()),
                None => {
                    return Err(AuthoringError::NotInFolder {
                        version: *v,
                        dir: dir.to_string(),
                    })
                }
            }
        }
        out
    };
    Ok(DeletePlan { chosen })
}

/// Refuses to delete migrations that the database has applied: it would revert them on its
/// next deploy.
pub fn check_delete_state(
    plan: &DeletePlan,
    client: &mut postgres::Client,
    db: &Database<'_>,
) -> Result<(), AuthoringError> {
    let applied = read_applied(client, db)?;
    let on: Vec<&Migration> = plan
        .chosen
        .iter()
        .filter(|m| applied.has(m.version))
        .collect();
    if !on.is_empty() {
        return Err(AuthoringError::DeleteApplied {
            db: applied.db,
            labels: on.iter().map(|m| m.label()).collect(),
            versions: on.iter().map(|m| m.version).collect(),
        });
    }
    Ok(())
}

/// Deletes the planned migrations' files; returns the paths deleted.
pub fn apply_delete(plan: &DeletePlan, root: &Path) -> Result<Vec<String>, AuthoringError> {
    let mut deleted = Vec::new();
    for m in &plan.chosen {
        for p in migration_paths(m) {
            let abs = root.join(&p);
            let r = if abs.is_dir() {
                std::fs::remove_dir_all(&abs)
            } else {
                std::fs::remove_file(&abs)
            };
            r.map_err(io_error(format!("cannot delete {p}")))?;
            deleted.push(p);
        }
    }
    Ok(deleted)
}

/// `delete --server`, planned: what the database records now.
pub struct ServerDeletePlan {
    /// How many versions the database records.
    pub recorded: usize,
    /// The versions to forget (`None`: all of them).
    versions: Option<Vec<Version>>,
}

/// What `delete --server` removed.
pub struct ServerDeleteReport {
    /// The versions removed, ascending.
    pub versions: Vec<Version>,
    /// The `repair` deployment that records it.
    pub deployment_id: Option<i64>,
    /// Where the state is kept, for messages.
    pub tables: String,
}

/// Plans `delete --server` of `versions` (or `all`): refuses a database without migration
/// state, and versions it does not record.
pub fn plan_delete_server(
    client: &mut postgres::Client,
    db: &Database<'_>,
    versions: &[Version],
    all: bool,
) -> Result<ServerDeletePlan, AuthoringError> {
    let preview = read_applied(client, db)?;
    let stores = preview.state.hasura_stores();
    if !preview.state.live.ledger_exists && !stores.schema_migrations && !stores.cli_state {
        return Err(AuthoringError::NoState {
            db: db.name.clone(),
            schema: db.ledger.schema().to_string(),
        });
    }
    let plan = ServerDeletePlan {
        recorded: preview.versions().len(),
        versions: (!all).then(|| versions.to_vec()),
    };
    chosen_versions(&plan, &preview.versions(), db)?;
    Ok(plan)
}

fn chosen_versions(
    plan: &ServerDeletePlan,
    recorded: &std::collections::BTreeSet<Version>,
    db: &Database<'_>,
) -> Result<Vec<Version>, AuthoringError> {
    let Some(asked) = &plan.versions else {
        return Ok(recorded.iter().copied().collect());
    };
    let missing: Vec<Version> = asked
        .iter()
        .filter(|v| !recorded.contains(v))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(AuthoringError::NotRecorded {
            db: db.name.clone(),
            missing,
        });
    }
    let mut v = asked.clone();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Forgets the planned versions in the database state, under the deploy lock; keeps the files;
/// runs nothing. `None` when the database records no versions.
pub fn apply_delete_server(
    plan: &ServerDeletePlan,
    client: &mut postgres::Client,
    db: &Database<'_>,
) -> Result<Option<ServerDeleteReport>, AuthoringError> {
    with_lock(client, db.ledger, |tx| {
        let applied = read_applied(tx, db)?;
        let versions = chosen_versions(plan, &applied.versions(), db)?;
        if versions.is_empty() {
            return Ok(None);
        }
        let change = StateChange {
            remove: &versions,
            add: None,
            target_ref: "delete --server",
            plan: serde_json::json!({"delete_state": versions, "executed": false}),
        };
        let deployment_id = write_state(tx, db, &applied, change)?;
        Ok(Some(ServerDeleteReport {
            tables: applied.tables(db.ledger),
            versions,
            deployment_id,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;

    fn set(versions: &[Version]) -> MigrationSet {
        MigrationSet::new(
            versions
                .iter()
                .map(|v| Migration {
                    version: *v,
                    name: "x".into(),
                    location: format!("m/{v}_x"),
                    tree: None,
                    resolved: true,
                    up: Some(crate::project::MigrationFile {
                        path: format!("m/{v}_x/up.sql"),
                        blob: String::new(),
                    }),
                    down: None,
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn a_delete_plan_names_what_it_deletes() {
        let s = set(&[1, 2, 3]);
        let chosen = |p: DeletePlan| p.chosen.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(
            chosen(plan_delete(&s, "m", &[3, 1], false).unwrap()),
            [3, 1]
        );
        assert_eq!(chosen(plan_delete(&s, "m", &[], true).unwrap()), [1, 2, 3]);
        assert!(matches!(
            plan_delete(&s, "m", &[1, 4], false),
            Err(AuthoringError::NotInFolder { version: 4, .. })
        ));
    }

    #[test]
    fn applying_deletes_the_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("m/1_x")).unwrap();
        std::fs::create_dir_all(dir.path().join("m/2_x")).unwrap();
        let plan = plan_delete(&set(&[1, 2]), "m", &[2], false).unwrap();
        assert_eq!(apply_delete(&plan, dir.path()).unwrap(), ["m/2_x"]);
        assert!(dir.path().join("m/1_x").exists());
        assert!(!dir.path().join("m/2_x").exists());
    }

    #[test]
    fn server_deletes_choose_recorded_versions_only() {
        let ledger = Ledger::new("git_migrate");
        let db = Database {
            ledger: &ledger,
            name: "db".into(),
            config_version: 3,
            database: "default",
            actor: "me",
        };
        let recorded = [1, 2, 3].into_iter().collect();
        let plan = |versions: Option<Vec<Version>>| ServerDeletePlan {
            recorded: 3,
            versions,
        };
        assert_eq!(
            chosen_versions(&plan(Some(vec![3, 1, 3])), &recorded, &db).unwrap(),
            [1, 3]
        );
        assert_eq!(
            chosen_versions(&plan(None), &recorded, &db).unwrap(),
            [1, 2, 3]
        );
        assert!(matches!(
            chosen_versions(&plan(Some(vec![2, 4])), &recorded, &db),
            Err(AuthoringError::NotRecorded { missing, .. }) if missing == [4]
        ));
    }
}
