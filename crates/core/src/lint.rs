//! The migration linter (issue 16): squawk's rules (the `squawk-linter` crate and its own
//! Postgres parser), with a profile for git-migrate's one-transaction deploys, and rules of our
//! own that squawk has none for. Pure: SQL text and settings in, findings out.
//!
//! **The profile.** Every migration runs inside the deployment transaction unless it is marked
//! `-- git-migrate:no-transaction`, so squawk is told so (`assume_in_transaction`): objects
//! created earlier in the same file are new (an index on a table the file creates needs no
//! `CONCURRENTLY`), and `CREATE INDEX CONCURRENTLY` in a transactional migration is an error.
//! Changed defaults, and why:
//! - `prefer-robust-stmts` is off: it asks for `IF NOT EXISTS` so that a migration that failed
//!   half-way can run again, and a git-migrate deployment that fails rolls back whole.
//! - `transaction-nesting` is off: git-migrate's own `transaction-control` check (with the
//!   console's whole-file `BEGIN … COMMIT` wrapper as a note) covers it, and the wrapper is
//!   blanked before linting.
//! - `require-lock-timeout` and `require-statement-timeout` are off: a deployment sets
//!   `lock_timeout` for the migrations itself (`--statement-lock-timeout`), so a migration
//!   need not.
//! - The rules about locks that block a busy table (non-concurrent indexes, constraints
//!   without `NOT VALID`, type changes, volatile defaults, `NOT NULL` columns, unique
//!   constraints, renames) are errors. squawk's other rules (style such as
//!   `prefer-bigint-over-int`, and the `ban-drop-*` family, which fires on every intended drop)
//!   are off until `git-migrate.yaml`'s `lint.rules` names them (`warning` or `error`): the
//!   profile is about not taking production down, and a check that reports style on every
//!   `create table` teaches people to ignore it.
//! - A `down.sql` exists to remove what its up made: squawk's `ban-drop-*` rules and
//!   `require-concurrent-index-deletion` are never applied to downs ([`down_rule`]), which
//!   `down-drops-data` judges instead.
//!
//! **Our rules.** [`DOWN_DROPS_DATA`]: a `down.sql` that drops a table or a column its `up.sql`
//! did not create loses data on rollback. `up-drops-tracked` (an `up.sql` that drops or renames
//! what the metadata at the same commit still tracks) needs the metadata, so `check` applies it;
//! [`dropped_objects`] is the part that reads the SQL.

use crate::project::sql::line_col_of_byte;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// How a finding counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails `check` (exit 1) unless a `Migration-Allow` trailer allows it.
    Error,
    /// Shown, never failing.
    Warning,
    /// Not checked.
    Off,
}

impl Severity {
    /// Parses `error`, `warning` (or `warn`) and `off`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "error" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "off" => Some(Severity::Off),
            _ => None,
        }
    }
}

/// `lint:` in git-migrate.yaml.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LintConfig {
    /// Whether migrations are linted at all (default true).
    pub enabled: bool,
    /// Severities that differ from the profile's, by rule id.
    pub rules: BTreeMap<String, Severity>,
    /// The PostgreSQL version the rules assume (`15`, `11.2`; default squawk's, 15).
    pub pg_version: Option<String>,
}

impl Default for LintConfig {
    fn default() -> LintConfig {
        LintConfig {
            enabled: true,
            rules: BTreeMap::new(),
            pg_version: None,
        }
    }
}

/// `down-drops-data`: a down that drops a table or column its up did not create.
pub const DOWN_DROPS_DATA: &str = "down-drops-data";
/// `up-drops-tracked`: an up that drops or renames a table or column the metadata at the same
/// commit still tracks (applied by `check`, which has the metadata).
pub const UP_DROPS_TRACKED: &str = "up-drops-tracked";
/// `concurrently-in-transaction`: `CREATE INDEX CONCURRENTLY` (or `DROP INDEX CONCURRENTLY`,
/// `DETACH PARTITION … CONCURRENTLY`) in a file that runs inside the deployment transaction,
/// which PostgreSQL refuses. squawk's `ban-concurrent-index-creation-in-transaction` exempts a
/// file of one statement (it assumes such a file runs alone); git-migrate runs every file in
/// the deployment transaction unless it is marked, so this rule replaces it.
pub const CONCURRENTLY_IN_TRANSACTION: &str = "concurrently-in-transaction";

