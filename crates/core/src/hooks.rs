//! Git hook scripts that run `git-migrate check`: where git looks for hooks, what the scripts
//! say, and installing or removing them without clobbering anybody else's hook.
//!
//! The scripts are small POSIX `sh` files. Each carries [`MARKER`] so that `install` knows which
//! hooks it may overwrite and `uninstall` knows which ones it may delete; any other file in the
//! hooks folder is "foreign" and is only ever moved aside (to `<name>.pre-git-migrate`) on
//! request, never deleted. Every change is planned first, so a refused install changes nothing.
//!
//! Nothing here prints or reads the environment: the caller says which binary the scripts should
//! call (see [`choose_binary`]) and renders the returned [`HooksReport`].

use git2::Repository;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The line that marks a hook script as ours.
pub const MARKER: &str = "# installed by git-migrate; remove with: git migrate hooks uninstall";

/// Suffix of the copy of a foreign hook moved aside by `install --force`.
pub const BACKUP_SUFFIX: &str = ".pre-git-migrate";

/// Environment variable that, at hook run time, names the `git-migrate` binary to call.
pub const BIN_ENV: &str = "GIT_MIGRATE_BIN";

/// The name the binary is called by when it is on `PATH`.
pub(crate) const BIN_NAME: &str = "git-migrate";

/// Errors installing or removing hooks.
#[derive(Debug, thiserror::Error)]
pub enum HooksError {
    /// Hooks exist that git-migrate did not write, and `--force` was not given.
    #[error("{}", foreign_message(.paths))]
    Foreign {
        /// The foreign hooks, in the order asked for.
        paths: Vec<PathBuf>,
    },
    /// `--force` would move a foreign hook aside, but the backup name is taken.
    #[error("cannot move {} aside: {} already exists; nothing was changed", .path.display(), .backup.display())]
    BackupExists {
        /// The foreign hook.
        path: PathBuf,
        /// The backup that is in the way.
        backup: PathBuf,
    },
    /// A hook name is taken by something that is not a file (a folder, a socket).
    #[error("{} is not a file; move it away and run the command again", .path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A pre-commit hook was asked for in a bare repository, where nobody commits.
    #[error("{} is a bare repository: git never runs a pre-commit hook there; install pre-receive (the default in a bare repository) or pre-push", .git_dir.display())]
    PreCommitInBare {
        /// The repository.
        git_dir: PathBuf,
    },
    /// `core.hooksPath` is set to an empty string.
    #[error("core.hooksPath is set but empty; set it to a folder or unset it with `git config --unset core.hooksPath`")]
    EmptyHooksPath,
    /// The path of the binary cannot be written into a script.
    #[error("the path of this git-migrate binary is not valid UTF-8: {}; put git-migrate on PATH and run the command again", .path.display())]
    BinaryPath {
        /// The binary.
        path: PathBuf,
    },
    /// Reading `core.hooksPath` failed.
    #[error("cannot read core.hooksPath from the git configuration")]
    Config(#[source] git2::Error),
    /// A file operation failed.
    #[error("cannot {action} {}", .path.display())]
    Io {
        /// What we tried ("write", "remove", "move", "read", "create the hooks folder").
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn foreign_message(paths: &[PathBuf]) -> String {
    let list = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() == 1 {
        format!("{list} already exists and was not installed by git-migrate; nothing was changed")
    } else {
        format!("{list} already exist and were not installed by git-migrate; nothing was changed")
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> HooksError + 'a {
    move |source| HooksError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A hook git-migrate knows how to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// Before `git commit` records the index: `check --staged`.
    PreCommit,
    /// Before `git push` sends commits: `check --pre-push <remote> <url>` with git's ref lines on
    /// stdin.
    PrePush,
    /// On the server, before a push is accepted (bare repositories): `check --pre-receive`.
    PreReceive,
}

impl Hook {
    /// Every hook, in install order.
    pub const ALL: [Hook; 3] = [Hook::PreCommit, Hook::PrePush, Hook::PreReceive];

    /// The file name git looks for.
    pub fn name(self) -> &'static str {
        match self {
            Hook::PreCommit => "pre-commit",
            Hook::PrePush => "pre-push",
            Hook::PreReceive => "pre-receive",
        }
    }

    /// Arguments after the binary, as written into the script (`"$@"` is the hook's own
    /// arguments).
    fn check_args(self, verify: bool) -> Vec<&'static str> {
        let mut args = vec!["check"];
        args.push(match self {
            Hook::PreCommit => "--staged",
            Hook::PrePush => "--pre-push",
            Hook::PreReceive => "--pre-receive",
        });
        if verify {
            args.push("--verify");
        }
        if self == Hook::PrePush {
            // git passes the remote's name and URL as arguments.
            args.push("\"$@\"");
        }
        args
    }

    /// The command the hook runs, for messages (`git-migrate check --staged`).
    pub fn command(self, verify: bool) -> String {
        let mut s = BIN_NAME.to_string();
        for a in self.check_args(verify) {
            s.push(' ');
            s.push_str(if a == "\"$@\"" { "<remote> <url>" } else { a });
        }
        s
    }

    fn purpose(self) -> &'static str {
        match self {
            Hook::PreCommit => {
                "# pre-commit: checks the migrations and metadata in the index before each commit.\n\
                 # Skip it once with `git commit --no-verify`."
            }
            Hook::PrePush => {
                "# pre-push: checks every commit about to be pushed (git passes the remote as\n\
                 # arguments and one line per ref on stdin). Skip it once with `git push --no-verify`."
            }
            Hook::PreReceive => {
                "# pre-receive: checks every commit pushed to this repository (one\n\
                 # `<old> <new> <ref>` line per ref on stdin) and rejects the push on findings."
            }
        }
    }
}

/// Hooks for a repository when none are named: pre-commit and pre-push in a repository with a
/// working tree, pre-receive in a bare one.
pub fn default_hooks(repo: &Repository) -> Vec<Hook> {
    if repo.is_bare() {
        vec![Hook::PreReceive]
    } else {
        vec![Hook::PreCommit, Hook::PrePush]
    }
}

/// The folder git runs hooks from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HooksDir {
    /// The folder.
    pub path: PathBuf,
    /// `core.hooksPath` as configured, when it is set.
    pub hooks_path: Option<String>,
}

