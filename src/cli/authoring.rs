//! `create`, `squash`, `delete`: writing migration folders in the working tree (being written).

use super::error::CommandError;
use super::Ctx;
use clap::Args;

/// Arguments of `create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Migration name.
    pub name: String,
}

/// Arguments of `squash`.
#[derive(Args, Debug)]
pub struct SquashArgs {}

/// Arguments of `delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {}

/// `git migrate create`.
pub fn cmd_create(_ctx: &Ctx, _args: &CreateArgs) -> Result<(), CommandError> {
    Ok(())
}

/// `git migrate squash`.
pub fn cmd_squash(_ctx: &Ctx, _args: &SquashArgs) -> Result<(), CommandError> {
    Ok(())
}

/// `git migrate delete`.
pub fn cmd_delete(_ctx: &Ctx, _args: &DeleteArgs) -> Result<(), CommandError> {
    Ok(())
}
