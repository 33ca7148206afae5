//! Project folder auto-detection at a revision (design §3.1).

use super::{Repo, SourceError, TreeRef};
use crate::project::MigrationEntryKind;

/// Why the project folder (or, with `--database-name`, the database's folder in it) could not
/// be found at a revision.
#[derive(Debug, thiserror::Error)]
pub enum ProjectDirError {
    /// No candidate.
    #[error("no Hasura project (config.yaml) found at {at}: looked at the repository root, hasura/, and folders holding config.yaml beside migrations/ or metadata/")]
    NotFound {
        /// Where.
        at: String,
    },
    /// `config.yaml` is there, but it is a folder, a symbolic link or a submodule.
    #[error("{path} at {at} is {what}, not a file")]
    NotAFile {
        /// Its path in the repository.
        path: String,
        /// Where.
        at: String,
        /// `a folder`, `a symbolic link`, `a submodule`.
        what: String,
    },
    /// Several candidates.
    #[error("several Hasura projects found at {at}: {}", .candidates.join(", "))]
    Ambiguous {
        /// Where.
        at: String,
        /// The folders.
        candidates: Vec<String>,
    },
    /// `--database-name` names a database other than `default` at a config v2 revision.
    #[error("--database-name {name}: {config} at {at} is a config v2 project, which has one database, `default`")]
    NotV3 {
        /// The name given.
        name: String,
        /// Path of config.yaml.
        config: String,
        /// The revision (`v1.2.0 (abc1234567)`).
        at: String,
    },
    /// `--database-name` names a database that a config v3 revision does not have.
    #[error("--database-name {}: there is no {}/ at {}", .0.name, .0.folder, .0.at)]
    NoDatabase(Box<MissingDatabase>),
}

/// What [`ProjectDirError::NoDatabase`] says (boxed: errors travel in `Result`s everywhere).
#[derive(Debug)]
pub struct MissingDatabase {
    /// The name given.
    pub name: String,
    /// The folder looked for (`hasura/migrations/foo`).
    pub folder: String,
    /// The revision (`v1.2.0 (abc1234567)`).
    pub at: String,
    /// The databases that revision has (folders, and sources in the metadata), sorted.
    pub known: Vec<String>,
}

impl ProjectDirError {
    /// Whether this is about `--database-name` rather than the project folder.
    pub fn is_database(&self) -> bool {
        matches!(
            self,
            ProjectDirError::NotV3 { .. } | ProjectDirError::NoDatabase(_)
        )
    }

    /// What to do about it, for `hint:` lines.
    pub fn hints(&self) -> Vec<String> {
        match self {
            ProjectDirError::NotV3 { .. } => vec![
                "drop --database-name (or pass --database-name default) for revisions from before the move to config v3".into(),
            ],
            ProjectDirError::NoDatabase(m) if !m.known.is_empty() => vec![format!(
                "databases at {}: {}",
                m.at,
                m.known.join(", ")
            )],
            ProjectDirError::NoDatabase(_) => vec![
                "check the name; a database exists at a revision when it has a migrations or seeds folder there, or the metadata lists it as a source".into(),
            ],
            _ => vec![],
        }
    }
}

/// `--database-name NAME` at one revision (every read of a project checks the revision it
/// reads; the default database always passes). A config v2 project has one database,
/// `default`. A config v3 project must have the database: a `migrations/NAME/` or
/// `seeds/NAME/` folder, or a source of that name in `databases/databases.yaml`; a typo must
/// not make every applied migration look like one to revert. `may_be_new` (writing the first
/// migration or seed of a database) skips that last rule. `at` names the revision, asked for
/// only when refusing.
pub(super) fn check_database(
    repo: &Repo,
    tree: &TreeRef,
    loc: &super::ProjectLocation,
    name: &str,
    may_be_new: bool,
    at: impl Fn() -> String,
) -> Result<(), SourceError> {
    if name == "default" {
        return Ok(());
    }
    if loc.config.version < 3 {
        return Err(ProjectDirError::NotV3 {
            name: name.to_string(),
            config: super::join(&loc.dir, "config.yaml"),
            at: at(),
        }
        .into());
    }
    if may_be_new {
        return Ok(());
    }
    let mut known: Vec<String> = Vec::new();
    for folder in [
        &loc.config.migrations_directory,
        &loc.config.seeds_directory,
    ] {
        let base = super::join(&loc.dir, folder);
        for e in repo.list(tree, &base)?.unwrap_or_default() {
            if e.kind != MigrationEntryKind::Dir {
                continue;
            }
            if e.name == name {
                return Ok(());
            }
            if !known.contains(&e.name) {
                known.push(e.name);
            }
        }
    }
    for source in metadata_sources(repo, tree, loc) {
        if source == name {
            return Ok(());
        }
        if !known.contains(&source) {
            known.push(source);
        }
    }
    known.sort();
    Err(ProjectDirError::NoDatabase(Box::new(MissingDatabase {
        name: name.to_string(),
        folder: super::join(
            &super::join(&loc.dir, &loc.config.migrations_directory),
            name,
        ),
        at: at(),
        known,
    }))
    .into())
}