/// Finds the folder git runs hooks from, the way git does: `core.hooksPath` when set (`~/`
/// expanded; a relative value is relative to the root of the working tree, or to the git dir in
/// a bare repository, since that is where git runs hooks), else `hooks/` in the common git dir
/// (shared by every linked worktree).
pub fn hooks_dir(repo: &Repository) -> Result<HooksDir, HooksError> {
    let config = repo.config().map_err(HooksError::Config)?;
    let configured = match config.get_string("core.hooksPath") {
        Ok(v) => Some(v),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(HooksError::Config(e)),
    };
    let Some(value) = configured else {
        return Ok(HooksDir {
            path: repo.commondir().join("hooks"),
            hooks_path: None,
        });
    };
    if value.is_empty() {
        return Err(HooksError::EmptyHooksPath);
    }
    let expanded = config
        .get_path("core.hooksPath")
        .map_err(HooksError::Config)?;
    let path = if expanded.is_absolute() {
        expanded
    } else {
        repo.workdir().unwrap_or_else(|| repo.path()).join(expanded)
    };
    Ok(HooksDir {
        path,
        hooks_path: Some(value),
    })
}

/// How the scripts call git-migrate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binary {
    /// By name, found on `PATH` when the hook runs.
    OnPath,
    /// By absolute path (the binary is not the first `git-migrate` on `PATH`).
    Absolute(PathBuf),
}

impl Binary {
    /// How the scripts spell it.
    pub fn display(&self) -> String {
        match self {
            Binary::OnPath => BIN_NAME.to_string(),
            Binary::Absolute(p) => p.display().to_string(),
        }
    }
}

