//! Real git repositories for tests, written with git2 (fixed identity and dates, no checkout
//! unless asked).

use git2::{Oid, Repository, Signature, Time};
use std::path::{Path, PathBuf};

/// A repository in a temp dir.
pub struct TestRepo {
    pub dir: tempfile::TempDir,
    pub repo: Repository,
    n: i64,
}

/// A file to write: (path, content).
pub type File<'a> = (&'a str, &'a str);

/// A tree entry to commit, with its mode.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A regular file.
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
    /// A submodule (gitlink) at this commit.
    Gitlink(Oid),
}

impl TestRepo {
    /// An empty non-bare repository.
    pub fn new() -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("gm-repo-")
            .tempdir()
            .unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        TestRepo { dir, repo, n: 0 }
    }

    /// An empty bare repository.
    pub fn bare() -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("gm-bare-")
            .tempdir()
            .unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        TestRepo { dir, repo, n: 0 }
    }

    /// The shop fixture (tags v1.0.0, v1.1.0, v1.2.0, v2.0.0), checked out.
    pub fn shop() -> TestRepo {
        TestRepo::fixture("shop")
    }

    /// An embedded fixture from `fixtures/<name>/`, one tagged commit per step, checked out.
    pub fn fixture(name: &str) -> TestRepo {
        let dir = tempfile::Builder::new().prefix("gm-fx-").tempdir().unwrap();
        git_migrate::fixtures::build_repo(dir.path(), name, false).unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        TestRepo { dir, repo, n: 100 }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn sig(&mut self) -> Signature<'static> {
        self.n += 1;
        Signature::new(
            "Test",
            "test@example.invalid",
            &Time::new(1_700_000_000 + self.n * 60, 0),
        )
        .unwrap()
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> Option<Oid> {
        self.repo.head().ok().and_then(|h| h.target())
    }

    /// Commits `files` (added or replaced) and removes `delete` on top of HEAD.
    pub fn commit(&mut self, files: &[File<'_>], delete: &[&str], msg: &str) -> Oid {
        let parent = self.head();
        self.commit_on(
            parent.into_iter().collect(),
            files,
            delete,
            msg,
            Some("HEAD"),
        )
    }

    /// Commits with explicit parents; the tree is the first parent's tree plus changes.
    pub fn commit_on(
        &mut self,
        parents: Vec<Oid>,
        files: &[File<'_>],
        delete: &[&str],
        msg: &str,
        update_ref: Option<&str>,
    ) -> Oid {
        self.commit_bytes(
            parents,
            &files
                .iter()
                .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
                .collect::<Vec<_>>(),
            delete,
            msg,
            update_ref,
        )
    }

    /// Commits `files` (bytes) and removes `delete` on top of `parents[0]`'s tree, with
    /// `parents` as parents; moves `update_ref` when given.
    pub fn commit_bytes(
        &mut self,
        parents: Vec<Oid>,
        files: &[(String, Vec<u8>)],
        delete: &[&str],
        msg: &str,
        update_ref: Option<&str>,
    ) -> Oid {
        let entries: Vec<(String, Entry)> = files
            .iter()
            .map(|(p, b)| (p.clone(), Entry::File(b.clone())))
            .collect();
        self.commit_entries(&parents, &entries, delete, msg, update_ref)
    }

    /// The one commit writer: `entries` with their modes (files, symlinks, gitlinks) added or
    /// replaced and `delete` removed on top of `parents[0]`'s tree; moves `update_ref` when
    /// given. Nothing is checked out.
    pub fn commit_entries(
        &mut self,
        parents: &[Oid],
        entries: &[(String, Entry)],
        delete: &[&str],
        msg: &str,
        update_ref: Option<&str>,
    ) -> Oid {
        let mut index = git2::Index::new().unwrap();
        if let Some(p) = parents.first() {
            index
                .read_tree(&self.repo.find_commit(*p).unwrap().tree().unwrap())
                .unwrap();
        }
        for d in delete {
            let _ = index.remove_path(Path::new(d));
            let _ = index.remove_dir(Path::new(d), 0);
        }
        for (path, entry) in entries {
            let (mode, id, size) = match entry {
                Entry::File(b) => (0o100644, self.repo.blob(b).unwrap(), b.len()),
                Entry::Symlink(t) => (0o120000, self.repo.blob(t.as_bytes()).unwrap(), t.len()),
                Entry::Gitlink(c) => (0o160000, *c, 0),
            };
            // Replacing a file by a folder (or the reverse) needs the old entries gone first.
            let _ = index.remove_path(Path::new(path));
            let _ = index.remove_dir(Path::new(path), 0);
            index
                .add(&git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode,
                    uid: 0,
                    gid: 0,
                    file_size: size as u32,
                    id,
                    flags: 0,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                })
                .unwrap();
        }
        let sig = self.sig();
        let tree = self
            .repo
            .find_tree(index.write_tree_to(&self.repo).unwrap())
            .unwrap();
        let parents: Vec<git2::Commit<'_>> = parents
            .iter()
            .map(|p| self.repo.find_commit(*p).unwrap())
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        self.repo
            .commit(update_ref, &sig, &sig, msg, &tree, &refs)
            .unwrap()
    }

    /// Commits the whole working tree (additions and deletions) on top of HEAD, moving HEAD.
    pub fn commit_worktree(&mut self, msg: &str) -> Oid {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"].iter(), None).unwrap();
        index.write().unwrap();
        let sig = self.sig();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parent = self.repo.head().unwrap().peel_to_commit().unwrap();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, msg, &tree, &[&parent])
            .unwrap()
    }

    /// A lightweight tag.
    pub fn tag(&self, name: &str, commit: Oid) {
        self.repo
            .tag_lightweight(name, &self.repo.find_object(commit, None).unwrap(), true)
            .unwrap();
    }

    /// Points a branch at a commit.
    pub fn branch(&self, name: &str, commit: Oid) {
        self.repo
            .branch(name, &self.repo.find_commit(commit).unwrap(), true)
            .unwrap();
    }
}

/// A config v2 project's base files at the repository root.
pub fn base_project() -> Vec<File<'static>> {
    vec![
        (
            "config.yaml",
            "version: 2\nendpoint: http://localhost:8080\nmetadata_directory: metadata\n",
        ),
        ("metadata/version.yaml", "version: 2\n"),
        ("metadata/tables.yaml", "[]\n"),
    ]
}

/// The base project's files as owned pairs, with `extra` added (to extend with [`migration`]s
/// and commit through [`files`]).
pub fn base_project_with(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = base_project()
        .into_iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
    f.extend(extra.iter().cloned());
    f
}

/// A migration's two files.
pub fn migration(version: i64, name: &str, up: &str, down: &str) -> Vec<(String, String)> {
    vec![
        (
            format!("migrations/{version}_{name}/up.sql"),
            up.to_string(),
        ),
        (
            format!("migrations/{version}_{name}/down.sql"),
            down.to_string(),
        ),
    ]
}

/// Borrowed view of owned files.
pub fn files(owned: &[(String, String)]) -> Vec<File<'_>> {
    owned
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect()
}
