//! Consistency of a metadata snapshot with the database catalog (design §6).
//!
//! Before COMMIT every deployment checks that the Hasura metadata it is about to store matches
//! the schema the migrations just produced. The work is split in three:
//!
//! 1. [`requirements`] (pure) walks the snapshot and lists what the catalog must contain: tracked
//!    relations, columns (with the metadata object and the place that names them), functions
//!    and foreign keys.
//! 2. [`check`] fetches the facts about every relation and function named there in at most two
//!    queries (one for relations, their columns and their foreign keys, one for functions),
//!    whatever the size of the metadata. Names travel as `text[]` parameters, never as SQL text.
//! 3. [`evaluate`] (pure) compares the two and describes every mismatch.
//!
//! # Which source
//!
//! Metadata version 2 (top-level `tables` and `functions`) is one implicit `default` source.
//! In version 3 (`sources: [{name, kind, tables, functions}]`) only sources whose `kind` is
//! `postgres` (or absent) are candidates, and one of them is checked: the one named `default`,
//! else the only candidate. git-migrate deploys to one database, and the `default` source is
//! the database that Hasura's CLI treats as the project's own; other sources live in databases
//! this transaction cannot see. Sources not checked are listed in
//! [`Requirements::skipped_sources`].
//!
//! # Rules
//!
//! * Every tracked table exists and is a table, partitioned table, view, materialized view or
//!   foreign table; every tracked function exists (by schema and name).
//! * Permissions: every column in `columns` (`"*"` means all), every key of `set`, every column
//!   named in the `filter` and `check` boolean expressions (through `_and`, `_or`, `_not`,
//!   `_exists` with its `_table`, relationships of the table, and the column comparison
//!   operators `_ceq`/`_cne`/`_cgt`/`_clt`/`_cgte`/`_clte`, including `["$", column]` for the
//!   root table); names in a select permission's `computed_fields` are computed fields of the
//!   table.
//! * Relationships: `foreign_key_constraint_on` columns (this table's for a string or a list,
//!   the remote table's for `{table, column(s)}`) exist and carry a foreign key constraint;
//!   `manual_configuration` names an existing remote table, and the keys (local) and values
//!   (remote) of `column_mapping` are columns.
//! * Computed fields: `definition.function` exists.
//! * Event triggers: `columns` and `payload` lists of `definition.insert/update/delete` are
//!   columns.
//! * `configuration.custom_column_names` and `configuration.column_config` keys are columns.
//! * Remote relationships: the local join fields (`hasura_fields`, `to_remote_schema.lhs_fields`,
//!   keys of `to_source.field_mapping`) are columns or computed fields of the table.
//!
//! When a relation is missing only that is reported, not each of its columns.
//!
//! # Not checked
//!
//! Column types, function signatures and return types, the remote side of remote
//! relationships, actions, remote schemas, cron triggers, native queries and logical models.
//! In boolean expressions, keys starting with `_` other than the four logical operators are
//! taken as operators, so a column whose name starts with `_` is not checked there;
//! `<array relationship>_aggregate` predicates and computed fields are skipped, and a
//! relationship whose remote table cannot be resolved is not followed.

use postgres::types::Type;
use postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

/// One way the metadata does not match the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Inconsistency {
    /// The metadata object, e.g. "table public.orders" or "table public.orders: select
    /// permission for role user".
    pub object: String,
    /// What is wrong, e.g. "column total does not exist (in columns)" / "table does not exist".
    pub message: String,
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// A schema-qualified name of a relation or function.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct QualifiedName {
    /// Schema (`public` when the metadata does not say).
    pub schema: String,
    /// Relation or function name.
    pub name: String,
}

impl QualifiedName {
    /// A name from its parts.
    pub fn new(schema: &str, name: &str) -> QualifiedName {
        QualifiedName {
            schema: schema.to_string(),
            name: name.to_string(),
        }
    }

    /// Reads Hasura's `{schema, name}` (schema defaults to `public`) or a plain `"name"`.
    pub(crate) fn from_value(v: &Value) -> Option<QualifiedName> {
        match v {
            Value::String(name) => Some(QualifiedName::new("public", name)),
            Value::Object(o) => {
                let name = o.get("name")?.as_str()?;
                let schema = match o.get("schema") {
                    None | Some(Value::Null) => "public",
                    Some(s) => s.as_str()?,
                };
                Some(QualifiedName::new(schema, name))
            }
            _ => None,
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// One fact the catalog must satisfy for the metadata to be consistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Requirement {
    /// `relation` exists and is a table, view, materialized view or foreign table.
    Relation {
        /// The metadata object that needs it.
        object: String,
        /// The relation.
        relation: QualifiedName,
        /// How the message names it ("table", "remote table public.customers", …); the
        /// message is `<label> does not exist`.
        label: String,
    },
    /// `column` is a column of `relation`. Not reported when the relation itself is missing
    /// (another requirement names the relation).
    Column {
        /// The metadata object that names the column.
        object: String,
        /// The relation the column belongs to.
        relation: QualifiedName,
        /// The column.
        column: String,
        /// Where in the object it is named (`columns`, `filter`, `set`, …).
        place: String,
        /// Whether `relation` is the object's own table (the message then leaves it out).
        local: bool,
    },
    /// `function` exists (any signature).
    Function {
        /// The metadata object that needs it.
        object: String,
        /// The function.
        function: QualifiedName,
        /// How the message names it; the message is `<label> does not exist`.
        label: String,
    },
    /// A foreign key constraint on `table` over exactly `columns` (in any order), pointing at
    /// `references` when given. Checked only when the table and the columns exist.
    ForeignKey {
        /// The relationship that relies on it.
        object: String,
        /// The constrained (referencing) table.
        table: QualifiedName,
        /// The constrained columns.
        columns: Vec<String>,
        /// The referenced table, when the metadata names it.
        references: Option<QualifiedName>,
    },
    /// A boolean expression over the table that the foreign key on `from (columns)` points
    /// at: the metadata does not name that table, so the expression is checked once the
    /// catalog is known. Nothing is reported when there is no such foreign key (the
    /// relationship's own [`Requirement::ForeignKey`] reports that).
    Deferred {
        /// The permission the expression belongs to.
        object: String,
        /// `filter` or `check`.
        place: String,
        /// The permission's table (what `["$", column]` refers to).
        root: QualifiedName,
        /// The table holding the foreign key.
        from: QualifiedName,
        /// The foreign key's columns.
        columns: Vec<String>,
        /// Relationship names followed from the root table to reach the expression.
        path: Vec<String>,
        /// The expression (over the referenced table).
        expression: Value,
    },
    /// A problem found in the metadata alone (no catalog needed).
    Invalid {
        /// The metadata object.
        object: String,
        /// What is wrong.
        message: String,
    },
}

/// Where a relationship leads, as far as the metadata says.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// A named remote table.
    Named(QualifiedName),
    /// The table that the foreign key on `(table, columns)` references.
    ForeignKey(QualifiedName, Vec<String>),
    /// Not resolvable.
    Unknown,
}

/// What the metadata says about one tracked table, for walking boolean expressions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct TableInfo {
    relationships: BTreeMap<String, Target>,
    computed_fields: BTreeSet<String>,
}

