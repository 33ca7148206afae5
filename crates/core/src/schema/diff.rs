//! The differ: two [`Model`]s in, the ordered statements that turn the first into the second
//! out. Pure; nothing here touches a database.
//!
//! It works in three steps:
//!
//! 1. **Classify** every object: created (only in `to`), dropped (only in `from`), unchanged,
//!    altered in place (a column's type or `NOT NULL`, a default, a comment, a sequence's
//!    options, a function's body, an enum's labels by swapping in a new type…), or dropped and
//!    recreated (anything else that changed).
//! 2. **Close over dependents**: an object that depends (in `from`) on a dropped one is dropped
//!    too, and recreated if `to` has it; a column whose type changes takes the views, policies,
//!    triggers and defaults that use it along (PostgreSQL refuses to change the type under
//!    them). An object altered in place that no longer depends on a dropped object is altered
//!    first instead (a column moved off an enum before the enum goes).
//! 3. **Order** the actions as a graph: drops after the objects that depend on them (in `from`),
//!    creates after the objects they depend on (in `to`), alters in between as their
//!    dependencies demand, using the dependencies recorded from `pg_depend`, never names. Among
//!    actions that are ready, drops go first, so names are free before they are reused.
//!
//! Objects created or dropped with another are not spelled out: a new table's columns and
//! defaults are in its `CREATE TABLE`, a dropped table takes its columns, constraints, indexes,
//! triggers, policies and owned sequences with it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{Kind, Model, Object, ObjectId, Spec};

/// One statement of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The SQL, without a trailing semicolon.
    pub sql: String,
    /// The object it creates, drops or alters.
    pub object: ObjectId,
    /// What it does.
    pub action: Action,
    /// When it destroys data, what: `drops table public.t and its rows`. A plan names these.
    pub destroys: Option<String>,
    /// A caveat for whoever runs it (converting a column to an enum's new labels fails if a row
    /// holds a label that is gone).
    pub note: Option<String>,
}

/// What a statement does to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Drops it.
    Drop,
    /// Changes it in place.
    Alter,
    /// Creates it.
    Create,
}

/// Why a diff cannot be computed. Never a silently wrong script instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// Objects outside the model differ, or would be lost with objects the diff drops.
    #[error("cannot compute the schema change: {}", .0.join("; "))]
    Unsupported(Vec<String>),
    /// The dependencies form a cycle (a model the reader should never produce).
    #[error("cannot order the schema change: a dependency cycle among {}", .0.join(", "))]
    Cycle(Vec<String>),
    /// A model refers to an object it does not have (a model the reader should never produce).
    #[error("inconsistent schema model: {0}")]
    Inconsistent(String),
}

/// The statements that turn a database whose model is `from` into one whose model is `to`.
///
/// The statements are meant to run inside one transaction (a deployment's). When they create
/// or replace functions, they are bracketed by `SET LOCAL check_function_bodies = off` and
/// `SET LOCAL check_function_bodies TO DEFAULT`, as pg_dump does: a `LANGUAGE sql` body is
/// checked when it is created, and the functions and tables it names are not in `pg_depend`, so
/// no order can be relied on to have made them first.
pub fn diff(from: &Model, to: &Model) -> Result<Vec<Statement>, DiffError> {
    let plan = classify(from, to)?;
    check_unsupported(from, to, &plan.drop)?;
    let mut statements = order(from, to, &plan)?;
    let function = statements
        .iter()
        .find(|s| s.object.kind == Kind::Function && s.action != Action::Drop)
        .map(|s| s.object.clone());
    if let Some(function) = function {
        let setting = |value: &str| Statement {
            note: Some(
                "function bodies are checked when they run, not when the diff creates them"
                    .to_string(),
            ),
            ..statement(
                &function,
                Action::Alter,
                format!("{SESSION_SETTING}{value}"),
            )
        };
        statements.insert(0, setting("= off"));
        statements.push(setting("TO DEFAULT"));
    }
    Ok(statements)
}

/// How the statements that bracket created functions start.
const SESSION_SETTING: &str = "SET LOCAL check_function_bodies ";

/// What happens to each object that changes.
#[derive(Debug, Default)]
struct Classification {
    /// Dropped (removed, or recreated).
    drop: BTreeSet<ObjectId>,
    /// Created (new, or recreated).
    create: BTreeSet<ObjectId>,
    /// Altered in place, with the statements.
    alter: BTreeMap<ObjectId, Vec<Statement>>,
    /// Enums replaced by a new type (their statements are made once the rest is known).
    swaps: BTreeSet<ObjectId>,
    /// Columns converted to a replaced enum's new type.
    swap_columns: BTreeSet<ObjectId>,
    /// Objects dropped before and created after an alteration of another object, which.
    around: BTreeMap<ObjectId, ObjectId>,
}

/// Kinds a column's type change drops and recreates when they use the column.
const REBUILT_ON_TYPE_CHANGE: &[Kind] = &[
    Kind::View,
    Kind::MaterializedView,
    Kind::Trigger,
    Kind::Policy,
    Kind::Default,
    Kind::Function,
    Kind::Column,
];

fn classify(from: &Model, to: &Model) -> Result<Classification, DiffError> {
    let mut c = Classification::default();
    // Objects altered in place whose users must be rebuilt around the alteration: a column
    // whose type changes, an enum replaced by a new one.
    let mut rebuilt_around = Vec::new();
    let enums: BTreeSet<&str> = from
        .objects
        .values()
        .chain(to.objects.values())
        .filter(|o| matches!(o.spec, Spec::Enum { .. }))
        .map(|o| o.id.name.as_str())
        .collect();
    for (id, old) in &from.objects {
        match to.objects.get(id) {
            None => {
                c.drop.insert(id.clone());
            }
            Some(new) if new.spec == old.spec => {}
            Some(new) => match alter(old, new, &enums)? {
                Some(statements) => {
                    if is_retype(&old.spec, &new.spec) {
                        rebuilt_around.push((id.clone(), Mode::Retyped(id.clone())));
                    }
                    c.alter.insert(id.clone(), statements);
                }
                None if is_enum_swap(&old.spec, &new.spec) => {
                    c.swaps.insert(id.clone());
                    c.alter.insert(id.clone(), Vec::new());
                    rebuilt_around.push((id.clone(), Mode::Swapped(id.clone())));
                }
                None => {
                    c.drop.insert(id.clone());
                    c.create.insert(id.clone());
                }
            },
        }
    }
    for id in to.objects.keys() {
        if !from.objects.contains_key(id) {
            c.create.insert(id.clone());
        }
    }

    let dependents = dependents(from);
    let mut work: Vec<(ObjectId, Mode)> = c
        .drop
        .iter()
        .map(|id| (id.clone(), Mode::Dropped))
        .collect();
    work.extend(rebuilt_around);
    while let Some((x, mode)) = work.pop() {
        for y in dependents.get(&x).into_iter().flatten() {
            if c.drop.contains(y) {
                continue;
            }
            match &mode {
                Mode::Dropped => {
                    if c.alter.contains_key(y) && detaches(from, to, y, &x) {
                        // Altered in place away from `x` before `x` is dropped.
                        continue;
                    }
                }
                Mode::Retyped(around) => {
                    if !REBUILT_ON_TYPE_CHANGE.contains(&y.kind) {
                        continue;
                    }
                    c.around.insert(y.clone(), around.clone());
                }
                Mode::Swapped(around) => {
                    if y.kind == Kind::Column && !c.swap_columns.contains(y) {
                        // Converted to the new enum by the swap; its users are rebuilt.
                        c.swap_columns.insert(y.clone());
                        work.push((y.clone(), Mode::Retyped(around.clone())));
                        continue;
                    }
                    if matches!(y.kind, Kind::Column | Kind::Table) {
                        // A partition's columns are its parent's, converted with them.
                        continue;
                    }
                    c.around.insert(y.clone(), around.clone());
                }
            }
            c.alter.remove(y);
            c.drop.insert(y.clone());
            if to.objects.contains_key(y) {
                c.create.insert(y.clone());
            }
            work.push((y.clone(), Mode::Dropped));
        }
    }
    Ok(c)
}

