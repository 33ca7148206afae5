//! `git migrate squash --from V`: one migration with a correct combined down in place of a range,
//! like `hasura migrate squash`; with a database (or `--state-only`) the recorded state follows
//! (see [`super::authoring`] for why and for what the authoring commands share).

use super::authoring::*;
use super::error::{CommandError, Kind};
use super::Ctx;
use clap::Args;
use git_migrate_core::project::sql::is_effectively_empty;
use git_migrate_core::project::{Migration, MigrationSet, Version};
use std::collections::BTreeMap;
use std::path::Path;

/// Arguments of `squash`.
#[derive(Args, Debug)]
pub struct SquashArgs {
    /// First version to squash.
    #[arg(long, value_name = "V")]
    pub from: Version,
    /// Last version to squash (default: the latest).
    #[arg(long, value_name = "V")]
    pub to: Option<Version>,
    /// Name of the squashed migration.
    #[arg(long, value_name = "NAME", default_value = "squashed")]
    pub name: String,
    /// Delete the source folders instead of moving them to squashed_<from>_to_<to>/.
    #[arg(long)]
    pub delete_source: bool,
    /// Squash even when some downs are missing or empty (the squashed down skips them).
    #[arg(long)]
    pub allow_empty_down: bool,
    /// Version of the squashed migration (default: the current time in milliseconds, or --to's
    /// version when newer migrations follow the range). Required with --state-only.
    #[arg(long, value_name = "V", value_parser = clap::value_parser!(i64).range(0..))]
    pub version: Option<i64>,
    /// Write no files: record in the database (--database-url) that the squashed migration
    /// --version, already in the working tree, replaces the versions it was squashed from.
    #[arg(long, requires = "version")]
    pub state_only: bool,
    /// Print what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One migration of the range, read.
struct Part {
    migration: Migration,
    up: String,
    down: Option<String>,
}

/// The combined files: ups ascending, downs descending, each after a `-- from` line.
fn combine(sources: &[Part]) -> (String, String) {
    fn part(label: &str, text: &str) -> String {
        let mut s = format!("-- from {label}\n{text}");
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s
    }
    let up: Vec<String> = sources
        .iter()
        .map(|s| part(&s.migration.label(), &s.up))
        .collect();
    let down: Vec<String> = sources
        .iter()
        .rev()
        .map(|s| match &s.down {
            Some(d) => part(&s.migration.label(), d),
            None => format!(
                "-- from {}: no down migration (skipped with --allow-empty-down)\n",
                s.migration.label()
            ),
        })
        .collect();
    (up.join("\n"), down.join("\n"))
}

/// The `-- from <version>_<name>` lines of a squashed up.sql.
fn squashed_labels(up: &str) -> Vec<(Version, String)> {
    up.lines()
        .filter_map(|l| l.strip_prefix("-- from "))
        .filter_map(|rest| {
            let (digits, name) = rest.trim_end().split_once('_')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((digits.parse().ok()?, name.to_string()))
        })
        .collect()
}

/// The exact trailer that lets `check` accept the removed versions.
fn trailer(versions: &[Version]) -> String {
    let v: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
    format!("Migration-Allow: edited-migration {}", v.join(" "))
}

/// Checks that the database has all of `range` applied (Some(true)), none (Some(false)), and
/// refuses a mix, dirty rows and checksums that differ from the working tree's up.sql.
fn squash_state(
    applied: &Applied,
    range: &[(Version, String)],
    ups: &BTreeMap<Version, Vec<u8>>,
) -> Result<bool, CommandError> {
    let (on, off): (Vec<_>, Vec<_>) = range.iter().partition(|(v, _)| applied.has(*v));
    if on.is_empty() {
        return Ok(false);
    }
    let labels = |l: &[&(Version, String)]| {
        l.iter()
            .map(|(v, n)| format!("{v}_{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !off.is_empty() {
        return Err(CommandError::new(
            Kind::Refused,
            format!(
                "the migrations to squash are out of sync with {}: {} of {} are applied; nothing was changed",
                applied.db,
                on.len(),
                range.len()
            ),
        )
        .cause(format!("applied: {}", labels(&on)))
        .cause(format!("not applied: {}", labels(&off)))
        .hint("deploy (or roll back) so that the range is applied entirely or not at all, then squash; or squash a smaller range"));
    }
    let mut e = CommandError::new(
        Kind::Refused,
        format!(
            "{} ran other SQL than the working tree holds for the migrations to squash; nothing was changed",
            applied.db
        ),
    );
    for (v, n) in range {
        let Some(a) = applied.state.live.applied.get(v) else {
            continue;
        };
        if a.dirty {
            e = e.cause(format!(
                "{v}_{n} is marked dirty (a no-transaction migration did not finish)"
            ));
        } else if let Some(up) = ups.get(v) {
            let sha = git_migrate_core::checksum::sha256_hex(up);
            if sha != a.up_sha256 {
                e = e.cause(format!(
                    "{v}_{n}: the ledger has {}, the working tree has {sha}",
                    a.up_sha256
                ));
            }
        }
    }
    if !e.causes.is_empty() {
        return Err(e.hint("squash only migrations whose files are exactly what ran; fix the ledger first (`git migrate status` shows the differences)"));
    }
    Ok(true)
}

/// `git migrate squash`.
pub(crate) fn cmd_squash(ctx: &Ctx, args: &SquashArgs) -> Result<(), CommandError> {
    validate_name("migration name", &args.name)?;
    let wp = work_project(ctx)?;
    let dir = database_folder(
        &wp.location,
        &wp.location.config.migrations_directory,
        ctx.database_name.as_deref(),
    )?;
    let set = migrations_at(ctx, &wp.tree, &dir)?;
    if args.state_only {
        return squash_state_only(ctx, args, &wp, &set);
    }
    let missing = |v: Version, flag: &str| {
        CommandError::new(
            Kind::Usage,
            format!("{flag} {v}: there is no migration {v} in {dir}/ (working tree)"),
        )
        .hint(match set.iter().next_back() {
            Some(m) => format!(
                "versions there run from {} to {}",
                set.iter().next().map(|m| m.version).unwrap_or(m.version),
                m.version
            ),
            None => "the folder holds no migrations".into(),
        })
    };
    if !set.contains(args.from) {
        return Err(missing(args.from, "--from"));
    }
    let last = set
        .iter()
        .next_back()
        .map(|m| m.version)
        .unwrap_or(args.from);
    let to = args.to.unwrap_or(last);
    if !set.contains(to) {
        return Err(missing(to, "--to"));
    }
    if to < args.from {
        return Err(CommandError::new(
            Kind::Usage,
            format!("--to {to} is below --from {}", args.from),
        ));
    }
    let range: Vec<&Migration> = set
        .iter()
        .filter(|m| (args.from..=to).contains(&m.version))
        .collect();
    if range.len() < 2 {
        return Err(CommandError::new(
            Kind::Usage,
            format!("nothing to squash: {}..{to} holds one migration", args.from),
        )
        .hint("give a --to above --from (default: the latest migration)"));
    }

    // Read the range.
    let mut sources = Vec::with_capacity(range.len());
    let mut no_down = Vec::new();
    for m in &range {
        let up_file = m.up.as_ref().expect("migrations in a set have an up.sql");
        let up = read_text(&wp.root, &up_file.path)?;
        let down = match &m.down {
            Some(d) => Some(read_text(&wp.root, &d.path)?),
            None => None,
        };
        for (which, text) in [("up.sql", Some(&up)), ("down.sql", down.as_ref())] {
            if text.is_some_and(|t| git_migrate_core::project::txcontrol::is_no_transaction(t)) {
                return Err(CommandError::new(
                    Kind::Refused,
                    format!(
                        "{} is a no-transaction migration ({which} starts with `{}`); it cannot be squashed with others; nothing was changed",
                        m.label(),
                        git_migrate_core::check::rules::NO_TRANSACTION_MARKER
                    ),
                )
                .hint("squash the migrations before or after it separately"));
            }
        }
        let down = down.filter(|d| !is_effectively_empty(d));
        if down.is_none() {
            no_down.push(m.label());
        }
        sources.push(Part {
            migration: (*m).clone(),
            up,
            down,
        });
    }
    if !no_down.is_empty() {
        if !args.allow_empty_down {
            let mut e = CommandError::new(
                Kind::Refused,
                format!(
                    "{} of the migrations to squash have no down SQL, so the squashed down.sql could not undo the squashed up.sql; nothing was changed",
                    no_down.len()
                ),
            );
            for l in &no_down {
                e = e.cause(format!("{l}: down.sql is missing or empty"));
            }
            return Err(e
                .hint("write those down.sql files first")
                .hint("or pass --allow-empty-down: the squashed down.sql then skips them and cannot fully reverse the up"));
        }
        ctx.ui.warn(&format!(
            "the squashed down.sql skips {} migration(s) without a down: {}",
            no_down.len(),
            no_down.join(", ")
        ));
    }

    // The new version: a new timestamp when the range ends the history; --to's version when
    // newer migrations follow, so that the squashed SQL still runs before them.
    let followers = set.iter().filter(|m| m.version > to).count();
    let version = match args.version {
        Some(v) => {
            if set.contains(v) && !(args.from..=to).contains(&v) {
                return Err(CommandError::new(
                    Kind::Usage,
                    format!(
                        "--version {v} is taken by {}",
                        set.get(v).map(|m| m.location.as_str()).unwrap_or("")
                    ),
                ));
            }
            v
        }
        None if followers == 0 => next_version(Some(last))?,
        None => to,
    };
    if let Some(before) = set
        .iter()
        .rev()
        .find(|m| m.version < args.from)
        .filter(|m| version <= m.version)
    {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "--version {version} would run before {}, which precedes the squashed range",
                before.label()
            ),
        ));
    }
    if followers > 0 {
        if let Some(after) = set
            .iter()
            .find(|m| m.version > to)
            .filter(|m| version >= m.version)
        {
            return Err(CommandError::new(
                Kind::Usage,
                format!(
                    "--version {version} would run after {}, which follows the squashed range",
                    after.label()
                ),
            )
            .hint(format!(
                "leave out --version (the squashed migration then keeps version {to})"
            )));
        }
    }
    let (up, down) = combine(&sources);
    let folder = join(&dir, &format!("{version}_{}", args.name));
    let first = range[0].version;
    let squashed_dir = join(&dir, &format!("squashed_{first}_to_{to}"));
    if wp.root.join(&squashed_dir).exists() {
        return Err(CommandError::new(
            Kind::Usage,
            format!("{squashed_dir}/ already exists; nothing was changed"),
        )
        .hint("move or delete it first (it holds the sources of an earlier squash)"));
    }
    if wp.root.join(&folder).exists() && !range.iter().any(|m| m.location == folder) {
        return Err(CommandError::new(
            Kind::Usage,
            format!("{folder}/ already exists; nothing was changed"),
        ));
    }
    let versions: Vec<Version> = range.iter().map(|m| m.version).collect();
    let labels: Vec<(Version, String)> =
        range.iter().map(|m| (m.version, m.name.clone())).collect();
    let ups: BTreeMap<Version, Vec<u8>> = sources
        .iter()
        .map(|s| (s.migration.version, s.up.clone().into_bytes()))
        .collect();

