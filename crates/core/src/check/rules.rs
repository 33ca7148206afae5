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
    let keys = changed_keys(input);
    let base = units(&input.migrations_dir, &input.base, &input.base_files, &keys);
    let tip = units(&input.migrations_dir, &input.tip, &input.tip_files, &keys);
    let mut out = BTreeSet::new();
    for (name, u) in &tip {
        if base.get(name).map(|b| &b.id) == Some(&u.id) {
            continue;
        }
        for f in ["up.sql", "down.sql"] {
            if let Some(ff) = u.files.get(f) {
                if ff.kind == MigrationEntryKind::File {
                    out.insert(ff.id.clone());
                }
            }
        }
        // The down before the change: was it empty (then a new one is a fix, not an edit)?
        if let Some(ff) = base.get(name).and_then(|b| b.files.get("down.sql")) {
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

/// Every unit's version in a listing, without reading anything: `(version, unit key)`.
fn version_index(
    entries: &BTreeMap<String, EntryFact>,
) -> Vec<(Version, std::borrow::Cow<'_, str>)> {
    let mut out: Vec<(Version, std::borrow::Cow<'_, str>)> = entries
        .iter()
        .filter_map(|(name, e)| {
            let key = unit_key(name, e.kind)?;
            let v = split_name(&key)?.0.parse().ok()?;
            Some((v, key))
        })
        .collect();
    out.sort();
    out.dedup();
    out
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
                    version: split_name(stem).and_then(|(d, _)| d.parse().ok()),
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
                    version: split_name(key).and_then(|(d, _)| d.parse().ok()),
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

/// Runs every rule. Findings come in a stable order (by path, then rule).
pub(crate) fn evaluate(input: &CheckInput) -> Vec<Finding> {
    let dir = &input.migrations_dir;
    let keys = changed_keys(input);
    // Only the units the change touched are built; versions of the rest come from names.
    let base = units(dir, &input.base, &input.base_files, &keys);
    let tip = units(dir, &input.tip, &input.tip_files, &keys);
    let base_index = version_index(&input.base);
    let tip_index = version_index(&input.tip);
    // Units of the base that are gone from the tip, by version (a rename shows up as one).
    let base_versions: BTreeMap<Version, &Unit> = base
        .values()
        .filter(|u| !tip.contains_key(&u.name) && !input.tip.contains_key(&u.name))
        .filter_map(|u| u.version.map(|v| (v, u)))
        .collect();
    let base_has_version = |v: Version| base_index.binary_search_by(|(x, _)| x.cmp(&v)).is_ok();
    let base_max = base_index.last().map(|(v, _)| *v);
    let mut out = Vec::new();

    // bad-name for entries that are not units at all.
    for (name, _, e) in differing(input) {
        let Some(e) = e else { continue };
        let location = join(dir, name);
        match e.kind {
            MigrationEntryKind::Dir => {
                let sql_inside = input
                    .tip_files
                    .get(name)
                    .is_some_and(|fs| fs.keys().any(|f| f.to_ascii_lowercase().ends_with(".sql")));
                if split_name(name).is_none() && sql_inside {
                    out.push(finding(
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
                    out.push(finding(
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
                    out.push(finding(
                        Rule::BadName,
                        location,
                        None,
                        format!("{name:?} is a symbolic link or submodule; migrations are read only from regular folders and files"),
                        "commit the migration as a real folder with up.sql and down.sql".into(),
                    ));
                }
            }
        }
    }

    // Units that are new or changed at the tip.
    let mut renamed_from: BTreeSet<&str> = BTreeSet::new();
    for (name, u) in &tip {
        let before = base.get(name);
        if before.map(|b| &b.id) == Some(&u.id) {
            continue;
        }
        let loc = &u.location;
        // Naming problems.
        let Some((digits, rest)) = split_name(name.trim_end_matches(".*.sql")) else {
            continue;
        };
        let Some(version) = u.version else {
            out.push(finding(
                Rule::BadName,
                loc.clone(),
                None,
                format!("version {digits} of {name:?} does not fit a bigint (at most 9223372036854775807)"),
                "use a millisecond timestamp as the version, e.g. 1700000000000".into(),
            ));
            continue;
        };
        if rest.is_empty() || rest.chars().any(|c| c.is_control()) {
            out.push(finding(
                Rule::BadName,
                loc.clone(),
                Some(version),
                format!(
                    "migration {version} has {}",
                    if rest.is_empty() {
                        "an empty name after the version".to_string()
                    } else {
                        "control characters (such as a newline) in its name".to_string()
                    }
                ),
                "rename it to <version>_<name> with a plain name, e.g. 1700000000000_add_orders"
                    .into(),
            ));
        }
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
        let up = u
            .files
            .get("up.sql")
            .filter(|f| f.kind == MigrationEntryKind::File);
        let down = u
            .files
            .get("down.sql")
            .filter(|f| f.kind == MigrationEntryKind::File);
        if up.is_none() {
            if down.is_some() {
                out.push(finding(
                    Rule::BadName,
                    loc.clone(),
                    Some(version),
                    format!("migration {version} has a down.sql but no up.sql"),
                    "add up.sql (or check the file name's spelling and case)".into(),
                ));
            }
            continue;
        }

        // Edited, renamed or new?
        let existed = match before {
            Some(b) => Some(b),
            None => base_versions.get(&version).copied(),
        };
        let version_taken = existed.is_none() && base_has_version(version);
        if let Some(b) = existed {
            if b.name != u.name {
                renamed_from.insert(b.name.as_str());
                out.push(finding(
                    Rule::EditedMigration,
                    loc.clone(),
                    Some(version),
                    format!(
                        "migration {version} existed before as {} and was renamed",
                        b.location
                    ),
                    format!(
                        "databases record migrations by version; keep the old name, or if the rename is intended, {}",
                        allow_hint(Rule::EditedMigration, &version.to_string())
                    ),
                ));
                continue;
            }
            let b_up = b.files.get("up.sql");
            if b_up.map(|f| &f.id) != up.map(|f| &f.id) {
                out.push(finding(
                    Rule::EditedMigration,
                    join(loc, "up.sql"),
                    Some(version),
                    format!("up.sql of migration {version} changed, but the migration existed before this change and may already be applied"),
                    format!(
                        "add a new migration for the change instead; if the edit is intended, {}",
                        allow_hint(Rule::EditedMigration, &version.to_string())
                    ),
                ));
            }
            let b_down = b.files.get("down.sql");
            let b_down_empty = match text(input, b_down) {
                Some(Text::Utf8(t)) => is_effectively_empty(t),
                _ => b_down.is_none(),
            };
            match (b_down, down) {
                (Some(bd), Some(d)) if bd.id != d.id && !b_down_empty => {
                    let now_empty = matches!(text(input, Some(d)), Some(Text::Utf8(t)) if is_effectively_empty(t));
                    out.push(finding(
                        Rule::EditedMigration,
                        join(loc, "down.sql"),
                        Some(version),
                        if now_empty {
                            format!("down.sql of migration {version} was emptied; the migration existed before this change")
                        } else {
                            format!("down.sql of migration {version} changed; the migration existed before this change")
                        },
                        format!(
                            "if you are fixing a down that did not work, {}",
                            allow_hint(Rule::EditedMigration, &version.to_string())
                        ),
                    ));
                }
                (Some(_), None) => out.push(finding(
                    Rule::EditedMigration,
                    join(loc, "down.sql"),
                    Some(version),
                    format!("down.sql of migration {version} was deleted; the migration existed before this change"),
                    format!(
                        "restore it so the migration can be rolled back, or if that is intended, {}",
                        allow_hint(Rule::EditedMigration, &version.to_string())
                    ),
                )),
                _ => {}
            }
        } else {
            // New migration.
            if let Some(max) = base_max.filter(|m| version <= *m && !version_taken) {
                out.push(finding(
                    Rule::OutOfOrder,
                    loc.clone(),
                    Some(version),
                    format!("new migration {version} is not above the highest version already there ({max})"),
                    format!(
                        "give it a newer version (rename the folder to a current timestamp), or if the order is intended, {}",
                        allow_hint(Rule::OutOfOrder, &version.to_string())
                    ),
                ));
            }
            let down_state = match (down, text(input, down)) {
                (None, _) => Some("has no down.sql"),
                (Some(_), Some(Text::Utf8(t))) if is_effectively_empty(t) => {
                    Some("has an empty down.sql (only whitespace and comments)")
                }
                _ => None,
            };
            if let Some(what) = down_state {
                out.push(finding(
                    Rule::MissingDown,
                    down.map(|_| join(loc, "down.sql"))
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

        // no-transaction-mixed and transaction-control, on what changed.
        for (file, f) in [("up.sql", up), ("down.sql", down)] {
            let Some(Text::Utf8(t)) = text(input, f) else {
                continue;
            };
            let no_transaction = crate::project::txcontrol::is_no_transaction(t);
            let same_as_base = before
                .and_then(|b| b.files.get(file))
                .zip(f)
                .is_some_and(|(b, f)| b.id == f.id);
            if !no_transaction && !same_as_base {
                out.extend(transaction_control_finding(
                    &join(loc, file),
                    file,
                    version,
                    t,
                ));
            }
            if no_transaction {
                let n = split_statements(t).len();
                if n > 1 {
                    out.push(finding(
                        Rule::NoTransactionMixed,
                        join(loc, file),
                        Some(version),
                        format!("{file} of migration {version} runs outside a transaction ({NO_TRANSACTION_MARKER}) but has {n} statements; a failure half-way would leave it half applied"),
                        "put each statement that must run outside a transaction (e.g. CREATE INDEX CONCURRENTLY) in a migration of its own, and keep the rest transactional".into(),
                    ));
                }
            }
        }
    }

    // Units that vanished.
    let tip_has_version = |v: Version| tip_index.binary_search_by(|(x, _)| x.cmp(&v)).is_ok();
    for (name, b) in &base {
        if tip.contains_key(name) || renamed_from.contains(name.as_str()) {
            continue;
        }
        let Some(version) = b.version else { continue };
        if tip_has_version(version) {
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

    // duplicate-version among units, when one of them is new or changed.
    for group in tip_index.chunk_by(|a, b| a.0 == b.0) {
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

    out.sort_by(|a, b| (&a.path, a.rule).cmp(&(&b.path, b.rule)));
    out.dedup();
    out
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
