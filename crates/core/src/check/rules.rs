//! The rules themselves: a pure function from the facts the edge read (the migrations folder at
//! the base and at the tip, and the files of the entries that changed) to findings.

use super::{Finding, Rule};
use crate::project::join_path as join;
use crate::project::sql::{is_effectively_empty, split_statements};
use crate::project::txcontrol::{verdict, Verdict, HINT as TX_HINT};
use crate::project::{MigrationEntryKind, Version};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::project::txcontrol::NO_TRANSACTION_MARKER;

/// One entry of the migrations folder at one side: kind and object id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EntryFact {
    /// Folder, file or other (symlink, submodule).
    pub kind: MigrationEntryKind,
    /// Tree or blob id.
    pub id: String,
}

/// One file inside a migration folder (or a flat migration file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileFact {
    /// Regular file or not.
    pub kind: MigrationEntryKind,
    /// Blob id.
    pub id: String,
}

/// The content of a blob the rules needed, as the edge read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Text {
    /// UTF-8 text.
    Utf8(String),
    /// Not UTF-8 (or binary).
    NotUtf8,
}

/// Everything the rules look at.
#[derive(Clone, Debug, Default)]
pub(crate) struct CheckInput {
    /// The migrations folder at the tip, relative to the repository root.
    pub migrations_dir: String,
    /// Entries of the migrations folder at the base (empty when there is no base).
    pub base: BTreeMap<String, EntryFact>,
    /// Entries at the tip.
    pub tip: BTreeMap<String, EntryFact>,
    /// Files of folders at the base whose id differs at the tip (by folder name).
    pub base_files: BTreeMap<String, BTreeMap<String, FileFact>>,
    /// Files of folders at the tip that are new or changed (by folder name).
    pub tip_files: BTreeMap<String, BTreeMap<String, FileFact>>,
    /// Contents of the SQL blobs of new or changed migrations, by blob id.
    pub texts: BTreeMap<String, Text>,
    /// The migration linter's settings (`None`: not linted).
    pub lint: Option<crate::lint::LintConfig>,
}

/// A migration as the rules see it: a folder, or a pair of flat files sharing a stem.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Unit {
    /// Folder name or flat stem.
    name: String,
    /// Path for messages.
    location: String,
    /// The version, if the name starts with one that fits.
    version: Option<Version>,
    /// `up.sql` / `down.sql` (and anything else in a folder) → file.
    files: BTreeMap<String, FileFact>,
    /// Content identity: the tree id, or the flat files' blob ids.
    id: String,
}

/// Which blobs the rules will want to read, given the listings: the up and down files of
/// every new or changed unit at the tip. The edge reads exactly these.
pub(crate) fn blobs_needed(input: &CheckInput) -> BTreeSet<String> {
    let touched = Touched::new(input);
    let mut out = BTreeSet::new();
    for (_, u, before) in touched.changed() {
        for f in ["up.sql", "down.sql"] {
            out.extend(regular(u, f).map(|ff| ff.id.clone()));
        }
        // The down before the change: was it empty (then a new one is a fix, not an edit)?
        if let Some(ff) = before.and_then(|b| b.files.get("down.sql")) {
            out.insert(ff.id.clone());
        }
    }
    out
}

/// Names of tip folders whose files the rules need (new or changed folders), and of base
/// folders to compare them with.
pub(crate) fn folders_needed(input: &CheckInput) -> (Vec<String>, Vec<String>) {
    let mut tip = Vec::new();
    let mut base = Vec::new();
    for (name, b, t) in differing(input) {
        let is_dir = |e: Option<&EntryFact>| e.is_some_and(|e| e.kind == MigrationEntryKind::Dir);
        if is_dir(t) {
            tip.push(name.to_string());
        }
        if is_dir(b) {
            base.push(name.to_string());
        }
    }
    (tip, base)
}

/// The entries that differ between base and tip, found by walking both sorted listings once
/// (no lookups): `(name, at base, at tip)`.
fn differing(input: &CheckInput) -> Vec<(&str, Option<&EntryFact>, Option<&EntryFact>)> {
    let mut out = Vec::new();
    let mut b = input.base.iter().peekable();
    let mut t = input.tip.iter().peekable();
    loop {
        match (b.peek(), t.peek()) {
            (None, None) => break,
            (Some((bn, be)), Some((tn, te))) if bn == tn => {
                if be != te {
                    out.push((bn.as_str(), Some(*be), Some(*te)));
                }
                b.next();
                t.next();
            }
            (Some((bn, be)), Some((tn, _))) if bn < tn => {
                out.push((bn.as_str(), Some(*be), None));
                b.next();
            }
            (Some((bn, be)), None) => {
                out.push((bn.as_str(), Some(*be), None));
                b.next();
            }
            (_, Some((tn, te))) => {
                out.push((tn.as_str(), None, Some(*te)));
                t.next();
            }
        }
    }
    out
}

/// `<digits>_<rest>` → (digits, rest); `None` when the name does not start with digits and `_`.
fn split_name(name: &str) -> Option<(&str, &str)> {
    let (digits, rest) = name.split_once('_')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some((digits, rest))
}

/// The unit an entry belongs to: a folder is its own unit; flat `<v>_<name>.up.sql` and
/// `.down.sql` files share the unit `<v>_<name>.*.sql`. Other files belong to none.
fn unit_key(name: &str, kind: MigrationEntryKind) -> Option<std::borrow::Cow<'_, str>> {
    match kind {
        MigrationEntryKind::Dir => Some(name.into()),
        MigrationEntryKind::File => {
            let stem = name
                .strip_suffix(".up.sql")
                .or_else(|| name.strip_suffix(".down.sql"))?;
            split_name(stem)?;
            Some(format!("{stem}.*.sql").into())
        }
        MigrationEntryKind::Other => None,
    }
}

/// Units touched by the change: new, changed or vanished entries.
fn changed_keys(input: &CheckInput) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (name, b, t) in differing(input) {
        if let Some(e) = t.or(b) {
            keys.extend(unit_key(name, e.kind).map(|k| k.into_owned()));
        }
        if let (Some(b), Some(t)) = (b, t) {
            if b.kind != t.kind {
                keys.extend(unit_key(name, b.kind).map(|k| k.into_owned()));
            }
        }
    }
    keys
}

/// The version a unit's name (a folder name or a flat stem) starts with, if it fits.
fn name_version(name: &str) -> Option<Version> {
    split_name(name).and_then(|(d, _)| d.parse().ok())
}

/// Every unit's version in a listing, sorted: `(version, unit key)`.
type VersionIndex<'a> = Vec<(Version, std::borrow::Cow<'a, str>)>;

