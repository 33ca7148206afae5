//! Project folder auto-detection at a revision (design §3.1).

use super::{Repo, SourceError, TreeRef};
use crate::project::MigrationEntryKind;

/// Why the project folder could not be found.
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
