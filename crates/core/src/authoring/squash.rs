//! `squash --from V`: one migration with a correct combined down in place of a range, like
//! `hasura migrate squash`; with a database (or `--state-only`) the recorded state follows
//! (see [`super`] for why).

use super::{
    migration_paths, next_version, read_applied, read_text, with_lock, write_migration,
    write_state, Applied, AuthoringError, Database, Difference, NewRow, StateChange, Undo,
};
use crate::project::join_path as join;
use crate::project::sql::is_effectively_empty;
use crate::project::{Migration, MigrationSet, Version};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;

/// What `squash` was asked for.
pub struct SquashOptions<'a> {
    /// First version to squash.
    pub from: Version,
    /// Last version to squash (default: the latest).
    pub to: Option<Version>,
    /// Name of the squashed migration.
    pub name: &'a str,
    /// Version of the squashed migration (default: chosen).
    pub version: Option<Version>,
    /// Squash even when some downs are missing or empty.
    pub allow_empty_down: bool,
}

/// A squash, planned: nothing is changed until [`apply_squash`].
pub struct SquashPlan {
    /// The first version of the range.
    pub first: Version,
    /// The last version of the range.
    pub to: Version,
    /// The version of the squashed migration.
    pub version: Version,
    /// Its name.
    pub name: String,
    /// Its folder (repository-relative).
    pub folder: String,
    /// Where the source folders go (`squashed_<from>_to_<to>`).
    pub sources_dir: String,
    /// The squashed versions, ascending.
    pub versions: Vec<Version>,
    /// What the caller should show before going on.
    pub warnings: Vec<String>,
    /// The database's state, when one was read ([`check_squash_state`]).
    pub database: Option<SquashState>,
    up: String,
    down: String,
    sources: Vec<Migration>,
    labels: Vec<(Version, String)>,
    ups: BTreeMap<Version, Vec<u8>>,
}

/// What a database has of the range to squash.
pub struct SquashState {
    /// The database, redacted.
    pub target: String,
    /// Whether it has all of the range applied (else none).
    pub all_applied: bool,
}

/// What [`apply_squash`] did besides writing the files.
pub struct SquashReport {
    /// Whether the database now records the squashed migration in place of the range.
    pub recorded: bool,
    /// The `repair` deployment that recorded it.
    pub deployment_id: Option<i64>,
    /// What went wrong without failing the squash.
    pub warnings: Vec<String>,
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
pub fn trailer(versions: &[Version]) -> String {
    let v: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
    format!("Migration-Allow: edited-migration {}", v.join(" "))
}

/// Checks that the database has all of `range` applied (Some(true)), none (Some(false)), and
/// refuses a mix, dirty rows and checksums that differ from the working tree's up.sql.
fn squash_state(
    applied: &Applied,
    range: &[(Version, String)],
    ups: &BTreeMap<Version, Vec<u8>>,
) -> Result<bool, AuthoringError> {
    let (on, off): (Vec<_>, Vec<_>) = range.iter().partition(|(v, _)| applied.has(*v));
    if on.is_empty() {
        return Ok(false);
    }
    let labels = |l: &[&(Version, String)]| {
        l.iter()
            .map(|(v, n)| format!("{v}_{n}"))
            .collect::<Vec<_>>()
    };
    if !off.is_empty() {
        return Err(AuthoringError::OutOfSync {
            db: applied.db.clone(),
            applied: labels(&on),
            not_applied: labels(&off),
            total: range.len(),
        });
    }
    let mut differences = Vec::new();
    for (v, n) in range {
        let Some(a) = applied.state.live.applied.get(v) else {
            continue;
        };
        if a.dirty {
            differences.push(Difference::Dirty {
                label: format!("{v}_{n}"),
            });
        } else if let Some(up) = ups.get(v) {
            let sha = crate::checksum::sha256_hex(up);
            if sha != a.up_sha256 {
                differences.push(Difference::Checksum {
                    label: format!("{v}_{n}"),
                    ledger: a.up_sha256.clone(),
                    tree: sha,
                });
            }
        }
    }
    if !differences.is_empty() {
        return Err(AuthoringError::OtherSql {
            db: applied.db.clone(),
            differences,
        });
    }
    Ok(true)
}

/// The range `from..=to` of `set`, checked: both ends exist, in order, with something between.
fn squash_range<'s>(
    set: &'s MigrationSet,
    dir: &str,
    from: Version,
    to: Option<Version>,
) -> Result<(Version, Vec<&'s Migration>), AuthoringError> {
    let missing = |version: Version, flag: &'static str| AuthoringError::NoSuchMigration {
        flag,
        version,
        dir: dir.to_string(),
        span: set.iter().next_back().map(|m| {
            (
                set.iter().next().map(|m| m.version).unwrap_or(m.version),
                m.version,
            )
        }),
    };
    if !set.contains(from) {
        return Err(missing(from, "--from"));
    }
    let last = set.iter().next_back().map(|m| m.version).unwrap_or(from);
    let to = to.unwrap_or(last);
    if !set.contains(to) {
        return Err(missing(to, "--to"));
    }
    if to < from {
        return Err(AuthoringError::ToBelowFrom { from, to });
    }
    let range: Vec<&Migration> = set
        .iter()
        .filter(|m| (from..=to).contains(&m.version))
        .collect();
    if range.len() < 2 {
        return Err(AuthoringError::NothingToSquash { from, to });
    }
    Ok((to, range))
}