    // The database, when one is given: all of the range applied, or none.
    let ledger = ctx.ledger();
    let database = ctx.database_name.as_deref().unwrap_or("default");
    let config_version = wp.location.config.version;
    let mut db = None;
    if database_given(ctx) {
        let (target, mut client) = ctx.connect()?;
        let applied = read_applied(
            &mut client,
            &ledger,
            &target.redacted(),
            config_version,
            database,
        )?;
        let all = squash_state(&applied, &labels, &ups)?;
        db = Some((client, applied.db.clone(), all));
    }

    if args.dry_run {
        ctx.ui.out(&format!(
            "Would squash {} migrations ({first}..{to}) into {folder}/",
            versions.len()
        ));
        ctx.ui.out(&format!(
            "Would {} the source folders{}",
            if args.delete_source { "delete" } else { "move" },
            if args.delete_source {
                String::new()
            } else {
                format!(" to {squashed_dir}/")
            }
        ));
        if let Some((_, name, all)) = &db {
            ctx.ui.out(&if *all {
                format!("Would record {version} as applied in {name} in place of the squashed versions (no SQL runs)")
            } else {
                format!("{name} has none of them applied: nothing to record")
            });
        }
        ctx.ui.info("dry run: nothing was changed");
        return Ok(());
    }

    // Files: new folder, sources moved aside (undone if the database step fails).
    let mut undo = Undo::default();
    let move_sources = |undo: &mut Undo| -> Result<(), CommandError> {
        let target = wp.root.join(&squashed_dir);
        std::fs::create_dir(&target)
            .map_err(|e| io_error(format!("cannot create {squashed_dir}/"), e))?;
        undo.created.push(target.clone());
        for m in &range {
            for p in migration_paths(m) {
                let from = wp.root.join(&p);
                let name = Path::new(&p).file_name().unwrap_or_default();
                let to = target.join(name);
                std::fs::rename(&from, &to).map_err(|e| io_error(format!("cannot move {p}"), e))?;
                undo.moved.push((from, to));
            }
        }
        Ok(())
    };
    // Move first: the new folder may reuse --to's version (and even its folder name).
    if let Err(e) = move_sources(&mut undo) {
        undo.rollback();
        return Err(e);
    }
    if let Err(e) = write_migration(&wp.root, &folder, up.as_bytes(), down.as_bytes()) {
        undo.rollback();
        return Err(e);
    }
    undo.created.push(wp.root.join(&folder));

