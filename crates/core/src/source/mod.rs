//! Reading projects straight out of git objects (and, on request, the index or the working tree).
//!
//! Nothing here checks anything out or writes to the index, the working tree or `HEAD`.
//! Reads are lazy: listing a migrations folder reads tree objects only; blob contents are read
//! when a plan needs them.

mod detect;
mod step_sql;

pub use detect::{detect_project_dir, MissingDatabase, ProjectDirError};
pub use step_sql::StepSql;

use crate::config::{HasuraConfig, HasuraConfigError};
use crate::project::{
    parse_migration_listing, LayoutProblem, MigrationDirEntry, MigrationEntryKind, MigrationSet,
};
use git2::{ObjectType, Oid, Repository};
use std::path::{Path, PathBuf};

/// Where a project is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A revision (`HEAD`, `v1.4.0`, `main~3`, a commit id).
    Rev(String),
    /// The index (what `git commit` would record), for pre-commit hooks.
    Staged,
    /// The files on disk: only when asked for with `--worktree`.
    Worktree,
}

impl Source {
    /// How the source is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Rev(r) => r.clone(),
            Source::Staged => "the index (--staged)".into(),
            Source::Worktree => "the working tree (--worktree)".into(),
        }
    }
}

/// Errors reading from git.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The repository could not be opened.
    #[error("cannot open a git repository at {path}")]
    Open {
        /// Where we looked.
        path: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The revision does not resolve.
    #[error("unknown revision '{rev}'")]
    UnknownRevision {
        /// As typed.
        rev: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The revision names something that is not a commit (a tree or blob tag).
    #[error("revision '{rev}' does not point at a commit (it is a {kind})")]
    NotACommit {
        /// As typed.
        rev: String,
        /// Object kind found.
        kind: String,
    },
    /// A commit that the ledger names is missing from this clone.
    #[error("commit {commit} is not in this clone; fetch it or deepen the clone (git fetch --unshallow)")]
    MissingCommit {
        /// The commit id.
        commit: String,
    },
    /// The repository has no commit yet.
    #[error("the repository has no commits yet, so there is no revision '{rev}' to read")]
    NoCommits {
        /// As typed.
        rev: String,
    },
    /// `--project` points outside the repository.
    #[error("--project {0:?} must be a folder inside the repository (relative, no ..)")]
    ProjectOutside(String),
    /// A repository with no working tree was asked for the working tree or index.
    #[error("{what} needs a working tree, but this repository is bare")]
    Bare {
        /// `--worktree` or `--staged`.
        what: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read {path} at {at}")]
    Read {
        /// Path in the repository.
        path: String,
        /// Where (commit or worktree).
        at: String,
        /// Cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Project folder detection failed.
    #[error(transparent)]
    Project(#[from] ProjectDirError),
    /// config.yaml was bad.
    #[error(transparent)]
    Config(#[from] HasuraConfigError),
    /// The migrations folder has layout problems.
    #[error("the migrations folder at {at} has {} problem(s)", .problems.len())]
    Layout {
        /// Where.
        at: String,
        /// Every problem found.
        problems: Vec<LayoutProblem>,
    },
    /// A migration file that cannot be run as SQL: a Git LFS pointer, NUL bytes (binary), or
    /// not UTF-8. Found before anything runs.
    #[error("{path}{} @ {at}: {problem}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
    NotSql {
        /// Path in the repository.
        path: String,
        /// Commit or source.
        at: String,
        /// 1-based line of the first bad byte, when it means something.
        line: Option<usize>,
        /// What is wrong.
        problem: NotSqlProblem,
    },
    /// A legacy `up.yaml`/`down.yaml` migration that cannot be read as a list of API calls.
    #[error("{path} @ {at}: not a readable YAML migration: {message}")]
    YamlMigration {
        /// Path in the repository.
        path: String,
        /// Commit or source.
        at: String,
        /// What the YAML parser (or the API-call reader) said.
        message: String,
    },
    /// An entry the tool never follows: a symbolic link or a submodule where a migration folder,
    /// a migration file or a metadata file belongs.
    #[error(
        "{path} @ {at} is a {kind}; git-migrate reads only regular files and folders stored in git"
    )]
    Unfollowed {
        /// Path in the repository.
        path: String,
        /// Commit or source.
        at: String,
        /// `symbolic link` or `submodule`.
        kind: &'static str,
    },
    /// Any other libgit2 failure.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// Why a migration file is not SQL text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotSqlProblem {
    /// A Git LFS pointer file stands where the SQL should be.
    LfsPointer,
    /// A NUL byte (PostgreSQL cannot take one in SQL text): a binary file.
    Nul,
    /// Not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for NotSqlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotSqlProblem::LfsPointer => {
                "this is a Git LFS pointer file, not the SQL it stands for (git-migrate reads git \
                 objects and never fetches LFS content)"
            }
            NotSqlProblem::Nul => {
                "it contains a NUL byte, which PostgreSQL cannot take in SQL text: is it a binary file?"
            }
            NotSqlProblem::NotUtf8 => "not valid UTF-8; SQL files must be UTF-8",
        })
    }
}

