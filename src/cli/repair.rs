//! `git migrate repair`: fix a dirty or modified ledger row (design §7.3, §10). Being written.

use super::error::{CommandError, Kind};
use super::Ctx;
use clap::Args;

/// Arguments of `repair`.
#[derive(Args, Debug)]
pub struct RepairArgs {}

/// `git migrate repair`.
pub fn cmd_repair(_ctx: &Ctx, _args: &RepairArgs) -> Result<(), CommandError> {
    Err(CommandError::new(Kind::Usage, "repair is being written"))
}
