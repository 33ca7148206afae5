//! `git migrate hooks install|uninstall`: git hook scripts that run `git migrate check`.

use super::error::{CommandError, Kind};
use super::json;
use super::Ctx;
use clap::{Args, Subcommand};
use git_migrate_core::hooks::{self, Action, Binary, Hook, HooksError, InstallOptions};
use std::path::{Path, PathBuf};

/// `hooks` subcommands.
#[derive(Subcommand, Debug)]
pub enum HooksCommand {
    /// Install hook scripts that run `git migrate check`
    ///
    /// With no hook named: pre-commit and pre-push, or pre-receive in a bare repository. The
    /// hooks go where git runs them from: core.hooksPath when set, else the hooks folder of the
    /// (common) git dir. A hook that git-migrate did not write is never overwritten unless
    /// --force is given; it is then moved to <name>.pre-git-migrate, and `hooks uninstall` puts it
    /// back.
    Install(InstallArgs),
    /// Remove the hook scripts git-migrate installed
    ///
    /// Removes only hooks that git-migrate wrote (they carry a marker line) and restores any
    /// <name>.pre-git-migrate backup left by `hooks install --force`. Other hooks are left alone.
    /// With no hook named: all of them.
    Uninstall(UninstallArgs),
}

/// Which hooks (none named: the default set).
#[derive(Args, Debug, Clone, Default)]
pub struct HookSelection {
    /// The pre-commit hook (`git-migrate check --staged`).
    #[arg(long)]
    pub pre_commit: bool,
    /// The pre-push hook (`git-migrate check --pre-push`).
    #[arg(long)]
    pub pre_push: bool,
    /// The server-side pre-receive hook (`git-migrate check --pre-receive`).
    #[arg(long)]
    pub pre_receive: bool,
}

impl HookSelection {
    fn named(&self) -> Vec<Hook> {
        [
            (self.pre_commit, Hook::PreCommit),
            (self.pre_push, Hook::PrePush),
            (self.pre_receive, Hook::PreReceive),
        ]
        .into_iter()
        .filter_map(|(on, h)| on.then_some(h))
        .collect()
    }
}

/// Arguments of `hooks install`.
#[derive(Args, Debug)]
pub struct InstallArgs {
    #[command(flatten)]
    pub which: HookSelection,
    /// Also run each new migration up, down and up again in a scratch database (`check --verify`).
    #[arg(long)]
    pub verify: bool,
    /// Move hooks that git-migrate did not write aside to <name>.pre-git-migrate.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `hooks uninstall`.
#[derive(Args, Debug)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub which: HookSelection,
}

/// `git migrate hooks …`.
pub(crate) fn cmd_hooks(ctx: &Ctx, cmd: &HooksCommand) -> Result<(), CommandError> {
    match cmd {
        HooksCommand::Install(a) => cmd_install(ctx, a),
        HooksCommand::Uninstall(a) => cmd_uninstall(ctx, a),
    }
}

fn cmd_install(ctx: &Ctx, args: &InstallArgs) -> Result<(), CommandError> {
    let repo = ctx.repo.git();
    let named = args.which.named();
    let hooks = if named.is_empty() {
        hooks::default_hooks(repo)
    } else {
        named
    };
    let binary = match std::env::current_exe() {
        Ok(exe) => hooks::choose_binary(&exe, std::env::var_os("PATH").as_deref()),
        // No way to know where we are: rely on PATH at hook run time.
        Err(_) => Binary::OnPath,
    };
    let opts = InstallOptions {
        hooks,
        verify: args.verify,
        force: args.force,
        binary,
    };
    let report = hooks::install(repo, &opts).map_err(command_error)?;
    if ctx.json {
        ctx.ui
            .out(&json::text(&json::HooksDoc::new("install", &report)));
        return Ok(());
    }
    if let Some(hp) = &report.dir.hooks_path {
        ctx.ui.info(&format!(
            "core.hooksPath is {hp:?}: hooks go to {}",
            shown(&report.dir.path)
        ));
    }
    for o in &report.outcomes {
        let path = shown(&o.path);
        let runs = o.command.as_deref().unwrap_or_default();
        ctx.ui.out(&match o.action {
            Action::Unchanged => format!("unchanged {path} (already installed; runs {runs})"),
            Action::Updated => format!("updated {path} (runs {runs})"),
            Action::Replaced => format!(
                "installed {path} (runs {runs}); the previous hook was moved to {}",
                o.backup.as_deref().map(shown).unwrap_or_default()
            ),
            _ => format!("installed {path} (runs {runs})"),
        });
    }
    let wrote = report
        .outcomes
        .iter()
        .any(|o| o.action != Action::Unchanged);
    if let (true, Some(Binary::Absolute(p))) = (wrote, &report.binary) {
        ctx.ui.info(&format!(
            "the hooks call {} because git-migrate is not on PATH; run `git migrate hooks install` again if it moves, or set {} when git runs",
            p.display(),
            hooks::BIN_ENV
        ));
    }
    Ok(())
}