/// Every unit's version in a listing, without reading anything: `(version, unit key)`.
fn version_index(entries: &BTreeMap<String, EntryFact>) -> VersionIndex<'_> {
    let mut out: VersionIndex<'_> = entries
        .iter()
        .filter_map(|(name, e)| {
            let key = unit_key(name, e.kind)?;
            let v = name_version(&key)?;
            Some((v, key))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a version index holds a version.
fn has_version(index: &[(Version, std::borrow::Cow<'_, str>)], v: Version) -> bool {
    index.binary_search_by(|(x, _)| x.cmp(&v)).is_ok()
}

/// Builds the units named by `keys` from a listing: folders as they are, flat files by stem.
fn units(
    dir: &str,
    entries: &BTreeMap<String, EntryFact>,
    files: &BTreeMap<String, BTreeMap<String, FileFact>>,
    keys: &BTreeSet<String>,
) -> BTreeMap<String, Unit> {
    let mut out: BTreeMap<String, Unit> = BTreeMap::new();
    for key in keys {
        if let Some(stem) = key.strip_suffix(".*.sql") {
            let mut unit_files = BTreeMap::new();
            for which in ["up.sql", "down.sql"] {
                let name = format!("{stem}.{which}");
                if let Some(e) = entries
                    .get(&name)
                    .filter(|e| e.kind == MigrationEntryKind::File)
                {
                    unit_files.insert(
                        which.to_string(),
                        FileFact {
                            kind: MigrationEntryKind::File,
                            id: e.id.clone(),
                        },
                    );
                }
            }
            if unit_files.is_empty() {
                continue;
            }
            let id = unit_files
                .values()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>()
                .join("+");
            out.insert(
                key.clone(),
                Unit {
                    name: key.clone(),
                    location: join(dir, &format!("{stem}.{{up,down}}.sql")),
                    version: name_version(stem),
                    files: unit_files,
                    id,
                },
            );
        } else if let Some(e) = entries
            .get(key)
            .filter(|e| e.kind == MigrationEntryKind::Dir)
        {
            out.insert(
                key.clone(),
                Unit {
                    name: key.clone(),
                    location: join(dir, key),
                    version: name_version(key),
                    files: files.get(key).cloned().unwrap_or_default(),
                    id: e.id.clone(),
                },
            );
        }
    }
    out
}

/// Where a unit key points, for messages.
fn key_location(dir: &str, key: &str) -> String {
    match key.strip_suffix(".*.sql") {
        Some(stem) => join(dir, &format!("{stem}.{{up,down}}.sql")),
        None => join(dir, key),
    }
}

fn text<'a>(input: &'a CheckInput, f: Option<&FileFact>) -> Option<&'a Text> {
    f.and_then(|f| input.texts.get(&f.id))
}

/// Whether a file was read and holds only whitespace and comments.
fn is_empty_sql(input: &CheckInput, f: Option<&FileFact>) -> bool {
    matches!(text(input, f), Some(Text::Utf8(t)) if is_effectively_empty(t))
}

/// A file of a unit, when it is a regular file (a symbolic link or submodule is never read).
fn regular<'u>(u: &'u Unit, file: &str) -> Option<&'u FileFact> {
    u.files
        .get(file)
        .filter(|f| f.kind == MigrationEntryKind::File)
}

fn finding(
    rule: Rule,
    path: String,
    version: Option<Version>,
    message: String,
    hint: String,
) -> Finding {
    Finding {
        rule,
        commit: None,
        path,
        version,
        message,
        hint,
        allowed_by: None,
        line: None,
    }
}

fn allow_hint(rule: Rule, key: &str) -> String {
    format!(
        "say so in the commit message with the trailer `Migration-Allow: {} {key}`",
        rule.id()
    )
}

/// `transaction-control`: the statements of one file (not a no-transaction one) that start or
/// end a transaction, one line each as `path:line:column: statement`.
fn transaction_control_finding(
    path: &str,
    file: &str,
    version: Version,
    sql: &str,
) -> Option<Finding> {
    let found = match verdict(sql) {
        Verdict::Clean => return None,
        Verdict::Wrapper(w) => {
            return Some(finding(
                Rule::TransactionWrapper,
                path.to_string(),
                Some(version),
                format!(
                    "{file} of migration {version} is wrapped in one transaction ({}): the wrapper is ignored and the statements run inside the deployment's one transaction",
                    w.describe()
                ),
                "nothing to do: this is a note".into(),
            ))
        }
        Verdict::Refused(found) => found,
    };
    let mut message = format!(
        "{file} of migration {version} starts or ends a transaction itself, which would break the one transaction a deployment runs in (a COMMIT commits what ran before it even when the deployment later fails):"
    );
    for t in &found {
        let statement = t.statement.lines().next().unwrap_or_default();
        let short: String = statement.chars().take(60).collect();
        let more = if short.len() < t.statement.len() {
            " …"
        } else {
            ""
        };
        message.push_str(&format!("\n{path}:{}:{}: {short}{more}", t.line, t.column));
    }
    Some(finding(
        Rule::TransactionControl,
        path.to_string(),
        Some(version),
        message,
        format!(
            "{TX_HINT}; if it is intended, {}",
            allow_hint(Rule::TransactionControl, &version.to_string())
        ),
    ))
}

/// The units the change touched (new, changed or vanished entries), built at both sides.
struct Touched {
    /// Their unit keys.
    keys: BTreeSet<String>,
    /// At the base.
    base: BTreeMap<String, Unit>,
    /// At the tip.
    tip: BTreeMap<String, Unit>,
}

impl Touched {
    fn new(input: &CheckInput) -> Touched {
        let dir = &input.migrations_dir;
        let keys = changed_keys(input);
        // Only the units the change touched are built; versions of the rest come from names.
        let base = units(dir, &input.base, &input.base_files, &keys);
        let tip = units(dir, &input.tip, &input.tip_files, &keys);
        Touched { keys, base, tip }
    }

    /// The units that are new or changed at the tip: `(key, unit, the unit of that key at the
    /// base)`, by key.
    fn changed(&self) -> impl Iterator<Item = (&str, &Unit, Option<&Unit>)> {
        self.tip.iter().filter_map(|(name, u)| {
            let before = self.base.get(name);
            (before.map(|b| &b.id) != Some(&u.id)).then_some((name.as_str(), u, before))
        })
    }
}

/// A new or changed unit at the tip named `<digits>_<rest>`: what `bad-name` looks at.
struct Change<'a> {
    unit: &'a Unit,
    /// The digits its name starts with.
    digits: &'a str,
    /// Its name after `<digits>_`.
    rest: &'a str,
}

/// A new or changed migration at the tip: a unit whose version fits, with an `up.sql`.
struct Migration<'a> {
    unit: &'a Unit,
    version: Version,
    /// Its `up.sql`, a regular file.
    up: &'a FileFact,
    /// Its `down.sql`, when it is a regular file.
    down: Option<&'a FileFact>,
    /// The unit of the same name at the base.
    before: Option<&'a Unit>,
    /// What it was at the base: the unit of the same name, else a unit with its version that is
    /// gone from the tip (a rename); `None` when it is new.
    existed: Option<&'a Unit>,
}

impl<'a> Migration<'a> {
    /// The unit it was at the base, when it was renamed.
    fn renamed_from(&self) -> Option<&'a Unit> {
        self.existed.filter(|b| b.name != self.unit.name)
    }
}

