//! `create NAME`: a new migration folder `<ms>_<name>/` in the working tree, like
//! `hasura migrate create` (see [`super`]).

use super::{
    migrations_at, next_version, write_migration, AuthoringError, MissingDown, WorkProject,
};
use crate::project::join_path as join;
use crate::project::sql::is_effectively_empty;
use crate::project::Version;
use crate::source::Repo;

/// What `create` was asked for.
pub struct CreateOptions<'a> {
    /// Migration name (the folder is `<version>_<name>`).
    pub name: &'a str,
    /// The up SQL (`None`: none given).
    pub up: Option<Vec<u8>>,
    /// The down SQL (`None`: none given).
    pub down: Option<&'a str>,
    /// Create the migration even though its down.sql is empty.
    pub allow_empty_down: bool,
    /// Version to use instead of the current time in milliseconds.
    pub version: Option<Version>,
}

/// A new migration, planned.
pub struct CreatePlan {
    /// Its version.
    pub version: Version,
    /// Its folder (repository-relative).
    pub folder: String,
    /// What the caller should show before writing.
    pub warnings: Vec<String>,
    /// What the caller should show after writing.
    pub reminders: Vec<String>,
    up: String,
    down: String,
}

impl CreatePlan {
    /// The up.sql it writes.
    pub fn up(&self) -> &str {
        &self.up
    }

    /// The down.sql it writes.
    pub fn down(&self) -> &str {
        &self.down
    }
}

/// Plans `create` in the migrations folder `dir` of the working tree.
pub fn plan_create(
    repo: &Repo,
    wp: &WorkProject,
    dir: &str,
    opts: CreateOptions<'_>,
) -> Result<CreatePlan, AuthoringError> {
    let up_given = opts.up.is_some();
    let up = String::from_utf8(opts.up.unwrap_or_default()).map_err(AuthoringError::UpNotUtf8)?;
    let down = opts.down.unwrap_or_default().to_string();
    if is_effectively_empty(&down) && !opts.allow_empty_down {
        let missing = if !up_given && opts.down.is_none() {
            MissingDown::NoSql
        } else if opts.down.is_none() {
            MissingDown::NoDownSql
        } else {
            MissingDown::EmptyDownSql
        };
        return Err(AuthoringError::EmptyDown { missing, up_given });
    }
    let set = migrations_at(repo, &wp.tree, dir)?;
    let max = set.iter().next_back().map(|m| m.version);
    let mut warnings = Vec::new();
    let version = match opts.version {
        Some(v) => {
            if let Some(m) = set.get(v) {
                return Err(AuthoringError::CreateVersionTaken {
                    version: v,
                    location: m.location.clone(),
                });
            }
            if let Some(max) = max.filter(|m| v <= *m) {
                warnings.push(format!(
                    "version {v} is not above the highest existing version ({max}); `git migrate check` reports it as out-of-order"
                ));
            }
            v
        }
        None => next_version(max)?,
    };
    let folder = join(dir, &format!("{version}_{}", opts.name));
    if wp.root.join(&folder).exists() {
        return Err(AuthoringError::FolderExists { folder });
    }
    Ok(CreatePlan {
        version,
        folder,
        warnings,
        reminders: reminders(up_given, &up, &down),
        up,
        down,
    })
}

/// What to remind of once the files are written: empty files.
fn reminders(up_given: bool, up: &str, down: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !up_given {
        out.push("up.sql and down.sql are empty: write the SQL before committing (an empty up.sql applies as a no-op)".to_string());
    } else if is_effectively_empty(up) {
        out.push("up.sql holds no statements".to_string());
    }
    if is_effectively_empty(down) && up_given {
        out.push(
            "down.sql is empty: this migration cannot be rolled back until you write it"
                .to_string(),
        );
    }
    out
}

/// Writes the planned migration under `root`.
pub fn apply_create(plan: &CreatePlan, root: &std::path::Path) -> Result<(), AuthoringError> {
    write_migration(root, &plan.folder, plan.up.as_bytes(), plan.down.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_name_the_empty_files() {
        assert_eq!(reminders(false, "", "").len(), 1);
        assert_eq!(
            reminders(true, "-- nothing\n", "drop table a;"),
            vec!["up.sql holds no statements"]
        );
        assert_eq!(
            reminders(true, "create table a ();", " "),
            vec!["down.sql is empty: this migration cannot be rolled back until you write it"]
        );
        assert!(reminders(true, "create table a ();", "drop table a;").is_empty());
    }
}