/// The source names listed in `databases/databases.yaml` (nothing when it is missing or does
/// not parse: the metadata build reports that).
fn metadata_sources(repo: &Repo, tree: &TreeRef, loc: &super::ProjectLocation) -> Vec<String> {
    let path = super::join(&loc.metadata_dir, "databases/databases.yaml");
    let Ok(Some(bytes)) = repo.read_optional(tree, &path) else {
        return Vec::new();
    };
    let Some(doc) = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| crate::yaml::parse(t).ok())
    else {
        return Vec::new();
    };
    doc.value
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .collect()
}

const MAX_DEPTH: usize = 4;

/// Finds the project folder: the root, then `hasura/`, else the single folder holding
/// `config.yaml` beside `migrations/` or `metadata/` (skipping `node_modules` and dot folders).
pub fn detect_project_dir(repo: &Repo, tree: &TreeRef) -> Result<String, SourceError> {
    for dir in ["", "hasura"] {
        if is_project(repo, tree, dir)? {
            return Ok(dir.to_string());
        }
    }
    // A `config.yaml` that is not a file at the root says more than "no project found".
    if let Some(e) = repo
        .list(tree, "")?
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.name == "config.yaml")
    {
        return Err(not_a_file(tree, "config.yaml", &e).into());
    }
    let mut found = Vec::new();
    search(repo, tree, "", 0, &mut found)?;
    let at = super::describe_tree(tree);
    match found.len() {
        0 => Err(ProjectDirError::NotFound { at }.into()),
        1 => Ok(found.remove(0)),
        _ => Err(ProjectDirError::Ambiguous {
            at,
            candidates: found,
        }
        .into()),
    }
}

/// The error for a `config.yaml` entry that is not a regular file.
pub(super) fn not_a_file(tree: &TreeRef, path: &str, e: &super::Entry) -> ProjectDirError {
    ProjectDirError::NotAFile {
        path: path.to_string(),
        at: super::describe_tree(tree),
        what: match (e.kind, e.special) {
            (MigrationEntryKind::Dir, _) => "a folder".into(),
            (_, Some(kind)) => format!("a {kind}"),
            _ => "not a regular file".into(),
        },
    }
}

fn is_project(repo: &Repo, tree: &TreeRef, dir: &str) -> Result<bool, SourceError> {
    let Some(entries) = repo.list(tree, dir)? else {
        return Ok(false);
    };
    Ok(entries
        .iter()
        .any(|e| e.name == "config.yaml" && e.kind == MigrationEntryKind::File))
}

fn search(
    repo: &Repo,
    tree: &TreeRef,
    dir: &str,
    depth: usize,
    found: &mut Vec<String>,
) -> Result<(), SourceError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let Some(entries) = repo.list(tree, dir)? else {
        return Ok(());
    };
    let has = |n: &str, k: MigrationEntryKind| entries.iter().any(|e| e.name == n && e.kind == k);
    if !dir.is_empty()
        && has("config.yaml", MigrationEntryKind::File)
        && (has("migrations", MigrationEntryKind::Dir) || has("metadata", MigrationEntryKind::Dir))
    {
        found.push(dir.to_string());
        return Ok(());
    }
    for e in &entries {
        if e.kind != MigrationEntryKind::Dir
            || e.name == "node_modules"
            || e.name.starts_with('.')
            || e.name == "target"
        {
            continue;
        }
        let sub = if dir.is_empty() {
            e.name.clone()
        } else {
            format!("{dir}/{}", e.name)
        };
        search(repo, tree, &sub, depth + 1, found)?;
    }
    Ok(())
}
