//! `git migrate adopt` (being written).

use super::error::CommandError;
use super::Ctx;
use clap::Args;

/// Arguments of `adopt`.
#[derive(Args, Debug)]
pub struct AdoptArgs {}

/// `git migrate adopt`.
pub fn cmd_adopt(_ctx: &Ctx, _args: &AdoptArgs) -> Result<(), CommandError> {
    Ok(())
}
