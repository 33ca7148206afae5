//! `git migrate repair`: settle a dirty ledger row left by a no-transaction migration that did
//! not finish (`--done V`, `--undone V`), or record the new checksum of a migration modified
//! after it was applied (`--accept V`). Nothing is executed in the schema: only the ledger and
//! Hasura's migration state change, in one transaction under the deploy lock, recorded as a
//! deployment of kind `repair` (design §7.3, §10).

use super::error::{CommandError, Kind};
use super::json;
use super::Ctx;
use clap::{ArgGroup, Args};
use git_migrate_core::execute::{self, Event, ExecError};
use git_migrate_core::ledger::dirty::{DirtyDirection, RepairRow};
use git_migrate_core::ledger::Ledger;
use git_migrate_core::plan::AppliedMigration;
use git_migrate_core::project::Version;
use git_migrate_core::source::Source;
use std::time::Duration;

/// Settle a dirty migration (--done V / --undone V) or accept a modified one (--accept V)
///
/// A migration marked `-- git-migrate:no-transaction` that failed or was interrupted stays
/// marked dirty, and deployments refuse to run until it is settled. Check the database by
/// hand, then say what happened: `--done V` (it did complete) or `--undone V` (it did not, or
/// you undid what it left). For an interrupted revert, `--done` records the revert and
/// `--undone` keeps the migration applied. `--accept V` records the checksum of V's up.sql at
/// REV (default HEAD) for a migration edited after it was applied. Nothing is executed.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["done", "undone", "accept"])))]
pub struct RepairArgs {
    /// The dirty migration V did complete: record it as applied (an interrupted revert: as
    /// reverted) and clear the flag.
    #[arg(long, value_name = "V")]
    pub done: Option<Version>,
    /// The dirty migration V did not complete (or you undid what it left): record it as not
    /// applied (an interrupted revert: as still applied).
    #[arg(long, value_name = "V")]
    pub undone: Option<Version>,
    /// Record the checksum of V's up.sql at REV for a migration modified after it was applied.
    #[arg(long, value_name = "V")]
    pub accept: Option<Version>,
    /// The revision whose up.sql `--accept` records (default HEAD).
    #[arg(value_name = "REV", requires = "accept")]
    pub rev: Option<String>,
    /// Print what would change and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Seconds to wait for another deployment's lock (exit 5 after that).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_timeout: u64,
}

/// What will be written.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    /// Keep the row, clean.
    Keep,
    /// Delete the row (and Hasura's entry).
    Delete,
    /// New checksum, blob id and folder tree.
    Accept {
        sha256: String,
        blob: Option<String>,
        folder_tree: Option<String>,
        file: String,
    },
}

fn not_applied(v: Version) -> CommandError {
    CommandError::new(
        Kind::Refused,
        format!("migration {v} is not applied: the ledger has no row for it; nothing to repair"),
    )
    .hint("see what is applied with `git migrate status`")
}

fn not_dirty(a: &AppliedMigration, flag: &str) -> CommandError {
    CommandError::new(
        Kind::Refused,
        format!(
            "migration {}_{} is not dirty: it is applied and finished; nothing to repair",
            a.version, a.name
        ),
    )
    .hint(format!(
        "{flag} settles a no-transaction migration that did not finish; see `git migrate status`"
    ))
}

/// What `flag` does to `row`.
fn settle_change(done: bool, direction: DirtyDirection) -> Change {
    // An up that completed, or a down that did not, leaves the migration applied.
    if done == (direction == DirtyDirection::Up) {
        Change::Keep
    } else {
        Change::Delete
    }
}

fn describe(flag: &str, label: &str, direction: DirtyDirection, change: &Change) -> String {
    match (change, direction) {
        (Change::Keep, DirtyDirection::Up) => format!(
            "repair {flag}: {label} is recorded as applied and its dirty flag cleared"
        ),
        (Change::Delete, DirtyDirection::Up) => format!(
            "repair {flag}: {label}'s ledger row (and Hasura's, if it has one) is deleted: it counts as not applied, and the next deploy runs its up.sql again"
        ),
        (Change::Delete, DirtyDirection::Down) => format!(
            "repair {flag}: {label}'s revert is recorded: its ledger row (and Hasura's, if it has one) is deleted"
        ),
        (Change::Keep, DirtyDirection::Down) => format!(
            "repair {flag}: {label} stays applied (its down.sql did not complete) and its dirty flag is cleared"
        ),
        (Change::Accept { .. }, _) => String::new(),
    }
}

