//! `seed apply` / `seed create` (being written).

use super::error::CommandError;
use super::Ctx;
use clap::Subcommand;

/// `seed` subcommands.
#[derive(Subcommand, Debug)]
pub enum SeedCommand {
    /// Run seed files from the revision in one transaction
    Apply,
    /// Write a new seed file
    Create,
}

/// `git migrate seed …`.
pub fn cmd_seed(_ctx: &Ctx, _cmd: &SeedCommand) -> Result<(), CommandError> {
    Ok(())
}