/// How an object reached in the closure over dependents got there.
enum Mode {
    /// It is dropped: its dependents go too.
    Dropped,
    /// It is a column whose type changes by the alteration of the given object: the users
    /// PostgreSQL refuses to change the type under are rebuilt around that alteration.
    Retyped(ObjectId),
    /// It is an enum replaced by a new one: its columns are converted, everything else that
    /// uses it is rebuilt around the replacement.
    Swapped(ObjectId),
}

/// Whether an enum's labels change. It is always replaced by a new type (see [`enum_swap`]),
/// never extended with `ALTER TYPE … ADD VALUE`: a label added that way cannot be used until
/// the transaction commits, and the differ's statements run inside a deployment's transaction,
/// before the statements (defaults, views, later migrations) that may use it.
fn is_enum_swap(old: &Spec, new: &Spec) -> bool {
    matches!((old, new), (Spec::Enum { .. }, Spec::Enum { .. }))
}

/// The statements that replace enum `id` by its new labels: rename the old type away, create
/// the new one, convert the columns through `text` (which fails, rolling back, if a row holds a
/// label that is gone), drop the old type.
fn enum_swap(from: &Model, to: &Model, c: &Classification, id: &ObjectId) -> Vec<Statement> {
    const OLD: &str = "git_migrate_replaced_enum";
    let Some(Spec::Enum { labels }) = to.objects.get(id).map(|o| &o.spec) else {
        return Vec::new();
    };
    let schema = schema_of(&id.name);
    let st = |sql: String| statement(id, Action::Alter, sql);
    let mut out = vec![
        st(format!("ALTER TYPE {} RENAME TO {OLD}", id.name)),
        st(format!(
            "CREATE TYPE {} AS ENUM ({})",
            id.name,
            labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    ];
    for column in &c.swap_columns {
        if c.drop.contains(column) {
            continue;
        }
        if let Some(Spec::Column {
            table,
            name,
            data_type,
            ..
        }) = from.objects.get(column).map(|o| &o.spec)
        {
            out.push(Statement {
                note: Some(format!(
                    "fails if a row of {} holds a label {} no longer has",
                    column.name, id.name
                )),
                ..st(format!(
                    "ALTER TABLE {table} ALTER COLUMN {name} TYPE {data_type} USING {name}::text::{data_type}"
                ))
            });
        }
    }
    out.push(st(format!("DROP TYPE {schema}.{OLD}")));
    out
}

/// The schema part of a qualified name as `quote_ident` writes it (`"my.schema".t` →
/// `"my.schema"`): up to the first dot outside double quotes.
fn schema_of(qualified: &str) -> &str {
    let mut quoted = false;
    for (i, ch) in qualified.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '.' if !quoted => return &qualified[..i],
            _ => {}
        }
    }
    qualified
}

/// Whether `y`, altered in place, stops depending on `x` (which is dropped): it is neither
/// part of `x` nor, in `to`, dependent on it.
fn detaches(from: &Model, to: &Model, y: &ObjectId, x: &ObjectId) -> bool {
    let owned = from.objects.get(y).is_some_and(|o| o.owners.contains(x));
    let still =
        to.objects.get(y).is_some_and(|o| o.depends_on.contains(x)) && to.objects.contains_key(x);
    !owned && !still
}

/// For each object, the objects of `model` that depend on it or are part of it.
fn dependents(model: &Model) -> BTreeMap<ObjectId, BTreeSet<ObjectId>> {
    let mut out: BTreeMap<ObjectId, BTreeSet<ObjectId>> = BTreeMap::new();
    for (id, o) in &model.objects {
        for d in o.depends_on.iter().chain(&o.owners).chain(&o.parent) {
            if d != id {
                out.entry(d.clone()).or_default().insert(id.clone());
            }
        }
    }
    out
}

fn is_retype(old: &Spec, new: &Spec) -> bool {
    matches!((old, new), (
        Spec::Column { data_type: a, collation: ac, .. },
        Spec::Column { data_type: b, collation: bc, .. },
    ) if a != b || ac != bc)
}

/// Refuses when objects outside the model differ, or belong to an object the diff drops (a
/// grant on a table that is recreated would silently be lost).
fn check_unsupported(
    from: &Model,
    to: &Model,
    dropped: &BTreeSet<ObjectId>,
) -> Result<(), DiffError> {
    let mut problems = Vec::new();
    let keys: BTreeSet<&(String, String)> = from
        .unsupported
        .keys()
        .chain(to.unsupported.keys())
        .collect();
    let dropped_names: BTreeSet<(&str, &str)> = dropped
        .iter()
        .flat_map(|id| {
            let procedure = (id.kind == Kind::Function).then_some("procedure");
            [Some(id.kind.as_str()), procedure]
                .into_iter()
                .flatten()
                .map(move |k| (k, id.name.as_str()))
        })
        .collect();
    for key in keys {
        let (kind, name) = key;
        match (from.unsupported.get(key), to.unsupported.get(key)) {
            (Some(a), Some(b)) if a.definition == b.definition => {
                if let Some((pk, pn)) = &a.parent {
                    if dropped_names.contains(&(pk.as_str(), pn.as_str())) {
                        problems.push(format!(
                            "{kind} {name} is outside the schema model and would be lost \
                             when {pk} {pn} is dropped and recreated"
                        ));
                    }
                }
            }
            (Some(a), Some(_)) => problems.push(format!(
                "{kind} {name} is outside the schema model and differs ({})",
                a.definition
            )),
            (Some(_), None) => problems.push(format!(
                "{kind} {name} is outside the schema model and would have to be dropped"
            )),
            (None, Some(_)) => problems.push(format!(
                "{kind} {name} is outside the schema model and would have to be created"
            )),
            (None, None) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DiffError::Unsupported(problems))
    }
}

/// A node of the ordering graph.
type Node = (Action, ObjectId);

/// Which ready node goes first: action, then [`rank`], position, name.
type ReadyKey = (Action, u8, i64, String);

/// Order of objects of equal standing: schemas and types first, functions after the tables
/// and views (a `LANGUAGE sql` body that names a table is checked when created, and
/// `pg_depend` does not record it).
fn rank(kind: Kind) -> u8 {
    match kind {
        Kind::Schema => 0,
        Kind::Extension => 1,
        Kind::Type => 2,
        Kind::Sequence => 3,
        Kind::Table => 4,
        Kind::Column => 5,
        Kind::Default => 6,
        Kind::Constraint => 7,
        Kind::Index => 8,
        Kind::View => 9,
        Kind::MaterializedView => 10,
        Kind::Function => 11,
        Kind::Trigger => 12,
        Kind::Policy => 13,
        Kind::RowSecurity => 14,
        Kind::SequenceOwnership => 15,
        Kind::Comment => 16,
        Kind::Grant => 17,
    }
}

