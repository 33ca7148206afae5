//! `git migrate hooks install|uninstall` (being written).

use super::error::CommandError;
use super::Ctx;
use clap::Subcommand;

/// `hooks` subcommands.
#[derive(Subcommand, Debug)]
pub enum HooksCommand {
    /// Install hook scripts that run `git migrate check`
    Install,
    /// Remove the hook scripts git-migrate installed
    Uninstall,
}

/// `git migrate hooks …`.
pub fn cmd_hooks(_ctx: &Ctx, _cmd: &HooksCommand) -> Result<(), CommandError> {
    Ok(())
}