/// Everything a snapshot requires of the catalog, from [`requirements`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Requirements {
    /// The source checked (`default` for metadata version 2), or `None` when no source is.
    pub source: Option<String>,
    /// Names of version 3 sources that are not checked.
    pub skipped_sources: Vec<String>,
    /// The requirements, in metadata order.
    pub items: Vec<Requirement>,
    /// Relationships and computed fields of each tracked table.
    tables: BTreeMap<QualifiedName, TableInfo>,
}

impl Requirements {
    /// Every relation whose catalog facts are needed.
    pub(crate) fn relations(&self) -> BTreeSet<QualifiedName> {
        let mut out = BTreeSet::new();
        for item in &self.items {
            match item {
                Requirement::Relation { relation, .. } | Requirement::Column { relation, .. } => {
                    out.insert(relation.clone());
                }
                Requirement::ForeignKey {
                    table, references, ..
                } => {
                    out.insert(table.clone());
                    out.extend(references.iter().cloned());
                }
                Requirement::Deferred {
                    from, expression, ..
                } => {
                    out.insert(from.clone());
                    exists_tables(expression, &mut out);
                }
                Requirement::Function { .. } | Requirement::Invalid { .. } => {}
            }
        }
        for (table, info) in &self.tables {
            out.insert(table.clone());
            for target in info.relationships.values() {
                match target {
                    Target::Named(t) | Target::ForeignKey(t, _) => {
                        out.insert(t.clone());
                    }
                    Target::Unknown => {}
                }
            }
        }
        out
    }

    /// Every function that must exist.
    pub fn functions(&self) -> BTreeSet<QualifiedName> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Requirement::Function { function, .. } => Some(function.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Adds every `_exists._table` in a boolean expression.
fn exists_tables(e: &Value, out: &mut BTreeSet<QualifiedName>) {
    match e {
        Value::Object(m) => {
            if let Some(t) = m.get("_table").and_then(QualifiedName::from_value) {
                out.insert(t);
            }
            m.values().for_each(|v| exists_tables(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| exists_tables(v, out)),
        _ => {}
    }
}

/// The catalog facts [`evaluate`] compares the requirements with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Catalog {
    /// Relations that exist, by name.
    pub relations: HashMap<QualifiedName, CatalogRelation>,
    /// Foreign key constraints of the relations.
    pub foreign_keys: Vec<CatalogForeignKey>,
    /// Functions that exist (any signature).
    pub functions: HashSet<QualifiedName>,
}

/// A relation in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CatalogRelation {
    /// `pg_class.relkind`.
    pub kind: char,
    /// Its (not dropped, non-system) columns.
    pub columns: HashSet<String>,
}

/// A foreign key constraint in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CatalogForeignKey {
    /// The constrained table.
    pub table: QualifiedName,
    /// The constrained columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub references: QualifiedName,
}

impl Catalog {
    /// The table referenced by a foreign key on exactly `columns` of `table`.
    fn foreign_key_target(
        &self,
        table: &QualifiedName,
        columns: &[String],
    ) -> Option<&QualifiedName> {
        self.foreign_keys
            .iter()
            .find(|fk| &fk.table == table && same_set(&fk.columns, columns))
            .map(|fk| &fk.references)
    }

    /// The relation when it exists and is a table, view, materialized view or foreign table.
    fn table_like(&self, relation: &QualifiedName) -> Option<&CatalogRelation> {
        self.relations
            .get(relation)
            .filter(|r| TABLE_KINDS.contains(&r.kind))
    }
}

/// `relkind`s Hasura can track: table, partitioned table, view, materialized view, foreign table.
const TABLE_KINDS: [char; 5] = ['r', 'p', 'v', 'm', 'f'];

fn same_set(a: &[String], b: &[String]) -> bool {
    let a: BTreeSet<&String> = a.iter().collect();
    let b: BTreeSet<&String> = b.iter().collect();
    a == b
}

fn kind_name(kind: char) -> &'static str {
    match kind {
        'S' => "sequence",
        'i' | 'I' => "index",
        'c' => "composite type",
        't' => "TOAST table",
        _ => "relation of another kind",
    }
}

/// Checks `snapshot` against the live catalog through `client` (called inside the deploy
/// transaction, after the migrations ran, so it sees the new schema). Returns every
/// inconsistency (empty = consistent), in metadata order, without duplicates.
///
/// At most two round trips whatever the size of the metadata: one query for the relations
/// named anywhere (with their columns, their foreign keys and the tables those reference),
/// one for the functions; each is skipped when there is nothing to ask. Both use
/// `query_typed` (no named prepared statement) with the names as `text[]` parameters.
pub fn check(
    client: &mut impl GenericClient,
    snapshot: &Value,
) -> Result<Vec<Inconsistency>, postgres::Error> {
    let reqs = requirements(snapshot);
    let catalog = fetch_catalog(client, &reqs.relations(), &reqs.functions())?;
    Ok(evaluate(&reqs, &catalog))
}