/// One `up.sql` or `down.sql` of a migration, read as UTF-8 text: what the transaction rules
/// look at.
struct SqlFile<'f, 'a> {
    migration: &'f Migration<'a>,
    /// `up.sql` or `down.sql`.
    file: &'static str,
    fact: &'a FileFact,
    text: &'a str,
}

impl SqlFile<'_, '_> {
    /// Whether the file is the same as at the base: then it is not this change's doing.
    fn same_as_base(&self) -> bool {
        self.migration
            .before
            .and_then(|b| b.files.get(self.file))
            .is_some_and(|b| b.id == self.fact.id)
    }
}

/// What the rules share, worked out once per evaluation.
struct Facts<'a> {
    input: &'a CheckInput,
    touched: &'a Touched,
    /// Every unit's version at the base, from names.
    base_index: VersionIndex<'a>,
    /// Every unit's version at the tip, from names.
    tip_index: VersionIndex<'a>,
    /// The new or changed units at the tip named `<digits>_<rest>`, by key.
    changes: Vec<Change<'a>>,
    /// Those of them that are migrations (their version fits and they have an `up.sql`).
    migrations: Vec<Migration<'a>>,
}

impl<'a> Facts<'a> {
    fn new(input: &'a CheckInput, touched: &'a Touched) -> Facts<'a> {
        // Units of the base that are gone from the tip, by version (a rename shows up as one).
        let base_versions: BTreeMap<Version, &Unit> = touched
            .base
            .values()
            .filter(|u| !touched.tip.contains_key(&u.name) && !input.tip.contains_key(&u.name))
            .filter_map(|u| u.version.map(|v| (v, u)))
            .collect();
        let mut changes = Vec::new();
        let mut migrations = Vec::new();
        for (name, unit, before) in touched.changed() {
            let Some((digits, rest)) = split_name(name.trim_end_matches(".*.sql")) else {
                continue;
            };
            changes.push(Change { unit, digits, rest });
            let (Some(version), Some(up)) = (unit.version, regular(unit, "up.sql")) else {
                continue;
            };
            // Edited, renamed or new?
            let existed = before.or_else(|| base_versions.get(&version).copied());
            migrations.push(Migration {
                unit,
                version,
                up,
                down: regular(unit, "down.sql"),
                before,
                existed,
            });
        }
        Facts {
            input,
            touched,
            base_index: version_index(&input.base),
            tip_index: version_index(&input.tip),
            changes,
            migrations,
        }
    }

    /// The migrations that did not exist at the base under any name.
    fn new_migrations(&self) -> impl Iterator<Item = &Migration<'a>> {
        self.migrations.iter().filter(|m| m.existed.is_none())
    }

    /// The `up.sql` and `down.sql` of the new or changed migrations that were not renamed (a
    /// rename is reported as such, and its files are not looked at again), when they are UTF-8
    /// text.
    fn sql_files(&self) -> impl Iterator<Item = SqlFile<'_, 'a>> {
        self.migrations
            .iter()
            .filter(|m| m.renamed_from().is_none())
            .flat_map(move |m| {
                [("up.sql", Some(m.up)), ("down.sql", m.down)]
                    .into_iter()
                    .filter_map(move |(file, fact)| {
                        let fact = fact?;
                        let Some(Text::Utf8(text)) = self.input.texts.get(&fact.id) else {
                            return None;
                        };
                        Some(SqlFile {
                            migration: m,
                            file,
                            fact,
                            text,
                        })
                    })
            })
    }
}

/// Runs every rule. Findings come in a stable order (by path, then rule).
pub(crate) fn evaluate(input: &CheckInput) -> Vec<Finding> {
    let touched = Touched::new(input);
    let facts = Facts::new(input, &touched);
    let mut out = Vec::new();
    // The sort below is stable and by path and rule, so what decides the order of the findings
    // is the order in which each rule reports its own, not the order of these calls (save
    // between the two that report `edited-migration`).
    bad_name(&facts, &mut out);
    edited_migration(&facts, &mut out);
    out_of_order(&facts, &mut out);
    missing_down(&facts, &mut out);
    transaction_control(&facts, &mut out);
    no_transaction_mixed(&facts, &mut out);
    deleted_migration(&facts, &mut out);
    duplicate_version(&facts, &mut out);
    lint(&facts, &mut out);
    out.sort_by(|a, b| (&a.path, a.rule).cmp(&(&b.path, b.rule)));
    out.dedup();
    out
}

/// `bad-name`: something in the migrations folder that would never run. Migrations are read
/// only from regular `<version>_<name>` folders (or flat `<version>_<name>.up.sql` and
/// `.down.sql` files) and, in a folder, only from `up.sql` and `down.sql`: a folder with SQL
/// not named so, a version over the bigint range, an empty or control-character name,
/// `Up.sql`/`down.SQL`/other `.sql` files in a migration, a down without an up, a symbolic link
/// or submodule.
fn bad_name(facts: &Facts, out: &mut Vec<Finding>) {
    // bad-name for entries that are not units at all.
    for (name, _, e) in differing(facts.input) {
        if let Some(e) = e {
            out.extend(bad_entry_name(facts.input, name, e));
        }
    }
    // Units that are new or changed at the tip: naming problems.
    for c in &facts.changes {
        let Some(version) = c.unit.version else {
            out.push(version_too_big(c));
            continue;
        };
        out.extend(bad_migration_name(c, version));
        out.extend(bad_migration_files(c.unit, version));
        out.extend(down_without_up(c.unit, version));
    }
}

/// `bad-name` for an entry of the migrations folder at the tip that is not a migration at all:
/// a folder holding SQL but not named `<version>_<name>`, a `.sql` file that is not a flat
/// `<version>_<name>.up.sql` or `.down.sql`, a symbolic link or submodule named like a
/// migration.
fn bad_entry_name(input: &CheckInput, name: &str, e: &EntryFact) -> Option<Finding> {
    let location = join(&input.migrations_dir, name);
    match e.kind {
        MigrationEntryKind::Dir => {
            let sql_inside = input
                .tip_files
                .get(name)
                .is_some_and(|fs| fs.keys().any(|f| f.to_ascii_lowercase().ends_with(".sql")));
            if split_name(name).is_none() && sql_inside {
                return Some(finding(
                    Rule::BadName,
                    location,
                    None,
                    format!("folder {name:?} holds SQL but is not named <version>_<name>, so it would never run"),
                    "rename it to <version>_<name>, e.g. a millisecond timestamp: 1700000000000_add_orders (git migrate create does this)".into(),
                ));
            }
        }
        MigrationEntryKind::File => {
            let lower = name.to_ascii_lowercase();
            let flat = name.ends_with(".up.sql") || name.ends_with(".down.sql");
            if lower.ends_with(".sql") && !(flat && split_name(name).is_some()) {
                return Some(finding(
                    Rule::BadName,
                    location,
                    None,
                    format!("file {name:?} in the migrations folder is not a migration and would never run"),
                    "put SQL in <version>_<name>/up.sql and down.sql".into(),
                ));
            }
        }
        MigrationEntryKind::Other => {
            if split_name(name).is_some() {
                return Some(finding(
                    Rule::BadName,
                    location,
                    None,
                    format!("{name:?} is a symbolic link or submodule; migrations are read only from regular folders and files"),
                    "commit the migration as a real folder with up.sql and down.sql".into(),
                ));
            }
        }
    }
    None
}

