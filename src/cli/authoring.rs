//! What `create`, `squash` and `delete` ([`super::create`], [`super::squash`],
//! [`super::delete`]) share on the command line: finding the project, the database handle, and
//! the mapping of [`AuthoringError`] to a [`CommandError`]. Their logic, and why it is as it is,
//! is in [`git_migrate_core::authoring`].

use super::error::{CommandError, Kind};
use super::Ctx;
use git_migrate_core::authoring::{self, AuthoringError, Difference, MissingDown};
use git_migrate_core::ledger::Ledger;
use git_migrate_core::project::{MigrationSet, Version};

pub(super) use git_migrate_core::authoring::WorkProject;
pub(super) use git_migrate_core::project::join_path as join;

/// Finds the project in the working tree (bare repositories have none).
pub(super) fn work_project(ctx: &Ctx) -> Result<WorkProject, CommandError> {
    Ok(WorkProject::find(&ctx.repo, ctx.project_dir().as_deref())?)
}

/// Rejects names that cannot be one path component.
pub(super) fn validate_name(what: &str, name: &str) -> Result<(), CommandError> {
    Ok(authoring::validate_name(what, name)?)
}

/// Lists the migrations of a folder of the working tree, every folder read.
pub(super) fn migrations_at(
    ctx: &Ctx,
    wp: &WorkProject,
    dir: &str,
) -> Result<MigrationSet, CommandError> {
    Ok(authoring::migrations_at(&ctx.repo, &wp.tree, dir)?)
}

/// Whether a database was named (`--database-url`, `DATABASE_URL`, PG* variables).
pub(super) fn database_given(ctx: &Ctx) -> bool {
    ctx.db_target().is_ok()
}

/// The database of the command, once connected to `name` (redacted).
pub(super) fn database<'a>(
    ctx: &'a Ctx,
    ledger: &'a Ledger,
    name: String,
    config_version: u8,
) -> authoring::Database<'a> {
    authoring::Database {
        ledger,
        name,
        config_version,
        database: ctx.database_name.as_deref().unwrap_or("default"),
        actor: &ctx.actor,
    }
}