/// Picks how the scripts call git-migrate: by name when the first `git-migrate` on `path_var`
/// (the value of `PATH`) is `current_exe`, else by `current_exe`'s absolute path, so that the
/// hook calls the binary that installed it.
pub fn choose_binary(current_exe: &Path, path_var: Option<&OsStr>) -> Binary {
    let exe = std::fs::canonicalize(current_exe).unwrap_or_else(|_| current_exe.to_path_buf());
    let first_on_path = path_var.and_then(|p| {
        std::env::split_paths(p)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join(BIN_NAME))
            .find(|c| is_executable_file(c))
    });
    match first_on_path.and_then(|c| std::fs::canonicalize(c).ok()) {
        Some(found) if found == exe => Binary::OnPath,
        _ => Binary::Absolute(exe),
    }
}

fn is_executable_file(p: &Path) -> bool {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                m.permissions().mode() & 0o111 != 0
            }
            #[cfg(not(unix))]
            {
                true
            }
        }
        _ => false,
    }
}

/// Quotes `s` for POSIX sh (single quotes; a `'` becomes `'\''`).
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script for `hook`: it calls `binary` (or `$GIT_MIGRATE_BIN` when set) with `exec`, so
/// that the hook's exit code is the check's, and fails loudly when the binary is missing.
pub fn render(hook: Hook, binary: &Binary, verify: bool) -> Result<String, HooksError> {
    let bin = match binary {
        Binary::OnPath => sh_quote(BIN_NAME),
        Binary::Absolute(p) => sh_quote(
            p.to_str()
                .ok_or_else(|| HooksError::BinaryPath { path: p.clone() })?,
        ),
    };
    let args = hook.check_args(verify).join(" ");
    let purpose = hook.purpose();
    Ok(format!(
        r#"#!/bin/sh
{MARKER}
#
{purpose}
# Set {BIN_ENV} to run another git-migrate binary.

bin={bin}
if [ -n "${{{BIN_ENV}:-}}" ]; then
    bin=${BIN_ENV}
fi
case $bin in
    */*) [ -f "$bin" ] && [ -x "$bin" ] ;;
    *) command -v "$bin" >/dev/null 2>&1 ;;
esac || {{
    echo "git-migrate {name} hook: cannot run '$bin': not found or not executable" >&2
    echo "hint: install git-migrate, set {BIN_ENV} to its path, or run \`git migrate hooks install\` again" >&2
    echo "hint: skip this hook once with --no-verify; remove it with \`git migrate hooks uninstall\`" >&2
    exit 2
}}
exec "$bin" {args}
"#,
        name = hook.name(),
    ))
}

/// What `install` is asked to do.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    /// Which hooks.
    pub hooks: Vec<Hook>,
    /// Add `--verify` to the check.
    pub verify: bool,
    /// Move foreign hooks aside instead of refusing.
    pub force: bool,
    /// How the scripts call git-migrate.
    pub binary: Binary,
}

/// What happened to one hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Written where there was no hook.
    Installed,
    /// Our hook rewritten (its content changed).
    Updated,
    /// Our hook already had exactly this content.
    Unchanged,
    /// A foreign hook moved aside to the backup, ours written (`--force`).
    Replaced,
    /// Our hook deleted; there was nothing to restore.
    Removed,
    /// Our hook deleted (if present) and the backup moved back.
    Restored,
    /// No hook of ours was there.
    NotInstalled,
    /// A foreign hook, left alone by `uninstall`.
    LeftForeign,
}

impl Action {
    /// Lowercase name for text and JSON (`installed`, `left-foreign`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Installed => "installed",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Replaced => "replaced",
            Action::Removed => "removed",
            Action::Restored => "restored",
            Action::NotInstalled => "not-installed",
            Action::LeftForeign => "left-foreign",
        }
    }
}

/// One hook's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Which hook.
    pub hook: Hook,
    /// Its path.
    pub path: PathBuf,
    /// What happened.
    pub action: Action,
    /// The backup involved: written by `Replaced`, restored by `Restored`, still present with
    /// `LeftForeign` and `NotInstalled`.
    pub backup: Option<PathBuf>,
    /// The command the hook runs (install only).
    pub command: Option<String>,
}

/// What `install` or `uninstall` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HooksReport {
    /// Where.
    pub dir: HooksDir,
    /// How the scripts call git-migrate (install only).
    pub binary: Option<Binary>,
    /// Per hook, in the order asked for.
    pub outcomes: Vec<Outcome>,
}

/// What is at a hook's path.
enum Existing {
    Missing,
    Ours(Vec<u8>),
    Foreign,
}

fn inspect(path: &Path) -> Result<Existing, HooksError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(io("read", path)(e)),
    };
    if meta.is_dir() {
        return Err(HooksError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    match std::fs::read(path) {
        Ok(bytes) if is_ours(&bytes) => Ok(Existing::Ours(bytes)),
        Ok(_) => Ok(Existing::Foreign),
        // A dangling symlink: somebody's, not ours.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && meta.is_symlink() => {
            Ok(Existing::Foreign)
        }
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(HooksError::NotAFile {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(io("read", path)(e)),
    }
}

/// Whether a hook file's content is one of ours.
pub(crate) fn is_ours(content: &[u8]) -> bool {
    String::from_utf8_lossy(content)
        .lines()
        .any(|l| l.trim_end() == MARKER)
}

fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(BACKUP_SUFFIX);
    path.with_file_name(name)
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Writes `content` to `path` with mode 0755 via a temporary file and a rename, so that git never
/// runs a half-written hook.
fn write_script(path: &Path, content: &str) -> Result<(), HooksError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".git-migrate-hook-")
        .tempfile_in(dir)
        .map_err(io("write", path))?;
    std::io::Write::write_all(&mut tmp, content.as_bytes()).map_err(io("write", path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))
            .map_err(io("write", path))?;
    }
    tmp.persist(path).map_err(|e| io("write", path)(e.error))?;
    Ok(())
}

/// Installs `opts.hooks` into the repository's hooks folder.
///
/// Our own hooks are rewritten (idempotent). A foreign hook is an error unless `opts.force`, in
/// which case it is moved to `<name>.pre-git-migrate` first. Every hook is checked before
/// anything is written, so an error leaves the folder as it was.
pub fn install(repo: &Repository, opts: &InstallOptions) -> Result<HooksReport, HooksError> {
    if repo.is_bare() && opts.hooks.contains(&Hook::PreCommit) {
        return Err(HooksError::PreCommitInBare {
            git_dir: repo.path().to_path_buf(),
        });
    }
    let dir = hooks_dir(repo)?;
    let mut hooks = opts.hooks.clone();
    dedup_in_order(&mut hooks);

    // Plan: look at every hook first.
    let mut planned = Vec::new();
    let mut foreign = Vec::new();
    for &hook in &hooks {
        let path = dir.path.join(hook.name());
        let script = render(hook, &opts.binary, opts.verify)?;
        let existing = inspect(&path)?;
        if matches!(existing, Existing::Foreign) {
            let backup = backup_path(&path);
            if !opts.force {
                foreign.push(path.clone());
            } else if exists(&backup) {
                return Err(HooksError::BackupExists { path, backup });
            }
        }
        planned.push((hook, path, script, existing));
    }
    if !foreign.is_empty() {
        return Err(HooksError::Foreign { paths: foreign });
    }

    std::fs::create_dir_all(&dir.path).map_err(io("create the hooks folder", &dir.path))?;
    let mut outcomes = Vec::new();
    for (hook, path, script, existing) in planned {
        let mut backup = None;
        let action = match existing {
            Existing::Missing => Action::Installed,
            Existing::Ours(old) if old == script.as_bytes() && is_executable_file(&path) => {
                Action::Unchanged
            }
            Existing::Ours(_) => Action::Updated,
            Existing::Foreign => {
                let b = backup_path(&path);
                std::fs::rename(&path, &b).map_err(io("move", &path))?;
                backup = Some(b);
                Action::Replaced
            }
        };
        if action != Action::Unchanged {
            write_script(&path, &script)?;
        }
        outcomes.push(Outcome {
            hook,
            path,
            action,
            backup,
            command: Some(hook.command(opts.verify)),
        });
    }
    Ok(HooksReport {
        dir,
        binary: Some(opts.binary.clone()),
        outcomes,
    })
}

/// Removes our hooks among `hooks` and moves back any `<name>.pre-git-migrate` backup. A foreign
/// hook is left alone (reported as [`Action::LeftForeign`]).
pub fn uninstall(repo: &Repository, hooks: &[Hook]) -> Result<HooksReport, HooksError> {
    let dir = hooks_dir(repo)?;
    let mut hooks = hooks.to_vec();
    dedup_in_order(&mut hooks);
    let mut outcomes = Vec::new();
    for hook in hooks {
        let path = dir.path.join(hook.name());
        let b = backup_path(&path);
        let has_backup = exists(&b);
        let (action, backup) = match inspect(&path)? {
            Existing::Foreign => (Action::LeftForeign, has_backup.then_some(b)),
            Existing::Ours(_) => {
                std::fs::remove_file(&path).map_err(io("remove", &path))?;
                if has_backup {
                    std::fs::rename(&b, &path).map_err(io("move", &b))?;
                    (Action::Restored, Some(b))
                } else {
                    (Action::Removed, None)
                }
            }
            Existing::Missing if has_backup => {
                std::fs::rename(&b, &path).map_err(io("move", &b))?;
                (Action::Restored, Some(b))
            }
            Existing::Missing => (Action::NotInstalled, None),
        };
        outcomes.push(Outcome {
            hook,
            path,
            action,
            backup,
            command: None,
        });
    }
    Ok(HooksReport {
        dir,
        binary: None,
        outcomes,
    })
}

fn dedup_in_order(hooks: &mut Vec<Hook>) {
    let mut seen = Vec::new();
    hooks.retain(|h| {
        if seen.contains(h) {
            false
        } else {
            seen.push(*h);
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
    }

    #[test]
    fn scripts_carry_the_marker_and_exec_the_check() {
        let bin = Binary::Absolute(PathBuf::from("/opt/x y/git-migrate"));
        let s = render(Hook::PrePush, &bin, true).unwrap();
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(is_ours(s.as_bytes()));
        assert!(s.contains("bin='/opt/x y/git-migrate'\n"));
        assert!(s.contains("exec \"$bin\" check --pre-push --verify \"$@\"\n"));
        let s = render(Hook::PreCommit, &Binary::OnPath, false).unwrap();
        assert!(s.contains("bin='git-migrate'\n"));
        assert!(s.contains("exec \"$bin\" check --staged\n"));
        let s = render(Hook::PreReceive, &Binary::OnPath, false).unwrap();
        assert!(s.contains("exec \"$bin\" check --pre-receive\n"));
    }

    #[test]
    fn foreign_content_is_not_ours() {
        assert!(!is_ours(b"#!/bin/sh\nexec lint\n"));
        assert!(!is_ours(b"#!/bin/sh\n# installed by git-migrate\n"));
    }

    #[test]
    fn commands_for_messages() {
        assert_eq!(
            Hook::PrePush.command(false),
            "git-migrate check --pre-push <remote> <url>"
        );
        assert_eq!(
            Hook::PreCommit.command(true),
            "git-migrate check --staged --verify"
        );
    }

    #[test]
    fn backup_name() {
        assert_eq!(
            backup_path(Path::new("/r/.git/hooks/pre-push")),
            PathBuf::from("/r/.git/hooks/pre-push.pre-git-migrate")
        );
    }
}