/// `bad-name` for a new or changed unit whose version does not fit the bigint the ledger records
/// versions as.
fn version_too_big(c: &Change) -> Finding {
    let (digits, name) = (c.digits, &c.unit.name);
    finding(
        Rule::BadName,
        c.unit.location.clone(),
        None,
        format!("version {digits} of {name:?} does not fit a bigint (at most 9223372036854775807)"),
        "use a millisecond timestamp as the version, e.g. 1700000000000".into(),
    )
}

/// `bad-name` for a new or changed migration with an empty name after the version, or control
/// characters (such as a newline) in its name.
fn bad_migration_name(c: &Change, version: Version) -> Option<Finding> {
    let rest = c.rest;
    if !rest.is_empty() && !rest.chars().any(char::is_control) {
        return None;
    }
    Some(finding(
        Rule::BadName,
        c.unit.location.clone(),
        Some(version),
        format!(
            "migration {version} has {}",
            if rest.is_empty() {
                "an empty name after the version".to_string()
            } else {
                "control characters (such as a newline) in its name".to_string()
            }
        ),
        "rename it to <version>_<name> with a plain name, e.g. 1700000000000_add_orders".into(),
    ))
}

/// `bad-name` for the files of a new or changed migration that are never run: an `up.sql` or
/// `down.sql` that is a symbolic link or submodule (only regular files are read), and any
/// other `.sql` file (`Up.sql`, `down.SQL`, `x.sql`: only `up.sql` and `down.sql` are read).
fn bad_migration_files(u: &Unit, version: Version) -> Vec<Finding> {
    let loc = &u.location;
    let mut out = Vec::new();
    for (file, f) in &u.files {
        let lower = file.to_ascii_lowercase();
        if (file == "up.sql" || file == "down.sql") && f.kind != MigrationEntryKind::File {
            out.push(finding(
                Rule::BadName,
                join(loc, file),
                Some(version),
                format!("{file} of migration {version} is a symbolic link or submodule; only regular files are read"),
                format!("commit {file} as a regular file"),
            ));
        } else if lower.ends_with(".sql") && file != "up.sql" && file != "down.sql" {
            out.push(finding(
                Rule::BadName,
                join(loc, file),
                Some(version),
                format!("{file:?} in migration {version} is never run: only up.sql and down.sql are read"),
                "rename it to up.sql or down.sql (lower case), or move the SQL into them".into(),
            ));
        }
    }
    out
}

/// `bad-name` for a new or changed migration with a `down.sql` but no `up.sql`: nothing of it
/// would run (often a misspelt or wrongly cased `up.sql`).
fn down_without_up(u: &Unit, version: Version) -> Option<Finding> {
    if regular(u, "up.sql").is_some() || regular(u, "down.sql").is_none() {
        return None;
    }
    Some(finding(
        Rule::BadName,
        u.location.clone(),
        Some(version),
        format!("migration {version} has a down.sql but no up.sql"),
        "add up.sql (or check the file name's spelling and case)".into(),
    ))
}

/// `edited-migration`: a migration that existed at the base was renamed, changed its `up.sql`,
/// or lost or changed its non-empty `down.sql`. It existed before this change and may already
/// be applied, and databases record migrations by version. Adding a down to a migration that
/// had none (or an empty one) is a fix and passes. Deleted migrations: [`deleted_migration`].
fn edited_migration(facts: &Facts, out: &mut Vec<Finding>) {
    for m in &facts.migrations {
        let Some(b) = m.existed else { continue };
        if m.renamed_from().is_some() {
            out.push(renamed(m, b));
            continue;
        }
        out.extend(edited_up(m, b));
        out.extend(edited_down(facts.input, m, b));
    }
}

/// `edited-migration` for a migration that existed at the base as `b` under another name.
fn renamed(m: &Migration, b: &Unit) -> Finding {
    let version = m.version;
    finding(
        Rule::EditedMigration,
        m.unit.location.clone(),
        Some(version),
        format!(
            "migration {version} existed before as {} and was renamed",
            b.location
        ),
        format!(
            "databases record migrations by version; keep the old name, or if the rename is intended, {}",
            allow_hint(Rule::EditedMigration, &version.to_string())
        ),
    )
}

/// `edited-migration` for an `up.sql` that differs from the one at the base `b`.
fn edited_up(m: &Migration, b: &Unit) -> Option<Finding> {
    let version = m.version;
    if b.files.get("up.sql").map(|f| &f.id) == Some(&m.up.id) {
        return None;
    }
    Some(finding(
        Rule::EditedMigration,
        join(&m.unit.location, "up.sql"),
        Some(version),
        format!("up.sql of migration {version} changed, but the migration existed before this change and may already be applied"),
        format!(
            "add a new migration for the change instead; if the edit is intended, {}",
            allow_hint(Rule::EditedMigration, &version.to_string())
        ),
    ))
}

/// `edited-migration` for a `down.sql` that was not empty at the base `b` and changed, was
/// emptied or was deleted.
fn edited_down(input: &CheckInput, m: &Migration, b: &Unit) -> Option<Finding> {
    let version = m.version;
    let b_down = b.files.get("down.sql");
    match (b_down, m.down) {
        (Some(bd), Some(d)) if bd.id != d.id && !is_empty_sql(input, b_down) => Some(finding(
            Rule::EditedMigration,
            join(&m.unit.location, "down.sql"),
            Some(version),
            if is_empty_sql(input, Some(d)) {
                format!("down.sql of migration {version} was emptied; the migration existed before this change")
            } else {
                format!("down.sql of migration {version} changed; the migration existed before this change")
            },
            format!(
                "if you are fixing a down that did not work, {}",
                allow_hint(Rule::EditedMigration, &version.to_string())
            ),
        )),
        (Some(_), None) => Some(finding(
            Rule::EditedMigration,
            join(&m.unit.location, "down.sql"),
            Some(version),
            format!("down.sql of migration {version} was deleted; the migration existed before this change"),
            format!(
                "restore it so the migration can be rolled back, or if that is intended, {}",
                allow_hint(Rule::EditedMigration, &version.to_string())
            ),
        )),
        _ => None,
    }
}

/// `out-of-order`: a new version not above the highest version at the base (typically a
/// merged branch that was created before newer migrations landed). A version the base already
/// has is `duplicate-version`'s to report.
fn out_of_order(facts: &Facts, out: &mut Vec<Finding>) {
    let base_max = facts.base_index.last().map(|(v, _)| *v);
    for m in facts.new_migrations() {
        let version = m.version;
        let version_taken = has_version(&facts.base_index, version);
        if let Some(max) = base_max.filter(|m| version <= *m && !version_taken) {
            out.push(finding(
                Rule::OutOfOrder,
                m.unit.location.clone(),
                Some(version),
                format!("new migration {version} is not above the highest version already there ({max})"),
                format!(
                    "give it a newer version (rename the folder to a current timestamp), or if the order is intended, {}",
                    allow_hint(Rule::OutOfOrder, &version.to_string())
                ),
            ));
        }
    }
}