fn list(v: &[Version]) -> String {
    v.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<AuthoringError> for CommandError {
    fn from(e: AuthoringError) -> Self {
        let message = e.to_string();
        let new = |kind| CommandError::new(kind, message.clone());
        match e {
            AuthoringError::Source(s) => s.into(),
            AuthoringError::Ledger(l) => l.into(),
            AuthoringError::Exec(x) => x.into(),
            AuthoringError::InvalidName { .. } => new(Kind::Usage)
                .hint("use letters, digits, _ and - (spaces are allowed inside)"),
            AuthoringError::Io { source, .. } => new(Kind::Failure).cause(source.to_string()),
            AuthoringError::NotUtf8 { source, .. } => new(Kind::Usage)
                .cause(source.to_string())
                .hint("SQL files must be UTF-8"),
            AuthoringError::VersionOverflow { .. } => new(Kind::Usage).hint("pass --version"),
            AuthoringError::NoSuchMigration { span, .. } => new(Kind::Usage).hint(match span {
                Some((first, last)) => format!("versions there run from {first} to {last}"),
                None => "the folder holds no migrations".into(),
            }),
            AuthoringError::ToBelowFrom { .. }
            | AuthoringError::SquashVersionTaken { .. }
            | AuthoringError::RunsBefore { .. }
            | AuthoringError::SquashFolderExists { .. }
            | AuthoringError::FolderExists { .. } => new(Kind::Usage),
            AuthoringError::NothingToSquash { .. } => new(Kind::Usage)
                .hint("give a --to above --from (default: the latest migration)"),
            AuthoringError::NoTransaction { .. } => new(Kind::Refused)
                .hint("squash the migrations before or after it separately"),
            AuthoringError::NoDown { labels } => {
                let mut ce = new(Kind::Refused);
                for l in &labels {
                    ce = ce.cause(format!("{l}: down.sql is missing or empty"));
                }
                ce.hint("write those down.sql files first")
                    .hint("or pass --allow-empty-down: the squashed down.sql then skips them and cannot fully reverse the up")
            }
            AuthoringError::RunsAfter { to, .. } => new(Kind::Usage).hint(format!(
                "leave out --version (the squashed migration then keeps version {to})"
            )),
            AuthoringError::SourcesFolderExists { .. } => new(Kind::Usage)
                .hint("move or delete it first (it holds the sources of an earlier squash)"),
            AuthoringError::OutOfSync {
                applied,
                not_applied,
                ..
            } => new(Kind::Refused)
                .cause(format!("applied: {}", applied.join(", ")))
                .cause(format!("not applied: {}", not_applied.join(", ")))
                .hint("deploy (or roll back) so that the range is applied entirely or not at all, then squash; or squash a smaller range"),
            AuthoringError::OtherSql { differences, .. } => {
                let mut ce = new(Kind::Refused);
                for d in differences {
                    ce = ce.cause(match d {
                        Difference::Dirty { label } => format!(
                            "{label} is marked dirty (a no-transaction migration did not finish)"
                        ),
                        Difference::Checksum {
                            label,
                            ledger,
                            tree,
                        } => format!("{label}: the ledger has {ledger}, the working tree has {tree}"),
                    });
                }
                ce.hint("squash only migrations whose files are exactly what ran; fix the ledger first (`git migrate status` shows the differences)")
            }
            AuthoringError::ChangedMeanwhile { .. } => new(Kind::Refused),
            AuthoringError::NoSquashedMigration { .. } => new(Kind::Usage)
                .hint("check out the commit that holds the squashed migration first"),
            AuthoringError::NotASquash { .. } => new(Kind::Usage)
                .hint("pass the --from, --to and --version that `git migrate squash` printed"),
            AuthoringError::StillApplied { present, .. } => new(Kind::Refused)
                .cause(format!("still applied: {}", list(&present)))
                .hint("check the schema, then remove them with `git migrate delete --server --version …`"),
            AuthoringError::ExtraApplied { extra, .. } => new(Kind::Refused)
                .cause(format!("not in the squashed migration: {}", list(&extra)))
                .hint("give the exact --from and --to that `git migrate squash` printed"),
            AuthoringError::Renamed { renamed, .. } => {
                let mut ce = new(Kind::Refused);
                for (v, ledger, file) in renamed {
                    ce = ce.cause(format!(
                        "{v}: the ledger says {ledger:?}, the squashed file {file:?}"
                    ));
                }
                ce.hint("check that this database ran the same migrations as the one squashed")
            }
            AuthoringError::NotInFolder { .. } => new(Kind::Usage)
                .hint("to remove only the database's record of it, add --server"),
            AuthoringError::DeleteApplied {
                labels, versions, ..
            } => {
                let flags: Vec<String> =
                    versions.iter().map(|v| format!("--version {v}")).collect();
                new(Kind::Refused)
                    .cause(format!("applied: {}", labels.join(", ")))
                    .cause("without their files, the next deploy there would revert them")
                    .hint(format!(
                        "to forget them in the database too (no SQL runs): git migrate delete --server {}",
                        flags.join(" ")
                    ))
                    .hint("or pass --force to delete the files anyway")
            }
            AuthoringError::NoState { .. } => new(Kind::Refused),
            AuthoringError::NotRecorded { .. } => new(Kind::Refused)
                .hint("`git migrate status --table` lists what the database records"),
            AuthoringError::EmptyDown { missing, up_given } => {
                let cause = match missing {
                    MissingDown::NoSql => "`hasura migrate create` writes two empty files here; an empty down.sql means the migration can never be rolled back",
                    MissingDown::NoDownSql => "an empty down.sql means `rollback` and `apply --down` refuse this migration",
                    MissingDown::EmptyDownSql => "a down.sql without statements cannot reverse anything",
                };
                let mut ce = new(Kind::Usage)
                    .cause(cause)
                    .hint("pass --down-sql '<the statements that undo the up>', e.g. --down-sql 'DROP TABLE orders;'");
                if !up_given {
                    ce = ce.hint("give the up SQL with --up-sql '<SQL>' or --sql-from-file <file>");
                }
                ce.hint("or pass --allow-empty-down to create it anyway (then write down.sql before committing)")
            }
            AuthoringError::UpNotUtf8(source) => new(Kind::Usage)
                .cause(source.to_string())
                .hint("SQL files must be UTF-8"),
            AuthoringError::CreateVersionTaken { .. } => new(Kind::Usage)
                .hint("leave out --version to use the current time"),
        }
    }
}