/// Reads the range; refuses no-transaction migrations, and missing downs unless
/// `allow_empty_down` (then a warning names them).
fn read_parts(
    root: &Path,
    range: &[&Migration],
    allow_empty_down: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Part>, AuthoringError> {
    let mut sources = Vec::with_capacity(range.len());
    let mut no_down = Vec::new();
    for m in range {
        let up_file = m.up.as_ref().expect("migrations in a set have an up.sql");
        let up = read_text(root, &up_file.path)?;
        let down = match &m.down {
            Some(d) => Some(read_text(root, &d.path)?),
            None => None,
        };
        for (which, text) in [("up.sql", Some(&up)), ("down.sql", down.as_ref())] {
            if text.is_some_and(|t| crate::project::txcontrol::is_no_transaction(t)) {
                return Err(AuthoringError::NoTransaction {
                    label: m.label(),
                    which,
                });
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
        if !allow_empty_down {
            return Err(AuthoringError::NoDown { labels: no_down });
        }
        warnings.push(format!(
            "the squashed down.sql skips {} migration(s) without a down: {}",
            no_down.len(),
            no_down.join(", ")
        ));
    }
    Ok(sources)
}

/// The new version: a new timestamp when the range ends the history; --to's version when
/// newer migrations follow, so that the squashed SQL still runs before them.
fn squash_version(
    set: &MigrationSet,
    from: Version,
    to: Version,
    asked: Option<Version>,
) -> Result<Version, AuthoringError> {
    let followers = set.iter().filter(|m| m.version > to).count();
    let last = set.iter().next_back().map(|m| m.version).unwrap_or(from);
    let version = match asked {
        Some(v) => {
            if set.contains(v) && !(from..=to).contains(&v) {
                return Err(AuthoringError::SquashVersionTaken {
                    version: v,
                    location: set.get(v).map(|m| m.location.clone()).unwrap_or_default(),
                });
            }
            v
        }
        None if followers == 0 => next_version(Some(last))?,
        None => to,
    };
    if let Some(before) = set
        .iter()
        .rev()
        .find(|m| m.version < from)
        .filter(|m| version <= m.version)
    {
        return Err(AuthoringError::RunsBefore {
            version,
            before: before.label(),
        });
    }
    if followers > 0 {
        if let Some(after) = set
            .iter()
            .find(|m| m.version > to)
            .filter(|m| version >= m.version)
        {
            return Err(AuthoringError::RunsAfter {
                version,
                after: after.label(),
                to,
            });
        }
    }
    Ok(version)
}

/// Plans `squash` of the migrations folder `dir` (holding `set`) of the working tree at `root`:
/// checks the range, reads it, chooses the version and builds the combined files.
pub fn plan_squash(
    root: &Path,
    dir: &str,
    set: &MigrationSet,
    opts: &SquashOptions<'_>,
) -> Result<SquashPlan, AuthoringError> {
    let (to, range) = squash_range(set, dir, opts.from, opts.to)?;
    let mut warnings = Vec::new();
    let sources = read_parts(root, &range, opts.allow_empty_down, &mut warnings)?;
    let version = squash_version(set, opts.from, to, opts.version)?;
    let (up, down) = combine(&sources);
    let folder = join(dir, &format!("{version}_{}", opts.name));
    let first = range[0].version;
    let sources_dir = join(dir, &format!("squashed_{first}_to_{to}"));
    if root.join(&sources_dir).exists() {
        return Err(AuthoringError::SourcesFolderExists { dir: sources_dir });
    }
    if root.join(&folder).exists() && !range.iter().any(|m| m.location == folder) {
        return Err(AuthoringError::SquashFolderExists { folder });
    }
    Ok(SquashPlan {
        first,
        to,
        version,
        name: opts.name.to_string(),
        folder,
        sources_dir,
        versions: range.iter().map(|m| m.version).collect(),
        warnings,
        database: None,
        up,
        down,
        labels: range.iter().map(|m| (m.version, m.name.clone())).collect(),
        ups: sources
            .iter()
            .map(|s| (s.migration.version, s.up.clone().into_bytes()))
            .collect(),
        sources: sources.into_iter().map(|s| s.migration).collect(),
    })
}

/// Reads what the database has of the range into the plan: all of it applied, or none.
pub fn check_squash_state(
    plan: &mut SquashPlan,
    client: &mut postgres::Client,
    db: &Database<'_>,
) -> Result<(), AuthoringError> {
    let applied = read_applied(client, db)?;
    let all_applied = squash_state(&applied, &plan.labels, &plan.ups)?;
    plan.database = Some(SquashState {
        target: applied.db,
        all_applied,
    });
    Ok(())
}

/// Carries out a squash: moves (or deletes) the sources, writes the squashed migration and,
/// when the database has the range applied, records it there in place of the range. A failure
/// before the end undoes the file changes.
pub fn apply_squash(
    plan: &SquashPlan,
    root: &Path,
    delete_source: bool,
    db: Option<(&mut postgres::Client, &Database<'_>)>,
) -> Result<SquashReport, AuthoringError> {
    // Files: new folder, sources moved aside (undone if the database step fails).
    let mut undo = Undo::default();
    // Move first: the new folder may reuse --to's version (and even its folder name).
    if let Err(e) = move_sources(plan, root, &mut undo) {
        undo.rollback();
        return Err(e);
    }
    if let Err(e) = write_migration(root, &plan.folder, plan.up.as_bytes(), plan.down.as_bytes()) {
        undo.rollback();
        return Err(e);
    }
    undo.created.push(root.join(&plan.folder));

    let mut report = SquashReport {
        recorded: false,
        deployment_id: None,
        warnings: Vec::new(),
    };
    let all_applied = plan.database.as_ref().is_some_and(|s| s.all_applied);
    if let (Some((client, db)), true) = (db, all_applied) {
        match record_squash(plan, client, db) {
            Ok(id) => {
                report.recorded = true;
                report.deployment_id = id;
            }
            Err(e) => {
                undo.rollback();
                return Err(e);
            }
        }
    }
    if delete_source {
        if let Err(e) = std::fs::remove_dir_all(root.join(&plan.sources_dir)) {
            report.warnings.push(format!(
                "could not delete {}/ ({e}); delete it by hand",
                plan.sources_dir
            ));
        }
    }
    Ok(report)
}

fn move_sources(plan: &SquashPlan, root: &Path, undo: &mut Undo) -> Result<(), AuthoringError> {
    let target = root.join(&plan.sources_dir);
    std::fs::create_dir(&target).map_err(super::io_error(format!(
        "cannot create {}/",
        plan.sources_dir
    )))?;
    undo.created.push(target.clone());
    for m in &plan.sources {
        for p in migration_paths(m) {
            let from = root.join(&p);
            let name = Path::new(&p).file_name().unwrap_or_default();
            let to = target.join(name);
            std::fs::rename(&from, &to).map_err(super::io_error(format!("cannot move {p}")))?;
            undo.moved.push((from, to));
        }
    }
    Ok(())
}

/// Records the squash in a database that has the whole range applied, under the deploy lock.
fn record_squash(
    plan: &SquashPlan,
    client: &mut postgres::Client,
    db: &Database<'_>,
) -> Result<Option<i64>, AuthoringError> {
    with_lock(client, db.ledger, |tx| {
        let applied = read_applied(tx, db)?;
        if !squash_state(&applied, &plan.labels, &plan.ups)? {
            return Err(AuthoringError::ChangedMeanwhile {
                db: db.name.clone(),
            });
        }
        let new = NewRow {
            version: plan.version,
            name: plan.name.clone(),
            up: plan.up.clone().into_bytes(),
            down: plan.down.clone().into_bytes(),
        };
        let (first, to, version) = (plan.first, plan.to, plan.version);
        let change = StateChange {
            remove: &plan.versions,
            add: Some(&new),
            target_ref: &format!("squash {first}..{to} into {version}"),
            plan: serde_json::json!({"squash": {"from": plan.versions, "into": version, "executed": false}}),
        };
        write_state(tx, db, &applied, change)
    })
}

/// `squash --state-only`, planned: the squashed migration read from the working tree.
pub struct StateOnlyPlan {
    /// The squashed migration (`<version>_<name>`).
    pub label: String,
    /// Its version.
    pub version: Version,
    /// The versions it replaces, as its `-- from` lines name them.
    pub versions: Vec<Version>,
    name: String,
    up: String,
    down: String,
    labels: Vec<(Version, String)>,
    range: RangeInclusive<Version>,
}

/// What `squash --state-only` found or did.
pub enum StateOnlyOutcome {
    /// The database already records the squash.
    AlreadyDone,
    /// The database has none of the versions applied.
    NothingApplied,
    /// Recorded, by this `repair` deployment.
    Recorded(Option<i64>),
}

/// Plans `squash --state-only`: the squashed migration is already in the working tree
/// (committed, pulled); it is recorded in place of the versions its `-- from` lines name.
pub fn plan_squash_state_only(
    root: &Path,
    set: &MigrationSet,
    version: Version,
    from: Version,
    to: Option<Version>,
) -> Result<StateOnlyPlan, AuthoringError> {
    let Some(m) = set.get(version) else {
        return Err(AuthoringError::NoSquashedMigration { version });
    };
    let up_file = m.up.as_ref().expect("migrations in a set have an up.sql");
    let up = read_text(root, &up_file.path)?;
    let down = match &m.down {
        Some(d) => read_text(root, &d.path)?,
        None => String::new(),
    };
    let range = from..=to.unwrap_or(Version::MAX);
    let labels = squashed_labels(&up);
    if labels.is_empty() || labels.iter().any(|(v, _)| !range.contains(v)) {
        return Err(AuthoringError::NotASquash {
            label: m.label(),
            from,
            to,
        });
    }
    Ok(StateOnlyPlan {
        label: m.label(),
        version,
        versions: labels.iter().map(|(v, _)| *v).collect(),
        name: m.name.clone(),
        up,
        down,
        labels,
        range,
    })
}

/// Records a `--state-only` squash in the database, under the deploy lock.
pub fn apply_squash_state_only(
    plan: &StateOnlyPlan,
    client: &mut postgres::Client,
    db: &Database<'_>,
) -> Result<StateOnlyOutcome, AuthoringError> {
    let (version, versions) = (plan.version, &plan.versions);
    with_lock(client, db.ledger, |tx| {
        let applied = read_applied(tx, db)?;
        let present: Vec<Version> = versions
            .iter()
            .copied()
            .filter(|v| applied.has(*v))
            .collect();
        // The squashed migration may keep the version of the last one it replaces (newer
        // migrations followed the range); then that row is rewritten.
        let reused = versions.contains(&version);
        let already =
            if reused {
                present == [version]
                    && applied.state.live.applied.get(&version).is_none_or(|a| {
                        a.up_sha256 == crate::checksum::sha256_hex(plan.up.as_bytes())
                    })
            } else {
                applied.has(version) && present.is_empty()
            };
        if already {
            return Ok(StateOnlyOutcome::AlreadyDone);
        }
        if applied.has(version) && !reused {
            return Err(AuthoringError::StillApplied {
                db: db.name.clone(),
                version,
                present,
            });
        }
        if present.is_empty() {
            return Ok(StateOnlyOutcome::NothingApplied);
        }
        // Applied versions of the range that the squashed file does not hold would be lost.
        let extra: Vec<Version> = applied
            .versions()
            .into_iter()
            .filter(|v| plan.range.contains(v) && !versions.contains(v))
            .collect();
        if !extra.is_empty() {
            return Err(AuthoringError::ExtraApplied {
                db: db.name.clone(),
                label: plan.label.clone(),
                extra,
            });
        }
        // All applied (or refused as out of sync / dirty), under the same names.
        squash_state(&applied, &plan.labels, &BTreeMap::new())?;
        let renamed: Vec<(Version, String, String)> = plan
            .labels
            .iter()
            .filter_map(|(v, n)| {
                let a = applied.state.live.applied.get(v)?;
                (a.name != *n).then(|| (*v, a.name.clone(), n.clone()))
            })
            .collect();
        if !renamed.is_empty() {
            return Err(AuthoringError::Renamed {
                db: db.name.clone(),
                renamed,
            });
        }
        let new = NewRow {
            version,
            name: plan.name.clone(),
            up: plan.up.as_bytes().to_vec(),
            down: plan.down.as_bytes().to_vec(),
        };
        let (first, last) = (versions[0], versions[versions.len() - 1]);
        let change = StateChange {
            remove: versions,
            add: Some(&new),
            target_ref: &format!("squash {first}..{last} into {version} (--state-only)"),
            plan: serde_json::json!({"squash": {"from": versions, "into": version, "executed": false}}),
        };
        write_state(tx, db, &applied, change).map(StateOnlyOutcome::Recorded)
    })
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
    fn trailer_lists_the_versions() {
        assert_eq!(trailer(&[1, 2]), "Migration-Allow: edited-migration 1 2");
    }

    /// A working tree with migrations `(version, name, up, down)` under `m/`.
    fn tree(specs: &[(Version, &str, &str, Option<&str>)]) -> (tempfile::TempDir, MigrationSet) {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        for (v, name, up, down) in specs {
            let location = format!("m/{v}_{name}");
            std::fs::create_dir_all(dir.path().join(&location)).unwrap();
            let file = |which: &str, text: &str| {
                let path = format!("{location}/{which}");
                std::fs::write(dir.path().join(&path), text).unwrap();
                crate::project::MigrationFile {
                    path,
                    blob: String::new(),
                }
            };
            out.push(Migration {
                version: *v,
                name: name.to_string(),
                tree: None,
                resolved: true,
                up: Some(file("up.sql", up)),
                down: down.map(|d| file("down.sql", d)),
                location,
            });
        }
        (dir, MigrationSet::new(out).unwrap())
    }

    fn opts(from: Version, to: Option<Version>) -> SquashOptions<'static> {
        SquashOptions {
            from,
            to,
            name: "squashed",
            version: None,
            allow_empty_down: false,
        }
    }

    #[test]
    fn a_range_followed_by_newer_migrations_keeps_its_last_version() {
        let (dir, set) = tree(&[
            (1, "a", "create table a ();", Some("drop table a;")),
            (2, "b", "create table b ();", Some("drop table b;")),
            (3, "c", "create table c ();", Some("drop table c;")),
        ]);
        let plan = plan_squash(dir.path(), "m", &set, &opts(1, Some(2))).unwrap();
        assert_eq!(plan.version, 2);
        assert_eq!(plan.versions, vec![1, 2]);
        assert_eq!(plan.folder, "m/2_squashed");
        assert_eq!(plan.sources_dir, "m/squashed_1_to_2");
        assert!(plan.warnings.is_empty());
        // At the end of the history: a new version above the last.
        let plan = plan_squash(dir.path(), "m", &set, &opts(2, None)).unwrap();
        assert!(plan.version > 3);
        // Nothing was written by planning.
        assert!(!dir.path().join("m/squashed_2_to_3").exists());
    }

    #[test]
    fn a_plan_refuses_bad_ranges_and_missing_downs() {
        let (dir, set) = tree(&[
            (1, "a", "create table a ();", Some("drop table a;")),
            (2, "b", "create table b ();", None),
            (3, "c", "create table c ();", Some("drop table c;")),
        ]);
        let plan = |o: &SquashOptions<'_>| plan_squash(dir.path(), "m", &set, o).err();
        assert!(matches!(
            plan(&opts(4, None)),
            Some(AuthoringError::NoSuchMigration {
                flag: "--from",
                span: Some((1, 3)),
                ..
            })
        ));
        assert!(matches!(
            plan(&opts(3, Some(1))),
            Some(AuthoringError::ToBelowFrom { from: 3, to: 1 })
        ));
        assert!(matches!(
            plan(&opts(3, None)),
            Some(AuthoringError::NothingToSquash { .. })
        ));
        match plan(&opts(1, Some(2))) {
            Some(AuthoringError::NoDown { labels }) => assert_eq!(labels, vec!["2_b"]),
            _ => panic!("expected NoDown"),
        }
        let o = SquashOptions {
            allow_empty_down: true,
            version: Some(3),
            ..opts(1, Some(2))
        };
        assert!(matches!(
            plan(&o),
            Some(AuthoringError::SquashVersionTaken { version: 3, .. })
        ));
        let o = SquashOptions {
            allow_empty_down: true,
            ..opts(1, Some(2))
        };
        let ok = plan_squash(dir.path(), "m", &set, &o).unwrap();
        assert_eq!(ok.warnings.len(), 1, "{:?}", ok.warnings);
    }

    #[test]
    fn state_only_needs_a_squash_of_the_range() {
        let (dir, set) = tree(&[
            (1, "a", "create table a ();", Some("drop table a;")),
            (5, "s", "-- from 2_b\nx;\n-- from 3_c\ny;\n", Some("")),
        ]);
        let plan = plan_squash_state_only(dir.path(), &set, 5, 2, None).unwrap();
        assert_eq!(plan.versions, vec![2, 3]);
        assert_eq!(plan.label, "5_s");
        assert!(matches!(
            plan_squash_state_only(dir.path(), &set, 5, 3, None),
            Err(AuthoringError::NotASquash { .. })
        ));
        assert!(matches!(
            plan_squash_state_only(dir.path(), &set, 1, 0, None),
            Err(AuthoringError::NotASquash { .. })
        ));
        assert!(matches!(
            plan_squash_state_only(dir.path(), &set, 6, 0, None),
            Err(AuthoringError::NoSquashedMigration { version: 6 })
        ));
    }

    #[test]
    fn applying_moves_the_sources_and_writes_the_squash() {
        let (dir, set) = tree(&[
            (1, "a", "create table a ();", Some("drop table a;")),
            (2, "b", "create table b ();", Some("drop table b;")),
        ]);
        let plan = plan_squash(dir.path(), "m", &set, &opts(1, None)).unwrap();
        let report = apply_squash(&plan, dir.path(), false, None).unwrap();
        assert!(!report.recorded);
        assert!(dir.path().join("m/squashed_1_to_2/1_a/up.sql").exists());
        assert!(!dir.path().join("m/1_a").exists());
        let up = std::fs::read_to_string(dir.path().join(&plan.folder).join("up.sql")).unwrap();
        assert_eq!(squashed_labels(&up), vec![(1, "a".into()), (2, "b".into())]);
    }
}