    let mut recorded = None;
    if let Some((client, name, true)) = &mut db {
        let name = name.clone();
        let result = with_lock(client, &ledger, |tx| {
            let applied = read_applied(tx, &ledger, &name, config_version, database)?;
            if !squash_state(&applied, &labels, &ups)? {
                return Err(CommandError::new(
                    Kind::Refused,
                    format!("{name} changed meanwhile: the migrations to squash are no longer applied; nothing was changed"),
                ));
            }
            let new = NewRow {
                version,
                name: args.name.clone(),
                up: up.clone().into_bytes(),
                down: down.clone().into_bytes(),
            };
            let target_ref = format!("squash {first}..{to} into {version}");
            let plan = serde_json::json!({"squash": {"from": versions, "into": version, "executed": false}});
            write_state(
                tx,
                &ledger,
                &applied,
                &versions,
                Some(&new),
                &target_ref,
                plan,
                &ctx.actor,
            )
        });
        match result {
            Ok(id) => recorded = Some((name, id)),
            Err(e) => {
                undo.rollback();
                return Err(e);
            }
        }
    }
    if args.delete_source {
        if let Err(e) = std::fs::remove_dir_all(wp.root.join(&squashed_dir)) {
            ctx.ui.warn(&format!(
                "could not delete {squashed_dir}/ ({e}); delete it by hand"
            ));
        }
    }