/// `missing-down`: a new migration without a `down.sql`, or with one holding only whitespace
/// and comments, so it cannot be rolled back. (A project that rolls forward only turns the rule
/// off with `policy: {require_down: false}`; the command line drops these findings then.)
fn missing_down(facts: &Facts, out: &mut Vec<Finding>) {
    for m in facts.new_migrations() {
        let (version, loc) = (m.version, &m.unit.location);
        let what = match m.down {
            None => "has no down.sql",
            Some(_) if is_empty_sql(facts.input, m.down) => {
                "has an empty down.sql (only whitespace and comments)"
            }
            Some(_) => continue,
        };
        out.push(finding(
            Rule::MissingDown,
            m.down
                .map(|_| join(loc, "down.sql"))
                .unwrap_or_else(|| loc.clone()),
            Some(version),
            format!("new migration {version} {what}, so it cannot be rolled back"),
            format!(
                "write down.sql that undoes up.sql; if it truly cannot be undone, {}",
                allow_hint(Rule::MissingDown, &version.to_string())
            ),
        ));
    }
}

/// `transaction-control`: a new or changed `up.sql` or `down.sql` that starts or ends a
/// transaction itself (`BEGIN`, `COMMIT`, …). A deployment runs every migration in one
/// transaction, so a `COMMIT` half-way through commits everything before it even when the
/// deployment then fails. No-transaction migrations are exempt, and a file that is the same as
/// at the base is not this change's doing. A single `BEGIN … COMMIT` around the whole file is
/// only a `transaction-wrapper` note (see [`transaction_control_finding`]).
fn transaction_control(facts: &Facts, out: &mut Vec<Finding>) {
    for s in facts.sql_files() {
        let m = s.migration;
        if !crate::project::txcontrol::is_no_transaction(s.text) && !s.same_as_base() {
            out.extend(transaction_control_finding(
                &join(&m.unit.location, s.file),
                s.file,
                m.version,
                s.text,
            ));
        }
    }
}

/// The migration linter ([`crate::lint`]) over each new or changed `up.sql` and `down.sql`
/// (a file that is the same as at the base is not this change's doing): squawk's rules on its
/// runnable text, and `down-drops-data` on a down against its up.
fn lint(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(config) = facts.input.lint.as_ref().filter(|c| c.enabled) else {
        return;
    };
    for s in facts.sql_files() {
        let m = s.migration;
        if s.same_as_base() {
            continue;
        }
        let path = join(&m.unit.location, s.file);
        let runnable = crate::source::StepSql::new(s.text.to_string(), path.clone()).text;
        let no_tx = crate::project::txcontrol::is_no_transaction(s.text);
        let file = if s.file == "down.sql" {
            crate::lint::File::Down
        } else {
            crate::lint::File::Up
        };
        let mut found = crate::lint::lint_sql(&runnable, file, no_tx, config);
        if s.file == "down.sql" {
            if let Some(Text::Utf8(up)) = facts.input.texts.get(&m.up.id) {
                found.extend(crate::lint::down_drops_data(up, s.text, config));
            }
        }
        out.extend(found.into_iter().map(|f| lint_finding(&path, m.version, f)));
    }
}

/// What the new or changed `up.sql` files drop or rename (for `up-drops-tracked`, which the
/// edge applies once it has the metadata): `(path, version, dropped)`.
pub(crate) fn up_drops(input: &CheckInput) -> Vec<(String, Version, crate::lint::Dropped)> {
    if input
        .lint
        .as_ref()
        .is_none_or(|c| c.severity(crate::lint::UP_DROPS_TRACKED) == crate::lint::Severity::Off)
    {
        return vec![];
    }
    let touched = Touched::new(input);
    let facts = Facts::new(input, &touched);
    let mut out = Vec::new();
    for s in facts.sql_files().filter(|s| s.file == "up.sql") {
        let m = s.migration;
        if s.same_as_base() {
            continue;
        }
        let path = join(&m.unit.location, s.file);
        out.extend(
            crate::lint::dropped_objects(s.text)
                .into_iter()
                .map(|d| (path.clone(), m.version, d)),
        );
    }
    out
}

/// A lint finding as a check finding.
pub(crate) fn lint_finding(path: &str, version: Version, f: crate::lint::LintFinding) -> Finding {
    let rule = Rule::Lint {
        id: f.rule,
        warning: f.severity == crate::lint::Severity::Warning,
    };
    let hint = match &f.help {
        Some(h) => format!("{h} (or {})", allow_hint(rule, &version.to_string())),
        None => allow_hint(rule, &version.to_string()),
    };
    Finding {
        line: Some(f.line),
        ..finding(rule, path.to_string(), Some(version), f.message, hint)
    }
}

/// `no-transaction-mixed`: a new or changed `up.sql` or `down.sql` whose first line is
/// `-- git-migrate:no-transaction` and that has more than one statement. It runs outside a
/// transaction, so a failure half-way would leave it half applied.
fn no_transaction_mixed(facts: &Facts, out: &mut Vec<Finding>) {
    for s in facts.sql_files() {
        if !crate::project::txcontrol::is_no_transaction(s.text) {
            continue;
        }
        let (file, version) = (s.file, s.migration.version);
        let n = split_statements(s.text).len();
        if n > 1 {
            out.push(finding(
                Rule::NoTransactionMixed,
                join(&s.migration.unit.location, file),
                Some(version),
                format!("{file} of migration {version} runs outside a transaction ({NO_TRANSACTION_MARKER}) but has {n} statements; a failure half-way would leave it half applied"),
                "put each statement that must run outside a transaction (e.g. CREATE INDEX CONCURRENTLY) in a migration of its own, and keep the rest transactional".into(),
            ));
        }
    }
}

/// `edited-migration` for a migration of the base that was deleted: it existed before this
/// change and may already be applied. A rename is reported as one ([`edited_migration`]), and
/// a version that is still at the tip under another name is not a deletion.
fn deleted_migration(facts: &Facts, out: &mut Vec<Finding>) {
    let renamed_from: BTreeSet<&str> = facts
        .migrations
        .iter()
        .filter_map(|m| m.renamed_from())
        .map(|b| b.name.as_str())
        .collect();
    // Units that vanished.
    for (name, b) in &facts.touched.base {
        if facts.touched.tip.contains_key(name) || renamed_from.contains(name.as_str()) {
            continue;
        }
        let Some(version) = b.version else { continue };
        if has_version(&facts.tip_index, version) {
            continue;
        }
        out.push(finding(
            Rule::EditedMigration,
            b.location.clone(),
            Some(version),
            format!("migration {version} was deleted, but it existed before this change and may already be applied"),
            format!(
                "keep it (add a new migration that reverts it instead); after a squash, {}",
                allow_hint(Rule::EditedMigration, &version.to_string())
            ),
        ));
    }
}