const RELATIONS_SQL: &str = "\
WITH wanted AS (
    SELECT c.oid
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN unnest($1::text[], $2::text[]) AS w(schema_name, rel_name)
      ON n.nspname::text = w.schema_name AND c.relname::text = w.rel_name
), fks AS (
    SELECT con.conrelid, con.confrelid, con.conkey
    FROM pg_catalog.pg_constraint con
    WHERE con.contype = 'f' AND con.conrelid IN (SELECT oid FROM wanted)
), rels AS (
    SELECT oid FROM wanted
    UNION
    SELECT confrelid FROM fks
)
SELECT 'r'::text, n.nspname::text, c.relname::text, c.relkind::text,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
       NULL::text, NULL::text
FROM rels
JOIN pg_catalog.pg_class c ON c.oid = rels.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
UNION ALL
SELECT 'f'::text, n.nspname::text, c.relname::text, NULL::text,
       ARRAY(SELECT a.attname::text FROM unnest(f.conkey) AS k(attnum)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum),
       rn.nspname::text, rc.relname::text
FROM fks f
JOIN pg_catalog.pg_class c ON c.oid = f.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class rc ON rc.oid = f.confrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace";

const FUNCTIONS_SQL: &str = "\
SELECT DISTINCT n.nspname::text, p.proname::text
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN unnest($1::text[], $2::text[]) AS w(schema_name, fn_name)
  ON n.nspname::text = w.schema_name AND p.proname::text = w.fn_name";

/// Reads the catalog facts about `relations` and `functions` (two queries at most).
fn fetch_catalog(
    client: &mut impl GenericClient,
    relations: &BTreeSet<QualifiedName>,
    functions: &BTreeSet<QualifiedName>,
) -> Result<Catalog, postgres::Error> {
    let split = |names: &BTreeSet<QualifiedName>| -> (Vec<String>, Vec<String>) {
        names
            .iter()
            .map(|q| (q.schema.clone(), q.name.clone()))
            .unzip()
    };
    let mut catalog = Catalog::default();
    if !relations.is_empty() {
        let (schemas, names) = split(relations);
        let rows = client.query_typed(
            RELATIONS_SQL,
            &[(&schemas, Type::TEXT_ARRAY), (&names, Type::TEXT_ARRAY)],
        )?;
        for row in rows {
            let what: String = row.get(0);
            let table = QualifiedName {
                schema: row.get(1),
                name: row.get(2),
            };
            let columns: Vec<String> = row.get(4);
            if what == "r" {
                let kind: String = row.get(3);
                catalog.relations.insert(
                    table,
                    CatalogRelation {
                        kind: kind.chars().next().unwrap_or('?'),
                        columns: columns.into_iter().collect(),
                    },
                );
            } else {
                catalog.foreign_keys.push(CatalogForeignKey {
                    table,
                    columns,
                    references: QualifiedName {
                        schema: row.get(5),
                        name: row.get(6),
                    },
                });
            }
        }
    }
    if !functions.is_empty() {
        let (schemas, names) = split(functions);
        let rows = client.query_typed(
            FUNCTIONS_SQL,
            &[(&schemas, Type::TEXT_ARRAY), (&names, Type::TEXT_ARRAY)],
        )?;
        for row in rows {
            catalog.functions.insert(QualifiedName {
                schema: row.get(0),
                name: row.get(1),
            });
        }
    }
    Ok(catalog)
}

/// Compares requirements with catalog facts: every inconsistency, in requirement order,
/// without duplicates.
pub(crate) fn evaluate(reqs: &Requirements, catalog: &Catalog) -> Vec<Inconsistency> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for item in &reqs.items {
        evaluate_one(item, reqs, catalog, &mut out, &mut seen);
    }
    out
}

fn evaluate_one(
    item: &Requirement,
    reqs: &Requirements,
    catalog: &Catalog,
    out: &mut Vec<Inconsistency>,
    seen: &mut HashSet<(String, String)>,
) {
    let mut report = |object: &str, message: String| {
        if seen.insert((object.to_string(), message.clone())) {
            out.push(Inconsistency {
                object: object.to_string(),
                message,
            });
        }
    };
    match item {
        Requirement::Relation {
            object,
            relation,
            label,
        } => match catalog.relations.get(relation) {
            None => report(object, format!("{label} does not exist")),
            Some(r) if !TABLE_KINDS.contains(&r.kind) => report(
                object,
                format!("{relation} is a {}, not a table or view", kind_name(r.kind)),
            ),
            Some(_) => {}
        },
        Requirement::Column {
            object,
            relation,
            column,
            place,
            local,
        } => {
            if let Some(r) = catalog.table_like(relation) {
                if !r.columns.contains(column) {
                    let of = if *local {
                        String::new()
                    } else {
                        format!(" of {relation}")
                    };
                    report(
                        object,
                        format!("column {column}{of} does not exist (in {place})"),
                    );
                }
            }
        }
        Requirement::Function {
            object,
            function,
            label,
        } => {
            if !catalog.functions.contains(function) {
                report(object, format!("{label} does not exist"));
            }
        }
        Requirement::ForeignKey {
            object,
            table,
            columns,
            references,
        } => {
            let Some(r) = catalog.table_like(table) else {
                return;
            };
            if columns.is_empty() || !columns.iter().all(|c| r.columns.contains(c)) {
                return;
            }
            if let Some(target) = references {
                if catalog.table_like(target).is_none() {
                    return;
                }
            }
            let found = catalog.foreign_keys.iter().any(|fk| {
                &fk.table == table
                    && same_set(&fk.columns, columns)
                    && references.as_ref().is_none_or(|t| &fk.references == t)
            });
            if !found {
                let to = references
                    .as_ref()
                    .map(|t| format!(" referencing {t}"))
                    .unwrap_or_default();
                report(
                    object,
                    format!(
                        "no foreign key constraint on {table} ({}){to}",
                        columns.join(", ")
                    ),
                );
            }
        }
        Requirement::Deferred {
            object,
            place,
            root,
            from,
            columns,
            path,
            expression,
        } => {
            if let Some(target) = catalog.foreign_key_target(from, columns) {
                let mut more = Vec::new();
                Walk {
                    tables: &reqs.tables,
                    object,
                    place,
                    root,
                    path: path.clone(),
                    catalog: Some(catalog),
                    out: &mut more,
                }
                .expression(expression, target);
                for m in &more {
                    evaluate_one(m, reqs, catalog, out, seen);
                }
            }
        }
        Requirement::Invalid { object, message } => report(object, message.clone()),
    }
}