fn order(from: &Model, to: &Model, c: &Classification) -> Result<Vec<Statement>, DiffError> {
    // Who actually performs each drop and create.
    let drop_emitters = drop_emitters(from, &c.drop);
    let drop_emitter = |id: &ObjectId| drop_emitters.get(id).cloned().unwrap_or_else(|| id.clone());
    let create_emitter =
        |id: &ObjectId| emitter(id, &c.create, |x| create_parent(to, x, &c.create));

    let mut nodes: BTreeSet<Node> = BTreeSet::new();
    let mut edges: BTreeSet<(Node, Node)> = BTreeSet::new();
    for id in &c.drop {
        nodes.insert((Action::Drop, drop_emitter(id)));
    }
    for id in &c.create {
        nodes.insert((Action::Create, create_emitter(id)));
    }
    for id in c.alter.keys() {
        nodes.insert((Action::Alter, id.clone()));
    }
    let mut edge = |a: Node, b: Node| {
        if a != b {
            edges.insert((a, b));
        }
    };
    for (x, around) in &c.around {
        if c.drop.contains(x) {
            edge(
                (Action::Drop, drop_emitter(x)),
                (Action::Alter, around.clone()),
            );
        }
        if c.create.contains(x) {
            edge(
                (Action::Alter, around.clone()),
                (Action::Create, create_emitter(x)),
            );
        }
    }
    for x in &c.drop {
        if drop_emitter(x) == *x {
            // Dropped by its own statement: before whatever would take it along.
            for p in &object(from, x)?.owners {
                if c.drop.contains(p) {
                    edge((Action::Drop, x.clone()), (Action::Drop, drop_emitter(p)));
                }
            }
        }
    }
    for x in &c.drop {
        let dx = (Action::Drop, drop_emitter(x));
        for y in &object(from, x)?.depends_on {
            if c.drop.contains(y) {
                edge(dx.clone(), (Action::Drop, drop_emitter(y)));
            } else if c.alter.contains_key(y) {
                edge(dx.clone(), (Action::Alter, y.clone()));
            }
        }
        if c.create.contains(x) {
            edge(dx.clone(), (Action::Create, create_emitter(x)));
        }
    }
    for x in &c.create {
        let cx = (Action::Create, create_emitter(x));
        for y in &object(to, x)?.depends_on {
            if c.create.contains(y) {
                edge((Action::Create, create_emitter(y)), cx.clone());
            } else if c.alter.contains_key(y) {
                edge((Action::Alter, y.clone()), cx.clone());
            }
        }
    }
    for x in c.alter.keys() {
        let ax = (Action::Alter, x.clone());
        let new = object(to, x)?;
        for y in &new.depends_on {
            if c.create.contains(y) {
                edge((Action::Create, create_emitter(y)), ax.clone());
            } else if c.alter.contains_key(y) {
                edge((Action::Alter, y.clone()), ax.clone());
            }
        }
        for y in &object(from, x)?.depends_on {
            if c.drop.contains(y) && !(new.depends_on.contains(y) && to.objects.contains_key(y)) {
                edge(ax.clone(), (Action::Drop, drop_emitter(y)));
            }
        }
    }

    // Kahn's algorithm; among ready nodes drops first, then alters, then creates, each by rank,
    // position and name, so the output is deterministic.
    let mut indegree: BTreeMap<&Node, usize> = nodes.iter().map(|n| (n, 0)).collect();
    let mut successors: BTreeMap<&Node, Vec<&Node>> = BTreeMap::new();
    for (a, b) in &edges {
        let (Some(a), Some(b)) = (nodes.get(a), nodes.get(b)) else {
            return Err(DiffError::Inconsistent(format!(
                "an ordering edge between {} and {} has no node",
                a.1, b.1
            )));
        };
        successors.entry(a).or_default().push(b);
        *indegree.entry(b).or_default() += 1;
    }
    let key = |n: &Node| -> ReadyKey {
        let model = if n.0 == Action::Drop { from } else { to };
        let position = model.objects.get(&n.1).map_or(0, |o| o.position);
        (n.0, rank(n.1.kind), position, n.1.name.clone())
    };
    let mut ready: BTreeSet<(ReadyKey, &Node)> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| (key(n), *n))
        .collect();
    let mut out = Vec::new();
    let mut done = 0;
    while let Some(first) = ready.pop_first() {
        let node = first.1;
        done += 1;
        out.extend(statements_for(from, to, c, node)?);
        for next in successors.get(node).into_iter().flatten() {
            if let Some(d) = indegree.get_mut(next) {
                *d -= 1;
                if *d == 0 {
                    ready.insert((key(next), *next));
                }
            }
        }
    }
    if done < nodes.len() {
        let stuck = indegree
            .iter()
            .filter(|(_, d)| **d > 0)
            .map(|(n, _)| format!("{:?} {}", n.0, n.1).to_lowercase())
            .collect();
        return Err(DiffError::Cycle(stuck));
    }
    Ok(out)
}

/// `id`'s object in `model`, or an error naming it.
fn object<'a>(model: &'a Model, id: &ObjectId) -> Result<&'a Object, DiffError> {
    model
        .objects
        .get(id)
        .ok_or_else(|| DiffError::Inconsistent(format!("{id} is not in the model")))
}

/// Follows `up` (the object whose action performs this one's) while it stays in `set`.
fn emitter(
    id: &ObjectId,
    set: &BTreeSet<ObjectId>,
    up: impl Fn(&ObjectId) -> Option<ObjectId>,
) -> ObjectId {
    let mut current = id.clone();
    // Chains are short (default → column → table); the bound guards against a cycle.
    for _ in 0..16 {
        match up(&current) {
            Some(next) if set.contains(&next) => current = next,
            _ => break,
        }
    }
    current
}

/// For each dropped object, the object whose drop statement drops it: itself, or an owner
/// (a table for its columns, a column for its default) when everything it depends on that is
/// dropped goes with that same statement. A foreign key between two dropped tables depends on
/// the other table, so it is dropped on its own first; otherwise neither table could go first.
fn drop_emitters(from: &Model, dropped: &BTreeSet<ObjectId>) -> BTreeMap<ObjectId, ObjectId> {
    fn resolve(
        id: &ObjectId,
        from: &Model,
        dropped: &BTreeSet<ObjectId>,
        memo: &mut BTreeMap<ObjectId, ObjectId>,
        visiting: &mut BTreeSet<ObjectId>,
    ) -> ObjectId {
        if let Some(e) = memo.get(id) {
            return e.clone();
        }
        if !visiting.insert(id.clone()) {
            // A cycle through owners: drop it on its own.
            return id.clone();
        }
        let mut result = id.clone();
        if let (Some(o), Some(owner)) = (from.objects.get(id), drop_owner(from, id, dropped)) {
            let e = resolve(&owner, from, dropped, memo, visiting);
            // Dropped with its owner when whatever else it needs gone first goes with the
            // owner too, or is a standalone object (a type, a sequence, a schema, an
            // extension) that can only be dropped after the owner: `DROP TABLE orders` then
            // `DROP TYPE status`, not a separate `DROP COLUMN status` first.
            let with_owner = o
                .depends_on
                .iter()
                .filter(|y| *y != id && dropped.contains(*y))
                .all(|y| {
                    resolve(y, from, dropped, memo, visiting) == e || after_owner(from, y, &e)
                });
            if with_owner {
                result = e;
            }
        }
        visiting.remove(id);
        memo.insert(id.clone(), result.clone());
        result
    }
    let mut memo = BTreeMap::new();
    let mut visiting = BTreeSet::new();
    for id in dropped {
        resolve(id, from, dropped, &mut memo, &mut visiting);
    }
    memo
}

