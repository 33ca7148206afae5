//! `git migrate adopt`: take over a database the Hasura CLI manages (design §5.2). Also the
//! implicit adoption of `deploy`/`plan`/`apply` and what `status` says about such a database.

use super::error::{CommandError, Kind};
use super::json;
use super::render::describe_commit;
use super::Ctx;
use clap::Args;
use git_migrate_core::execute::{self, Event, ExecError};
use git_migrate_core::gather::TargetProject;
use git_migrate_core::ledger::adopt::{self, AdoptError, AdoptOptions, Adoption};
use git_migrate_core::ledger::{cli_state, DbState};
use git_migrate_core::plan::Problem;
use git_migrate_core::project::Version;
use git_migrate_core::source::Source;
use std::time::Duration;

/// Record the versions Hasura's migration state lists as applied in the ledger, with
/// checksums from a revision; nothing is executed
///
/// Reads `hdb_catalog.schema_migrations` (config v2) or `hdb_catalog.hdb_version.cli_state`
/// (config v3), prints what it will record, and records it as a deployment of kind `adopt`.
/// `deploy` does the same automatically on its first run.
#[derive(Args, Debug)]
pub struct AdoptArgs {
    /// Revision whose migration files give the checksums (default HEAD).
    #[arg(long, value_name = "REV")]
    pub commit: Option<String>,
    /// Print what would be recorded and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// A version Hasura marks dirty that you checked is fully applied: adopt it as applied and
    /// clear the flag (repeatable, or comma-separated).
    #[arg(long, value_name = "V", value_delimiter = ',')]
    pub accept_dirty: Vec<Version>,
    /// A version Hasura marks dirty that you checked did not run (or was undone): remove it
    /// from Hasura's state so that the next deploy applies it (repeatable, or comma-separated).
    #[arg(long, value_name = "V", value_delimiter = ',')]
    pub forget_dirty: Vec<Version>,
    /// Seconds to wait for another deployment's lock (exit 5 after that).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_timeout: u64,
}

impl From<AdoptError> for CommandError {
    fn from(e: AdoptError) -> Self {
        match e {
            AdoptError::Refused(problems) => {
                CommandError::refused("cannot adopt this database", problems)
            }
            AdoptError::Flag(m) => CommandError::new(Kind::Usage, m)
                .hint("see the dirty versions with `git migrate status`"),
            AdoptError::Source(s) => s.into(),
        }
    }
}

fn hasura_name(a: &Adoption) -> String {
    a.store.to_string()
}

/// For commands that adopt (deploy, plan, apply): the adoption of a database the Hasura CLI
/// manages, computed with the target's files; `state.live` becomes the adopted state, so the
/// plan applies only the missing migrations. Nothing is written here.
pub(super) fn implicit(
    state: &mut DbState,
    target: &mut TargetProject,
    ctx: &Ctx,
) -> Result<Option<Adoption>, CommandError> {
    if !adopt::needed(state) {
        return Ok(None);
    }
    let Some(project) = target.project.as_mut() else {
        return Ok(None);
    };
    if project.tree.is_dirty() {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "this database is managed by the Hasura CLI and is not adopted yet; adopting it needs the files of a commit, not {}; nothing was changed",
                target.reference
            ),
        )
        .hint("adopt it at a commit first: `git migrate adopt --commit REV`, then deploy --worktree/--staged"));
    }
    let Some(hasura) = state.hasura_state.as_ref() else {
        return Ok(None);
    };
    let a = adopt::compute(
        &ctx.repo,
        hasura,
        project,
        &target.reference,
        &AdoptOptions {
            database: state.database_name().into(),
            ..AdoptOptions::default()
        },
    )
    .map_err(|e| match e {
        AdoptError::Refused(problems) => CommandError::refused(
            "this database is managed by the Hasura CLI and cannot be adopted",
            problems,
        ),
        other => other.into(),
    })?;
    if let Some(a) = &a {
        state.live = a.live(&state.live);
        // Now, so that they also precede a refused plan.
        for w in a.warnings() {
            ctx.ui.warn(&w);
        }
    }
    Ok(a)
}