/// Walks a boolean expression (a permission's `filter` or `check`) and records the columns
/// it names.
struct Walk<'a> {
    tables: &'a BTreeMap<QualifiedName, TableInfo>,
    object: &'a str,
    place: &'a str,
    root: &'a QualifiedName,
    /// Relationship names followed from the root table (`_exists` for an `_exists` table).
    path: Vec<String>,
    /// With the catalog, relationships over a foreign key are followed at once; without it
    /// they become [`Requirement::Deferred`].
    catalog: Option<&'a Catalog>,
    out: &'a mut Vec<Requirement>,
}

impl Walk<'_> {
    fn expression(&mut self, e: &Value, table: &QualifiedName) {
        let Value::Object(m) = e else { return };
        for (key, value) in m {
            match key.as_str() {
                "_and" | "_or" => match value {
                    Value::Array(items) => items.iter().for_each(|i| self.expression(i, table)),
                    Value::Object(_) => self.expression(value, table),
                    _ => {}
                },
                "_not" => self.expression(value, table),
                "_exists" => {
                    let Some(t) = value.get("_table").and_then(QualifiedName::from_value) else {
                        continue;
                    };
                    self.out.push(Requirement::Relation {
                        object: self.object.to_string(),
                        relation: t.clone(),
                        label: format!("table {t} (in _exists of {})", self.place),
                    });
                    if let Some(w) = value.get("_where") {
                        let outer = std::mem::replace(&mut self.path, vec!["_exists".into()]);
                        self.expression(w, &t);
                        self.path = outer;
                    }
                }
                k if k.starts_with('_') => {}
                k => self.field(k, value, table),
            }
        }
    }

    fn field(&mut self, key: &str, value: &Value, table: &QualifiedName) {
        let info = self.tables.get(table);
        if let Some(target) = info.and_then(|i| i.relationships.get(key)) {
            self.path.push(key.to_string());
            match target {
                Target::Named(remote) => self.expression(value, remote),
                Target::ForeignKey(from, columns) => match self.catalog {
                    Some(c) => {
                        if let Some(remote) = c.foreign_key_target(from, columns) {
                            self.expression(value, remote);
                        }
                    }
                    None => self.out.push(Requirement::Deferred {
                        object: self.object.to_string(),
                        place: self.place.to_string(),
                        root: self.root.clone(),
                        from: from.clone(),
                        columns: columns.clone(),
                        path: self.path.clone(),
                        expression: value.clone(),
                    }),
                },
                Target::Unknown => {}
            }
            self.path.pop();
            return;
        }
        if let Some(info) = info {
            let aggregate = key
                .strip_suffix("_aggregate")
                .is_some_and(|r| info.relationships.contains_key(r));
            if aggregate || info.computed_fields.contains(key) {
                return;
            }
        }
        self.column(table, key, false);
        let Value::Object(ops) = value else { return };
        for (op, arg) in ops {
            if !matches!(
                op.as_str(),
                "_ceq" | "_cne" | "_cgt" | "_clt" | "_cgte" | "_clte"
            ) {
                continue;
            }
            match arg {
                Value::String(c) => self.column(table, c, false),
                Value::Array(path) => match path.as_slice() {
                    [Value::String(c)] => self.column(table, c, false),
                    [Value::String(dollar), Value::String(c)] if dollar == "$" => {
                        let root = self.root.clone();
                        self.column(&root, c, true)
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    /// Records a column of `table`; `from_root` for a `["$", column]` reference.
    fn column(&mut self, table: &QualifiedName, column: &str, from_root: bool) {
        let direct = from_root || self.path.is_empty();
        let place = if direct {
            self.place.to_string()
        } else {
            format!("{}, through {}", self.place, self.path.join("."))
        };
        self.out.push(Requirement::Column {
            object: self.object.to_string(),
            relation: table.clone(),
            column: column.to_string(),
            place,
            local: direct && table == self.root,
        });
    }
}

/// The elements of a list-valued key (absent or not a list = none).
fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The string elements of a list (`"*"` or anything else = none).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![],
    }
}

/// The keys of a mapping (absent or not a mapping = none).
fn keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or("(unnamed)")
}

/// The object holding the `tables` and `functions` lists to check (the snapshot itself for
/// version 2, one source for version 3), per the rules in the module documentation; records
/// the source checked and the sources skipped in `reqs`.
fn select_source<'a>(snapshot: &'a Value, reqs: &mut Requirements) -> Option<&'a Value> {
    if let Some(sources) = snapshot.get("sources").and_then(Value::as_array) {
        let is_postgres = |s: &Value| match s.get("kind") {
            None | Some(Value::Null) => true,
            Some(kind) => kind == "postgres",
        };
        let candidates: Vec<&Value> = sources.iter().filter(|s| is_postgres(s)).collect();
        let chosen = candidates
            .iter()
            .copied()
            .find(|s| s.get("name").and_then(Value::as_str) == Some("default"))
            .or(match candidates.as_slice() {
                [only] => Some(*only),
                _ => None,
            });
        for s in sources {
            if chosen.is_none_or(|c| !std::ptr::eq(c, s)) {
                reqs.skipped_sources.push(name_of(s).to_string());
            }
        }
        let chosen = chosen?;
        reqs.source = Some(name_of(chosen).to_string());
        Some(chosen)
    } else if snapshot.is_object() {
        reqs.source = Some("default".to_string());
        Some(snapshot)
    } else {
        None
    }
}