/// Whether `y` is a kind that never needs dropping before `owner`: a type, sequence, schema or
/// extension that does not itself depend on `owner`.
fn after_owner(from: &Model, y: &ObjectId, owner: &ObjectId) -> bool {
    matches!(
        y.kind,
        Kind::Type | Kind::Sequence | Kind::Schema | Kind::Extension
    ) && from
        .objects
        .get(y)
        .is_some_and(|o| !o.depends_on.contains(owner) && !o.owners.contains(owner))
}

/// The dropped object whose drop takes `id` along, if any.
fn drop_owner(from: &Model, id: &ObjectId, dropped: &BTreeSet<ObjectId>) -> Option<ObjectId> {
    let o = from.objects.get(id)?;
    o.owners
        .iter()
        .chain(&o.parent)
        .filter(|p| *p != id && dropped.contains(*p))
        .min_by_key(|p| (rank(p.kind), (*p).clone()))
        .cloned()
}

/// The created object whose create makes `id` too: a new table makes its columns, a new column
/// its default.
fn create_parent(to: &Model, id: &ObjectId, created: &BTreeSet<ObjectId>) -> Option<ObjectId> {
    let o = to.objects.get(id)?;
    match (id.kind, &o.parent) {
        (Kind::Column, Some(p)) | (Kind::Default, Some(p)) if created.contains(p) => {
            Some(p.clone())
        }
        _ => None,
    }
}

fn statements_for(
    from: &Model,
    to: &Model,
    c: &Classification,
    node: &Node,
) -> Result<Vec<Statement>, DiffError> {
    let (action, id) = node;
    match action {
        Action::Alter if c.swaps.contains(id) => Ok(enum_swap(from, to, c, id)),
        Action::Alter => Ok(c.alter.get(id).cloned().unwrap_or_default()),
        Action::Drop => {
            let o = from
                .objects
                .get(id)
                .ok_or_else(|| DiffError::Inconsistent(format!("{id} is not in `from`")))?;
            Ok(drop_sql(o))
        }
        Action::Create => {
            let o = to
                .objects
                .get(id)
                .ok_or_else(|| DiffError::Inconsistent(format!("{id} is not in `to`")))?;
            create_sql(to, o)
        }
    }
}

pub(crate) use crate::quote::quote_literal as literal;

fn statement(id: &ObjectId, action: Action, sql: String) -> Statement {
    Statement {
        sql,
        object: id.clone(),
        action,
        destroys: None,
        note: None,
    }
}

/// A column as in `CREATE TABLE` or `ADD COLUMN`, with its default when `default` is given.
fn column_definition(spec: &Spec, default: Option<&str>) -> String {
    let Spec::Column {
        name,
        data_type,
        collation,
        not_null,
        identity,
        generated,
        ..
    } = spec
    else {
        return String::new();
    };
    let mut s = format!("{name} {data_type}");
    if let Some(c) = collation {
        s.push_str(&format!(" COLLATE {c}"));
    }
    if let Some(g) = generated {
        s.push_str(&format!(" GENERATED ALWAYS AS ({g}) STORED"));
    }
    if let Some(i) = identity {
        s.push_str(&format!(" GENERATED {i} AS IDENTITY"));
    }
    if let Some(d) = default {
        s.push_str(&format!(" DEFAULT {}", reparse_stable(d)));
    }
    if *not_null {
        s.push_str(" NOT NULL");
    }
    s
}

/// The default expression of a column in `model`, if it has one.
fn default_of<'a>(model: &'a Model, column: &ObjectId) -> Option<&'a str> {
    match &model.get(Kind::Default, &column.name)?.spec {
        Spec::Default { expression, .. } => Some(expression.as_str()),
        _ => None,
    }
}

/// The statements that create `o` (and, for a table, its columns and their defaults).
fn create_sql(to: &Model, o: &Object) -> Result<Vec<Statement>, DiffError> {
    let id = &o.id;
    let name = &id.name;
    let one = |sql: String| Ok(vec![statement(id, Action::Create, sql)]);
    match &o.spec {
        Spec::Schema => one(format!("CREATE SCHEMA {name}")),
        Spec::Extension {
            name,
            schema,
            version,
        } => one(format!(
            "CREATE EXTENSION {name} WITH SCHEMA {schema} VERSION {}",
            literal(version)
        )),
        Spec::Enum { labels } => one(format!(
            "CREATE TYPE {name} AS ENUM ({})",
            labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Spec::Composite { attributes } => one(format!("CREATE TYPE {name} AS ({attributes})")),
        Spec::Domain {
            base,
            collation,
            default,
            not_null,
            constraints,
        } => {
            let mut sql = format!("CREATE DOMAIN {name} AS {base}");
            if let Some(c) = collation {
                sql.push_str(&format!(" COLLATE {c}"));
            }
            if let Some(d) = default {
                sql.push_str(&format!(" DEFAULT {d}"));
            }
            if *not_null {
                sql.push_str(" NOT NULL");
            }
            for (n, def) in constraints {
                sql.push_str(&format!(" CONSTRAINT {n} {}", reparse_stable(def)));
            }
            one(sql)
        }
        Spec::Range { options } => one(format!("CREATE TYPE {name} AS RANGE ({options})")),
        Spec::Sequence { options } => one(format!("CREATE SEQUENCE {name} {options}")),
        Spec::SequenceOwnership { sequence, column } => {
            one(format!("ALTER SEQUENCE {sequence} OWNED BY {column}"))
        }
        Spec::Table {
            partition_by,
            partition_of,
            unlogged,
            options,
        } => {
            let mut columns: Vec<&Object> = to
                .objects
                .values()
                .filter(|c| c.id.kind == Kind::Column && c.parent.as_ref() == Some(id))
                .collect();
            columns.sort_by_key(|c| (c.position, c.id.name.clone()));
            let columns: Vec<String> = columns
                .iter()
                .map(|c| column_definition(&c.spec, default_of(to, &c.id)))
                .collect();
            let mut sql = format!(
                "CREATE {}TABLE {name} ",
                if *unlogged { "UNLOGGED " } else { "" }
            );
            match partition_of {
                Some((parent, bound)) => {
                    sql.push_str(&format!("PARTITION OF {parent}"));
                    if !columns.is_empty() {
                        sql.push_str(&format!(" ({})", columns.join(", ")));
                    }
                    sql.push_str(&format!(" {bound}"));
                }
                None => sql.push_str(&format!("({})", columns.join(", "))),
            }
            if let Some(key) = partition_by {
                sql.push_str(&format!(" PARTITION BY {key}"));
            }
            if let Some(options) = options {
                sql.push_str(&format!(" WITH ({options})"));
            }
            one(sql)
        }
        Spec::Column { table, .. } => one(format!(
            "ALTER TABLE {table} ADD COLUMN {}",
            column_definition(&o.spec, default_of(to, id))
        )),
        Spec::Default {
            table,
            column,
            expression,
        } => one(format!(
            "ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {}",
            reparse_stable(expression)
        )),
        Spec::Constraint {
            table,
            name,
            definition,
        } => one(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name} {}",
            reparse_stable(definition)
        )),
        // On a partitioned table the server prints `ON ONLY`, which makes an invalid index
        // waiting for its partitions' indexes; without it the index is made on every partition.
        Spec::Index { definition } => {
            one(reparse_stable(definition).replacen(" ON ONLY ", " ON ", 1))
        }
        Spec::View {
            definition,
            options,
            materialized,
            populated,
        } => {
            let body = reparse_stable(definition.trim().trim_end_matches(';').trim_end());
            let with = options
                .as_ref()
                .map(|o| format!(" WITH ({o})"))
                .unwrap_or_default();
            if *materialized {
                one(format!(
                    "CREATE MATERIALIZED VIEW {name}{with} AS {body} WITH {}DATA",
                    if *populated { "" } else { "NO " }
                ))
            } else {
                one(format!("CREATE VIEW {name}{with} AS {body}"))
            }
        }
        Spec::Function { definition, .. } => one(definition.trim_end().to_string()),
        Spec::Trigger { definition, .. } => one(definition.clone()),
        Spec::Policy {
            table,
            name,
            permissive,
            command,
            roles,
            using,
            with_check,
        } => {
            let mut sql = format!(
                "CREATE POLICY {name} ON {table} AS {} FOR {command} TO {}",
                if *permissive {
                    "PERMISSIVE"
                } else {
                    "RESTRICTIVE"
                },
                roles.join(", ")
            );
            if let Some(u) = using {
                sql.push_str(&format!(" USING ({})", reparse_stable(u)));
            }
            if let Some(w) = with_check {
                sql.push_str(&format!(" WITH CHECK ({})", reparse_stable(w)));
            }
            one(sql)
        }
        Spec::RowSecurity {
            table,
            enabled,
            forced,
        } => {
            let mut out = Vec::new();
            if *enabled {
                out.push(statement(
                    id,
                    Action::Create,
                    format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
                ));
            }
            if *forced {
                out.push(statement(
                    id,
                    Action::Create,
                    format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"),
                ));
            }
            Ok(out)
        }
        Spec::Comment { target, text } => one(format!("COMMENT ON {target} IS {}", literal(text))),
        Spec::Grant {
            target,
            column,
            grantee,
            privileges,
            defaults,
        } => Ok(grant_sql(
            id,
            Action::Create,
            target,
            column,
            grantee,
            defaults,
            privileges,
        )),
    }
}

