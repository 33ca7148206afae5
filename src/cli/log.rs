//! `git migrate log`: the deployment history.

use super::error::CommandError;
use super::render::describe_commit;
use super::Ctx;
use clap::Args;

/// Arguments of `log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// How many deployments to show.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: i64,
}

/// `git migrate log`.
pub fn cmd_log(ctx: &Ctx, args: &LogArgs) -> Result<(), CommandError> {
    let (_, mut client) = ctx.connect()?;
    let ledger = ctx.ledger();
    let state = ledger.read(&mut client)?;
    let history = if state.live.ledger_exists {
        ledger.history(&mut client, args.limit)?
    } else {
        vec![]
    };
    if ctx.json {
        ctx.ui
            .out(&serde_json::to_string_pretty(&history).unwrap_or_default());
        return Ok(());
    }
    if history.is_empty() {
        ctx.ui.out("no deployments recorded");
        return Ok(());
    }
    for d in &history {
        let c = |x: &Option<String>| {
            x.as_deref()
                .map(|c| describe_commit(&ctx.repo, c))
                .unwrap_or_else(|| "(empty)".into())
        };
        ctx.ui.out(&format!(
            "#{:<4} {}  {:<8} {} -> {}  -{} +{}  {}  by {}{}",
            d.id,
            d.started_at,
            d.kind,
            c(&d.from_commit),
            c(&d.to_commit),
            d.reverted.len(),
            d.applied.len(),
            d.status,
            d.actor.as_deref().unwrap_or("unknown"),
            d.target_ref
                .as_deref()
                .map(|r| format!("  (target {r})"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}