impl SourceError {
    /// What to do about the error, for `hint:` lines (variants that need no hint give none).
    pub fn hints(&self) -> Vec<String> {
        match self {
            SourceError::NotSql {
                problem: NotSqlProblem::LfsPointer,
                path,
                ..
            } => vec![
                format!(
                    "keep migrations out of Git LFS: `git lfs untrack '{path}'` (or the pattern that \
                     matched it in .gitattributes), then `git add --renormalize .` and commit the real file"
                ),
                "to rewrite existing history: git lfs migrate export --include=<pattern>".into(),
            ],
            SourceError::NotSql {
                problem: NotSqlProblem::Nul,
                ..
            } => vec!["commit the SQL as text without NUL bytes (check `file <path>`)".into()],
            SourceError::NotSql {
                problem: NotSqlProblem::NotUtf8,
                ..
            } => vec![
                "re-encode the file as UTF-8 in a new commit (e.g. iconv -f latin1 -t utf-8)".into(),
            ],
            SourceError::Unfollowed { kind, .. } => vec![format!(
                "replace the {kind} with the real files in a new commit; git-migrate never follows \
                 links or submodules (they may point outside the repository or to other content)"
            )],
            SourceError::Project(p) => p.hints(),
            SourceError::Layout { problems, .. } => {
                let mut out: Vec<String> = Vec::new();
                for p in problems {
                    let h = p.hint();
                    if !out.contains(&h) {
                        out.push(h);
                    }
                }
                out
            }
            _ => vec![],
        }
    }
}

/// The SQL a migration file runs, or why it cannot run: a Git LFS pointer, NUL bytes (PostgreSQL
/// rejects them, and they mean a binary file), not UTF-8, or (for a legacy `up.yaml` /
/// `down.yaml`, whose `run_sql` calls are its SQL: [`crate::project::legacy`]) unreadable YAML.
/// Takes the bytes without copying.
pub fn sql_text(bytes: Vec<u8>, path: &str, at: &str) -> Result<String, SourceError> {
    migration_sql(bytes, path, at).map(|(sql, _)| sql)
}

/// [`sql_text`], with the API calls a legacy YAML migration skips (by type, in order; empty
/// for `.sql` files).
pub(crate) fn migration_sql(
    bytes: Vec<u8>,
    path: &str,
    at: &str,
) -> Result<(String, Vec<String>), SourceError> {
    let text = file_text(bytes, path, at)?;
    if !crate::project::legacy::is_yaml(path) {
        return Ok((text, vec![]));
    }
    crate::project::legacy::read(&text)
        .map(|m| (m.sql, m.skipped))
        .map_err(|message| SourceError::YamlMigration {
            path: path.to_string(),
            at: at.to_string(),
            message,
        })
}

/// The text of a migration file as written (no YAML conversion); see [`sql_text`].
pub(crate) fn file_text(bytes: Vec<u8>, path: &str, at: &str) -> Result<String, SourceError> {
    let line_of = |offset: usize| bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
    let fail = |line: Option<usize>, problem| SourceError::NotSql {
        path: path.to_string(),
        at: at.to_string(),
        line,
        problem,
    };
    if is_lfs_pointer(&bytes) {
        return Err(fail(None, NotSqlProblem::LfsPointer));
    }
    // `contains` is a memchr, fast on 50 MB files; the position is looked for only on failure.
    if bytes.contains(&0) {
        let i = bytes.iter().position(|b| *b == 0).unwrap_or_default();
        return Err(fail(Some(line_of(i)), NotSqlProblem::Nul));
    }
    String::from_utf8(bytes).map_err(|e| {
        let i = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..i].iter().filter(|b| **b == b'\n').count() + 1;
        fail(Some(line), NotSqlProblem::NotUtf8)
    })
}

/// Whether bytes are a Git LFS pointer file (`version https://git-lfs.github.com/spec/v1`, or the
/// pre-release `hawser` spelling); pointers are small, so big files are never one.
pub(crate) fn is_lfs_pointer(bytes: &[u8]) -> bool {
    bytes.len() < 1024
        && (bytes.starts_with(b"version https://git-lfs.github.com/spec/")
            || bytes.starts_with(b"version https://hawser.github.com/spec/"))
}

/// Why a migration folder name cannot be used: control characters (a newline would break every
/// line of output and the ledger's name column; an escape sequence would drive the terminal),
/// or bytes that are not UTF-8 (read as U+FFFD, so the name could not be recorded faithfully).
fn bad_name(name: &str) -> Option<&'static str> {
    if name.chars().any(char::is_control) {
        Some("contains a control character (a newline, a tab, an escape sequence…)")
    } else if name.contains('\u{FFFD}') {
        Some("is not valid UTF-8")
    } else {
        None
    }
}

/// The files of a migration folder that are read.
fn is_migration_file(name: &str) -> bool {
    matches!(name, "up.sql" | "down.sql")
}