/// `REVOKE` and `GRANT` statements that take `grantee`'s privileges on `target` from `have`
/// to `want`, touching only what differs (revoking a table privilege also revokes it on every
/// column, so nothing is revoked that stays).
fn grant_sql(
    id: &ObjectId,
    action: Action,
    target: &str,
    column: &Option<String>,
    grantee: &str,
    have: &[String],
    want: &[String],
) -> Vec<Statement> {
    const OPTION: &str = " WITH GRANT OPTION";
    let cols = column
        .as_ref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let plain = |p: &str| p.trim_end_matches(OPTION).to_string();
    let wanted_plain: BTreeSet<String> = want.iter().map(|p| plain(p)).collect();
    let (mut revoke, mut revoke_option) = (Vec::new(), Vec::new());
    for p in have.iter().filter(|p| !want.contains(p)) {
        if p.ends_with(OPTION) && wanted_plain.contains(&plain(p)) {
            revoke_option.push(format!("{}{cols}", plain(p)));
        } else if !wanted_plain.contains(&plain(p)) {
            revoke.push(format!("{}{cols}", plain(p)));
        }
    }
    let (mut grant, mut grant_option) = (Vec::new(), Vec::new());
    for p in want.iter().filter(|p| !have.contains(p)) {
        if p.ends_with(OPTION) {
            grant_option.push(format!("{}{cols}", plain(p)));
        } else if !have.iter().any(|h| plain(h) == *p) {
            grant.push(format!("{p}{cols}"));
        }
    }
    let mut out = Vec::new();
    let mut push = |sql: String| out.push(statement(id, action, sql));
    if !revoke_option.is_empty() {
        push(format!(
            "REVOKE GRANT OPTION FOR {} ON {target} FROM {grantee}",
            revoke_option.join(", ")
        ));
    }
    if !revoke.is_empty() {
        push(format!(
            "REVOKE {} ON {target} FROM {grantee}",
            revoke.join(", ")
        ));
    }
    if !grant.is_empty() {
        push(format!(
            "GRANT {} ON {target} TO {grantee}",
            grant.join(", ")
        ));
    }
    if !grant_option.is_empty() {
        push(format!(
            "GRANT {} ON {target} TO {grantee} WITH GRANT OPTION",
            grant_option.join(", ")
        ));
    }
    out
}

/// The statements that drop `o` (its parts go with it).
fn drop_sql(o: &Object) -> Vec<Statement> {
    let id = &o.id;
    let name = &id.name;
    let sql = match &o.spec {
        Spec::Schema => format!("DROP SCHEMA {name}"),
        Spec::Extension { name, .. } => format!("DROP EXTENSION {name}"),
        Spec::Enum { .. } | Spec::Composite { .. } | Spec::Range { .. } => {
            format!("DROP TYPE {name}")
        }
        Spec::Domain { .. } => format!("DROP DOMAIN {name}"),
        Spec::Sequence { .. } => format!("DROP SEQUENCE {name}"),
        Spec::SequenceOwnership { sequence, .. } => {
            format!("ALTER SEQUENCE {sequence} OWNED BY NONE")
        }
        Spec::Table { .. } => {
            return vec![Statement {
                destroys: Some(format!("drops table {name} and its rows")),
                ..statement(id, Action::Drop, format!("DROP TABLE {name}"))
            }]
        }
        Spec::Column {
            table,
            name: column,
            generated,
            ..
        } => {
            return vec![Statement {
                destroys: generated
                    .is_none()
                    .then(|| format!("drops column {name} and its values")),
                ..statement(
                    id,
                    Action::Drop,
                    format!("ALTER TABLE {table} DROP COLUMN {column}"),
                )
            }]
        }
        Spec::Default { table, column, .. } => {
            format!("ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT")
        }
        Spec::Constraint { table, name, .. } => {
            format!("ALTER TABLE {table} DROP CONSTRAINT {name}")
        }
        Spec::Index { .. } => format!("DROP INDEX {name}"),
        Spec::View {
            materialized: true, ..
        } => format!("DROP MATERIALIZED VIEW {name}"),
        Spec::View { .. } => format!("DROP VIEW {name}"),
        Spec::Function { result: None, .. } => format!("DROP PROCEDURE {name}"),
        Spec::Function { .. } => format!("DROP FUNCTION {name}"),
        Spec::Trigger { table, name, .. } => format!("DROP TRIGGER {name} ON {table}"),
        Spec::Policy { table, name, .. } => format!("DROP POLICY {name} ON {table}"),
        Spec::RowSecurity {
            table,
            enabled,
            forced,
        } => {
            let mut out = Vec::new();
            if *enabled {
                out.push(statement(
                    id,
                    Action::Drop,
                    format!("ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"),
                ));
            }
            if *forced {
                out.push(statement(
                    id,
                    Action::Drop,
                    format!("ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"),
                ));
            }
            return out;
        }
        Spec::Comment { target, .. } => format!("COMMENT ON {target} IS NULL"),
        Spec::Grant {
            target,
            column,
            grantee,
            privileges,
            defaults,
        } => {
            return grant_sql(
                id,
                Action::Drop,
                target,
                column,
                grantee,
                privileges,
                defaults,
            )
        }
    };
    vec![statement(id, Action::Drop, sql)]
}

