//! `git migrate log`: the deployment history.

use super::error::CommandError;
use super::json;
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
pub(crate) fn cmd_log(ctx: &Ctx, args: &LogArgs) -> Result<(), CommandError> {
    let (_, mut client) = ctx.connect()?;
    let ledger = ctx.ledger();
    let state = ledger.read(&mut client)?;
    let history = if state.live.ledger_exists {
        ledger.history(&mut client, args.limit)?
    } else {
        vec![]
    };
    if ctx.json {
        // Each entry with the tags of its commits, so scripts need no git.
        let tags = |c: &str| -> Vec<String> {
            git2::Oid::from_str(c)
                .map(|o| ctx.repo.tags_at(o))
                .unwrap_or_default()
        };
        let doc = json::LogDoc::new(history, tags, ctx.env.as_ref().map(|e| e.name.as_str()));
        ctx.ui.out(&json::text(&doc));
        return Ok(());
    }
    if history.is_empty() {
        ctx.ui.out("no deployments recorded");
        return Ok(());
    }
    if let Some(env) = &ctx.env {
        ctx.ui.out(&format!("environment {}", env.name));
    }
    for d in &history {
        for l in super::render::deployment_lines(&ctx.repo, d) {
            ctx.ui.out(&l);
        }
    }
    Ok(())
}