/// Lines describing an adoption. `full` lists every adopted version (the `adopt` command);
/// otherwise only a summary and the versions that need attention (deploy's plan).
pub(super) fn adoption_lines(ctx: &Ctx, a: &Adoption, full: bool) -> Vec<String> {
    let mut out = Vec::new();
    let at = a
        .commit
        .as_deref()
        .map(|c| super::render::label(&ctx.repo, &a.reference, c))
        .unwrap_or_else(|| a.reference.clone());
    out.push(format!(
        "Adopt: this database is managed by the Hasura CLI; {} lists {} applied version(s). \
         They are recorded in the ledger with checksums from {at}; nothing of them is executed.",
        hasura_name(a),
        a.rows.len()
    ));
    for r in &a.rows {
        let v = r.row.version;
        if !r.in_revision {
            out.push(format!(
                "  adopt    {v}  (not in {}: no files, no checksum)",
                a.reference
            ));
        } else if full || a.accepted_dirty.contains(&v) {
            let note = if a.accepted_dirty.contains(&v) {
                "  (dirty in Hasura's state; accepted as applied, flag cleared)"
            } else {
                ""
            };
            out.push(format!("  adopt    {v}_{}{note}", r.row.name));
        }
    }
    for v in &a.forgotten_dirty {
        out.push(format!(
            "  forget   {v}  (dirty in Hasura's state; removed from it, not adopted)"
        ));
    }
    if full {
        for v in &a.pending {
            out.push(format!(
                "  pending  {v}  (in {}, not applied: the next deploy applies it)",
                a.reference
            ));
        }
    }
    if !full {
        return out;
    }
    match a.to_commit() {
        Some(c) => out.push(format!(
            "  the ledger will say the database is at {}",
            describe_commit(&ctx.repo, &c)
        )),
        None => out.push(format!(
            "  the ledger will name no commit: Hasura's state is not exactly the migrations of {} \
             ({} not in it, {} not applied); the next deploy records one",
            a.reference,
            a.missing.len(),
            a.pending.len()
        )),
    }
    out
}

/// What `status` says about a database the Hasura CLI manages and git-migrate has not adopted.
pub(super) struct Unadopted {
    /// The adoption a deploy would record (`None` when dirty versions block it).
    pub adoption: Option<Adoption>,
    /// Why adoption is blocked.
    pub problems: Vec<Problem>,
    /// Versions Hasura's state lists.
    pub versions: i64,
}

impl Unadopted {
    /// The `deployed` line of `status`.
    pub fn line(&self) -> String {
        let store = self
            .adoption
            .as_ref()
            .map(hasura_name)
            .unwrap_or_else(|| "Hasura's migration state".into());
        format!(
            "managed by the Hasura CLI, not adopted yet (run `git migrate adopt` or deploy): {store} lists {} applied version(s)",
            self.versions
        )
    }
}

/// For `status`: when the database is the Hasura CLI's and not adopted, plans against the
/// state an adoption would record (so pending shows only the missing migrations). Writes
/// nothing.
pub(super) fn status_view(
    ctx: &Ctx,
    state: &mut DbState,
    target: &mut TargetProject,
) -> Result<Option<Unadopted>, CommandError> {
    if !adopt::needed(state) {
        return Ok(None);
    }
    let versions = state.hasura_applied;
    let (Some(hasura), Some(project)) = (state.hasura_state.as_ref(), target.project.as_mut())
    else {
        return Ok(None);
    };
    match adopt::compute(
        &ctx.repo,
        hasura,
        project,
        &target.reference,
        &AdoptOptions {
            database: state.database_name().into(),
            ..AdoptOptions::default()
        },
    ) {
        Ok(Some(a)) => {
            state.live = a.live(&state.live);
            Ok(Some(Unadopted {
                adoption: Some(a),
                problems: vec![],
                versions,
            }))
        }
        Ok(None) => Ok(None),
        Err(AdoptError::Refused(problems)) => Ok(Some(Unadopted {
            adoption: None,
            problems,
            versions,
        })),
        Err(e) => Err(e.into()),
    }
}