/// Lists what `snapshot` (metadata version 2 or 3) requires of the catalog. Pure: no I/O.
pub(crate) fn requirements(snapshot: &Value) -> Requirements {
    let mut reqs = Requirements::default();
    let Some(holder) = select_source(snapshot, &mut reqs) else {
        return reqs;
    };
    let tables = list(holder, "tables");
    let functions = list(holder, "functions");

    // First the relationships and computed fields of every table, so expressions can follow
    // relationships into tables listed later.
    for entry in tables {
        let Some(table) = entry.get("table").and_then(QualifiedName::from_value) else {
            continue;
        };
        let info = reqs.tables.entry(table.clone()).or_default();
        for key in ["object_relationships", "array_relationships"] {
            for rel in list(entry, key) {
                let Some(name) = rel.get("name").and_then(Value::as_str) else {
                    continue;
                };
                info.relationships
                    .insert(name.to_string(), relationship_target(&table, rel));
            }
        }
        for cf in list(entry, "computed_fields") {
            if let Some(name) = cf.get("name").and_then(Value::as_str) {
                info.computed_fields.insert(name.to_string());
            }
        }
    }

    let mut items = Vec::new();
    for (i, entry) in tables.iter().enumerate() {
        let Some(table) = entry.get("table").and_then(QualifiedName::from_value) else {
            items.push(Requirement::Invalid {
                object: format!("tables[{i}]"),
                message: "the entry names no table".to_string(),
            });
            continue;
        };
        table_requirements(&reqs.tables, &table, entry, &mut items);
    }
    for (i, entry) in functions.iter().enumerate() {
        match entry.get("function").and_then(QualifiedName::from_value) {
            Some(function) => items.push(Requirement::Function {
                object: format!("function {function}"),
                function,
                label: "function".to_string(),
            }),
            None => items.push(Requirement::Invalid {
                object: format!("functions[{i}]"),
                message: "the entry names no function".to_string(),
            }),
        }
    }
    reqs.items = items;
    reqs
}

/// Where a relationship of `table` leads.
fn relationship_target(table: &QualifiedName, rel: &Value) -> Target {
    let using = &rel["using"];
    match using.get("foreign_key_constraint_on") {
        Some(v @ (Value::String(_) | Value::Array(_))) => {
            let columns = match v {
                Value::String(c) => vec![c.clone()],
                _ => strings(Some(v)),
            };
            Target::ForeignKey(table.clone(), columns)
        }
        Some(Value::Object(o)) => o
            .get("table")
            .and_then(QualifiedName::from_value)
            .map_or(Target::Unknown, Target::Named),
        _ => using
            .get("manual_configuration")
            .and_then(|m| m.get("remote_table"))
            .and_then(QualifiedName::from_value)
            .map_or(Target::Unknown, Target::Named),
    }
}