/// squawk's rules that are errors in git-migrate's profile: the locks that take a busy table
/// down, and the changes a running application breaks on.
const ERRORS: &[&str] = &[
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "constraint-missing-not-valid",
    "adding-foreign-key-constraint",
    "changing-column-type",
    "adding-field-with-default",
    "adding-not-nullable-field",
    "adding-required-field",
    "adding-serial-primary-key-field",
    "disallowed-unique-constraint",
    "ban-drop-database",
    "renaming-column",
    "renaming-table",
];

/// squawk's default rules that git-migrate's profile turns off (see the module doc).
const OFF: &[&str] = &[
    "ban-concurrent-index-creation-in-transaction",
    "prefer-robust-stmts",
    "transaction-nesting",
    "require-lock-timeout",
    "require-statement-timeout",
];

/// squawk's rules and their ids (as squawk names them in its configuration).
fn squawk_rules() -> &'static [(squawk_linter::Rule, &'static str)] {
    static RULES: OnceLock<Vec<(squawk_linter::Rule, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        enum_iterator::all::<squawk_linter::Rule>()
            // Not `require-timeout-settings` (an alias of two other rules), nor `unused-ignore`
            // (squawk's note about its own comments, which its configuration cannot name).
            .filter(|r| r.expands_to().is_empty())
            .map(|r| (r, r.to_string()))
            .filter(|(r, id)| squawk_linter::Rule::try_from(id.as_str()).ok() == Some(*r))
            .map(|(r, id)| (r, &*Box::leak(id.into_boxed_str())))
            .collect()
    })
}

/// The id of a rule as written in configuration and trailers, when it is one (squawk's or
/// ours), as a static string.
pub fn rule_id(id: &str) -> Option<&'static str> {
    [
        DOWN_DROPS_DATA,
        UP_DROPS_TRACKED,
        CONCURRENTLY_IN_TRANSACTION,
    ]
    .into_iter()
    .chain(squawk_rules().iter().map(|(_, id)| *id))
    .find(|r| *r == id)
}

/// The profile's severity of a rule, before configuration.
pub fn default_severity(id: &str) -> Severity {
    if [
        DOWN_DROPS_DATA,
        UP_DROPS_TRACKED,
        CONCURRENTLY_IN_TRANSACTION,
    ]
    .contains(&id)
        || ERRORS.contains(&id)
    {
        return Severity::Error;
    }
    if OFF.contains(&id) {
        return Severity::Off;
    }
    Severity::Off
}

/// Whether a squawk rule applies to a `down.sql` (see the module doc).
pub fn down_rule(id: &str) -> bool {
    !id.starts_with("ban-drop-") && id != "require-concurrent-index-deletion"
}

impl LintConfig {
    /// A rule's severity here.
    pub fn severity(&self, id: &str) -> Severity {
        if !self.enabled {
            return Severity::Off;
        }
        self.rules
            .get(id)
            .copied()
            .unwrap_or_else(|| default_severity(id))
    }
}

/// One finding in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LintFinding {
    /// The rule's id.
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do instead, when the rule says.
    pub help: Option<String>,
}

/// Which file of a migration is linted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum File {
    /// `up.sql`.
    Up,
    /// `down.sql` (see [`down_rule`]).
    Down,
}

/// squawk's rules, and [`CONCURRENTLY_IN_TRANSACTION`], over one file's runnable text (a
/// whole-file transaction wrapper blanked). `no_transaction`: the file runs outside the
/// deployment transaction.
pub fn lint_sql(
    text: &str,
    file: File,
    no_transaction: bool,
    config: &LintConfig,
) -> Vec<LintFinding> {
    let mut out = squawk(text, file, no_transaction, config);
    if !no_transaction {
        out.extend(concurrently_in_transaction(text, config));
    }
    out.sort_by_key(|f| (f.line, f.column, f.rule));
    out
}

