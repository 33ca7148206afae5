//! Sample projects embedded from `fixtures/`, and a builder that turns one into a real git
//! repository with one tagged commit per step (used by `demo`, the tests and the benchmarks).
//!
//! A fixture is a folder of steps `NN-<tag>/`; commit *i* holds the union of steps 1..=i
//! (later files replace earlier ones). A step's `.message` is its commit message and its
//! `.delete` lists paths removed at that step.

use git2::{Oid, Repository, Signature, Time};
use std::collections::BTreeMap;
use std::path::Path;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

/// One step of a fixture.
#[derive(Clone, Debug)]
pub(crate) struct FixtureStep {
    /// Tag to create (`v1.0.0`).
    pub tag: String,
    /// Commit message.
    pub message: String,
    /// Files written at this step (path, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// Paths removed at this step.
    pub delete: Vec<String>,
}

/// The steps of an embedded fixture (`shop`), in order.
pub(crate) fn steps(fixture: &str) -> Vec<FixtureStep> {
    let prefix = format!("{fixture}/");
    let mut by_step: BTreeMap<String, FixtureStep> = BTreeMap::new();
    for (path, bytes) in embedded::FILES {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let Some((step, file)) = rest.split_once('/') else {
            continue;
        };
        let Some((_, tag)) = step.split_once('-') else {
            continue;
        };
        let s = by_step
            .entry(step.to_string())
            .or_insert_with(|| FixtureStep {
                tag: tag.to_string(),
                message: format!("Release {tag}"),
                files: vec![],
                delete: vec![],
            });
        match file {
            ".message" => s.message = String::from_utf8_lossy(bytes).trim().to_string(),
            ".delete" => {
                s.delete = String::from_utf8_lossy(bytes)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            _ => s.files.push((file.to_string(), bytes.to_vec())),
        }
    }
    by_step.into_values().collect()
}

/// A fixed signature at a fixed time (so commit ids are reproducible), `n` seconds later per commit.
pub(crate) fn signature(n: i64) -> Signature<'static> {
    Signature::new(
        "git-migrate demo",
        "demo@git-migrate.invalid",
        &Time::new(1_700_000_000 + n * 3600, 0),
    )
    .expect("a valid signature")
}

/// Writes `files` as a commit on top of `parent` (the parent's tree plus these files, minus
/// `delete`), updates `HEAD`'s branch, and returns the commit.
pub fn commit_files(
    repo: &Repository,
    parent: Option<Oid>,
    files: &[(String, Vec<u8>)],
    delete: &[String],
    message: &str,
    n: i64,
) -> Result<Oid, git2::Error> {
    let mut index = git2::Index::new()?;
    if let Some(p) = parent {
        index.read_tree(&repo.find_commit(p)?.tree()?)?;
    }
    for d in delete {
        let _ = index.remove_path(Path::new(d));
        let _ = index.remove_dir(Path::new(d), 0);
    }
    for (path, bytes) in files {
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: bytes.len() as u32,
            id: repo.blob(bytes)?,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add(&entry)?;
    }
    let tree_id = index.write_tree_to(repo)?;
    let tree = repo.find_tree(tree_id)?;
    let sig = signature(n);
    let parents: Vec<git2::Commit<'_>> = match parent {
        Some(p) => vec![repo.find_commit(p)?],
        None => vec![],
    };
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &refs)
}

/// Builds a repository at `dir` (created; bare when asked) from an embedded fixture.
/// Returns `(tag, commit)` per step.
pub fn build_repo(
    dir: &Path,
    fixture: &str,
    bare: bool,
) -> Result<Vec<(String, Oid)>, git2::Error> {
    let repo = if bare {
        Repository::init_bare(dir)?
    } else {
        Repository::init(dir)?
    };
    let mut parent = None;
    let mut out = Vec::new();
    for (i, step) in steps(fixture).into_iter().enumerate() {
        let c = commit_files(
            &repo,
            parent,
            &step.files,
            &step.delete,
            &step.message,
            i as i64,
        )?;
        repo.tag_lightweight(&step.tag, &repo.find_object(c, None)?, false)?;
        parent = Some(c);
        out.push((step.tag, c));
    }
    if !bare {
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))?;
    }
    Ok(out)
}