/// The requirements of one table entry.
fn table_requirements(
    tables: &BTreeMap<QualifiedName, TableInfo>,
    table: &QualifiedName,
    entry: &Value,
    items: &mut Vec<Requirement>,
) {
    let obj = format!("table {table}");
    let no_info = TableInfo::default();
    let info = tables.get(table).unwrap_or(&no_info);
    items.push(Requirement::Relation {
        object: obj.clone(),
        relation: table.clone(),
        label: "table".to_string(),
    });
    let column =
        |items: &mut Vec<Requirement>, object: &str, rel: &QualifiedName, c: &str, place: &str| {
            items.push(Requirement::Column {
                object: object.to_string(),
                relation: rel.clone(),
                column: c.to_string(),
                place: place.to_string(),
                local: rel == table,
            });
        };

    // Relationships.
    for (kind, key) in [
        ("object relationship", "object_relationships"),
        ("array relationship", "array_relationships"),
    ] {
        for rel in list(entry, key) {
            let object = format!("{obj}: {kind} {}", name_of(rel));
            let using = &rel["using"];
            if let Some(fk) = using.get("foreign_key_constraint_on") {
                let place = "foreign_key_constraint_on";
                match fk {
                    Value::String(_) | Value::Array(_) => {
                        let columns = match fk {
                            Value::String(c) => vec![c.clone()],
                            _ => strings(Some(fk)),
                        };
                        for c in &columns {
                            column(items, &object, table, c, place);
                        }
                        items.push(Requirement::ForeignKey {
                            object,
                            table: table.clone(),
                            columns,
                            references: None,
                        });
                    }
                    Value::Object(o) => {
                        let Some(remote) = o.get("table").and_then(QualifiedName::from_value)
                        else {
                            items.push(Requirement::Invalid {
                                object,
                                message: "foreign_key_constraint_on names no table".to_string(),
                            });
                            continue;
                        };
                        let columns = match (o.get("columns"), o.get("column")) {
                            (Some(cs), _) => strings(Some(cs)),
                            (None, Some(Value::String(c))) => vec![c.clone()],
                            _ => vec![],
                        };
                        items.push(Requirement::Relation {
                            object: object.clone(),
                            relation: remote.clone(),
                            label: format!("remote table {remote}"),
                        });
                        for c in &columns {
                            column(items, &object, &remote, c, place);
                        }
                        items.push(Requirement::ForeignKey {
                            object,
                            table: remote,
                            columns,
                            references: Some(table.clone()),
                        });
                    }
                    _ => items.push(Requirement::Invalid {
                        object,
                        message: "foreign_key_constraint_on is neither a column nor a table"
                            .to_string(),
                    }),
                }
            } else if let Some(manual) = using.get("manual_configuration") {
                let Some(remote) = manual
                    .get("remote_table")
                    .and_then(QualifiedName::from_value)
                else {
                    items.push(Requirement::Invalid {
                        object,
                        message: "manual_configuration names no remote table".to_string(),
                    });
                    continue;
                };
                items.push(Requirement::Relation {
                    object: object.clone(),
                    relation: remote.clone(),
                    label: format!("remote table {remote}"),
                });
                if let Some(mapping) = manual.get("column_mapping").and_then(Value::as_object) {
                    for (local, remote_column) in mapping {
                        column(items, &object, table, local, "column_mapping");
                        if let Some(rc) = remote_column.as_str() {
                            column(items, &object, &remote, rc, "column_mapping");
                        }
                    }
                }
            }
        }
    }

    // Permissions.
    for (kind, key) in [
        ("insert", "insert_permissions"),
        ("select", "select_permissions"),
        ("update", "update_permissions"),
        ("delete", "delete_permissions"),
    ] {
        for p in list(entry, key) {
            let role = p.get("role").and_then(Value::as_str).unwrap_or("(no role)");
            let object = format!("{obj}: {kind} permission for role {role}");
            let perm = &p["permission"];
            for c in strings(perm.get("columns")) {
                column(items, &object, table, &c, "columns");
            }
            for place in ["filter", "check"] {
                if let Some(e) = perm.get(place) {
                    Walk {
                        tables,
                        object: &object,
                        place,
                        root: table,
                        path: Vec::new(),
                        catalog: None,
                        out: items,
                    }
                    .expression(e, table);
                }
            }
            for c in keys(perm.get("set")) {
                column(items, &object, table, &c, "set");
            }
            for cf in strings(perm.get("computed_fields")) {
                if !info.computed_fields.contains(&cf) {
                    items.push(Requirement::Invalid {
                        object: object.clone(),
                        message: format!(
                            "computed field {cf} is not defined on the table (in computed_fields)"
                        ),
                    });
                }
            }
        }
    }

    // Computed fields.
    for cf in list(entry, "computed_fields") {
        let object = format!("{obj}: computed field {}", name_of(cf));
        match cf
            .pointer("/definition/function")
            .and_then(QualifiedName::from_value)
        {
            Some(function) => items.push(Requirement::Function {
                object,
                label: format!("function {function}"),
                function,
            }),
            None => items.push(Requirement::Invalid {
                object,
                message: "the definition names no function".to_string(),
            }),
        }
    }

    // Event triggers.
    for et in list(entry, "event_triggers") {
        let object = format!("{obj}: event trigger {}", name_of(et));
        let def = &et["definition"];
        for op in ["insert", "update", "delete"] {
            for field in ["columns", "payload"] {
                for c in strings(def.get(op).and_then(|o| o.get(field))) {
                    column(items, &object, table, &c, &format!("{op}.{field}"));
                }
            }
        }
    }

    // Configuration.
    if let Some(cfg) = entry.get("configuration") {
        let object = format!("{obj}: configuration");
        for key in ["custom_column_names", "column_config"] {
            for c in keys(cfg.get(key)) {
                column(items, &object, table, &c, key);
            }
        }
    }

    // Remote relationships: the local join fields.
    for rr in list(entry, "remote_relationships") {
        let object = format!("{obj}: remote relationship {}", name_of(rr));
        let def = &rr["definition"];
        let mut fields: Vec<(String, &str)> = Vec::new();
        for c in strings(def.get("hasura_fields")) {
            fields.push((c, "hasura_fields"));
        }
        for c in strings(def.pointer("/to_remote_schema/lhs_fields")) {
            fields.push((c, "lhs_fields"));
        }
        for c in keys(def.pointer("/to_source/field_mapping")) {
            fields.push((c, "field_mapping"));
        }
        for (c, place) in fields {
            if !info.computed_fields.contains(&c) {
                column(items, &object, table, &c, place);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn qn(s: &str, n: &str) -> QualifiedName {
        QualifiedName::new(s, n)
    }

    fn col(object: &str, rel: QualifiedName, c: &str, place: &str, local: bool) -> Requirement {
        Requirement::Column {
            object: object.to_string(),
            relation: rel,
            column: c.to_string(),
            place: place.to_string(),
            local,
        }
    }

    fn rel(object: &str, relation: QualifiedName, label: &str) -> Requirement {
        Requirement::Relation {
            object: object.to_string(),
            relation,
            label: label.to_string(),
        }
    }

    /// A catalog of `(schema, name, kind, columns)` relations, foreign keys and functions.
    fn catalog(
        rels: &[(&str, &str, char, &[&str])],
        fks: &[(&str, &str, &[&str], &str, &str)],
        fns: &[(&str, &str)],
    ) -> Catalog {
        Catalog {
            relations: rels
                .iter()
                .map(|(s, n, k, cs)| {
                    (
                        qn(s, n),
                        CatalogRelation {
                            kind: *k,
                            columns: cs.iter().map(|c| c.to_string()).collect(),
                        },
                    )
                })
                .collect(),
            foreign_keys: fks
                .iter()
                .map(|(s, n, cs, rs, rn)| CatalogForeignKey {
                    table: qn(s, n),
                    columns: cs.iter().map(|c| c.to_string()).collect(),
                    references: qn(rs, rn),
                })
                .collect(),
            functions: fns.iter().map(|(s, n)| qn(s, n)).collect(),
        }
    }

    fn messages(v: Vec<Inconsistency>) -> Vec<String> {
        v.into_iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn qualified_names() {
        assert_eq!(
            QualifiedName::from_value(&json!("t")),
            Some(qn("public", "t"))
        );
        assert_eq!(
            QualifiedName::from_value(&json!({"name": "t"})),
            Some(qn("public", "t"))
        );
        assert_eq!(
            QualifiedName::from_value(&json!({"schema": "s", "name": "t"})),
            Some(qn("s", "t"))
        );
        assert_eq!(QualifiedName::from_value(&json!({"schema": "s"})), None);
        assert_eq!(QualifiedName::from_value(&json!(3)), None);
        assert_eq!(qn("s", "t").to_string(), "s.t");
    }

    #[test]
    fn v2_tables_permissions_and_functions() {
        let snap = json!({"version": 2,
            "tables": [{
                "table": {"schema": "public", "name": "orders"},
                "select_permissions": [{"role": "user", "permission": {
                    "columns": ["id", "total"],
                    "filter": {"_and": [{"owner": {"_eq": "X-Hasura-User-Id"}},
                                        {"_or": [{"_not": {"status": {"_eq": "x"}}}]}]},
                    "computed_fields": ["cf", "nope"]
                }}],
                "insert_permissions": [{"role": "user", "permission": {
                    "columns": "*", "check": {}, "set": {"owner": "x-hasura-user-id"}
                }}],
                "computed_fields": [{"name": "cf", "definition": {"function": "f"}}]
            }],
            "functions": [{"function": {"schema": "s", "name": "g"}}, {"function": "h"}]
        });
        let r = requirements(&snap);
        assert_eq!(r.source.as_deref(), Some("default"));
        let t = qn("public", "orders");
        let sel = "table public.orders: select permission for role user";
        let ins = "table public.orders: insert permission for role user";
        assert_eq!(
            r.items,
            vec![
                rel("table public.orders", t.clone(), "table"),
                col(ins, t.clone(), "owner", "set", true),
                col(sel, t.clone(), "id", "columns", true),
                col(sel, t.clone(), "total", "columns", true),
                col(sel, t.clone(), "owner", "filter", true),
                col(sel, t.clone(), "status", "filter", true),
                Requirement::Invalid {
                    object: sel.to_string(),
                    message: "computed field nope is not defined on the table (in computed_fields)"
                        .to_string()
                },
                Requirement::Function {
                    object: "table public.orders: computed field cf".to_string(),
                    function: qn("public", "f"),
                    label: "function public.f".to_string()
                },
                Requirement::Function {
                    object: "function s.g".to_string(),
                    function: qn("s", "g"),
                    label: "function".to_string()
                },
                Requirement::Function {
                    object: "function public.h".to_string(),
                    function: qn("public", "h"),
                    label: "function".to_string()
                },
            ]
        );
        assert_eq!(
            r.relations().into_iter().collect::<Vec<_>>(),
            vec![t.clone()]
        );
        assert_eq!(r.functions().len(), 3);
    }

    #[test]
    fn relationships_and_expressions_through_them() {
        let snap = json!({"version": 2, "tables": [
            {"table": "orders",
             "object_relationships": [
                {"name": "customer", "using": {"foreign_key_constraint_on": "customer_id"}},
                {"name": "product", "using": {"manual_configuration": {
                    "remote_table": {"schema": "shop", "name": "products"},
                    "column_mapping": {"product_id": "id"}}}}
             ],
             "select_permissions": [{"role": "u", "permission": {"columns": [], "filter": {
                "product": {"title": {"_eq": "x"}, "_or": [{"price": {"_ceq": ["$", "total"]}}]},
                "customer": {"name": {"_eq": "x"}},
                "_exists": {"_table": {"schema": "s", "name": "e"}, "_where": {"k": {"_eq": 1}}},
                "ghost_rel_aggregate": {"count": {"predicate": {"_gt": 0}}}
             }}}]},
            {"table": {"schema": "public", "name": "customers"},
             "array_relationships": [{"name": "orders", "using": {"foreign_key_constraint_on":
                {"table": "orders", "columns": ["customer_id"]}}}]}
        ]});
        let r = requirements(&snap);
        let o = qn("public", "orders");
        let p = qn("shop", "products");
        let c = qn("public", "customers");
        let cust = "table public.orders: object relationship customer";
        let prod = "table public.orders: object relationship product";
        let sel = "table public.orders: select permission for role u";
        let arr = "table public.customers: array relationship orders";
        assert_eq!(
            r.items,
            vec![
                rel("table public.orders", o.clone(), "table"),
                col(
                    cust,
                    o.clone(),
                    "customer_id",
                    "foreign_key_constraint_on",
                    true
                ),
                Requirement::ForeignKey {
                    object: cust.to_string(),
                    table: o.clone(),
                    columns: vec!["customer_id".to_string()],
                    references: None
                },
                rel(prod, p.clone(), "remote table shop.products"),
                col(prod, o.clone(), "product_id", "column_mapping", true),
                col(prod, p.clone(), "id", "column_mapping", false),
                // serde_json maps are sorted: _exists, customer, ghost_rel_aggregate, product.
                rel(sel, qn("s", "e"), "table s.e (in _exists of filter)"),
                col(sel, qn("s", "e"), "k", "filter, through _exists", false),
                Requirement::Deferred {
                    object: sel.to_string(),
                    place: "filter".to_string(),
                    root: o.clone(),
                    from: o.clone(),
                    columns: vec!["customer_id".to_string()],
                    path: vec!["customer".to_string()],
                    expression: json!({"name": {"_eq": "x"}}),
                },
                col(sel, o.clone(), "ghost_rel_aggregate", "filter", true),
                col(sel, p.clone(), "price", "filter, through product", false),
                col(sel, o.clone(), "total", "filter", true),
                col(sel, p.clone(), "title", "filter, through product", false),
                rel("table public.customers", c.clone(), "table"),
                rel(arr, o.clone(), "remote table public.orders"),
                col(
                    arr,
                    o.clone(),
                    "customer_id",
                    "foreign_key_constraint_on",
                    false
                ),
                Requirement::ForeignKey {
                    object: arr.to_string(),
                    table: o.clone(),
                    columns: vec!["customer_id".to_string()],
                    references: Some(c.clone())
                },
            ]
        );
        let rels = r.relations();
        for t in [&o, &p, &c, &qn("s", "e")] {
            assert!(rels.contains(t), "{t}");
        }
    }

    #[test]
    fn event_triggers_configuration_and_remote_relationships() {
        let snap = json!({"version": 2, "tables": [{
            "table": "t",
            "computed_fields": [{"name": "cf", "definition": {"function": {"schema": "public", "name": "f"}}}],
            "event_triggers": [{"name": "e", "definition": {"enable_manual": false,
                "insert": {"columns": "*"}, "update": {"columns": ["a"], "payload": ["b"]},
                "delete": {"columns": "*"}}}],
            "configuration": {"custom_column_names": {"c": "C"}, "column_config": {"d": {"custom_name": "D"}}},
            "remote_relationships": [
                {"name": "r1", "definition": {"hasura_fields": ["e", "cf"], "remote_schema": "x", "remote_field": {}}},
                {"name": "r2", "definition": {"to_remote_schema": {"lhs_fields": ["g"]}}},
                {"name": "r3", "definition": {"to_source": {"field_mapping": {"h": "id"}, "source": "other", "table": "x"}}}
            ]
        }]});
        let got: Vec<(String, String)> = requirements(&snap)
            .items
            .into_iter()
            .filter_map(|i| match i {
                Requirement::Column { column, place, .. } => Some((column, place)),
                _ => None,
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("a", "update.columns"),
            ("b", "update.payload"),
            ("c", "custom_column_names"),
            ("d", "column_config"),
            ("e", "hasura_fields"),
            ("g", "lhs_fields"),
            ("h", "field_mapping"),
        ]
        .iter()
        .map(|(c, p)| (c.to_string(), p.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn v3_picks_the_default_postgres_source() {
        let t = |name: &str| json!({"table": {"schema": "public", "name": name}});
        let snap = json!({"version": 3, "sources": [
            {"name": "other", "kind": "postgres", "tables": [t("o")]},
            {"name": "default", "kind": "postgres", "tables": [t("d")], "functions": [{"function": "f"}]},
            {"name": "ms", "kind": "mssql", "tables": [t("m")]}
        ]});
        let r = requirements(&snap);
        assert_eq!(r.source.as_deref(), Some("default"));
        assert_eq!(r.skipped_sources, vec!["other", "ms"]);
        assert_eq!(
            r.relations().into_iter().collect::<Vec<_>>(),
            vec![qn("public", "d")]
        );
        assert_eq!(
            r.functions().into_iter().collect::<Vec<_>>(),
            vec![qn("public", "f")]
        );

        // The only postgres source, whatever its name; kind may be absent.
        let snap = json!({"version": 3, "sources": [
            {"name": "main", "tables": [t("a")]},
            {"name": "default", "kind": "mssql", "tables": [t("m")]}
        ]});
        let r = requirements(&snap);
        assert_eq!(r.source.as_deref(), Some("main"));
        assert_eq!(r.skipped_sources, vec!["default"]);
        assert_eq!(r.relations().len(), 1);

        // Several postgres sources and none named default: nothing is checked.
        let snap = json!({"version": 3, "sources": [
            {"name": "a", "kind": "postgres", "tables": [t("a")]},
            {"name": "b", "kind": "postgres", "tables": [t("b")]}
        ]});
        let r = requirements(&snap);
        assert_eq!(r.source, None);
        assert_eq!(r.skipped_sources, vec!["a", "b"]);
        assert!(r.items.is_empty());

        // Empty metadata.
        assert!(requirements(&Value::Null).items.is_empty());
        assert!(requirements(&json!({"version": 3, "sources": []}))
            .items
            .is_empty());
    }

    #[test]
    fn malformed_entries_are_reported() {
        let snap = json!({"version": 2,
            "tables": [{"table": 7}, {"table": "t", "object_relationships": [
                {"name": "m", "using": {"manual_configuration": {"column_mapping": {}}}}]}],
            "functions": [{"nope": 1}]});
        let c = catalog(&[("public", "t", 'r', &[])], &[], &[]);
        assert_eq!(
            messages(evaluate(&requirements(&snap), &c)),
            vec![
                "tables[0]: the entry names no table",
                "table public.t: object relationship m: manual_configuration names no remote table",
                "functions[0]: the entry names no function",
            ]
        );
    }

    #[test]
    fn evaluate_reports_missing_things_once() {
        let snap = json!({"version": 2, "tables": [
            {"table": "orders",
             "object_relationships": [
                {"name": "customer", "using": {"foreign_key_constraint_on": "customer_id"}},
                {"name": "creator", "using": {"foreign_key_constraint_on": "created_by"}}],
             "select_permissions": [{"role": "u", "permission": {
                "columns": ["id", "gone", "gone"],
                "filter": {"customer": {"nme": {"_eq": 1}, "id": {"_eq": 1}}}}}]},
            {"table": "ghost", "select_permissions": [{"role": "u", "permission": {"columns": ["x"]}}]},
            {"table": "seq"},
            {"table": "v"}
        ], "functions": [{"function": "f"}, {"function": "missing_fn"}]});
        let c = catalog(
            &[
                (
                    "public",
                    "orders",
                    'r',
                    &["id", "customer_id", "created_by"],
                ),
                ("public", "customers", 'r', &["id", "name"]),
                ("public", "seq", 'S', &["last_value"]),
                ("public", "v", 'v', &["a"]),
            ],
            &[("public", "orders", &["customer_id"], "public", "customers")],
            &[("public", "f")],
        );
        assert_eq!(
            messages(evaluate(&requirements(&snap), &c)),
            vec![
                "table public.orders: object relationship creator: no foreign key constraint on public.orders (created_by)",
                "table public.orders: select permission for role u: column gone does not exist (in columns)",
                "table public.orders: select permission for role u: column nme of public.customers does not exist (in filter, through customer)",
                "table public.ghost: table does not exist",
                "table public.seq: public.seq is a sequence, not a table or view",
                "function public.missing_fn: function does not exist",
            ]
        );
    }
}