/// [`CONCURRENTLY_IN_TRANSACTION`] over a transactional file.
fn concurrently_in_transaction(text: &str, config: &LintConfig) -> Vec<LintFinding> {
    use pg_query::protobuf::AlterTableType;
    let severity = config.severity(CONCURRENTLY_IN_TRANSACTION);
    if severity == Severity::Off {
        return vec![];
    }
    let mut out = Vec::new();
    statements(text, |node, line, column| {
        let what = match node {
            pg_query::NodeEnum::IndexStmt(i) if i.concurrent => Some("CREATE INDEX CONCURRENTLY"),
            pg_query::NodeEnum::DropStmt(d) if d.concurrent => Some("DROP INDEX CONCURRENTLY"),
            pg_query::NodeEnum::AlterTableStmt(a) => a
                .cmds
                .iter()
                .any(|c| match &c.node {
                    Some(pg_query::NodeEnum::AlterTableCmd(c))
                        if c.subtype == AlterTableType::AtDetachPartition as i32 =>
                    {
                        matches!(
                            c.def.as_ref().and_then(|d| d.node.as_ref()),
                            Some(pg_query::NodeEnum::PartitionCmd(p)) if p.concurrent
                        )
                    }
                    _ => false,
                })
                .then_some("DETACH PARTITION … CONCURRENTLY"),
            _ => None,
        };
        if let Some(what) = what {
            out.push(LintFinding {
                rule: CONCURRENTLY_IN_TRANSACTION,
                severity,
                line,
                column,
                message: format!(
                    "{what} cannot run inside a transaction, and this file runs inside the deployment's"
                ),
                help: Some(format!(
                    "put it alone in a migration whose first line is `{}`",
                    crate::project::txcontrol::NO_TRANSACTION_MARKER
                )),
            });
        }
    });
    out
}

/// squawk's rules over one file's runnable text.
fn squawk(text: &str, file: File, no_transaction: bool, config: &LintConfig) -> Vec<LintFinding> {
    let on: Vec<(squawk_linter::Rule, &'static str, Severity)> = squawk_rules()
        .iter()
        .filter(|(_, id)| file == File::Up || down_rule(id))
        .map(|(r, id)| (*r, *id, config.severity(id)))
        .filter(|(_, _, s)| *s != Severity::Off)
        .collect();
    if on.is_empty() {
        return vec![];
    }
    let mut linter = squawk_linter::Linter::from(on.iter().map(|(r, _, _)| *r));
    linter.settings.assume_in_transaction = !no_transaction;
    if let Some(v) = config.pg_version.as_deref().and_then(|v| v.parse().ok()) {
        linter.settings.pg_version = v;
    }
    let parsed = squawk_syntax::SourceFile::parse(text);
    let mut out: Vec<LintFinding> = linter
        .lint(&parsed, text)
        .into_iter()
        .filter_map(|v| {
            let (_, id, severity) = on.iter().find(|(r, _, _)| *r == v.code)?;
            let (line, column) = line_col_of_byte(text, usize::from(v.text_range.start()));
            Some(LintFinding {
                rule: id,
                severity: *severity,
                line,
                column,
                message: v.message,
                help: v.help,
            })
        })
        .collect();
    out.sort_by_key(|f| (f.line, f.column, f.rule));
    out
}

/// A table or column a statement drops or renames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The table, qualified (`public.orders`; an unqualified name is taken as `public`).
    pub table: String,
    /// The column, when a column goes.
    pub column: Option<String>,
    /// `drops` or `renames`.
    pub verb: &'static str,
    /// 1-based line and column of the statement.
    pub line: usize,
    /// See `line`.
    pub column_at: usize,
}

fn qualified(rv: &pg_query::protobuf::RangeVar) -> String {
    let schema = if rv.schemaname.is_empty() {
        "public"
    } else {
        &rv.schemaname
    };
    format!("{schema}.{}", rv.relname)
}

fn name_list(node: &pg_query::protobuf::Node) -> Option<String> {
    let pg_query::NodeEnum::List(l) = node.node.as_ref()? else {
        return None;
    };
    let parts: Vec<&str> = l
        .items
        .iter()
        .filter_map(|n| match n.node.as_ref()? {
            pg_query::NodeEnum::String(s) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        [t] => Some(format!("public.{t}")),
        [s, t] => Some(format!("{s}.{t}")),
        [_, s, t] => Some(format!("{s}.{t}")),
        _ => None,
    }
}

/// Visits every top-level statement of `sql` (parsed by PostgreSQL's own parser) with its
/// 1-based line and column. Nothing when the file does not parse.
fn statements(sql: &str, mut each: impl FnMut(&pg_query::NodeEnum, usize, usize)) {
    let Ok(parsed) = pg_query::parse(sql, 0) else {
        return;
    };
    // The parser's locations include the whitespace and comments before a statement; the
    // splitter's ranges start at its first token.
    let starts: Vec<usize> = crate::project::sql::split_statements(sql)
        .into_iter()
        .map(|r| r.start)
        .collect();
    for raw in &parsed.protobuf.stmts {
        let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
            continue;
        };
        let at = usize::try_from(raw.stmt_location).unwrap_or(0);
        let start = starts.iter().copied().find(|s| *s >= at).unwrap_or(at);
        let (line, column) = line_col_of_byte(sql, start);
        each(node, line, column);
    }
}