/// `git migrate repair`.
pub(crate) fn cmd_repair(ctx: &Ctx, args: &RepairArgs) -> Result<(), CommandError> {
    let (flag, v) = match (args.done, args.undone, args.accept) {
        (Some(v), None, None) => ("--done", v),
        (None, Some(v), None) => ("--undone", v),
        (None, None, Some(v)) => ("--accept", v),
        _ => {
            return Err(CommandError::new(
                Kind::Usage,
                "give exactly one of --done V, --undone V, --accept V",
            ))
        }
    };
    let (db, mut client) = ctx.connect()?;
    let ledger = ctx.ledger();
    let state = ledger.read(&mut client)?;
    if !state.live.ledger_exists {
        return Err(not_applied(v));
    }
    let Some(applied) = state.live.applied.get(&v).cloned() else {
        return Err(not_applied(v));
    };
    let label = format!("{v}_{}", applied.name);
    let direction = if applied.dirty && state.schema_version.unwrap_or(1) >= 2 {
        ledger
            .repair_row(&mut client, v)?
            .map(|r| r.direction)
            .unwrap_or(DirtyDirection::Up)
    } else {
        DirtyDirection::Up
    };
    let (change, line) = if flag == "--accept" {
        if applied.dirty {
            return Err(CommandError::new(
                Kind::Refused,
                format!("migration {label} is marked dirty; settle that first"),
            )
            .hint(format!(
                "run `git migrate repair --done {v}` or `--undone {v}`, then accept"
            )));
        }
        let change = accept_change(ctx, args, v, &label, &applied)?;
        let Change::Accept { sha256, file, .. } = &change else {
            unreachable!()
        };
        let line = format!(
            "repair --accept: the ledger's checksum of {label} changes from {} (applied from commit {}) to {sha256} ({file}); nothing is executed",
            if applied.up_sha256.is_empty() { "none" } else { &applied.up_sha256 },
            applied
                .applied_commit
                .as_deref()
                .map(git_migrate_core::source::short)
                .unwrap_or_else(|| "unknown".into()),
        );
        (change, line)
    } else {
        if !applied.dirty {
            return Err(not_dirty(&applied, flag));
        }
        let change = settle_change(flag == "--done", direction);
        let line = format!(
            "{}; nothing is executed",
            describe(flag, &label, direction, &change)
        );
        (change, line)
    };

    let json = |id: Option<i64>| {
        json::text(&json::RepairDoc {
            change: line.clone(),
            database: db.redacted(),
            deployment_id: id,
            direction: applied.dirty.then_some(direction),
            dry_run: id.is_none(),
            name: applied.name.clone(),
            repair: flag.trim_start_matches("--").to_string(),
            version: v,
        })
    };
    if args.dry_run {
        if ctx.json {
            ctx.ui.out(&json(None));
        } else {
            ctx.ui.out(&line);
            ctx.ui.info("dry run: nothing was changed");
        }
        return Ok(());
    }
    if !ctx.json {
        ctx.ui.out(&line);
    }
    if !args.yes {
        ctx.ui.confirm_or_refuse(
            &format!("Change the ledger of {}?", db.redacted()),
            "repair changes the ledger and there is no terminal to confirm it",
            "nothing was changed",
            "review the change above, then pass --yes",
        )?;
    }

    let ui = &ctx.ui;
    let lock_timeout = args.lock_timeout;
    let mut on_event = |e: Event<'_>| {
        if let Event::Waiting(h) = e {
            ui.info(&format!(
                "waiting for another deployment to finish{} (up to {lock_timeout}s)…",
                h.map(|h| format!(": lock held by {h}")).unwrap_or_default(),
            ))
        }
    };
    let actor = git_migrate_core::ledger::actor_with_role(&mut client, &ctx.actor);
    let shown = (applied.clone(), direction, change.clone());
    let id = execute::with_lock(
        &mut client,
        &ledger,
        Duration::from_secs(args.lock_timeout),
        &mut on_event,
        |tx| write(tx, &ledger, v, flag, &shown, &actor),
    )?;
    if ctx.json {
        ctx.ui.out(&json(Some(id)));
    } else {
        ctx.ui.out(&format!("Repaired {label}. Deployment #{id}."));
    }
    Ok(())
}