/// The statements that change `old` into `new` in place, or `None` when it must be dropped and
/// recreated.
fn alter(
    old: &Object,
    new: &Object,
    enums: &BTreeSet<&str>,
) -> Result<Option<Vec<Statement>>, DiffError> {
    let id = &new.id;
    let name = &id.name;
    let st = |sql: String| statement(id, Action::Alter, sql);
    Ok(match (&old.spec, &new.spec) {
        (
            Spec::Column {
                data_type: t0,
                collation: c0,
                not_null: n0,
                identity: i0,
                generated: g0,
                ..
            },
            Spec::Column {
                table,
                name: column,
                data_type: t1,
                collation: c1,
                not_null: n1,
                identity: i1,
                generated: g1,
            },
        ) => {
            if g0 != g1 {
                // A generated column's values are derived: recreating it loses nothing.
                return Ok(None);
            }
            let mut out = Vec::new();
            if i0.is_some() && i1.is_none() {
                out.push(st(format!(
                    "ALTER TABLE {table} ALTER COLUMN {column} DROP IDENTITY"
                )));
            }
            if t0 != t1 || c0 != c1 {
                let collate = c1
                    .as_ref()
                    .map(|c| format!(" COLLATE {c}"))
                    .unwrap_or_default();
                // An enum has casts to and from text only.
                let via = if (enums.contains(t0.as_str()) || enums.contains(t1.as_str()))
                    && t0 != "text"
                    && t1 != "text"
                {
                    "::text"
                } else {
                    ""
                };
                out.push(Statement {
                    destroys: Some(format!(
                        "changes the type of column {name} from {t0} to {t1}; values are converted"
                    )),
                    ..st(format!(
                        "ALTER TABLE {table} ALTER COLUMN {column} TYPE {t1}{collate} USING {column}{via}::{t1}"
                    ))
                });
            }
            if n0 != n1 {
                out.push(st(format!(
                    "ALTER TABLE {table} ALTER COLUMN {column} {} NOT NULL",
                    if *n1 { "SET" } else { "DROP" }
                )));
            }
            // After NOT NULL, which an identity needs.
            match (i0, i1) {
                (None, Some(i)) => out.push(st(format!(
                    "ALTER TABLE {table} ALTER COLUMN {column} ADD GENERATED {i} AS IDENTITY"
                ))),
                (Some(a), Some(b)) if a != b => out.push(st(format!(
                    "ALTER TABLE {table} ALTER COLUMN {column} SET GENERATED {b}"
                ))),
                _ => {}
            }
            Some(out)
        }
        (Spec::Default { .. }, Spec::Default { .. })
        | (Spec::Comment { .. }, Spec::Comment { .. })
        | (Spec::SequenceOwnership { .. }, Spec::SequenceOwnership { .. }) => {
            // SET DEFAULT, COMMENT and OWNED BY replace what was there.
            Some(create_sql(&Model::default(), new)?).map(|v| {
                v.into_iter()
                    .map(|s| Statement {
                        action: Action::Alter,
                        ..s
                    })
                    .collect()
            })
        }
        (
            Spec::Domain {
                base: b0,
                collation: c0,
                default: d0,
                not_null: n0,
                constraints: k0,
            },
            Spec::Domain {
                base: b1,
                collation: c1,
                default: d1,
                not_null: n1,
                constraints: k1,
            },
        ) if b0 == b1 && c0 == c1 => {
            // In place, so the columns of the domain keep their values.
            let mut out = Vec::new();
            for (n, def) in k0 {
                if !k1.contains(&(n.clone(), def.clone())) {
                    out.push(st(format!("ALTER DOMAIN {name} DROP CONSTRAINT {n}")));
                }
            }
            if d0 != d1 {
                out.push(st(match d1 {
                    Some(d) => format!("ALTER DOMAIN {name} SET DEFAULT {d}"),
                    None => format!("ALTER DOMAIN {name} DROP DEFAULT"),
                }));
            }
            if n0 != n1 {
                out.push(st(format!(
                    "ALTER DOMAIN {name} {} NOT NULL",
                    if *n1 { "SET" } else { "DROP" }
                )));
            }
            for (n, def) in k1 {
                if !k0.contains(&(n.clone(), def.clone())) {
                    out.push(st(format!(
                        "ALTER DOMAIN {name} ADD CONSTRAINT {n} {}",
                        reparse_stable(def)
                    )));
                }
            }
            Some(out)
        }
        (Spec::Sequence { .. }, Spec::Sequence { options }) => {
            Some(vec![st(format!("ALTER SEQUENCE {name} {options}"))])
        }
        (
            Spec::Function {
                arguments: a0,
                result: r0,
                ..
            },
            Spec::Function {
                definition,
                arguments: a1,
                result: r1,
            },
        ) if a0 == a1 && r0 == r1 => Some(vec![st(definition.trim_end().to_string())]),
        (
            Spec::Extension {
                schema: s0,
                version: v0,
                ..
            },
            Spec::Extension {
                name: ext,
                schema: s1,
                version: v1,
            },
        ) if s0 == s1 && v0 != v1 => Some(vec![st(format!(
            "ALTER EXTENSION {ext} UPDATE TO {}",
            literal(v1)
        ))]),
        (
            Spec::RowSecurity {
                enabled: e0,
                forced: f0,
                ..
            },
            Spec::RowSecurity {
                table,
                enabled: e1,
                forced: f1,
            },
        ) => {
            let mut out = Vec::new();
            if e0 != e1 {
                out.push(st(format!(
                    "ALTER TABLE {table} {} ROW LEVEL SECURITY",
                    if *e1 { "ENABLE" } else { "DISABLE" }
                )));
            }
            if f0 != f1 {
                out.push(st(format!(
                    "ALTER TABLE {table} {} ROW LEVEL SECURITY",
                    if *f1 { "FORCE" } else { "NO FORCE" }
                )));
            }
            Some(out)
        }
        (
            Spec::Table {
                partition_by: k0,
                partition_of: p0,
                unlogged: u0,
                options: o0,
            },
            Spec::Table {
                partition_by: k1,
                partition_of: p1,
                unlogged: u1,
                options: o1,
            },
        ) if k0 == k1 => {
            let mut out = Vec::new();
            match (p0, p1) {
                (Some((parent0, _)), Some((parent1, bound))) if parent0 == parent1 => {
                    if p0 != p1 {
                        out.push(st(format!("ALTER TABLE {parent1} DETACH PARTITION {name}")));
                        out.push(st(format!(
                            "ALTER TABLE {parent1} ATTACH PARTITION {name} {bound}"
                        )));
                    }
                }
                (None, None) => {}
                _ => return Ok(None),
            }
            if u0 != u1 {
                out.push(st(format!(
                    "ALTER TABLE {name} SET {}",
                    if *u1 { "UNLOGGED" } else { "LOGGED" }
                )));
            }
            if o0 != o1 {
                if let Some(o0) = o0 {
                    let keys: Vec<&str> = o0
                        .split(", ")
                        .map(|kv| kv.split('=').next().unwrap_or(kv))
                        .collect();
                    out.push(st(format!(
                        "ALTER TABLE {name} RESET ({})",
                        keys.join(", ")
                    )));
                }
                if let Some(o1) = o1 {
                    out.push(st(format!("ALTER TABLE {name} SET ({o1})")));
                }
            }
            Some(out)
        }
        _ => None,
    })
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};", self.sql)
    }
}

impl Action {
    /// How a script names it: `creates`, `alters`, `drops`.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Drop => "drops",
            Action::Alter => "alters",
            Action::Create => "creates",
        }
    }
}