/// The tables and columns `sql` drops or renames, in file order.
pub fn dropped_objects(sql: &str) -> Vec<Dropped> {
    use pg_query::protobuf::{AlterTableType, ObjectType};
    let mut out = Vec::new();
    statements(sql, |node, line, column_at| match node {
        pg_query::NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTable as i32 => {
            for table in d.objects.iter().filter_map(name_list) {
                out.push(Dropped {
                    table,
                    column: None,
                    verb: "drops",
                    line,
                    column_at,
                });
            }
        }
        pg_query::NodeEnum::AlterTableStmt(a) => {
            let Some(rv) = &a.relation else { return };
            for cmd in &a.cmds {
                if let Some(pg_query::NodeEnum::AlterTableCmd(c)) = &cmd.node {
                    if c.subtype == AlterTableType::AtDropColumn as i32 {
                        out.push(Dropped {
                            table: qualified(rv),
                            column: Some(c.name.clone()),
                            verb: "drops",
                            line,
                            column_at,
                        });
                    }
                }
            }
        }
        pg_query::NodeEnum::RenameStmt(r) => {
            let Some(rv) = &r.relation else { return };
            let column = if r.rename_type == ObjectType::ObjectColumn as i32 {
                Some(r.subname.clone())
            } else if r.rename_type == ObjectType::ObjectTable as i32 {
                None
            } else {
                return;
            };
            out.push(Dropped {
                table: qualified(rv),
                column,
                verb: "renames",
                line,
                column_at,
            });
        }
        _ => {}
    });
    out
}

/// The tables `sql` creates, and the columns it adds to tables (qualified names).
fn created_objects(sql: &str) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    use pg_query::protobuf::AlterTableType;
    let mut tables = BTreeSet::new();
    let mut columns = BTreeSet::new();
    statements(sql, |node, _, _| match node {
        pg_query::NodeEnum::CreateStmt(c) => {
            if let Some(rv) = &c.relation {
                tables.insert(qualified(rv));
            }
        }
        pg_query::NodeEnum::CreateTableAsStmt(c) => {
            if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                tables.insert(qualified(rv));
            }
        }
        pg_query::NodeEnum::AlterTableStmt(a) => {
            let Some(rv) = &a.relation else { return };
            for cmd in &a.cmds {
                let Some(pg_query::NodeEnum::AlterTableCmd(c)) = &cmd.node else {
                    continue;
                };
                if c.subtype != AlterTableType::AtAddColumn as i32 {
                    continue;
                }
                if let Some(pg_query::NodeEnum::ColumnDef(d)) =
                    c.def.as_ref().and_then(|d| d.node.as_ref())
                {
                    columns.insert((qualified(rv), d.colname.clone()));
                }
            }
        }
        _ => {}
    });
    (tables, columns)
}