/// The checksum of V's up.sql at the revision `--accept` names.
fn accept_change(
    ctx: &Ctx,
    args: &RepairArgs,
    v: Version,
    label: &str,
    applied: &AppliedMigration,
) -> Result<Change, CommandError> {
    let rev = args.rev.clone().unwrap_or_else(|| "HEAD".into());
    let project_dir = ctx.project_dir();
    let mut project = ctx
        .repo
        .project(&Source::Rev(rev.clone()), project_dir.as_deref())?;
    let at = project.at();
    ctx.repo.resolve(&mut project.migrations, [v], &at)?;
    let Some(m) = project.migrations.get(v) else {
        return Err(CommandError::new(
            Kind::Refused,
            format!("{rev} has no migration {v}; nothing to accept"),
        )
        .hint(
            "name the revision that has the edited migration: git migrate repair --accept V REV",
        ));
    };
    let Some(up) = &m.up else {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "migration {} has no up.sql at {rev}; nothing to accept",
                m.label()
            ),
        ));
    };
    let bytes = ctx.repo.read(&project.tree, &up.path, Some(&up.blob))?;
    let sha256 = git_migrate_core::checksum::sha256_hex(&bytes);
    if sha256 == applied.up_sha256 {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "{label}'s up.sql at {rev} has the checksum the ledger records ({sha256}); nothing to accept"
            ),
        ));
    }
    let clean = !project.tree.is_dirty();
    Ok(Change::Accept {
        sha256,
        blob: Some(up.blob.clone()).filter(|_| clean),
        folder_tree: m.tree.clone().filter(|_| clean),
        file: format!("{} @ {at}", up.path),
    })
}

/// Under the lock: checks that the row is still what was shown, writes the change and the
/// `repair` deployment row.
fn write(
    tx: &mut postgres::Transaction<'_>,
    ledger: &Ledger,
    v: Version,
    flag: &str,
    shown: &(AppliedMigration, DirtyDirection, Change),
    actor: &str,
) -> Result<i64, ExecError> {
    let (applied, direction, change) = shown;
    let state = ledger.read(tx)?;
    ledger.upgrade(tx, state.schema_version)?;
    let Some(RepairRow {
        dirty,
        direction: now_direction,
        up_sha256,
        ..
    }) = ledger.repair_row(tx, v)?
    else {
        return Err(ExecError::Moved);
    };
    let same = dirty == applied.dirty
        && (!dirty || now_direction == *direction)
        && up_sha256.unwrap_or_default() == applied.up_sha256;
    if !same {
        return Err(ExecError::Moved);
    }
    let hasura = state.hasura_stores();
    let recorded = match change {
        Change::Keep => {
            ledger.settle(tx, v, true, hasura)?;
            Recorded::Settled {
                direction: *direction,
                recorded: "applied",
            }
        }
        Change::Delete => {
            ledger.settle(tx, v, false, hasura)?;
            Recorded::Settled {
                direction: *direction,
                recorded: "not applied",
            }
        }
        Change::Accept {
            sha256,
            blob,
            folder_tree,
            file,
        } => {
            ledger.accept_checksum(tx, v, sha256, blob.as_deref(), folder_tree.as_deref())?;
            Recorded::Accepted {
                file,
                from_sha256: &applied.up_sha256,
                to_sha256: sha256,
            }
        }
    };
    let plan = serde_json::to_value(RepairRecord {
        name: &applied.name,
        recorded,
        repair: flag.trim_start_matches("--"),
        version: v,
    })
    .expect("strings and numbers serialize");
    Ok(ledger.record_repair(
        tx,
        state.live.deployed_commit.as_deref(),
        state.live.deployed_dirty,
        state.live.metadata_sha256.as_deref(),
        &plan,
        actor,
    )?)
}

/// The `plan` the ledger records for a `repair` deployment.
#[derive(serde::Serialize)]
struct RepairRecord<'a> {
    name: &'a str,
    #[serde(flatten)]
    recorded: Recorded<'a>,
    /// `done`, `undone` or `accept`.
    repair: &'a str,
    version: Version,
}

/// What a repair changed in the ledger.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Recorded<'a> {
    /// `--done`/`--undone`: the dirty row's direction, and whether it now counts as applied.
    Settled {
        direction: DirtyDirection,
        recorded: &'static str,
    },
    /// `--accept`: the checksums before and after, and the file the new one is of.
    Accepted {
        file: &'a str,
        from_sha256: &'a str,
        to_sha256: &'a str,
    },
}