/// Refuses a working-tree path that is, or passes through, a symbolic link: the working tree
/// is read as git would store it, and a link may point anywhere on the machine. Components
/// that do not exist are fine (the read then finds nothing).
fn no_symlink_on_disk(root: &Path, path: &str) -> Result<(), SourceError> {
    let mut here = root.to_path_buf();
    let mut rel = String::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        here.push(part);
        rel = join(&rel, part);
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(SourceError::Unfollowed {
                    path: rel,
                    at: "the working tree".into(),
                    kind: SYMLINK,
                })
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// A tree to read: a git tree object or a directory on disk.
#[derive(Clone, Debug)]
pub enum TreeRef {
    /// A git tree (a commit's, or the index written as a tree).
    Git {
        /// The root tree.
        tree: Oid,
        /// The commit it belongs to, if any.
        commit: Option<Oid>,
    },
    /// The working tree.
    Fs {
        /// The work dir.
        root: PathBuf,
        /// `HEAD`'s commit, if any (recorded with the dirty flag).
        head: Option<Oid>,
    },
}

impl TreeRef {
    /// The commit this tree is (or is based on).
    pub fn commit(&self) -> Option<Oid> {
        match self {
            TreeRef::Git { commit, .. } => *commit,
            TreeRef::Fs { head, .. } => *head,
        }
    }

    /// Whether this is not exactly a commit's tree.
    pub fn is_dirty(&self) -> bool {
        match self {
            TreeRef::Git { commit, .. } => commit.is_none(),
            TreeRef::Fs { .. } => true,
        }
    }
}

/// A directory entry of a tree.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: MigrationEntryKind,
    /// Object id (trees and blobs in git; blobs only on disk).
    pub id: Option<String>,
    /// For [`MigrationEntryKind::Other`]: `symbolic link` or `submodule` when it is one.
    pub special: Option<&'static str>,
}

const SYMLINK: &str = "symbolic link";
const SUBMODULE: &str = "submodule";