/// The statements as a SQL script for a person to read and a server to run (in one
/// transaction): each after a comment naming what it does to which object, and what data it
/// destroys; `diff` prints this and `create --from-live` writes it.
pub fn script(statements: &[Statement]) -> String {
    let mut out = String::new();
    for s in statements {
        if s.sql.starts_with(SESSION_SETTING) {
            // The bracket around created functions: no object of its own.
            out.push_str(&format!("{s}\n"));
            continue;
        }
        out.push_str(&format!("-- {} {}\n", s.action.verb(), s.object));
        if let Some(d) = &s.destroys {
            out.push_str(&format!("-- destroys data: {d}\n"));
        }
        if let Some(n) = &s.note {
            for line in n.lines() {
                out.push_str(&format!("-- note: {line}\n"));
            }
        }
        out.push_str(&format!("{s}\n"));
    }
    out
}

/// A deparsed definition made to deparse the same once it runs again. PostgreSQL prints a
/// coerced array constant, as in `status IN ('a', 'b')` on a `varchar` column, as
/// `((ARRAY['a'::character varying, 'b'::character varying])::text[])`; run as written, the
/// parser pushes the cast into the elements and the server prints
/// `(ARRAY[('a'::character varying)::text, …])`: the same expression, other text, so a
/// recreated constraint would not compare equal with the one a migration made. Casting the
/// array to its own element type first (`ARRAY[…]::character varying[]`, a no-op) keeps the
/// coercion where it was, and the server prints the original text again.
pub(crate) fn reparse_stable(definition: &str) -> String {
    let mut out = String::with_capacity(definition.len() + 32);
    let mut rest = definition;
    while let Some(at) = rest.find("(ARRAY[") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        match coerced_constant_array(&from[1..]) {
            Some((elements, element_type, len)) => {
                out.push_str(&format!("(ARRAY[{elements}]::{element_type}[]"));
                rest = &from[1 + len..];
            }
            None => {
                out.push_str("(ARRAY[");
                rest = &from["(ARRAY[".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// For text starting `ARRAY['a'::T, 'b'::T])::U[]` with `T` ≠ `U`: the elements, `T`, and the
/// length of `ARRAY[…]` (up to the closing bracket).
fn coerced_constant_array(text: &str) -> Option<(&str, &str, usize)> {
    let body = text.strip_prefix("ARRAY[")?;
    // The closing bracket, outside string literals.
    let mut in_string = false;
    let mut end = None;
    for (i, c) in body.char_indices() {
        match c {
            '\'' => in_string = !in_string,
            ']' if !in_string => {
                end = Some(i);
                break;
            }
            '(' | '[' if !in_string => return None,
            _ => {}
        }
    }
    let end = end?;
    let elements = &body[..end];
    let after = body[end + 1..].strip_prefix(")::")?;
    let outer = &after[..after.find("[]")?];
    // Every element a literal cast to the same type: split at the commas outside literals.
    let mut element_type: Option<&str> = None;
    let mut start = 0;
    let mut in_string = false;
    let mut pieces = Vec::new();
    for (i, c) in elements.char_indices() {
        match c {
            '\'' => in_string = !in_string,
            ',' if !in_string => {
                pieces.push(&elements[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&elements[start..]);
    for piece in pieces {
        let piece = piece.trim();
        let (literal, ty) = piece.rsplit_once("::")?;
        if !(literal.starts_with('\'') && literal.ends_with('\'') && literal.len() >= 2) {
            return None;
        }
        if ty.is_empty() || ty.contains(['(', ')', '\'', '[']) {
            return None;
        }
        match element_type {
            Some(t) if t != ty => return None,
            _ => element_type = Some(ty),
        }
    }
    let element_type = element_type?;
    if element_type == outer {
        return None;
    }
    Some((elements, element_type, "ARRAY[".len() + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Unsupported;

    #[test]
    fn coerced_constant_arrays_are_written_to_deparse_the_same() {
        let def = "CHECK (((s)::text = ANY ((ARRAY['a'::character varying, 'b, ]'::character varying])::text[])))";
        assert_eq!(
            reparse_stable(def),
            "CHECK (((s)::text = ANY ((ARRAY['a'::character varying, 'b, ]'::character varying]::character varying[])::text[])))"
        );
        for same in [
            "CHECK ((s = ANY (ARRAY['a'::text, 'b'::text])))",
            "CHECK ((s = ANY ((ARRAY['a'::text])::text[])))",
            "CHECK (((n)::numeric = ANY ((ARRAY[(1)::numeric, (2)::numeric])::numeric[])))",
            "CHECK ((x = ANY ((ARRAY['a'::character varying, 'b'::text])::text[])))",
        ] {
            assert_eq!(reparse_stable(same), same);
        }
    }

    fn id(kind: Kind, name: &str) -> ObjectId {
        ObjectId::new(kind, name)
    }

    /// An object with `parent` (also a dependency and an owner) and further dependencies.
    fn obj(
        kind: Kind,
        name: &str,
        spec: Spec,
        parent: Option<ObjectId>,
        deps: &[ObjectId],
    ) -> Object {
        let mut depends_on: BTreeSet<ObjectId> = deps.iter().cloned().collect();
        let mut owners = BTreeSet::new();
        if let Some(p) = &parent {
            depends_on.insert(p.clone());
            owners.insert(p.clone());
        }
        Object {
            id: id(kind, name),
            spec,
            parent,
            depends_on,
            owners,
            position: 0,
        }
    }

    fn table(name: &str) -> Object {
        obj(
            Kind::Table,
            name,
            Spec::Table {
                partition_by: None,
                partition_of: None,
                unlogged: false,
                options: None,
            },
            None,
            &[],
        )
    }

    fn column(table: &str, name: &str, data_type: &str, deps: &[ObjectId]) -> Object {
        obj(
            Kind::Column,
            &format!("{table}.{name}"),
            Spec::Column {
                table: table.into(),
                name: name.into(),
                data_type: data_type.into(),
                collation: None,
                not_null: false,
                identity: None,
                generated: None,
            },
            Some(id(Kind::Table, table)),
            deps,
        )
    }

    fn view(name: &str, definition: &str, deps: &[ObjectId]) -> Object {
        obj(
            Kind::View,
            name,
            Spec::View {
                definition: definition.into(),
                options: None,
                materialized: false,
                populated: true,
            },
            None,
            deps,
        )
    }

    fn model(objects: Vec<Object>) -> Model {
        let mut m = Model::default();
        for o in objects {
            m.insert(o);
        }
        m
    }

    fn sql(statements: &[Statement]) -> Vec<String> {
        statements.iter().map(|s| s.sql.clone()).collect()
    }

    /// Index of the statement that contains `needle`.
    #[track_caller]
    fn at(statements: &[String], needle: &str) -> usize {
        statements
            .iter()
            .position(|s| s.contains(needle))
            .unwrap_or_else(|| panic!("no statement contains {needle:?}: {statements:#?}"))
    }

    #[test]
    fn foreign_keys_between_two_dropped_tables_go_first() {
        let fk = |name: &str, on: &str, to: &str| {
            obj(
                Kind::Constraint,
                &format!("{name} on {on}"),
                Spec::Constraint {
                    table: on.into(),
                    name: name.into(),
                    definition: format!("FOREIGN KEY (x) REFERENCES {to}(id)"),
                },
                Some(id(Kind::Table, on)),
                &[id(Kind::Table, to)],
            )
        };
        let from = model(vec![
            table("a"),
            table("b"),
            fk("a_b", "a", "b"),
            fk("b_a", "b", "a"),
        ]);
        let s = sql(&diff(&from, &Model::default()).unwrap());
        assert_eq!(s.len(), 4, "{s:#?}");
        assert!(at(&s, "DROP CONSTRAINT a_b") < at(&s, "DROP TABLE b"));
        assert!(at(&s, "DROP CONSTRAINT b_a") < at(&s, "DROP TABLE a"));
        // Created the other way round: tables, then the constraints.
        let s = sql(&diff(&Model::default(), &from).unwrap());
        assert!(at(&s, "CREATE TABLE b") < at(&s, "ADD CONSTRAINT a_b"));
        assert!(at(&s, "CREATE TABLE a") < at(&s, "ADD CONSTRAINT b_a"));
    }

    #[test]
    fn a_view_on_a_dropped_column_is_recreated_around_the_drop() {
        let c = id(Kind::Column, "t.b");
        let from = model(vec![
            table("t"),
            column("t", "a", "integer", &[]),
            column("t", "b", "integer", &[]),
            view(
                "v",
                " SELECT a, b FROM t;",
                &[id(Kind::Column, "t.a"), c.clone()],
            ),
            view("w", " SELECT a FROM v;", &[id(Kind::View, "v")]),
        ]);
        let to = model(vec![
            table("t"),
            column("t", "a", "integer", &[]),
            view("v", " SELECT a FROM t;", &[id(Kind::Column, "t.a")]),
            view("w", " SELECT a FROM v;", &[id(Kind::View, "v")]),
        ]);
        let statements = diff(&from, &to).unwrap();
        let s = sql(&statements);
        assert_eq!(
            s,
            [
                "DROP VIEW w",
                "DROP VIEW v",
                "ALTER TABLE t DROP COLUMN b",
                "CREATE VIEW v AS SELECT a FROM t",
                "CREATE VIEW w AS SELECT a FROM v",
            ]
        );
        let destroying: Vec<&str> = statements
            .iter()
            .filter_map(|s| s.destroys.as_deref())
            .collect();
        assert_eq!(destroying, ["drops column t.b and its values"]);
    }

    #[test]
    fn a_new_table_comes_after_the_sequence_its_default_uses() {
        let seq = obj(
            Kind::Sequence,
            "s",
            Spec::Sequence {
                options: "AS bigint".into(),
            },
            None,
            &[],
        );
        let default = obj(
            Kind::Default,
            "t.a",
            Spec::Default {
                table: "t".into(),
                column: "a".into(),
                expression: "nextval('s'::regclass)".into(),
            },
            Some(id(Kind::Column, "t.a")),
            &[id(Kind::Sequence, "s")],
        );
        let to = model(vec![
            table("t"),
            column("t", "a", "bigint", &[]),
            default,
            seq,
        ]);
        let s = sql(&diff(&Model::default(), &to).unwrap());
        assert_eq!(
            s,
            [
                "CREATE SEQUENCE s AS bigint",
                "CREATE TABLE t (a bigint DEFAULT nextval('s'::regclass))",
            ]
        );
    }

    #[test]
    fn a_column_leaves_an_enum_before_the_enum_is_dropped() {
        let e = obj(
            Kind::Type,
            "e",
            Spec::Enum {
                labels: vec!["x".into()],
            },
            None,
            &[],
        );
        let from = model(vec![
            table("t"),
            column("t", "a", "e", &[id(Kind::Type, "e")]),
            e,
        ]);
        let to = model(vec![table("t"), column("t", "a", "text", &[])]);
        let s = sql(&diff(&from, &to).unwrap());
        assert_eq!(
            s,
            [
                "ALTER TABLE t ALTER COLUMN a TYPE text USING a::text",
                "DROP TYPE e"
            ]
        );
    }

    #[test]
    fn a_type_change_rebuilds_the_views_that_use_the_column() {
        let c = id(Kind::Column, "t.a");
        let from = model(vec![
            table("t"),
            column("t", "a", "integer", &[]),
            view("v", " SELECT a FROM t;", std::slice::from_ref(&c)),
        ]);
        let to = model(vec![
            table("t"),
            column("t", "a", "bigint", &[]),
            view("v", " SELECT a FROM t;", std::slice::from_ref(&c)),
        ]);
        let statements = diff(&from, &to).unwrap();
        assert_eq!(
            sql(&statements),
            [
                "DROP VIEW v",
                "ALTER TABLE t ALTER COLUMN a TYPE bigint USING a::bigint",
                "CREATE VIEW v AS SELECT a FROM t",
            ]
        );
        assert!(statements[1].destroys.is_some());
    }

    #[test]
    fn an_enum_with_new_labels_is_swapped_with_its_columns_converted() {
        let e = |labels: &[&str]| {
            obj(
                Kind::Type,
                "s.e",
                Spec::Enum {
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                },
                None,
                &[],
            )
        };
        let columns = || column("t", "a", "s.e", &[id(Kind::Type, "s.e")]);
        let from = model(vec![table("t"), columns(), e(&["x", "y"])]);
        let to = model(vec![table("t"), columns(), e(&["y", "z"])]);
        assert_eq!(
            sql(&diff(&from, &to).unwrap()),
            [
                "ALTER TYPE s.e RENAME TO git_migrate_replaced_enum",
                "CREATE TYPE s.e AS ENUM ('y', 'z')",
                "ALTER TABLE t ALTER COLUMN a TYPE s.e USING a::text::s.e",
                "DROP TYPE s.git_migrate_replaced_enum",
            ]
        );
    }

    #[test]
    fn a_dependency_cycle_is_an_error_naming_the_objects() {
        let from = Model::default();
        let to = model(vec![
            view("v", "x", &[id(Kind::View, "w")]),
            view("w", "y", &[id(Kind::View, "v")]),
        ]);
        let e = diff(&from, &to).unwrap_err().to_string();
        assert!(
            e.contains("create view v") && e.contains("create view w"),
            "{e}"
        );
    }

    #[test]
    fn objects_outside_the_model_refuse_the_diff_by_name() {
        let mut to = Model::default();
        to.unsupported.insert(
            ("rule".into(), "r on public.t".into()),
            Unsupported {
                kind: "rule".into(),
                name: "r on public.t".into(),
                definition: "{}".into(),
                parent: None,
            },
        );
        let e = diff(&Model::default(), &to).unwrap_err().to_string();
        assert!(e.contains("rule r on public.t"), "{e}");
        // The same object on both sides needs no DDL.
        assert_eq!(diff(&to, &to).unwrap(), []);
    }

    #[test]
    fn function_bodies_are_not_checked_while_functions_are_made() {
        let f = obj(
            Kind::Function,
            "f()",
            Spec::Function {
                definition:
                    "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT g()'\n"
                        .into(),
                arguments: String::new(),
                result: Some("integer".into()),
            },
            None,
            &[],
        );
        let to = model(vec![f]);
        assert_eq!(
            sql(&diff(&Model::default(), &to).unwrap()),
            [
                "SET LOCAL check_function_bodies = off",
                "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT g()'",
                "SET LOCAL check_function_bodies TO DEFAULT",
            ]
        );
        // Dropping needs no such bracket.
        assert_eq!(
            sql(&diff(&to, &Model::default()).unwrap()),
            ["DROP FUNCTION f()"]
        );
    }

    #[test]
    fn schema_of_a_quoted_name() {
        assert_eq!(schema_of(r#""my.schema"."t.x""#), r#""my.schema""#);
        assert_eq!(schema_of("public.t"), "public");
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b"), r"E'a\\b'");
    }
}