fn cmd_uninstall(ctx: &Ctx, args: &UninstallArgs) -> Result<(), CommandError> {
    let named = args.which.named();
    let hooks = if named.is_empty() {
        Hook::ALL.to_vec()
    } else {
        named
    };
    let report = hooks::uninstall(ctx.repo.git(), &hooks).map_err(command_error)?;
    if ctx.json {
        ctx.ui
            .out(&json::text(&json::HooksDoc::new("uninstall", &report)));
        return Ok(());
    }
    let mut said = false;
    for o in &report.outcomes {
        let path = shown(&o.path);
        let backup = o.backup.as_deref().map(shown).unwrap_or_default();
        let line = match o.action {
            Action::Removed => format!("removed {path}"),
            Action::Restored => format!("restored {path} from {backup}"),
            Action::LeftForeign if o.backup.is_some() => format!(
                "kept {path}: it was not installed by git-migrate (a backup, {backup}, is also there)"
            ),
            Action::LeftForeign => {
                format!("kept {path}: it was not installed by git-migrate")
            }
            Action::NotInstalled => {
                if ctx.ui.verbose > 0 {
                    ctx.ui.info(&format!("no git-migrate hook at {path}"));
                }
                continue;
            }
            _ => continue,
        };
        said = true;
        ctx.ui.out(&line);
    }
    if !said {
        ctx.ui.out(&format!(
            "no git-migrate hooks in {}",
            shown(&report.dir.path)
        ));
    }
    Ok(())
}

/// `path` relative to the current directory when it is below it (`.git/hooks/pre-commit`),
/// else absolute.
fn shown(path: &Path) -> String {
    let canonical = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = std::fs::canonicalize(p) {
            return Some(c);
        }
        // The file may be gone (uninstall): canonicalize its folder.
        let parent = std::fs::canonicalize(p.parent()?).ok()?;
        Some(parent.join(p.file_name()?))
    };
    let abs = canonical(path).unwrap_or_else(|| path.to_path_buf());
    std::env::current_dir()
        .ok()
        .and_then(|cwd| std::fs::canonicalize(cwd).ok())
        .and_then(|cwd| abs.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or(abs)
        .display()
        .to_string()
}

fn command_error(e: HooksError) -> CommandError {
    let kind = match e {
        HooksError::Config(_) | HooksError::Io { .. } => Kind::Failure,
        _ => Kind::Usage,
    };
    let mut ce = CommandError::new(kind, e.to_string());
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        ce.causes.push(s.to_string());
        src = s.source();
    }
    match &e {
        HooksError::Foreign { paths } => {
            let backups = paths
                .iter()
                .map(|p| format!("{}{}", shown(p), hooks::BACKUP_SUFFIX))
                .collect::<Vec<_>>()
                .join(", ");
            ce.hints.push(format!(
                "pass --force to move the existing hook aside to {backups}; `git migrate hooks uninstall` puts it back"
            ));
            ce.hints.push(
                "or keep your hook and call `git-migrate check` from it (docs/hooks.md shows how)"
                    .into(),
            );
        }
        HooksError::BackupExists { .. } => ce.hints.push(
            "an earlier `git migrate hooks install --force` left the backup; delete or rename one of the two files".into(),
        ),
        HooksError::Io { path, .. } => ce.hints.push(format!(
            "check that you can write to {}",
            shown(path.parent().unwrap_or(path))
        )),
        _ => {}
    }
    ce
}