/// `git migrate adopt`.
pub(crate) fn cmd_adopt(ctx: &Ctx, args: &AdoptArgs) -> Result<(), CommandError> {
    let (db, mut client) = ctx.connect()?;
    let ledger = ctx.ledger();
    let state = ledger.read(&mut client)?;
    if !state.live.applied.is_empty() {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "nothing to adopt: the ledger already records {} applied migration(s)",
                state.live.applied.len()
            ),
        )
        .hint("see where the database is with `git migrate status`"));
    }
    if !adopt::needed(&state) {
        return Err(CommandError::new(
            Kind::Refused,
            "nothing to adopt: Hasura's migration state lists no applied version for the `default` database",
        )
        .cause(format!(
            "looked in hdb_catalog.schema_migrations ({}) and hdb_catalog.hdb_version.cli_state ({})",
            if state.hasura_schema_migrations { "exists" } else { "absent" },
            if state.hasura_cli_state { "exists" } else { "absent" }
        ))
        .hint("a database without migration state needs no adoption: `git migrate deploy REV` applies everything"));
    }
    let options = AdoptOptions {
        database: ctx.ledger().database().into(),
        accept_dirty: args.accept_dirty.clone(),
        forget_dirty: args.forget_dirty.clone(),
    };
    let rev = args.commit.clone().unwrap_or_else(|| "HEAD".into());
    let source = Source::Rev(rev.clone());
    let project_dir = ctx.project_dir();
    let mut project = ctx.repo.project(&source, project_dir.as_deref())?;
    let hasura = state.hasura_state.clone().unwrap_or_default();
    let Some(shown) = adopt::compute(&ctx.repo, &hasura, &mut project, &rev, &options)? else {
        return Err(CommandError::new(Kind::Refused, "nothing to adopt"));
    };

    if ctx.json && args.dry_run {
        let doc = json::AdoptDoc::new(&shown, db.redacted(), None);
        ctx.ui.out(&json::text(&doc));
        return Ok(());
    }
    if !ctx.json {
        for l in adoption_lines(ctx, &shown, true) {
            ctx.ui.out(&l);
        }
    }
    for w in shown.warnings() {
        ctx.ui.warn(&w);
    }
    if args.dry_run {
        ctx.ui.info("dry run: nothing was changed");
        return Ok(());
    }
    if !args.yes {
        ctx.ui.confirm_or_refuse(
            &format!(
                "Record {} adopted version(s) in the ledger of {}?",
                shown.rows.len(),
                db.redacted()
            ),
            "there is no terminal to confirm the adoption",
            "nothing was changed",
            "review what will be recorded above, then pass --yes",
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
    let id = execute::with_lock(
        &mut client,
        &ledger,
        Duration::from_secs(args.lock_timeout),
        &mut on_event,
        |tx| {
            // Under the lock, with Hasura's state locked against the CLI: read everything again
            // and adopt only what was shown.
            let state = ledger.read(tx)?;
            if !adopt::needed(&state) {
                return Err(ExecError::Moved);
            }
            cli_state::lock_stores(tx, state.hasura_stores()).map_err(|source| ExecError::Db {
                what: "locking Hasura's migration state",
                source,
            })?;
            let state = ledger.read(tx)?;
            let hasura = state.hasura_state.clone().unwrap_or_default();
            let now = match adopt::compute(&ctx.repo, &hasura, &mut project, &rev, &options) {
                Ok(Some(a)) => a,
                Ok(None) => return Err(ExecError::Moved),
                Err(AdoptError::Refused(p)) => return Err(ExecError::Refused(p)),
                Err(AdoptError::Source(s)) => return Err(s.into()),
                Err(AdoptError::Flag(_)) => return Err(ExecError::Moved),
            };
            if now != shown {
                return Err(ExecError::Moved);
            }
            Ok(ledger.record_adoption(
                tx,
                &now,
                state.live.deployed_commit.as_deref(),
                &actor,
                state.hasura_stores(),
            )?)
        },
    )?;
    if ctx.json {
        let doc = json::AdoptDoc::new(&shown, db.redacted(), Some(id));
        ctx.ui.out(&json::text(&doc));
    } else {
        ctx.ui.out(&format!(
            "Adopted {} migration(s) from {}; nothing was executed. Deployment #{id}.",
            shown.rows.len(),
            hasura_name(&shown)
        ));
    }
    Ok(())
}
