//! `git migrate promote FROM TO`: deploy to environment TO exactly the commit FROM is at
//! (design §9). Being written.

use super::error::{CommandError, Kind};
use super::Ctx;
use clap::Args;

/// Arguments of `promote`.
#[derive(Args, Debug)]
pub struct PromoteArgs {}

/// `git migrate promote`.
pub fn cmd_promote(_ctx: &Ctx, _args: &PromoteArgs) -> Result<(), CommandError> {
    Err(CommandError::new(Kind::Usage, "promote is being written"))
}