    let trailer = trailer(&versions);
    let state_cmd = format!(
        "git migrate squash --from {first} --to {to} --state-only --version {version}{} --database-url <url>",
        ctx.database_name
            .as_deref()
            .map(|d| format!(" --database-name {d}"))
            .unwrap_or_default()
    );
    if ctx.json {
        let v = serde_json::json!({
            "version": version,
            "name": args.name,
            "path": folder,
            "squashed": versions,
            "sources": if args.delete_source { serde_json::Value::Null } else { serde_json::Value::String(squashed_dir.clone()) },
            "database": match (&recorded, &db) {
                (Some((name, id)), _) => serde_json::json!({"target": name, "recorded": true, "deployment_id": id}),
                (None, Some((_, name, _))) => serde_json::json!({"target": name, "recorded": false}),
                (None, None) => serde_json::Value::Null,
            },
            "trailer": trailer,
            "state_only_command": state_cmd,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    ctx.ui.out(&format!(
        "Squashed {} migrations ({first}..{to}) into {folder}/",
        versions.len()
    ));
    ctx.ui.out(&format!(
        "  up.sql runs their ups in order; down.sql runs their downs in reverse order{}",
        if version == to {
            format!(" (version {to} is kept because newer migrations follow the range)")
        } else {
            String::new()
        }
    ));
    if args.delete_source {
        ctx.ui.out("Deleted the source folders.");
    } else {
        ctx.ui.out(&format!(
            "Moved the source folders to {squashed_dir}/ (ignored by git-migrate and Hasura; delete it when you no longer need it)."
        ));
    }
    match (&recorded, &db) {
        (Some((name, _)), _) => ctx.ui.out(&format!(
            "{name}: had all {} applied; the ledger now records {version} in their place (no SQL ran).",
            versions.len()
        )),
        (None, Some((_, name, _))) => ctx.ui.out(&format!(
            "{name}: none of them is applied there; nothing to record."
        )),
        (None, None) => ctx.ui.out(
            "No database given: only files were written (pass --database-url to also record the squash in a database that has them applied).",
        ),
    }
    ctx.ui.out("");
    ctx.ui.out("Next:");
    ctx.ui.out(&format!(
        "  1. Commit. `git migrate check` reports the removed versions as edited-migration; put this trailer in the commit message:\n       {trailer}"
    ));
    ctx.ui.out(&format!(
        "  2. Every other database that has {first}..{to} applied must record the squash before it deploys that commit\n     (otherwise the deploy reverts them and applies {version}):\n       {state_cmd}"
    ));
    if recorded.is_some() {
        ctx.ui.out(
            "  Until the squash is committed, `status` against HEAD shows the squashed versions as pending: deploy the new commit, not the old HEAD.",
        );
    }
    Ok(())
}

/// `squash --state-only`: the squashed migration is already in the working tree (committed,
/// pulled); record it in the database in place of the versions its `-- from` lines name.
fn squash_state_only(
    ctx: &Ctx,
    args: &SquashArgs,
    wp: &WorkProject,
    set: &MigrationSet,
) -> Result<(), CommandError> {
    let version = args
        .version
        .expect("clap requires --version with --state-only");
    if !database_given(ctx) {
        return Err(CommandError::new(
            Kind::Usage,
            "--state-only changes the database state, but no database is given",
        )
        .hint("pass --database-url postgresql://… (or set DATABASE_URL)"));
    }
    let Some(m) = set.get(version) else {
        return Err(CommandError::new(
            Kind::Usage,
            format!("--version {version}: there is no migration {version} in the working tree"),
        )
        .hint("check out the commit that holds the squashed migration first"));
    };
    let up_file = m.up.as_ref().expect("migrations in a set have an up.sql");
    let up = read_text(&wp.root, &up_file.path)?;
    let down = match &m.down {
        Some(d) => read_text(&wp.root, &d.path)?,
        None => String::new(),
    };
    let to = args.to.unwrap_or(Version::MAX);
    let range = args.from..=to;
    let labels = squashed_labels(&up);
    if labels.is_empty() || labels.iter().any(|(v, _)| !range.contains(v)) {
        return Err(CommandError::new(
            Kind::Usage,
            format!(
                "{} is not the squash of {}..{}: its up.sql does not name (only) versions of that range in `-- from <version>_<name>` lines",
                m.label(),
                args.from,
                args.to.map(|t| t.to_string()).unwrap_or_else(|| "the latest".into())
            ),
        )
        .hint("pass the --from, --to and --version that `git migrate squash` printed"));
    }
    let versions: Vec<Version> = labels.iter().map(|(v, _)| *v).collect();
    let list = |v: &[Version]| {
        v.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ledger = ctx.ledger();
    let (target, mut client) = ctx.connect()?;
    let name = target.redacted();
    let database = ctx.database_name.as_deref().unwrap_or("default");
    let config_version = wp.location.config.version;
    enum Outcome {
        AlreadyDone,
        NothingApplied,
        Recorded(Option<i64>),
    }
    let outcome = with_lock(&mut client, &ledger, |tx| {
        let applied = read_applied(tx, &ledger, &name, config_version, database)?;
        let present: Vec<Version> = versions
            .iter()
            .copied()
            .filter(|v| applied.has(*v))
            .collect();
        // The squashed migration may keep the version of the last one it replaces (newer
        // migrations followed the range); then that row is rewritten.
        let reused = versions.contains(&version);
        let already = if reused {
            present == [version]
                && applied.state.live.applied.get(&version).is_none_or(|a| {
                    a.up_sha256 == git_migrate_core::checksum::sha256_hex(up.as_bytes())
                })
        } else {
            applied.has(version) && present.is_empty()
        };
        if already {
            return Ok(Outcome::AlreadyDone);
        }
        if applied.has(version) && !reused {
            return Err(CommandError::new(
                Kind::Refused,
                format!("{name} records {version} as applied and also versions it was squashed from; nothing was changed"),
            )
            .cause(format!("still applied: {}", list(&present)))
            .hint("check the schema, then remove them with `git migrate delete --server --version …`"));
        }
        if present.is_empty() {
            return Ok(Outcome::NothingApplied);
        }
        // Applied versions of the range that the squashed file does not hold would be lost.
        let extra: Vec<Version> = applied
            .versions()
            .into_iter()
            .filter(|v| range.contains(v) && !versions.contains(v))
            .collect();
        if !extra.is_empty() {
            return Err(CommandError::new(
                Kind::Refused,
                format!(
                    "{name} has versions of the range applied that {} does not hold; nothing was changed",
                    m.label()
                ),
            )
            .cause(format!("not in the squashed migration: {}", list(&extra)))
            .hint("give the exact --from and --to that `git migrate squash` printed"));
        }
        // All applied (or refused as out of sync / dirty), under the same names.
        squash_state(&applied, &labels, &BTreeMap::new())?;
        let renamed: Vec<String> = labels
            .iter()
            .filter_map(|(v, n)| {
                let a = applied.state.live.applied.get(v)?;
                (a.name != *n)
                    .then(|| format!("{v}: the ledger says {:?}, the squashed file {n:?}", a.name))
            })
            .collect();
        if !renamed.is_empty() {
            let mut e = CommandError::new(
                Kind::Refused,
                format!(
                    "{name} recorded the squashed versions under other names; nothing was changed"
                ),
            );
            for r in renamed {
                e = e.cause(r);
            }
            return Err(
                e.hint("check that this database ran the same migrations as the one squashed")
            );
        }
        let new = NewRow {
            version,
            name: m.name.clone(),
            up: up.as_bytes().to_vec(),
            down: down.as_bytes().to_vec(),
        };
        let (first, last) = (versions[0], versions[versions.len() - 1]);
        let target_ref = format!("squash {first}..{last} into {version} (--state-only)");
        let plan =
            serde_json::json!({"squash": {"from": versions, "into": version, "executed": false}});
        write_state(
            tx,
            &ledger,
            &applied,
            &versions,
            Some(&new),
            &target_ref,
            plan,
            &ctx.actor,
        )
        .map(Outcome::Recorded)
    })?;
    let (first, last) = (versions[0], versions[versions.len() - 1]);
    let (recorded, id) = match outcome {
        Outcome::AlreadyDone if ctx.json => (false, None),
        Outcome::NothingApplied if ctx.json => (false, None),
        Outcome::AlreadyDone => {
            ctx.ui.out(&format!(
                "{name} already records {} in place of {}; nothing to do.",
                m.label(),
                list(&versions)
            ));
            (false, None)
        }
        Outcome::NothingApplied => {
            ctx.ui.out(&format!(
                "{name} has none of {} applied; nothing to record (a deploy applies {} normally).",
                list(&versions),
                m.label()
            ));
            (false, None)
        }
        Outcome::Recorded(id) => {
            if !ctx.json {
                ctx.ui.out(&format!(
                    "{name}: recorded {} as applied in place of {} version(s) ({first}..{last}); no SQL ran.",
                    m.label(),
                    versions.len(),
                ));
            }
            (true, id)
        }
    };
    if ctx.json {
        let v = serde_json::json!({
            "version": version,
            "squashed": versions,
            "target": name,
            "recorded": recorded,
            "deployment_id": id,
        });
        ctx.ui
            .out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(v: Version, name: &str, up: &str, down: Option<&str>) -> Part {
        Part {
            migration: Migration {
                version: v,
                name: name.into(),
                location: format!("migrations/{v}_{name}"),
                tree: None,
                resolved: true,
                up: None,
                down: None,
            },
            up: up.into(),
            down: down.map(str::to_string),
        }
    }

    #[test]
    fn combine_orders_ups_forward_and_downs_backward() {
        let (up, down) = combine(&[
            source(1, "a", "create table a ();", Some("drop table a;\n")),
            source(2, "b", "create table b ();\n", None),
        ]);
        assert_eq!(
            up,
            "-- from 1_a\ncreate table a ();\n\n-- from 2_b\ncreate table b ();\n"
        );
        assert_eq!(
            down,
            "-- from 2_b: no down migration (skipped with --allow-empty-down)\n\n-- from 1_a\ndrop table a;\n"
        );
        assert_eq!(
            squashed_labels(&up),
            vec![(1, "a".to_string()), (2, "b".to_string())]
        );
    }

    #[test]
    fn names_and_trailer() {
        assert!(validate_name("n", "add users").is_ok());
        for bad in ["", " ", "a/b", "a\\b", "a\nb", "..", " x"] {
            assert!(validate_name("n", bad).is_err(), "{bad:?}");
        }
        assert_eq!(trailer(&[1, 2]), "Migration-Allow: edited-migration 1 2");
    }
}