/// `down-drops-data`: what `down` drops that `up` did not create (a table, or a column of a
/// table `up` did not create either).
pub fn down_drops_data(up: &str, down: &str, config: &LintConfig) -> Vec<LintFinding> {
    let severity = config.severity(DOWN_DROPS_DATA);
    if severity == Severity::Off {
        return vec![];
    }
    let (tables, columns) = created_objects(up);
    dropped_objects(down)
        .into_iter()
        .filter(|d| d.verb == "drops")
        .filter(|d| match &d.column {
            None => !tables.contains(&d.table),
            Some(c) => !tables.contains(&d.table) && !columns.contains(&(d.table.clone(), c.clone())),
        })
        .map(|d| {
            let what = match &d.column {
                Some(c) => format!("column {}.{c}", d.table),
                None => format!("table {}", d.table),
            };
            LintFinding {
                rule: DOWN_DROPS_DATA,
                severity,
                line: d.line,
                column: d.column_at,
                message: format!(
                    "the down drops {what}, which its up did not create: rolling back loses its data"
                ),
                help: Some(
                    "drop only what the up created; if the up changed an existing object, make the down change it back".into(),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_is_squawks_and_the_profile_knows_each() {
        assert!(squawk_rules().len() > 70, "squawk's rules are listed");
        assert_eq!(rule_id("unused-ignore"), None);
        for id in ERRORS.iter().chain(OFF) {
            assert!(rule_id(id).is_some(), "{id}");
        }
        assert_eq!(
            default_severity("require-concurrent-index-creation"),
            Severity::Error
        );
        assert_eq!(default_severity("prefer-text-field"), Severity::Off);
        assert!(!down_rule("ban-drop-table") && down_rule("changing-column-type"));
        assert_eq!(default_severity("prefer-robust-stmts"), Severity::Off);
        assert_eq!(
            default_severity("ban-drop-trigger"),
            Severity::Off,
            "opt-in"
        );
        assert_eq!(rule_id("no-such-rule"), None);
    }

    #[test]
    fn lock_rules_fire_on_existing_tables_only_and_respect_configuration() {
        let c = LintConfig::default();
        let sql = "create table t(id int);\ncreate index t_id on t(id);\n\ncreate index o_id on orders(id);\nalter table orders add constraint fk foreign key (c) references customers(id);\nalter table orders alter column total type numeric;\n";
        let f = lint_sql(sql, File::Up, false, &c);
        let rules: Vec<(&str, usize)> = f
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.rule, f.line))
            .collect();
        assert!(
            rules.contains(&("require-concurrent-index-creation", 4)),
            "{f:#?}"
        );
        assert!(
            rules.contains(&("constraint-missing-not-valid", 5)),
            "{f:#?}"
        );
        assert!(rules.contains(&("changing-column-type", 6)), "{f:#?}");
        assert!(!rules.iter().any(|(_, l)| *l == 2), "t is new: {f:#?}");
        let mut off = LintConfig::default();
        off.rules
            .insert("changing-column-type".into(), Severity::Off);
        off.rules.insert(
            "require-concurrent-index-creation".into(),
            Severity::Warning,
        );
        let f = lint_sql(sql, File::Up, false, &off);
        assert!(!f.iter().any(|f| f.rule == "changing-column-type"));
        assert!(f
            .iter()
            .any(|f| f.rule == "require-concurrent-index-creation"
                && f.severity == Severity::Warning));
        let disabled = LintConfig {
            enabled: false,
            ..LintConfig::default()
        };
        assert!(lint_sql(sql, File::Up, false, &disabled).is_empty());
        // Outside a transaction, CREATE INDEX CONCURRENTLY is what is asked for.
        let cic = "create index concurrently o_id on orders(id);";
        assert!(
            lint_sql(cic, File::Up, true, &c).is_empty(),
            "{:#?}",
            lint_sql(cic, File::Up, true, &c)
        );
        // Inside it, it is an error, also alone in its file (squawk exempts that case).
        for sql in [
            cic,
            "create table x(id int);\ncreate index concurrently o_id on orders(id);",
        ] {
            let f = lint_sql(sql, File::Up, false, &c);
            let ours: Vec<_> = f
                .iter()
                .filter(|f| f.rule == CONCURRENTLY_IN_TRANSACTION)
                .collect();
            assert_eq!(ours.len(), 1, "{f:#?}");
            assert!(ours[0]
                .help
                .as_deref()
                .unwrap()
                .contains("git-migrate:no-transaction"));
        }
        let detach = "alter table m detach partition m1 concurrently;";
        assert_eq!(
            lint_sql(detach, File::Up, false, &c)[0].rule,
            CONCURRENTLY_IN_TRANSACTION
        );
        assert!(lint_sql("drop index concurrently i;", File::Down, true, &c).is_empty());
    }

    #[test]
    fn a_down_that_drops_what_its_up_did_not_make_is_found() {
        let c = LintConfig::default();
        let up = "create table a(id int);\nalter table orders add column note text;";
        let fine = "drop table a;\nalter table orders drop column note;";
        assert!(down_drops_data(up, fine, &c).is_empty());
        let bad = "alter table orders drop column note;\n-- and more\nalter table public.orders drop column email;\ndrop table customers;";
        let f = down_drops_data(up, bad, &c);
        let what: Vec<(&str, usize)> = f.iter().map(|f| (f.message.as_str(), f.line)).collect();
        assert_eq!(f.len(), 2, "{what:?}");
        assert!(
            f[0].message.contains("column public.orders.email") && f[0].line == 3,
            "{what:?}"
        );
        assert!(
            f[1].message.contains("table public.customers") && f[1].line == 4,
            "{what:?}"
        );
        let renamed =
            dropped_objects("alter table orders rename column a to b; alter table x rename to y;");
        assert_eq!(renamed.len(), 2);
        assert_eq!(renamed[0].column.as_deref(), Some("a"));
        assert_eq!(renamed[1].verb, "renames");
    }
}