/// `duplicate-version`: two migrations use one version and one of them is new or changed
/// (databases record migrations by version). Reported once per version, at the first new or
/// changed one.
fn duplicate_version(facts: &Facts, out: &mut Vec<Finding>) {
    let (dir, keys) = (&facts.input.migrations_dir, &facts.touched.keys);
    // duplicate-version among units, when one of them is new or changed.
    for group in facts.tip_index.chunk_by(|a, b| a.0 == b.0) {
        if group.len() < 2 || !group.iter().any(|(_, k)| keys.contains(k.as_ref())) {
            continue;
        }
        let v = group[0].0;
        let names: Vec<String> = group.iter().map(|(_, k)| key_location(dir, k)).collect();
        let first_changed = group
            .iter()
            .find(|(_, k)| keys.contains(k.as_ref()))
            .map(|(_, k)| key_location(dir, k))
            .unwrap_or_default();
        out.push(finding(
            Rule::DuplicateVersion,
            first_changed,
            Some(v),
            format!(
                "version {v} is used by {} migrations: {}",
                group.len(),
                names.join(", ")
            ),
            "give the newer one a newer version (rename its folder)".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(id: &str) -> EntryFact {
        EntryFact {
            kind: MigrationEntryKind::Dir,
            id: id.into(),
        }
    }

    fn file(id: &str) -> FileFact {
        FileFact {
            kind: MigrationEntryKind::File,
            id: id.into(),
        }
    }

    /// One folder of a side: (name, tree id, [(file, blob)]).
    type Folder = (
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
    );

    /// A side: its folders.
    struct Side(Vec<Folder>);

    fn input(base: Side, tip: Side, texts: &[(&str, &str)]) -> CheckInput {
        let mut i = CheckInput {
            migrations_dir: "migrations".into(),
            ..Default::default()
        };
        for (name, id, files) in base.0 {
            i.base.insert(name.into(), dir(id));
            i.base_files.insert(
                name.into(),
                files
                    .into_iter()
                    .map(|(f, b)| (f.to_string(), file(b)))
                    .collect(),
            );
        }
        for (name, id, files) in tip.0 {
            i.tip.insert(name.into(), dir(id));
            i.tip_files.insert(
                name.into(),
                files
                    .into_iter()
                    .map(|(f, b)| (f.to_string(), file(b)))
                    .collect(),
            );
        }
        for (id, t) in texts {
            i.texts.insert(id.to_string(), Text::Utf8(t.to_string()));
        }
        i
    }

    fn rules(f: &[Finding]) -> Vec<(&'static str, Option<Version>)> {
        f.iter().map(|f| (f.rule.id(), f.version)).collect()
    }

    #[test]
    fn clean_new_migration_passes() {
        let i = input(
            Side(vec![(
                "1_a",
                "t1",
                vec![("up.sql", "u1"), ("down.sql", "d1")],
            )]),
            Side(vec![
                ("1_a", "t1", vec![("up.sql", "u1"), ("down.sql", "d1")]),
                ("2_b", "t2", vec![("up.sql", "u2"), ("down.sql", "d2")]),
            ]),
            &[("u2", "create table b();"), ("d2", "drop table b;")],
        );
        assert_eq!(evaluate(&i), vec![]);
    }

    #[test]
    fn missing_and_empty_downs() {
        let i = input(
            Side(vec![]),
            Side(vec![
                ("2_b", "t2", vec![("up.sql", "u2")]),
                ("3_c", "t3", vec![("up.sql", "u3"), ("down.sql", "d3")]),
            ]),
            &[
                ("u2", "select 1;"),
                ("u3", "select 1;"),
                ("d3", "-- nothing\n\n"),
            ],
        );
        let f = evaluate(&i);
        assert_eq!(
            rules(&f),
            vec![("missing-down", Some(2)), ("missing-down", Some(3))]
        );
        assert!(f[1].message.contains("empty down.sql"), "{}", f[1].message);
        assert_eq!(f[1].path, "migrations/3_c/down.sql");
    }

    #[test]
    fn edited_renamed_deleted() {
        let base = || {
            Side(vec![
                ("1_a", "t1", vec![("up.sql", "u1"), ("down.sql", "d1")]),
                ("2_b", "t2", vec![("up.sql", "u2"), ("down.sql", "d2")]),
                ("3_c", "t3", vec![("up.sql", "u3"), ("down.sql", "d3")]),
                ("4_d", "t4", vec![("up.sql", "u4")]),
            ])
        };
        let i = input(
            base(),
            Side(vec![
                ("1_a", "t1x", vec![("up.sql", "u1x"), ("down.sql", "d1")]),
                (
                    "2_renamed",
                    "t2",
                    vec![("up.sql", "u2"), ("down.sql", "d2")],
                ),
                // 3_c deleted; 4_d gains its missing down: a fix, allowed silently.
                ("4_d", "t4x", vec![("up.sql", "u4"), ("down.sql", "d4")]),
            ]),
            &[("u1x", "select 2;"), ("d4", "drop table d;")],
        );
        let f = evaluate(&i);
        assert_eq!(
            rules(&f),
            vec![
                ("edited-migration", Some(1)),
                ("edited-migration", Some(2)),
                ("edited-migration", Some(3)),
            ],
            "{f:#?}"
        );
        assert!(f[1].message.contains("renamed"));
        assert!(f[2].message.contains("deleted"));
    }

    #[test]
    fn out_of_order_and_duplicates() {
        let i = input(
            Side(vec![(
                "5_a",
                "t5",
                vec![("up.sql", "u5"), ("down.sql", "d5")],
            )]),
            Side(vec![
                ("3_low", "t3", vec![("up.sql", "u3"), ("down.sql", "d3")]),
                ("5_a", "t5", vec![("up.sql", "u5"), ("down.sql", "d5")]),
                ("7_x", "t7", vec![("up.sql", "u7"), ("down.sql", "d7")]),
                ("7_y", "t7y", vec![("up.sql", "u7y"), ("down.sql", "d7y")]),
            ]),
            &[],
        );
        let f = evaluate(&i);
        assert_eq!(
            rules(&f),
            vec![("out-of-order", Some(3)), ("duplicate-version", Some(7))],
            "{f:#?}"
        );
    }

    #[test]
    fn bad_names() {
        let mut i = input(
            Side(vec![]),
            Side(vec![
                ("v17_add", "tv", vec![("up.sql", "a")]),
                ("18_", "t18", vec![("up.sql", "u"), ("down.sql", "d")]),
                ("19_x", "t19", vec![("Up.sql", "u"), ("down.sql", "d")]),
                ("99999999999999999999_big", "tb", vec![("up.sql", "u")]),
            ]),
            &[("d", "drop table x;")],
        );
        i.tip.insert(
            "notes.sql".into(),
            EntryFact {
                kind: MigrationEntryKind::File,
                id: "n".into(),
            },
        );
        let f = evaluate(&i);
        let ids: Vec<_> = f.iter().map(|f| (f.rule.id(), f.path.as_str())).collect();
        assert!(ids.contains(&("bad-name", "migrations/v17_add")), "{ids:?}");
        assert!(ids.contains(&("bad-name", "migrations/18_")), "{ids:?}");
        assert!(
            ids.contains(&("bad-name", "migrations/19_x/Up.sql")),
            "{ids:?}"
        );
        assert!(
            ids.contains(&("bad-name", "migrations/19_x")),
            "down without up: {ids:?}"
        );
        assert!(
            ids.contains(&("bad-name", "migrations/99999999999999999999_big")),
            "{ids:?}"
        );
        assert!(
            ids.contains(&("bad-name", "migrations/notes.sql")),
            "{ids:?}"
        );
    }

    #[test]
    fn no_transaction_mixed() {
        let i = input(
            Side(vec![]),
            Side(vec![
                ("1_a", "t1", vec![("up.sql", "u1"), ("down.sql", "d1")]),
                ("2_b", "t2", vec![("up.sql", "u2"), ("down.sql", "d2")]),
            ]),
            &[
                ("u1", "-- git-migrate:no-transaction\ncreate index concurrently i on t(a);\n"),
                ("d1", "drop index i;"),
                ("u2", "-- git-migrate:no-transaction\ncreate index concurrently i on t(a);\ncreate index concurrently j on t(b);\n"),
                ("d2", "drop index i; drop index j;"),
            ],
        );
        let f = evaluate(&i);
        assert_eq!(rules(&f), vec![("no-transaction-mixed", Some(2))], "{f:#?}");
        assert!(f[0].message.contains("2 statements"));
    }

    #[test]
    fn transaction_control() {
        let i = input(
            Side(vec![(
                "1_a",
                "t1",
                vec![("up.sql", "u1"), ("down.sql", "d1")],
            )]),
            Side(vec![
                // An old COMMIT in an unchanged up.sql is not this change's doing.
                ("1_a", "t1x", vec![("up.sql", "u1"), ("down.sql", "d1x")]),
                ("2_b", "t2", vec![("up.sql", "u2"), ("down.sql", "d2")]),
                ("3_c", "t3", vec![("up.sql", "u3"), ("down.sql", "d3")]),
                ("4_d", "t4", vec![("up.sql", "u4"), ("down.sql", "d4")]),
            ]),
            &[
                ("u1", "create table a(); commit;"),
                ("d1x", "drop table a;"),
                ("u2", "create table b();\n  COMMIT;\ncreate table c();\nbegin;"),
                ("d2", "drop table b;"),
                ("u3", "create function f() returns int language sql begin atomic select 1; end;\nselect $$ commit $$; -- commit;\n"),
                ("d3", "drop function f();"),
                ("u4", "-- git-migrate:no-transaction\ncommit;"),
                ("d4", "select 1;"),
            ],
        );
        let f = evaluate(&i);
        // (1_a's changed down is an edit, and its old up.sql is not looked at again.)
        assert_eq!(
            rules(&f),
            vec![
                ("edited-migration", Some(1)),
                ("transaction-control", Some(2))
            ],
            "{f:#?}"
        );
        let f = &f[1..];
        assert_eq!(f[0].path, "migrations/2_b/up.sql");
        let lines: Vec<&str> = f[0].message.lines().skip(1).collect();
        assert_eq!(
            lines,
            vec![
                "migrations/2_b/up.sql:2:3: COMMIT",
                "migrations/2_b/up.sql:4:1: begin"
            ]
        );
        assert!(f[0].hint.starts_with(TX_HINT), "{}", f[0].hint);
        assert!(f[0].hint.contains("Migration-Allow: transaction-control 2"));
    }

    #[test]
    fn flat_files_are_migrations_too() {
        let mut i = CheckInput {
            migrations_dir: "m".into(),
            ..Default::default()
        };
        let f = |id: &str| EntryFact {
            kind: MigrationEntryKind::File,
            id: id.into(),
        };
        i.tip.insert("1_a.up.sql".into(), f("u1"));
        i.tip.insert("2_b.up.sql".into(), f("u2"));
        i.tip.insert("2_b.down.sql".into(), f("d2"));
        i.texts
            .insert("d2".into(), Text::Utf8("drop table b;".into()));
        let out = evaluate(&i);
        assert_eq!(rules(&out), vec![("missing-down", Some(1))], "{out:#?}");
        assert_eq!(blobs_needed(&i).len(), 3);
    }

    /// One rule alone, over the facts `evaluate` would give it (unsorted).
    fn only(rule: fn(&Facts, &mut Vec<Finding>), i: &CheckInput) -> Vec<Finding> {
        let touched = Touched::new(i);
        let facts = Facts::new(i, &touched);
        let mut out = Vec::new();
        rule(&facts, &mut out);
        out
    }

    #[test]
    fn bad_name_symlinks_and_control_characters() {
        let mut i = input(
            Side(vec![]),
            Side(vec![
                ("1_a\nb", "t1", vec![("up.sql", "u"), ("down.sql", "d")]),
                ("2_b", "t2", vec![("down.sql", "d")]),
            ]),
            &[],
        );
        let other = |id: &str| EntryFact {
            kind: MigrationEntryKind::Other,
            id: id.into(),
        };
        // A symlinked up.sql is not read, so 2_b has no up either.
        i.tip_files.get_mut("2_b").unwrap().insert(
            "up.sql".into(),
            FileFact {
                kind: MigrationEntryKind::Other,
                id: "u".into(),
            },
        );
        i.tip.insert("3_link".into(), other("s"));
        i.tip.insert("vendor".into(), other("v"));
        let f = only(bad_name, &i);
        let ids: Vec<_> = f.iter().map(|f| (f.path.as_str(), f.version)).collect();
        assert_eq!(
            ids,
            vec![
                ("migrations/3_link", None),
                ("migrations/1_a\nb", Some(1)),
                ("migrations/2_b/up.sql", Some(2)),
                ("migrations/2_b", Some(2)),
            ],
            "{f:#?}"
        );
        assert!(f[0].message.contains("symbolic link"), "{}", f[0].message);
        assert!(
            f[1].message.contains("control characters"),
            "{}",
            f[1].message
        );
        assert!(f[2].message.contains("symbolic link"), "{}", f[2].message);
        assert!(f[3].message.contains("no up.sql"), "{}", f[3].message);
    }

    #[test]
    fn edited_downs() {
        let i = input(
            Side(vec![
                ("1_a", "t1", vec![("up.sql", "u1"), ("down.sql", "d1")]),
                ("2_b", "t2", vec![("up.sql", "u2"), ("down.sql", "d2")]),
                ("3_c", "t3", vec![("up.sql", "u3"), ("down.sql", "d3")]),
                ("4_d", "t4", vec![("up.sql", "u4"), ("down.sql", "d4")]),
            ]),
            Side(vec![
                ("1_a", "t1x", vec![("up.sql", "u1"), ("down.sql", "d1x")]),
                ("2_b", "t2x", vec![("up.sql", "u2"), ("down.sql", "d2x")]),
                ("3_c", "t3x", vec![("up.sql", "u3")]),
                // 4_d's down was empty: writing one is a fix.
                ("4_d", "t4x", vec![("up.sql", "u4"), ("down.sql", "d4x")]),
            ]),
            &[
                ("d1", "drop table a;"),
                ("d1x", "drop table if exists a;"),
                ("d2", "drop table b;"),
                ("d2x", "-- nothing to undo\n"),
                ("d3", "drop table c;"),
                ("d4", "  -- todo\n"),
                ("d4x", "drop table d;"),
            ],
        );
        let f = only(edited_migration, &i);
        let got: Vec<_> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            got,
            vec![
                "migrations/1_a/down.sql",
                "migrations/2_b/down.sql",
                "migrations/3_c/down.sql"
            ],
            "{f:#?}"
        );
        assert!(f[0].message.contains("changed"), "{}", f[0].message);
        assert!(f[1].message.contains("emptied"), "{}", f[1].message);
        assert!(f[2].message.contains("deleted"), "{}", f[2].message);
    }

    #[test]
    fn deleted_migrations_are_not_renames_or_kept_versions() {
        let i = input(
            Side(vec![
                ("1_a", "t1", vec![("up.sql", "u1"), ("down.sql", "d1")]),
                ("2_b", "t2", vec![("up.sql", "u2"), ("down.sql", "d2")]),
                ("3_c", "t3", vec![("up.sql", "u3"), ("down.sql", "d3")]),
                ("3_d", "t3d", vec![("up.sql", "u3d"), ("down.sql", "d3d")]),
            ]),
            Side(vec![
                (
                    "2_renamed",
                    "t2",
                    vec![("up.sql", "u2"), ("down.sql", "d2")],
                ),
                ("3_d", "t3d", vec![("up.sql", "u3d"), ("down.sql", "d3d")]),
            ]),
            &[],
        );
        let f = only(deleted_migration, &i);
        assert_eq!(rules(&f), vec![("edited-migration", Some(1))], "{f:#?}");
        assert_eq!(f[0].path, "migrations/1_a");
        assert!(f[0].hint.contains("after a squash"), "{}", f[0].hint);
    }

    #[test]
    fn out_of_order_leaves_taken_versions_to_duplicate_version() {
        let i = input(
            Side(vec![
                ("3_old", "t3", vec![("up.sql", "u3"), ("down.sql", "d3")]),
                ("5_a", "t5", vec![("up.sql", "u5"), ("down.sql", "d5")]),
            ]),
            Side(vec![
                ("3_old", "t3", vec![("up.sql", "u3"), ("down.sql", "d3")]),
                ("3_new", "t3n", vec![("up.sql", "u3n"), ("down.sql", "d3n")]),
                ("4_b", "t4", vec![("up.sql", "u4"), ("down.sql", "d4")]),
                ("5_a", "t5", vec![("up.sql", "u5"), ("down.sql", "d5")]),
                ("6_c", "t6", vec![("up.sql", "u6"), ("down.sql", "d6")]),
            ]),
            &[],
        );
        let f = only(out_of_order, &i);
        assert_eq!(rules(&f), vec![("out-of-order", Some(4))], "{f:#?}");
        assert!(f[0].message.contains("(5)"), "{}", f[0].message);
        let f = only(duplicate_version, &i);
        assert_eq!(rules(&f), vec![("duplicate-version", Some(3))], "{f:#?}");
        assert_eq!(f[0].path, "migrations/3_new");
    }

    #[test]
    fn duplicate_version_needs_a_changed_migration() {
        let side = |y: &'static str| {
            Side(vec![
                ("7_x", "t7", vec![("up.sql", "u7"), ("down.sql", "d7")]),
                ("7_y", y, vec![("up.sql", "u7y"), ("down.sql", "d7y")]),
            ])
        };
        // An old duplicate is not this change's doing.
        let mut i = input(side("t7y"), side("t7y"), &[]);
        i.tip.insert("8_z".into(), dir("t8"));
        assert_eq!(only(duplicate_version, &i), vec![]);
        let i = input(side("t7y"), side("t7y2"), &[]);
        let f = only(duplicate_version, &i);
        assert_eq!(rules(&f), vec![("duplicate-version", Some(7))], "{f:#?}");
        assert_eq!(f[0].path, "migrations/7_y");
        assert!(f[0].message.contains("migrations/7_x, migrations/7_y"));
    }

    #[test]
    fn missing_down_is_for_new_migrations_only() {
        let mut i = input(
            Side(vec![("1_a", "t1", vec![("up.sql", "u1")])]),
            Side(vec![
                // Changed, still without a down: an edit, not a new migration.
                ("1_a", "t1x", vec![("up.sql", "u1x")]),
                ("2_b", "t2", vec![("up.sql", "u2"), ("down.sql", "d2")]),
                ("3_c", "t3", vec![("up.sql", "u3")]),
            ]),
            &[],
        );
        // A down that is not UTF-8 is not known to be empty.
        i.texts.insert("d2".into(), Text::NotUtf8);
        let f = only(missing_down, &i);
        assert_eq!(rules(&f), vec![("missing-down", Some(3))], "{f:#?}");
        assert_eq!(f[0].path, "migrations/3_c");
        assert!(f[0].message.contains("has no down.sql"), "{}", f[0].message);
    }

    #[test]
    fn transaction_wrapper_and_renames() {
        let i = input(
            Side(vec![(
                "1_a",
                "t1",
                vec![("up.sql", "u1"), ("down.sql", "d1")],
            )]),
            Side(vec![
                // Renamed: edited-migration says so, and its files are not looked at again.
                (
                    "1_renamed",
                    "t1",
                    vec![("up.sql", "u1"), ("down.sql", "d1")],
                ),
                ("2_b", "t2", vec![("up.sql", "u2"), ("down.sql", "d2")]),
            ]),
            &[
                ("u1", "create table a(); commit;"),
                ("u2", "BEGIN;\ncreate table b();\nCOMMIT;\n"),
                ("d2", "drop table b;"),
            ],
        );
        let f = only(super::transaction_control, &i);
        assert_eq!(rules(&f), vec![("transaction-wrapper", Some(2))], "{f:#?}");
        assert!(f[0].rule.is_note());
        assert_eq!(f[0].path, "migrations/2_b/up.sql");
    }

    #[test]
    fn only_changed_folders_are_read() {
        let i = input(
            Side(vec![
                ("1_a", "t1", vec![]),
                ("2_b", "t2", vec![]),
                ("3_c", "t3", vec![]),
            ]),
            Side(vec![
                ("1_a", "t1", vec![]),
                ("2_b", "t2x", vec![]),
                ("4_d", "t4", vec![]),
            ]),
            &[],
        );
        let (tip, base) = folders_needed(&i);
        assert_eq!(tip, vec!["2_b", "4_d"]);
        assert_eq!(base, vec!["2_b", "3_c"]);
    }
}