/// What a git tree entry is, when it is neither a folder nor a regular file.
pub(crate) fn special_git(e: &git2::TreeEntry<'_>) -> Option<&'static str> {
    match (e.kind(), e.filemode()) {
        (_, 0o120000) => Some(SYMLINK),
        (Some(ObjectType::Commit), _) | (_, 0o160000) => Some(SUBMODULE),
        _ => None,
    }
}

/// The opened repository.
pub struct Repo {
    repo: Repository,
    /// Tags by the commit they point at (built on first use).
    tags: std::cell::OnceCell<std::collections::HashMap<Oid, Vec<String>>>,
    /// Which database's migrations a config v3 project is read for (`--database-name`).
    database: String,
    /// Whether `database` was chosen (`--database-name`), rather than the default.
    database_chosen: bool,
    /// Whether the chosen database may not exist yet (`create`, `seed create`).
    database_may_be_new: bool,
}

/// How far back `Repo::nearest_tag` looks along first parents.
const DESCRIBE_DEPTH: usize = 1000;

/// A project read at a source: layout and migrations listed, nothing parsed yet.
#[derive(Clone, Debug)]
pub struct Project {
    /// The tree read.
    pub tree: TreeRef,
    /// How the source was named (`v1.4.0`, `HEAD`, …).
    pub source_name: String,
    /// Project folder relative to the repository root ("" = root).
    pub dir: String,
    /// Parsed config.yaml.
    pub config: HasuraConfig,
    /// Path of the migrations folder relative to the repository root.
    pub migrations_dir: String,
    /// The migrations.
    pub migrations: MigrationSet,
    /// Path of the metadata folder relative to the repository root.
    pub metadata_dir: String,
    /// Git tree id of the metadata folder (equal ids mean equal metadata).
    pub metadata_tree: Option<String>,
    /// Paths of `up.yaml`/`down.yaml` files ignored beside a `.sql` of the same direction.
    pub ignored_yaml: Vec<String>,
    /// Versioned migration folders that hold no migration (found so far: folders are read
    /// lazily, see [`Repo::resolve`]): skipped, and every plan says so.
    pub skipped_folders: Vec<String>,
}

impl Project {
    /// Commit id (hex) of the source, if it is a commit or based on one.
    pub fn commit_hex(&self) -> Option<String> {
        self.tree.commit().map(|c| c.to_string())
    }

    /// "path @ commit" for messages.
    pub fn at(&self) -> String {
        describe_tree(&self.tree)
    }
}

/// Where a project's parts are at a tree, before anything is listed.
#[derive(Clone, Debug)]
pub struct ProjectLocation {
    /// Project folder relative to the repository root ("" = root).
    pub dir: String,
    /// Parsed config.yaml.
    pub config: HasuraConfig,
    /// Path of the migrations folder relative to the repository root.
    pub migrations_dir: String,
    /// Path of the metadata folder relative to the repository root.
    pub metadata_dir: String,
}

/// "abc1234" for a commit, "the working tree" / "the index" otherwise.
pub fn describe_tree(tree: &TreeRef) -> String {
    match tree {
        TreeRef::Git {
            commit: Some(c), ..
        } => short(&c.to_string()),
        TreeRef::Git { commit: None, .. } => "the index".into(),
        TreeRef::Fs { .. } => "the working tree".into(),
    }
}

/// A revision for messages: `v1.2.0 (abc1234567)` for a name, `abc1234567` for a commit id,
/// else as [`describe_tree`] names it.
pub(crate) fn describe_source(source_name: Option<&str>, tree: &TreeRef) -> String {
    let here = describe_tree(tree);
    match (source_name, tree.commit()) {
        (Some(name), Some(c)) if !c.to_string().starts_with(name) && !name.is_empty() => {
            format!("{name} ({here})")
        }
        _ => here,
    }
}

/// First 10 characters of a commit id.
pub fn short(id: &str) -> String {
    id.chars().take(10).collect()
}

pub use crate::project::join_path;
use crate::project::join_path as join;

impl Repo {
    /// Who runs a command in this repository, as the ledger records it: `GIT_MIGRATE_ACTOR`,
    /// else git's `user.name <user.email>` (`GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL` first, like
    /// git), else `$USER@host`.
    pub fn identity(&self) -> String {
        if let Some(a) = std::env::var("GIT_MIGRATE_ACTOR")
            .ok()
            .filter(|a| !a.trim().is_empty())
        {
            return a;
        }
        let config = self.git().config().ok();
        let get = |env: &str, key: &str| {
            std::env::var(env)
                .ok()
                .or_else(|| config.as_ref().and_then(|c| c.get_string(key).ok()))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        match (
            get("GIT_AUTHOR_NAME", "user.name"),
            get("GIT_AUTHOR_EMAIL", "user.email"),
        ) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n,
            (None, Some(e)) => format!("<{e}>"),
            (None, None) => {
                let user = std::env::var("USER")
                    .or_else(|_| std::env::var("LOGNAME"))
                    .unwrap_or_else(|_| "unknown".into());
                let host = std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default();
                if host.is_empty() {
                    user
                } else {
                    format!("{user}@{host}")
                }
            }
        }
    }

    /// Opens the repository containing `path` (like `git -C path`), bare or not.
    pub fn open(path: &Path) -> Result<Repo, SourceError> {
        let repo = Repository::open_ext(
            path,
            git2::RepositoryOpenFlags::empty(),
            std::iter::empty::<&std::ffi::OsStr>(),
        )
        .map_err(|source| SourceError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Repo::wrap(repo))
    }

    fn wrap(repo: Repository) -> Repo {
        // Objects are addressed by their ids already; re-hashing every object read (libgit2's
        // default) costs more than the rest of a `status` on a large repository. git itself
        // does not verify on read either.
        git2::opts::strict_hash_verification(false);
        // libgit2 caches trees only up to 4 KiB by default; a config v3 `tables/` folder with
        // thousands of per-table files is hundreds of KiB and would be re-read for every file.
        // SAFETY: a process-wide setting changed before any object is read.
        let _ = unsafe { git2::opts::set_cache_object_limit(ObjectType::Tree, 64 << 20) };
        Repo {
            repo,
            tags: std::cell::OnceCell::new(),
            database: "default".into(),
            database_chosen: false,
            database_may_be_new: false,
        }
    }

    /// Opens the repository the way git does for its subcommands: `GIT_DIR`, `GIT_WORK_TREE`
    /// and `GIT_CEILING_DIRECTORIES` when set (hooks set `GIT_DIR`), else searching upwards
    /// from the current directory.
    pub fn open_from_env() -> Result<Repo, SourceError> {
        let repo = Repository::open_from_env().map_err(|source| SourceError::Open {
            path: std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| ".".into()),
            source,
        })?;
        Ok(Repo::wrap(repo))
    }

    /// The underlying git2 repository.
    pub fn git(&self) -> &Repository {
        &self.repo
    }

    /// Resolves a revision to a commit.
    pub fn resolve_commit(&self, rev: &str) -> Result<Oid, SourceError> {
        if self.repo.is_empty().unwrap_or(false) {
            return Err(SourceError::NoCommits {
                rev: rev.to_string(),
            });
        }
        let obj =
            self.repo
                .revparse_single(rev)
                .map_err(|source| SourceError::UnknownRevision {
                    rev: rev.to_string(),
                    source,
                })?;
        let peeled = obj.peel(ObjectType::Commit).map_err(|_| {
            let kind = obj
                .peel_to_tree()
                .map(|_| "tree")
                .unwrap_or_else(|_| obj.kind().map(|k| k.str()).unwrap_or("object"));
            SourceError::NotACommit {
                rev: rev.to_string(),
                kind: kind.to_string(),
            }
        })?;
        Ok(peeled.id())
    }

    /// Whether a commit id is present in this repository.
    pub fn has_commit(&self, id: &str) -> bool {
        Oid::from_str(id)
            .ok()
            .and_then(|oid| self.repo.find_commit(oid).ok())
            .is_some()
    }

    /// The tree of a commit id that the ledger names.
    pub fn tree_of_commit(&self, id: &str) -> Result<TreeRef, SourceError> {
        let oid = Oid::from_str(id).map_err(|_| SourceError::MissingCommit {
            commit: id.to_string(),
        })?;
        let commit = self
            .repo
            .find_commit(oid)
            .map_err(|_| SourceError::MissingCommit {
                commit: id.to_string(),
            })?;
        Ok(TreeRef::Git {
            tree: commit.tree_id(),
            commit: Some(oid),
        })
    }

    /// The tree for a source.
    pub fn tree(&self, source: &Source) -> Result<TreeRef, SourceError> {
        match source {
            Source::Rev(rev) => {
                let commit = self.resolve_commit(rev)?;
                let c = self.repo.find_commit(commit)?;
                Ok(TreeRef::Git {
                    tree: c.tree_id(),
                    commit: Some(commit),
                })
            }
            Source::Staged => {
                if self.repo.is_bare() {
                    return Err(SourceError::Bare { what: "--staged" });
                }
                // Writing the index as a tree adds tree objects to the object database (like
                // `git write-tree`); the index file itself is not modified.
                let mut index = self.repo.index()?;
                let tree = index.write_tree()?;
                Ok(TreeRef::Git { tree, commit: None })
            }
            Source::Worktree => {
                let root = self
                    .repo
                    .workdir()
                    .ok_or(SourceError::Bare { what: "--worktree" })?
                    .to_path_buf();
                let head = self.repo.head().ok().and_then(|h| h.target());
                Ok(TreeRef::Fs { root, head })
            }
        }
    }

    /// Lists a directory of a tree; `None` when it does not exist.
    pub fn list(&self, tree: &TreeRef, dir: &str) -> Result<Option<Vec<Entry>>, SourceError> {
        match tree {
            TreeRef::Git { tree, .. } => {
                let Some(t) = self.git_subtree(*tree, dir)? else {
                    return Ok(None);
                };
                let mut out = Vec::with_capacity(t.len());
                for e in t.iter() {
                    let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
                    let kind = match (e.kind(), e.filemode()) {
                        (Some(ObjectType::Tree), _) => MigrationEntryKind::Dir,
                        (Some(ObjectType::Blob), 0o100644 | 0o100755) => MigrationEntryKind::File,
                        _ => MigrationEntryKind::Other,
                    };
                    out.push(Entry {
                        name,
                        kind,
                        id: Some(e.id().to_string()),
                        special: special_git(&e),
                    });
                }
                Ok(Some(out))
            }
            TreeRef::Fs { root, .. } => {
                let path = root.join(dir);
                let rd = match std::fs::read_dir(&path) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
                    Err(e) => {
                        return Err(SourceError::Read {
                            path: dir.to_string(),
                            at: "the working tree".into(),
                            source: Box::new(e),
                        })
                    }
                };
                let mut out = Vec::new();
                for e in rd {
                    let e = e.map_err(|e| SourceError::Read {
                        path: dir.to_string(),
                        at: "the working tree".into(),
                        source: Box::new(e),
                    })?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name == ".git" {
                        continue;
                    }
                    let ft = e.file_type().map_err(|err| SourceError::Read {
                        path: join(dir, &name),
                        at: "the working tree".into(),
                        source: Box::new(err),
                    })?;
                    let (kind, id) = if ft.is_dir() {
                        (MigrationEntryKind::Dir, None)
                    } else if ft.is_file() {
                        let id = Oid::hash_file(ObjectType::Blob, e.path())?;
                        (MigrationEntryKind::File, Some(id.to_string()))
                    } else {
                        (MigrationEntryKind::Other, None)
                    };
                    let special = ft.is_symlink().then_some(SYMLINK);
                    out.push(Entry {
                        name,
                        kind,
                        id,
                        special,
                    });
                }
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(Some(out))
            }
        }
    }

    /// Whether `path` is (or, on disk, passes through) a symbolic link or a submodule.
    pub(crate) fn special_at(
        &self,
        tree: &TreeRef,
        path: &str,
    ) -> Result<Option<&'static str>, SourceError> {
        match tree {
            TreeRef::Git { tree, .. } => {
                if path.is_empty() {
                    return Ok(None);
                }
                match self.repo.find_tree(*tree)?.get_path(Path::new(path)) {
                    Ok(e) => Ok(special_git(&e)),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            TreeRef::Fs { root, .. } => match no_symlink_on_disk(root, path) {
                Ok(()) => Ok(None),
                Err(SourceError::Unfollowed { kind, .. }) => Ok(Some(kind)),
                Err(e) => Err(e),
            },
        }
    }

    /// The git tree id of a directory (for content addressing); `None` on disk or if missing.
    pub(crate) fn dir_id(&self, tree: &TreeRef, dir: &str) -> Result<Option<String>, SourceError> {
        match tree {
            TreeRef::Git { tree, .. } => {
                Ok(self.git_subtree(*tree, dir)?.map(|t| t.id().to_string()))
            }
            TreeRef::Fs { .. } => Ok(None),
        }
    }

    /// The bytes of a blob by its id, when this repository has it (e.g. the up.sql a ledger row
    /// was applied from, to compare with an edited one).
    pub(crate) fn blob_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let oid = Oid::from_str(id).ok()?;
        self.repo.find_blob(oid).ok().map(|b| b.content().to_vec())
    }

    /// Reads a file's bytes. `blob` is used when known (git sources).
    pub fn read(
        &self,
        tree: &TreeRef,
        path: &str,
        blob: Option<&str>,
    ) -> Result<Vec<u8>, SourceError> {
        let at = describe_tree(tree);
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| SourceError::Read {
            path: path.to_string(),
            at: at.clone(),
            source,
        };
        match tree {
            TreeRef::Git { tree, .. } => {
                let oid = match blob {
                    Some(b) => Oid::from_str(b).map_err(|e| fail(Box::new(e)))?,
                    None => {
                        let t = self.repo.find_tree(*tree)?;
                        let e = t.get_path(Path::new(path)).map_err(|e| fail(Box::new(e)))?;
                        if let Some(kind) = special_git(&e) {
                            return Err(SourceError::Unfollowed {
                                path: path.to_string(),
                                at,
                                kind,
                            });
                        }
                        e.id()
                    }
                };
                let b = self.repo.find_blob(oid).map_err(|e| fail(Box::new(e)))?;
                Ok(b.content().to_vec())
            }
            TreeRef::Fs { root, .. } => {
                no_symlink_on_disk(root, path)?;
                std::fs::read(root.join(path)).map_err(|e| fail(Box::new(e)))
            }
        }
    }

    /// Reads a file if it exists.
    pub fn read_optional(
        &self,
        tree: &TreeRef,
        path: &str,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let at = describe_tree(tree);
        match tree {
            TreeRef::Git { tree, .. } => {
                let t = self.repo.find_tree(*tree)?;
                match t.get_path(Path::new(path)) {
                    Ok(e) if special_git(&e).is_some() => Err(SourceError::Unfollowed {
                        path: path.to_string(),
                        at,
                        kind: special_git(&e).unwrap_or(SYMLINK),
                    }),
                    Ok(e) if e.kind() == Some(ObjectType::Blob) => {
                        Ok(Some(self.repo.find_blob(e.id())?.content().to_vec()))
                    }
                    Ok(_) => Ok(None),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            TreeRef::Fs { root, .. } => {
                no_symlink_on_disk(root, path)?;
                match std::fs::read(root.join(path)) {
                    Ok(b) => Ok(Some(b)),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(SourceError::Read {
                        path: path.to_string(),
                        at: "the working tree".into(),
                        source: Box::new(e),
                    }),
                }
            }
        }
    }

    fn git_subtree(&self, root: Oid, dir: &str) -> Result<Option<git2::Tree<'_>>, SourceError> {
        let t = self.repo.find_tree(root)?;
        if dir.is_empty() {
            return Ok(Some(t));
        }
        match t.get_path(Path::new(dir)) {
            Ok(e) if e.kind() == Some(ObjectType::Tree) => Ok(Some(self.repo.find_tree(e.id())?)),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads config v3 projects for the migrations of database `name` (`migrations/<name>/`)
    /// from now on; `default` unless set.
    pub fn set_database(&mut self, name: &str) {
        self.database = name.to_string();
        self.database_chosen = true;
    }

    /// Lets the chosen database be one that does not exist yet at the revisions read (writing
    /// its first migration or seed is how it starts existing). A config v2 project still has
    /// only `default`.
    pub fn allow_new_database(&mut self) {
        self.database_may_be_new = true;
    }

    /// Whether a database was chosen with [`Repo::set_database`].
    pub fn database_chosen(&self) -> bool {
        self.database_chosen
    }

    /// The database whose migrations are read.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Finds the project at a tree: detect the folder and parse config.yaml, nothing more.
    /// The database chosen with [`Repo::set_database`] is checked at this tree.
    pub fn locate_project(
        &self,
        tree: &TreeRef,
        project_dir: Option<&str>,
    ) -> Result<ProjectLocation, SourceError> {
        self.locate(tree, None, project_dir)
    }

    /// [`Repo::locate_project`]; `source_name` (`v1.2.0`) names the revision in refusals.
    /// Everything that depends on the revision is resolved here, at the revision read: the
    /// project folder, config.yaml (its version and folders) and the chosen database.
    fn locate(
        &self,
        tree: &TreeRef,
        source_name: Option<&str>,
        project_dir: Option<&str>,
    ) -> Result<ProjectLocation, SourceError> {
        let dir = match project_dir {
            Some(d) => crate::config::relative_dir(d)
                .ok_or_else(|| SourceError::ProjectOutside(d.to_string()))?,
            None => detect_project_dir(self, tree)?,
        };
        let at = describe_tree(tree);
        let config_path = join(&dir, "config.yaml");
        let Some(bytes) = self.read_optional(tree, &config_path)? else {
            // A folder named config.yaml (`--project` given) is not "missing".
            let entry = self
                .list(tree, &dir)?
                .unwrap_or_default()
                .into_iter()
                .find(|e| e.name == "config.yaml");
            return Err(match entry {
                Some(e) => detect::not_a_file(tree, &config_path, &e).into(),
                None => HasuraConfigError::Missing {
                    path: config_path.clone(),
                    at: at.clone(),
                }
                .into(),
            });
        };
        let config = HasuraConfig::parse(&bytes, &config_path, &at)?;
        for d in &config.duplicates {
            crate::yaml::warn(d.warning(&config_path, &at));
        }
        let migrations_dir = join(&dir, &config.migrations_directory_for(&self.database));
        let metadata_dir = join(&dir, &config.metadata_directory);
        let loc = ProjectLocation {
            dir,
            config,
            migrations_dir,
            metadata_dir,
        };
        if self.database_chosen {
            detect::check_database(
                self,
                tree,
                &loc,
                &self.database,
                self.database_may_be_new,
                || describe_source(source_name, tree),
            )?;
        }
        Ok(loc)
    }

    /// Reads the project at a tree: detect the folder, parse config.yaml, list migrations.
    pub fn project_at(
        &self,
        tree: TreeRef,
        source_name: &str,
        project_dir: Option<&str>,
    ) -> Result<Project, SourceError> {
        let ProjectLocation {
            dir,
            config,
            migrations_dir,
            metadata_dir,
        } = self.locate(&tree, Some(source_name), project_dir)?;
        let at = describe_tree(&tree);
        let listing = self.migration_listing(&tree, &migrations_dir)?;
        if config.version >= 3 {
            self.warn_unread_v2_folders(&tree, &dir, &config, &migrations_dir, &at)?;
        }
        let mut problems = listing.problems;
        let migrations = match MigrationSet::new(listing.migrations) {
            Ok(s) => s,
            Err(p) => {
                problems.extend(p);
                MigrationSet::default()
            }
        };
        if !problems.is_empty() {
            return Err(SourceError::Layout { at, problems });
        }
        let metadata_tree = self.dir_id(&tree, &metadata_dir)?;
        Ok(Project {
            tree,
            source_name: source_name.to_string(),
            dir,
            config,
            migrations_dir,
            migrations,
            metadata_dir,
            metadata_tree,
            ignored_yaml: listing.ignored_yaml,
            skipped_folders: listing.skipped_folders,
        })
    }

    /// Config v3 reads a database's migrations from `migrations/<database>/`: migration folders
    /// left directly under `migrations/` (a v2 layout, after config.yaml was changed by hand)
    /// are read by no one, the Hasura CLI included. Said once, with where they belong, instead
    /// of a silent "nothing to change".
    fn warn_unread_v2_folders(
        &self,
        tree: &TreeRef,
        dir: &str,
        config: &HasuraConfig,
        migrations_dir: &str,
        at: &str,
    ) -> Result<(), SourceError> {
        let base = join(dir, &config.migrations_directory);
        let Some(entries) = self.list(tree, &base)? else {
            return Ok(());
        };
        let flat: Vec<String> = entries
            .iter()
            .filter(|e| e.kind == MigrationEntryKind::Dir)
            .filter(|e| {
                e.name.split_once('_').is_some_and(|(digits, _)| {
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                })
            })
            .map(|e| join(&base, &e.name))
            .collect();
        if let Some(first) = flat.first() {
            crate::yaml::warn(format!(
                "{first}{} @ {at}: not read: config.yaml is version 3, which reads each database's migrations from {base}/<database>/ (here {migrations_dir}/); move them there (as `hasura scripts update-project-v3` does), or keep version: 2",
                match flat.len() {
                    1 => String::new(),
                    n => format!(" and {} more migration folder(s)", n - 1),
                },
            ));
        }
        Ok(())
    }

    /// Reads the project at a source.
    pub fn project(
        &self,
        source: &Source,
        project_dir: Option<&str>,
    ) -> Result<Project, SourceError> {
        let tree = self.tree(source)?;
        self.project_at(tree, &source.describe(), project_dir)
    }

    /// Lists a migrations folder. In git, only the folder itself is read: migration folders
    /// are recorded with their tree ids and read later, by [`Repo::resolve`], only when a plan
    /// needs their files. On disk every folder is read at once.
    fn migration_listing(
        &self,
        tree: &TreeRef,
        dir: &str,
    ) -> Result<crate::project::Listing, SourceError> {
        let Some(entries) = self.list(tree, dir)? else {
            return Ok(Default::default());
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut problems = Vec::new();
        for e in entries {
            let numbered = e
                .name
                .as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_digit());
            let location = join(dir, &e.name);
            let sql_file = e.name.ends_with(".up.sql") || e.name.ends_with(".down.sql");
            if let (Some(kind), true) = (e.special, numbered || sql_file) {
                problems.push(LayoutProblem::Unfollowed { location, kind });
                continue;
            }
            if numbered && matches!(e.kind, MigrationEntryKind::Dir | MigrationEntryKind::File) {
                if let Some(why) = bad_name(&e.name) {
                    problems.push(LayoutProblem::BadName { location, why });
                    continue;
                }
            }
            let files = match (e.kind, tree) {
                (MigrationEntryKind::Dir, TreeRef::Fs { .. }) if numbered => {
                    let listed = self.list(tree, &location)?.unwrap_or_default();
                    if let Some(f) = listed
                        .iter()
                        .find(|f| f.special.is_some() && is_migration_file(&f.name))
                    {
                        problems.push(LayoutProblem::Unfollowed {
                            location: join(&location, &f.name),
                            kind: f.special.unwrap_or(SYMLINK),
                        });
                        continue;
                    }
                    Some(
                        listed
                            .into_iter()
                            .filter(|f| f.kind == MigrationEntryKind::File)
                            .map(|f| (f.name, f.id.unwrap_or_default()))
                            .collect(),
                    )
                }
                _ => None,
            };
            out.push(MigrationDirEntry {
                name: e.name,
                kind: e.kind,
                id: e.id,
                files,
            });
        }
        let mut listing = parse_migration_listing(dir, &out);
        listing.problems.extend(problems);
        Ok(listing)
    }

    /// An `up.sql` or `down.sql` of a git tree that is a symbolic link or a submodule.
    fn special_migration_file(
        &self,
        id: &str,
    ) -> Result<Option<(String, &'static str)>, SourceError> {
        let sub = self.repo.find_tree(Oid::from_str(id)?)?;
        Ok(sub.iter().find_map(|f| {
            let name = std::str::from_utf8(f.name_bytes()).ok()?;
            let kind = special_git(&f)?;
            is_migration_file(name).then(|| (name.to_string(), kind))
        }))
    }

    /// The regular files of a git tree: `(name, blob id)`.
    pub(crate) fn tree_files(&self, id: &str) -> Result<Vec<(String, String)>, SourceError> {
        let sub = self.repo.find_tree(Oid::from_str(id)?)?;
        Ok(sub
            .iter()
            .filter(|f| {
                f.kind() == Some(ObjectType::Blob) && matches!(f.filemode(), 0o100644 | 0o100755)
            })
            .filter_map(|f| {
                std::str::from_utf8(f.name_bytes())
                    .ok()
                    .map(|n| (n.to_string(), f.id().to_string()))
            })
            .collect())
    }

    /// Reads the files of the given (lazily listed) migration folders. A folder that holds no
    /// migration at all (no up.sql, no up.yaml) is dropped from the set, and its location
    /// returned so that the plan can say so; one with a down.sql but no up.sql is a layout
    /// error.
    pub fn resolve(
        &self,
        migrations: &mut MigrationSet,
        versions: impl IntoIterator<Item = crate::project::Version>,
        at: &str,
    ) -> Result<Vec<String>, SourceError> {
        let mut problems = Vec::new();
        let mut dropped = Vec::new();
        for v in versions {
            let Some(m) = migrations.get_mut(v) else {
                continue;
            };
            if m.resolved {
                continue;
            }
            let tree_id = m.tree.as_deref().unwrap_or_default();
            if let Some((name, kind)) = self.special_migration_file(tree_id)? {
                problems.push(LayoutProblem::Unfollowed {
                    location: join(&m.location, &name),
                    kind,
                });
                continue;
            }
            let files = self.tree_files(tree_id)?;
            let (kind, _) = crate::project::classify_folder(&m.location, &files);
            match kind {
                crate::project::FolderKind::Migration { up, down } => {
                    m.up = Some(up);
                    m.down = down;
                    m.resolved = true;
                }
                crate::project::FolderKind::NotAMigration => {
                    dropped.extend(migrations.remove(v).map(|m| m.location));
                }
                crate::project::FolderKind::MissingUp => {
                    problems.push(LayoutProblem::MissingUp {
                        location: m.location.clone(),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(dropped)
        } else {
            Err(SourceError::Layout {
                at: at.to_string(),
                problems,
            })
        }
    }

    /// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
    pub(crate) fn is_ancestor(&self, ancestor: Oid, descendant: Oid) -> bool {
        ancestor == descendant
            || self
                .repo
                .graph_descendant_of(descendant, ancestor)
                .unwrap_or(false)
    }

    fn tag_map(&self) -> &std::collections::HashMap<Oid, Vec<String>> {
        self.tags.get_or_init(|| {
            let mut map: std::collections::HashMap<Oid, Vec<String>> = Default::default();
            if let Ok(refs) = self.repo.references_glob("refs/tags/*") {
                for r in refs.flatten() {
                    let (Ok(obj), Ok(name)) = (r.peel(ObjectType::Commit), r.shorthand()) else {
                        continue;
                    };
                    map.entry(obj.id()).or_default().push(name.to_string());
                }
            }
            for names in map.values_mut() {
                names.sort();
            }
            map
        })
    }

    /// Tags pointing at a commit (names without `refs/tags/`), sorted.
    pub fn tags_at(&self, commit: Oid) -> Vec<String> {
        self.tag_map().get(&commit).cloned().unwrap_or_default()
    }

    /// The nearest tagged first-parent ancestor of a commit (within 1,000 commits) and the
    /// distance to it: `git describe --tags --first-parent`, bounded so that it stays cheap on
    /// long histories.
    pub fn nearest_tag(&self, commit: Oid) -> Option<(String, usize)> {
        let tags = self.tag_map();
        if tags.is_empty() {
            return None;
        }
        let mut current = self.repo.find_commit(commit).ok()?;
        for distance in 0..DESCRIBE_DEPTH {
            if let Some(names) = tags.get(&current.id()) {
                return Some((names.last()?.clone(), distance));
            }
            current = current.parent(0).ok()?;
        }
        None
    }

    /// The tag that contains `commit` with the fewest commits beyond it (`git describe
    /// --contains`): the first release that shipped it. Ties go to the smallest name.
    pub fn first_tag_containing(&self, commit: Oid) -> Option<String> {
        let mut best: Option<(usize, &String)> = None;
        for (tagged, names) in self.tag_map() {
            if !self.is_ancestor(commit, *tagged) {
                continue;
            }
            let ahead = self
                .repo
                .graph_ahead_behind(*tagged, commit)
                .map(|(a, _)| a)
                .unwrap_or(usize::MAX);
            for n in names {
                if best.is_none_or(|(b, bn)| (ahead, n) < (b, bn)) {
                    best = Some((ahead, n));
                }
            }
        }
        best.map(|(_, n)| n.clone())
    }

    /// How many commits `descendant` has that `ancestor` lacks, when `ancestor` is one of its
    /// ancestors (None when the histories diverged).
    pub fn commits_between(&self, ancestor: Oid, descendant: Oid) -> Option<usize> {
        if !self.is_ancestor(ancestor, descendant) {
            return None;
        }
        self.repo
            .graph_ahead_behind(descendant, ancestor)
            .ok()
            .map(|(a, _)| a)
    }

    /// One-line summary of a commit.
    pub fn summary(&self, commit: Oid) -> Option<String> {
        self.repo
            .find_commit(commit)
            .ok()
            .and_then(|c| c.summary().ok().flatten().map(str::to_string))
    }
}
