//! How two metadata snapshots differ (design §6, "Diff"): a structured list of changes, one
//! entry per added, removed or changed object with words saying what changed inside it, and a
//! unified diff of the normalised snapshots rendered as YAML.
//!
//! Identity-keyed lists are compared as sets: tables and functions by schema + name,
//! permissions by role, relationships, event triggers, computed fields, actions, remote
//! schemas, cron triggers, query collections, REST endpoints and sources by name. Column lists
//! are compared as sets. An absent key, `null`, an empty list and a mapping of nothing but
//! empty values all mean "nothing", so a first deploy or an empty file never shows up as a
//! change. Version 2 snapshots keep `tables`/`functions` at the top level, version 3 snapshots
//! inside `sources`; a v2 snapshot's top-level objects are compared with the `default` source
//! of a v3 one, so a layout change reports only real differences.

use super::{identity, normalize};
use serde::Serialize;
use serde_json::{Map, Value};
use similar::TextDiff;
use std::collections::{BTreeMap, BTreeSet};

/// One added, removed or changed object (or top-level section) of the metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetadataChange {
    /// Section (`version`, `sources`, `tables`, `functions`, `actions`, `network`, …).
    pub section: String,
    /// Object identity (`public.orders`; `default.public.orders` when the snapshots have
    /// several sources), or empty for a whole section.
    pub object: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// For a changed object or section, what changed inside it, e.g.
    /// `select permission for role user: columns +email -phone`. Empty otherwise.
    pub details: Vec<String>,
}

impl std::fmt::Display for MetadataChange {
    /// `table public.orders added`, `table public.orders changed: insert permission for role
    /// user added; configuration changed`, `network: changed`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.object.is_empty() {
            write!(f, "{}: {}", self.section, self.change)?;
        } else {
            write!(
                f,
                "{} {} {}",
                section_label(&self.section),
                self.object,
                self.change
            )?;
        }
        if !self.details.is_empty() {
            write!(f, ": {}", self.details.join("; "))?;
        }
        Ok(())
    }
}

/// Lists the changes from `old` to `new` (either may be `Null` = empty metadata, e.g. before
/// the first deploy).
///
/// Order: `version`, sources, tables, functions, then the other sections alphabetically;
/// objects of a section by identity.
pub fn describe_changes(old: &Value, new: &Value) -> Vec<MetadataChange> {
    let empty = Map::new();
    // No need to normalise (copy) the snapshots: identity-keyed lists are compared as sets.
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut out = Vec::new();

    // The format version only counts as a change between two real snapshots.
    if let (Some(a), Some(b)) = (o.get("version"), n.get("version")) {
        if a != b {
            out.push(MetadataChange {
                section: "version".into(),
                object: String::new(),
                change: "changed",
                details: vec![format!("{} -> {}", scalar_text(a), scalar_text(b))],
            });
        }
    }

    diff_sources(o, n, &mut out);

    let mut keys: BTreeSet<&str> = o.keys().chain(n.keys()).map(String::as_str).collect();
    for consumed in ["version", "sources", "tables", "functions"] {
        keys.remove(consumed);
    }
    for key in keys {
        diff_section(key, o.get(key), n.get(key), &mut out);
    }
    out
}

/// A unified diff (3 lines of context, `---`/`+++` headers with the labels) of the two
/// normalised snapshots rendered as YAML; empty when they are equal. `Null` renders as no
/// lines at all (no metadata yet).
pub fn unified(old: &Value, new: &Value, old_label: &str, new_label: &str) -> String {
    // Rendering a large snapshot takes a while: both at once.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| yaml_text(old));
        let b = yaml_text(new);
        (a.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), b)
    });
    if a == b {
        return String::new();
    }
    // Patience lines up the many near-identical table blocks far better than Myers does.
    TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(a.as_str(), b.as_str())
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

fn yaml_text(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    yaml_serde::to_string(&normalize(v)).unwrap_or_else(|e| format!("# not renderable: {e}\n"))
}

// ---------------------------------------------------------------------------------------------
// Sources, tables and functions

/// One database source of a snapshot. A v2 snapshot has one implicit `default` source (no
/// entry of its own: its kind and configuration live outside the metadata).
struct SourceView<'a> {
    entry: Option<&'a Map<String, Value>>,
    tables: Vec<&'a Value>,
    functions: Vec<&'a Value>,
}

/// The elements of a list; absent and null are the empty list; `None` for anything else.
fn as_list(v: Option<&Value>) -> Option<Vec<&Value>> {
    match v {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => Some(items.iter().collect()),
        _ => None,
    }
}

fn items(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

fn sources_of(root: &Map<String, Value>) -> BTreeMap<String, SourceView<'_>> {
    let mut out = BTreeMap::new();
    for s in items(root.get("sources")) {
        if let (Some(name), Value::Object(entry)) = (identity("sources", s), s) {
            out.insert(
                name,
                SourceView {
                    entry: Some(entry),
                    tables: items(entry.get("tables")).iter().collect(),
                    functions: items(entry.get("functions")).iter().collect(),
                },
            );
        }
    }
    // Top-level tables/functions (v2) belong to the default source. A v2 snapshot always has
    // that source, even with nothing tracked yet.
    let top_tables = items(root.get("tables"));
    let top_functions = items(root.get("functions"));
    let is_v2 = !root.is_empty() && !root.contains_key("sources");
    if is_v2 || !top_tables.is_empty() || !top_functions.is_empty() {
        let default = out.entry("default".to_string()).or_insert(SourceView {
            entry: None,
            tables: Vec::new(),
            functions: Vec::new(),
        });
        default.tables.extend(top_tables);
        default.functions.extend(top_functions);
    }
    out
}

/// A source's tables or functions.
fn pick<'a>(s: Option<&SourceView<'a>>, list_key: &str) -> Vec<&'a Value> {
    s.map(|s| match list_key {
        "tables" => s.tables.clone(),
        _ => s.functions.clone(),
    })
    .unwrap_or_default()
}

fn diff_sources(o: &Map<String, Value>, n: &Map<String, Value>, out: &mut Vec<MetadataChange>) {
    let so = sources_of(o);
    let sn = sources_of(n);
    let names: BTreeSet<&String> = so.keys().chain(sn.keys()).collect();
    let several = names.len() > 1;

    // Source-level changes. A source only implied by a v2 snapshot has no settings to compare.
    for name in &names {
        let (a, b) = (so.get(*name), sn.get(*name));
        let entry_change = match (a, b) {
            (None, Some(b)) => b.entry.map(|_| ("added", Vec::new())),
            (Some(a), None) => a.entry.map(|_| ("removed", Vec::new())),
            (Some(a), Some(b)) => match (a.entry, b.entry) {
                (Some(ea), Some(eb)) => {
                    let strip = |e: &Map<String, Value>| -> Map<String, Value> {
                        e.iter()
                            .filter(|(k, _)| !matches!(k.as_str(), "tables" | "functions"))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    };
                    let (va, vb) = (Value::Object(strip(ea)), Value::Object(strip(eb)));
                    (!same("", Some(&va), Some(&vb)))
                        .then(|| ("changed", object_details(Some(&va), Some(&vb))))
                }
                _ => None,
            },
            (None, None) => None,
        };
        if let Some((change, details)) = entry_change {
            out.push(MetadataChange {
                section: "sources".into(),
                object: (*name).clone(),
                change,
                details,
            });
        }
    }

    for (section, list_key) in [("tables", "tables"), ("functions", "functions")] {
        for name in &names {
            let (la, lb) = (pick(so.get(*name), list_key), pick(sn.get(*name), list_key));
            let prefix = if several {
                format!("{name}.")
            } else {
                String::new()
            };
            match (keyed(list_key, &la), keyed(list_key, &lb)) {
                (Some(ma), Some(mb)) => {
                    for (id, change, a, b) in compare_keyed(&ma, &mb) {
                        out.push(MetadataChange {
                            section: section.into(),
                            object: format!("{prefix}{id}"),
                            change,
                            details: if change == "changed" {
                                object_details(a, b)
                            } else {
                                Vec::new()
                            },
                        });
                    }
                }
                // Entries without an identity or with duplicate identities: only say that the
                // list as a whole changed.
                _ => {
                    if !same_items(list_key, &la, &lb) {
                        out.push(MetadataChange {
                            section: section.into(),
                            object: String::new(),
                            change: "changed",
                            details: vec![format!("{section} of source {name} changed")],
                        });
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Other top-level sections

fn diff_section(key: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<MetadataChange>) {
    if same(key, a, b) {
        return;
    }
    if let (Some(la), Some(lb)) = (as_list(a), as_list(b)) {
        if let (Some(ma), Some(mb)) = (keyed(key, &la), keyed(key, &lb)) {
            for (id, change, x, y) in compare_keyed(&ma, &mb) {
                out.push(MetadataChange {
                    section: key.to_string(),
                    object: id,
                    change,
                    details: if change == "changed" {
                        object_details(x, y)
                    } else {
                        Vec::new()
                    },
                });
            }
            return;
        }
    }
    out.push(MetadataChange {
        section: key.to_string(),
        object: String::new(),
        change: "changed",
        details: object_details(a, b),
    });
}

// ---------------------------------------------------------------------------------------------
// Comparing values

/// The elements of an identity-keyed list by identity; `None` when an element has no
/// identity or two share one (the list cannot be compared as a set).
fn keyed<'a>(list_key: &str, items: &[&'a Value]) -> Option<BTreeMap<String, &'a Value>> {
    let mut map = BTreeMap::new();
    for item in items {
        let id = identity(list_key, item).or_else(|| match list_key {
            "permissions" => item.get("role")?.as_str().map(str::to_string),
            _ => None,
        })?;
        if map.insert(id, *item).is_some() {
            return None;
        }
    }
    Some(map)
}

/// Elements of a list of objects with unique string `name`s, by name.
fn by_name<'a>(items: &[&'a Value]) -> Option<BTreeMap<String, &'a Value>> {
    let mut map = BTreeMap::new();
    for item in items {
        let name = item.get("name")?.as_str()?.to_string();
        if map.insert(name, *item).is_some() {
            return None;
        }
    }
    Some(map)
}

type Keyed<'a> = (String, &'static str, Option<&'a Value>, Option<&'a Value>);

/// Added, removed and changed identities, ordered by identity.
fn compare_keyed<'a>(
    a: &BTreeMap<String, &'a Value>,
    b: &BTreeMap<String, &'a Value>,
) -> Vec<Keyed<'a>> {
    let ids: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for id in ids {
        let (x, y) = (a.get(id).copied(), b.get(id).copied());
        let change = match (x, y) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ if same("", x, y) => continue,
            _ => "changed",
        };
        out.push((id.clone(), change, x, y));
    }
    out
}

/// Absent, null, an empty list, or a mapping of nothing but empty values
/// (`custom_types: {enums: [], objects: []}` says nothing).
fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.values().all(|v| is_empty(Some(v))),
        _ => false,
    }
}

/// Column-like lists of names, compared as sets.
fn is_name_set_key(key: &str) -> bool {
    matches!(key, "columns" | "computed_fields")
}

fn strings(v: Option<&Value>) -> Option<BTreeSet<&str>> {
    match v {
        None | Some(Value::Null) => Some(BTreeSet::new()),
        Some(Value::Array(a)) => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// Equality of two normalised values, where all empty values are equal and column lists are
/// sets. `key` is the key the values sit under.
fn same(key: &str, a: Option<&Value>, b: Option<&Value>) -> bool {
    if is_empty(a) && is_empty(b) {
        return true;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            x.iter().all(|(k, v)| same(k, Some(v), y.get(k)))
                && y.iter()
                    .filter(|(k, _)| !x.contains_key(*k))
                    .all(|(k, v)| same(k, None, Some(v)))
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            if is_name_set_key(key) {
                if let (Some(sx), Some(sy)) = (strings(a), strings(b)) {
                    return sx == sy;
                }
            }
            let (x, y): (Vec<&Value>, Vec<&Value>) = (x.iter().collect(), y.iter().collect());
            same_items(key, &x, &y)
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Equality of two lists found under `key`. Lists whose elements all have an identity are
/// compared in identity order, as [`normalize`] sorts them: order never counts.
fn same_items(key: &str, x: &[&Value], y: &[&Value]) -> bool {
    if x.len() != y.len() {
        return false;
    }
    if x.iter().zip(y).all(|(v, w)| same("", Some(v), Some(w))) {
        return true;
    }
    match (in_identity_order(key, x), in_identity_order(key, y)) {
        (Some(sx), Some(sy)) => sx
            .iter()
            .zip(&sy)
            .all(|((i, v), (j, w))| i == j && same("", Some(v), Some(w))),
        _ => false,
    }
}

/// The elements with their identities, stably sorted by identity; `None` when one has none.
fn in_identity_order<'a>(key: &str, items: &[&'a Value]) -> Option<Vec<(String, &'a Value)>> {
    let mut out: Vec<(String, &Value)> = items
        .iter()
        .map(|i| identity(key, i).map(|id| (id, *i)))
        .collect::<Option<_>>()?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Describing what changed inside an object

/// Singular words for a section or a list key.
fn section_label(key: &str) -> String {
    match key {
        "tables" => "table".into(),
        "functions" => "function".into(),
        "sources" => "source".into(),
        "actions" => "action".into(),
        "remote_schemas" => "remote schema".into(),
        "cron_triggers" => "cron trigger".into(),
        "query_collections" => "query collection".into(),
        "rest_endpoints" => "rest endpoint".into(),
        "inherited_roles" => "inherited role".into(),
        "allowlist" => "allowlist collection".into(),
        "insert_permissions" => "insert permission".into(),
        "select_permissions" => "select permission".into(),
        "update_permissions" => "update permission".into(),
        "delete_permissions" => "delete permission".into(),
        "permissions" => "permission".into(),
        "object_relationships" => "object relationship".into(),
        "array_relationships" => "array relationship".into(),
        "remote_relationships" => "remote relationship".into(),
        "event_triggers" => "event trigger".into(),
        "computed_fields" => "computed field".into(),
        "objects" => "object type".into(),
        "input_objects" => "input object type".into(),
        "scalars" => "scalar type".into(),
        "enums" => "enum type".into(),
        "fields" => "field".into(),
        "arguments" => "argument".into(),
        "queries" => "query".into(),
        other => other.trim_end_matches('s').replace('_', " "),
    }
}

/// Order of keys inside an object: columns, permissions, relationships, then the rest
/// alphabetically (`configuration`, `filter`, …).
fn key_rank(key: &str) -> usize {
    const FIRST: [&str; 11] = [
        "columns",
        "insert_permissions",
        "select_permissions",
        "update_permissions",
        "delete_permissions",
        "permissions",
        "object_relationships",
        "array_relationships",
        "remote_relationships",
        "computed_fields",
        "event_triggers",
    ];
    FIRST.iter().position(|k| *k == key).unwrap_or(FIRST.len())
}

fn is_role_keyed(key: &str) -> bool {
    matches!(
        key,
        "insert_permissions"
            | "select_permissions"
            | "update_permissions"
            | "delete_permissions"
            | "permissions"
    )
}

/// A mapping; absent and null are the empty mapping; `None` for anything else.
fn as_map<'a>(
    v: Option<&'a Value>,
    empty: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    match v {
        Some(Value::Object(m)) => Some(m),
        None | Some(Value::Null) => Some(empty),
        _ => None,
    }
}

/// What changed between two versions of one object (a table, a permission, a section), one
/// phrase per change; empty when the values are not both mappings.
fn object_details(a: Option<&Value>, b: Option<&Value>) -> Vec<String> {
    let empty = Map::new();
    let (Some(x), Some(y)) = (as_map(a, &empty), as_map(b, &empty)) else {
        return Vec::new();
    };
    let mut keys: Vec<&str> = x.keys().chain(y.keys()).map(String::as_str).collect();
    keys.sort_by_key(|k| (key_rank(k), *k));
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let (va, vb) = (x.get(key), y.get(key));
        if !same(key, va, vb) {
            key_details(key, va, vb, &mut out);
        }
    }
    out
}

/// Phrases for one differing key of an object.
fn key_details(key: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    // A list of names (columns): +added -removed.
    if let (Some(sa), Some(sb)) = (strings(a), strings(b)) {
        let added: Vec<String> = sb.difference(&sa).map(|c| format!("+{c}")).collect();
        let removed: Vec<String> = sa.difference(&sb).map(|c| format!("-{c}")).collect();
        if !added.is_empty() || !removed.is_empty() {
            out.push(format!("{key} {}", [added, removed].concat().join(" ")));
            return;
        }
    }
    // A list of objects keyed by role or by name.
    if let (Some(la), Some(lb)) = (as_list(a), as_list(b)) {
        let maps = if is_role_keyed(key) {
            keyed(key, &la).zip(keyed(key, &lb))
        } else {
            keyed(key, &la)
                .zip(keyed(key, &lb))
                .or_else(|| by_name(&la).zip(by_name(&lb)))
        };
        if let Some((ma, mb)) = maps {
            let label = section_label(key);
            let role = if is_role_keyed(key) { "for role " } else { "" };
            for (id, change, x, y) in compare_keyed(&ma, &mb) {
                let what = format!("{label} {role}{id}");
                let inner = if change == "changed" {
                    object_details(x, y)
                } else {
                    Vec::new()
                };
                if inner.is_empty() {
                    out.push(format!("{what} {change}"));
                } else {
                    out.extend(inner.into_iter().map(|d| format!("{what}: {d}")));
                }
            }
            return;
        }
    }
    // A permission's body: its keys speak for themselves (`filter changed`).
    if key == "permission" {
        let inner = object_details(a, b);
        if !inner.is_empty() {
            out.extend(inner);
            return;
        }
    }
    out.push(format!("{key} changed"));
}

#[cfg(test)]
mod tests {
    use super::super::snapshot_sha256;
    use super::*;
    use serde_json::json;

    fn lines(old: &Value, new: &Value) -> Vec<String> {
        describe_changes(old, new)
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    fn table(name: &str, extra: Value) -> Value {
        let mut t = json!({"table": {"schema": "public", "name": name}});
        if let (Value::Object(t), Value::Object(extra)) = (&mut t, extra) {
            t.extend(extra);
        }
        t
    }

    fn v2(tables: Vec<Value>) -> Value {
        json!({"version": 2, "tables": tables})
    }

    #[test]
    fn lists_changed_objects() {
        let a = json!({"version": 2, "tables": [
            {"table": {"schema": "public", "name": "a"}},
            {"table": {"schema": "public", "name": "b"}, "select_permissions": [{"role": "user"}]}
        ], "network": {}});
        let b = json!({"version": 2, "tables": [
            {"table": {"schema": "public", "name": "b"}},
            {"table": {"schema": "public", "name": "c"}}
        ], "network": {"tls": 1}, "functions": []});
        assert_eq!(
            lines(&a, &b),
            vec![
                "table public.a removed",
                "table public.b changed: select permission for role user removed",
                "table public.c added",
                "network: changed: tls changed",
            ]
        );
        assert!(describe_changes(&a, &a).is_empty());
        assert_eq!(describe_changes(&Value::Null, &a).len(), 2);
        let empty_types = json!({"custom_types": {"enums": [], "objects": []}});
        assert!(describe_changes(&Value::Null, &empty_types).is_empty());
    }

    /// One case per kind of change: (what, old, new, expected lines).
    fn cases() -> Vec<(&'static str, Value, Value, Vec<&'static str>)> {
        let sel = |cols: Value, filter: Value| json!({"role": "user", "permission": {"columns": cols, "filter": filter}});
        let orders_v3 = |config: Value, tables: Vec<Value>| {
            json!({"version": 3, "sources": [
                {"name": "default", "kind": "postgres", "configuration": config, "tables": tables}
            ]})
        };
        vec![
            (
                "table added and removed",
                v2(vec![table("a", json!({}))]),
                v2(vec![table("b", json!({}))]),
                vec!["table public.a removed", "table public.b added"],
            ),
            (
                "table given as a bare name is the same table",
                json!({"version": 2, "tables": [{"table": "orders"}]}),
                json!({"version": 2, "tables": [{"table": "orders"}, {"table": {"schema": "app", "name": "x"}}]}),
                vec!["table app.x added"],
            ),
            (
                "insert permission added",
                v2(vec![table("orders", json!({}))]),
                v2(vec![table(
                    "orders",
                    json!({"insert_permissions": [{"role": "user", "permission": {"check": {}, "columns": ["id"]}}]}),
                )]),
                vec!["table public.orders changed: insert permission for role user added"],
            ),
            (
                "select permission columns as sets",
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [sel(json!(["id", "phone", "name"]), json!({}))]}),
                )]),
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [sel(json!(["name", "email", "id"]), json!({}))]}),
                )]),
                vec!["table public.orders changed: select permission for role user: columns +email -phone"],
            ),
            (
                "column order alone is no change",
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [sel(json!(["id", "name"]), json!({}))]}),
                )]),
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [sel(json!(["name", "id"]), json!({}))]}),
                )]),
                vec![],
            ),
            (
                "columns * to a list",
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [sel(json!("*"), json!({}))]}),
                )]),
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [sel(json!(["id"]), json!({}))]}),
                )]),
                vec!["table public.orders changed: select permission for role user: columns changed"],
            ),
            (
                "filter, limit and aggregations changed",
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [{"role": "user", "permission": {
                        "columns": ["id"], "filter": {"user_id": {"_eq": "X-Hasura-User-Id"}}, "limit": 10
                    }}]}),
                )]),
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [{"role": "user", "permission": {
                        "columns": ["id"], "filter": {}, "limit": 20, "allow_aggregations": true
                    }}]}),
                )]),
                vec![
                    "table public.orders changed: \
                     select permission for role user: allow_aggregations changed; \
                     select permission for role user: filter changed; \
                     select permission for role user: limit changed",
                ],
            ),
            (
                "update and delete permissions",
                v2(vec![table(
                    "orders",
                    json!({"update_permissions": [{"role": "user", "permission": {"columns": ["a"], "filter": {}, "set": {"x": 1}}}],
                           "delete_permissions": [{"role": "admin", "permission": {"filter": {}}}]}),
                )]),
                v2(vec![table(
                    "orders",
                    json!({"update_permissions": [{"role": "user", "permission": {"columns": ["a", "b"], "filter": {}, "check": {"id": {"_gt": 0}}}}],
                           "delete_permissions": [{"role": "user", "permission": {"filter": {}}}]}),
                )]),
                vec![
                    "table public.orders changed: \
                     update permission for role user: columns +b; \
                     update permission for role user: check changed; \
                     update permission for role user: set changed; \
                     delete permission for role admin removed; \
                     delete permission for role user added",
                ],
            ),
            (
                "relationships",
                v2(vec![table(
                    "orders",
                    json!({"object_relationships": [{"name": "customer", "using": {"foreign_key_constraint_on": "customer_id"}}],
                           "array_relationships": [{"name": "items", "using": {"foreign_key_constraint_on": {"table": "items", "column": "order_id"}}}]}),
                )]),
                v2(vec![table(
                    "orders",
                    json!({"array_relationships": [
                        {"name": "items", "using": {"foreign_key_constraint_on": {"table": "items", "column": "oid"}}},
                        {"name": "payments", "using": {"foreign_key_constraint_on": {"table": "payments", "column": "order_id"}}}
                    ]}),
                )]),
                vec![
                    "table public.orders changed: \
                     object relationship customer removed; \
                     array relationship items: using changed; \
                     array relationship payments added",
                ],
            ),
            (
                "event triggers, computed fields, configuration",
                v2(vec![table(
                    "orders",
                    json!({"event_triggers": [{"name": "notify", "definition": {"insert": {"columns": "*"}}, "webhook": "http://a"}],
                           "configuration": {"custom_name": "orders"}}),
                )]),
                v2(vec![table(
                    "orders",
                    json!({"event_triggers": [{"name": "notify", "definition": {"insert": {"columns": "*"}}, "webhook": "http://b"}],
                           "computed_fields": [{"name": "total", "definition": {"function": "order_total"}}],
                           "configuration": {"custom_name": "order"}}),
                )]),
                vec![
                    "table public.orders changed: \
                     computed field total added; \
                     event trigger notify: webhook changed; \
                     configuration changed",
                ],
            ),
            (
                "the example of the design",
                v2(vec![table(
                    "orders",
                    json!({"select_permissions": [{"role": "user", "permission": {"columns": ["id", "phone"], "filter": {"a": 1}}}],
                           "object_relationships": [{"name": "customer", "using": {}}],
                           "configuration": {"custom_name": "o"}}),
                )]),
                v2(vec![table(
                    "orders",
                    json!({"insert_permissions": [{"role": "user", "permission": {"columns": ["id"], "check": {}}}],
                           "select_permissions": [{"role": "user", "permission": {"columns": ["id", "email"], "filter": {"a": 2}}}],
                           "configuration": {"custom_name": "p"}}),
                )]),
                vec![
                    "table public.orders changed: \
                     insert permission for role user added; \
                     select permission for role user: columns +email -phone; \
                     select permission for role user: filter changed; \
                     object relationship customer removed; \
                     configuration changed",
                ],
            ),
            (
                "functions",
                json!({"version": 2, "functions": [
                    {"function": {"schema": "public", "name": "search"}},
                    {"function": {"schema": "public", "name": "old"}}
                ]}),
                json!({"version": 2, "functions": [
                    {"function": {"schema": "public", "name": "search"}, "configuration": {"exposed_as": "query"},
                     "permissions": [{"role": "user"}]},
                    {"function": {"schema": "public", "name": "total"}}
                ]}),
                vec![
                    "function public.old removed",
                    "function public.search changed: permission for role user added; configuration changed",
                    "function public.total added",
                ],
            ),
            (
                "actions, cron triggers, remote schemas, query collections, allowlist",
                json!({"version": 2,
                    "actions": [{"name": "login", "definition": {"handler": "http://a", "kind": "synchronous"}}],
                    "cron_triggers": [{"name": "nightly", "schedule": "0 0 * * *", "webhook": "http://c"}],
                    "remote_schemas": [{"name": "countries", "definition": {"url": "http://r"}}],
                    "query_collections": [{"name": "allowed", "definition": {"queries": [{"name": "q1", "query": "{a}"}]}}],
                    "allowlist": [{"collection": "allowed"}]}),
                json!({"version": 2,
                    "actions": [
                        {"name": "login", "definition": {"handler": "http://b", "kind": "synchronous"}, "permissions": [{"role": "anon"}]},
                        {"name": "create_user", "definition": {"handler": "http://a"}}
                    ],
                    "cron_triggers": [{"name": "nightly", "schedule": "0 1 * * *", "webhook": "http://c"}],
                    "query_collections": [{"name": "allowed", "definition": {"queries": [{"name": "q1", "query": "{b}"}]}}],
                    "allowlist": [{"collection": "allowed"}, {"collection": "extra"}]}),
                vec![
                    "action create_user added",
                    "action login changed: permission for role anon added; definition changed",
                    "allowlist collection extra added",
                    "cron trigger nightly changed: schedule changed",
                    "query collection allowed changed: definition changed",
                    "remote schema countries removed",
                ],
            ),
            (
                "sections without identities",
                json!({"version": 2, "network": {"tls_allowlist": [{"host": "a"}]},
                       "custom_types": {"objects": [{"name": "User", "fields": [{"name": "id", "type": "Int"}]}], "scalars": []}}),
                json!({"version": 2, "network": {"tls_allowlist": [{"host": "b"}]},
                       "custom_types": {"objects": [{"name": "User", "fields": [{"name": "id", "type": "Int!"}]}],
                                        "enums": [{"name": "Color", "values": []}]}}),
                vec![
                    "custom_types: changed: enum type Color added; object type User: field id: type changed",
                    "network: changed: tls_allowlist changed",
                ],
            ),
            (
                "version changes only between two real snapshots",
                json!({"version": 2}),
                json!({"version": 3}),
                vec!["version: changed: 2 -> 3"],
            ),
            (
                "first deploy of v2",
                Value::Null,
                json!({"version": 2, "tables": [table("a", json!({}))], "functions": [], "network": {}}),
                vec!["table public.a added"],
            ),
            (
                "first deploy of v3",
                Value::Null,
                orders_v3(json!({"connection_info": {}}), vec![table("orders", json!({}))]),
                vec!["source default added", "table public.orders added"],
            ),
            (
                "v3 with one source: no prefix; source settings",
                orders_v3(json!({"connection_info": {"database_url": "a"}}), vec![table("orders", json!({}))]),
                orders_v3(
                    json!({"connection_info": {"database_url": "b"}}),
                    vec![table("orders", json!({"configuration": {"custom_name": "o"}}))],
                ),
                vec![
                    "source default changed: configuration changed",
                    "table public.orders changed: configuration changed",
                ],
            ),
            (
                "v3 with several sources: source prefix",
                orders_v3(json!({}), vec![table("orders", json!({}))]),
                json!({"version": 3, "sources": [
                    {"name": "default", "kind": "postgres", "configuration": {}, "tables": [table("orders", json!({"is_enum": true}))]},
                    {"name": "other", "kind": "postgres", "configuration": {}, "tables": [table("logs", json!({}))],
                     "functions": [{"function": {"schema": "public", "name": "f"}}]}
                ], "rest_endpoints": [{"name": "orders", "url": "orders"}]}),
                vec![
                    "source other added",
                    "table default.public.orders changed: is_enum changed",
                    "table other.public.logs added",
                    "function other.public.f added",
                    "rest endpoint orders added",
                ],
            ),
            (
                "v2 to v3 with the same tables: only the version",
                json!({"version": 2, "tables": [table("orders", json!({"select_permissions": [sel(json!(["id"]), json!({}))]}))],
                       "functions": [{"function": {"schema": "public", "name": "f"}}]}),
                json!({"version": 3, "sources": [{"name": "default", "kind": "postgres", "configuration": {"x": 1},
                    "tables": [table("orders", json!({"select_permissions": [sel(json!(["id"]), json!({}))]}))],
                    "functions": [{"function": {"schema": "public", "name": "f"}}]}]}),
                vec!["version: changed: 2 -> 3"],
            ),
            (
                "v2 to v3 with a real change",
                json!({"version": 2, "tables": [table("orders", json!({})), table("gone", json!({}))]}),
                json!({"version": 3, "sources": [{"name": "default", "kind": "postgres", "configuration": {},
                    "tables": [table("orders", json!({"select_permissions": [sel(json!(["id"]), json!({}))]}))]}]}),
                vec![
                    "version: changed: 2 -> 3",
                    "table public.gone removed",
                    "table public.orders changed: select permission for role user added",
                ],
            ),
            (
                "order of identity lists and empty values do not count",
                v2(vec![
                    table("a", json!({"select_permissions": [sel(json!(["x"]), json!({})), {"role": "admin", "permission": {}}]})),
                    table("b", json!({"insert_permissions": []})),
                ]),
                json!({"tables": [
                    table("b", json!({"configuration": {}})),
                    table("a", json!({"select_permissions": [{"role": "admin", "permission": {}}, sel(json!(["x"]), json!(null))]})),
                ], "version": 2, "actions": []}),
                vec![],
            ),
        ]
    }

    #[test]
    fn each_kind_of_change() {
        for (what, old, new, expected) in cases() {
            assert_eq!(lines(&old, &new), expected, "{what}");
            // And back: the same objects, added and removed swapped.
            let back = describe_changes(&new, &old);
            let forth = describe_changes(&old, &new);
            assert_eq!(
                objects(&back),
                objects(&forth).into_iter().map(swapped).collect::<Vec<_>>(),
                "{what} (reversed)"
            );
        }
    }

    #[test]
    fn serialises_with_details() {
        let c = describe_changes(
            &v2(vec![table("a", json!({}))]),
            &v2(vec![table("a", json!({"configuration": {"x": 1}}))]),
        );
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!([{"section": "tables", "object": "public.a", "change": "changed",
                    "details": ["configuration changed"]}])
        );
    }

    // -----------------------------------------------------------------------------------------
    // Property-style tests over random snapshots.

    /// A small deterministic pseudo-random generator (64-bit LCG, Knuth's MMIX constants).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
        /// A random subset, in the order of `items`.
        fn subset<'a>(&mut self, items: &[&'a str], percent: u64) -> Vec<&'a str> {
            items
                .iter()
                .copied()
                .filter(|_| self.chance(percent))
                .collect()
        }
        fn shuffle<T>(&mut self, items: &mut [T]) {
            for i in (1..items.len()).rev() {
                items.swap(i, self.below(i + 1));
            }
        }
    }

    const SCHEMAS: [&str; 2] = ["public", "app"];
    const TABLES: [&str; 6] = ["orders", "users", "items", "payments", "logs", "tags"];
    const ROLES: [&str; 4] = ["admin", "anon", "editor", "user"];
    const COLUMNS: [&str; 6] = ["created_at", "email", "id", "name", "phone", "total"];
    const RELS: [&str; 4] = ["customer", "items", "owner", "payments"];
    const ACTIONS: [&str; 3] = ["create_user", "login", "pay"];
    const PERMS: [&str; 4] = [
        "insert_permissions",
        "select_permissions",
        "update_permissions",
        "delete_permissions",
    ];

    fn random_filter(r: &mut Lcg) -> Value {
        match r.below(3) {
            0 => json!({}),
            1 => json!({"user_id": {"_eq": "X-Hasura-User-Id"}}),
            _ => json!({"_and": [{"id": {"_gt": r.below(5)}}]}),
        }
    }

    fn random_permission(r: &mut Lcg, kind: &str, role: &str) -> Value {
        let columns = r.subset(&COLUMNS, 50);
        let mut p = json!({"columns": columns});
        let rows = if kind == "insert_permissions" {
            "check"
        } else {
            "filter"
        };
        p[rows] = random_filter(r);
        if kind == "select_permissions" && r.chance(30) {
            p["limit"] = json!(r.below(3) * 10);
        }
        json!({"role": role, "permission": p})
    }

    fn random_table(r: &mut Lcg, schema: &str, name: &str) -> Value {
        let mut t = json!({"table": {"schema": schema, "name": name}});
        for kind in PERMS {
            let perms: Vec<Value> = r
                .subset(&ROLES, 35)
                .into_iter()
                .map(|role| random_permission(r, kind, role))
                .collect();
            t[kind] = Value::Array(perms);
        }
        for kind in ["object_relationships", "array_relationships"] {
            let rels: Vec<Value> = r
                .subset(&RELS, 30)
                .into_iter()
                .map(|n| json!({"name": n, "using": {"foreign_key_constraint_on": r.pick(&COLUMNS)}}))
                .collect();
            t[kind] = Value::Array(rels);
        }
        if r.chance(30) {
            t["configuration"] = json!({"custom_name": r.pick(&TABLES)});
        }
        t
    }

    /// Removes empty values (absent, null, [] and {} mean the same to the diff but not to the
    /// hash), so the generated snapshots have one spelling for "nothing".
    fn canon(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.values_mut().for_each(canon);
                o.retain(|_, v| !is_empty(Some(v)));
            }
            Value::Array(a) => a.iter_mut().for_each(canon),
            _ => {}
        }
    }

    /// The lists of tables of a snapshot (the top level for v2, each source for v3).
    fn table_lists(v: &mut Value) -> Vec<&mut Vec<Value>> {
        if v.get("sources").is_some() {
            v["sources"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .map(|s| {
                    if s.get("tables").is_none() {
                        s["tables"] = json!([]);
                    }
                    s["tables"].as_array_mut().unwrap()
                })
                .collect()
        } else {
            if v.get("tables").is_none() {
                v["tables"] = json!([]);
            }
            vec![v["tables"].as_array_mut().unwrap()]
        }
    }

    fn random_tables(r: &mut Lcg) -> Vec<Value> {
        let mut out = Vec::new();
        for schema in SCHEMAS {
            for name in r.subset(&TABLES, 40) {
                out.push(random_table(r, schema, name));
            }
        }
        out
    }

    fn random_snapshot(r: &mut Lcg) -> Value {
        let mut v = if r.chance(50) {
            json!({"version": 2, "tables": random_tables(r)})
        } else {
            let mut sources = vec![json!({"name": "default", "kind": "postgres",
                "configuration": {"connection_info": {"database_url": {"from_env": "DB"}}},
                "tables": random_tables(r)})];
            if r.chance(40) {
                sources.push(json!({"name": "other", "kind": "postgres",
                    "configuration": {"pool": r.below(3)}, "tables": random_tables(r)}));
            }
            json!({"version": 3, "sources": sources})
        };
        let actions: Vec<Value> = r
            .subset(&ACTIONS, 40)
            .into_iter()
            .map(|a| json!({"name": a, "definition": {"handler": format!("http://h/{}", r.below(3))}}))
            .collect();
        v["actions"] = Value::Array(actions);
        if r.chance(40) {
            v["network"] = json!({"tls_allowlist": [{"host": r.pick(&TABLES)}]});
        }
        canon(&mut v);
        v
    }

    /// One random edit that keeps the layout; some edits (reordering) change nothing.
    fn mutate(r: &mut Lcg, v: &mut Value) {
        edit(r, v);
        canon(v);
    }

    fn edit(r: &mut Lcg, v: &mut Value) {
        let edit = r.below(10);
        match edit {
            0..=6 => {
                let mut lists = table_lists(v);
                let i = r.below(lists.len());
                let tables = &mut lists[i];
                if edit == 0 || tables.is_empty() {
                    let (schema, name) = (r.pick(&SCHEMAS), r.pick(&TABLES));
                    let id = json!({"schema": schema, "name": name});
                    if !tables.iter().any(|t| t["table"] == id) {
                        let t = random_table(r, schema, name);
                        tables.push(t);
                    }
                    return;
                }
                let ti = r.below(tables.len());
                match edit {
                    1 => {
                        tables.remove(ti);
                    }
                    2 => {
                        // New contents, same identity.
                        let id = tables[ti]["table"].clone();
                        let (schema, name) = (id["schema"].as_str(), id["name"].as_str());
                        tables[ti] = random_table(r, schema.unwrap(), name.unwrap());
                    }
                    6 => r.shuffle(tables),
                    _ => {
                        let t = &mut tables[ti];
                        let kind = r.pick(&PERMS);
                        if t.get(kind).is_none() {
                            t[kind] = json!([]);
                        }
                        let perms = t[kind].as_array_mut().unwrap();
                        let role = r.pick(&ROLES);
                        match perms.iter().position(|p| p["role"] == role) {
                            None => perms.push(random_permission(r, kind, role)),
                            Some(pi) if edit == 3 => {
                                perms.remove(pi);
                            }
                            Some(pi) if edit == 4 => {
                                // Toggle one column, keeping the list sorted.
                                let col = r.pick(&COLUMNS);
                                let p = &mut perms[pi]["permission"];
                                let mut cols: BTreeSet<String> = p
                                    .get("columns")
                                    .and_then(Value::as_array)
                                    .map(|c| {
                                        c.iter()
                                            .filter_map(Value::as_str)
                                            .map(String::from)
                                            .collect()
                                    })
                                    .unwrap_or_default();
                                if !cols.remove(col) {
                                    cols.insert(col.to_string());
                                }
                                p["columns"] = json!(cols);
                            }
                            Some(pi) => {
                                let key = if kind == "insert_permissions" {
                                    "check"
                                } else {
                                    "filter"
                                };
                                perms[pi]["permission"][key] = random_filter(r);
                            }
                        }
                    }
                }
            }
            7 => {
                if let Some(sources) = v.get_mut("sources").and_then(Value::as_array_mut) {
                    let i = r.below(sources.len());
                    sources[i]["configuration"]["pool"] = json!(r.below(3));
                } else {
                    v["network"] = json!({"tls_allowlist": [{"host": r.pick(&TABLES)}]});
                }
            }
            8 => {
                let name = r.pick(&ACTIONS);
                if v.get("actions").is_none() {
                    v["actions"] = json!([]);
                }
                let actions = v["actions"].as_array_mut().unwrap();
                match actions.iter().position(|a| a["name"] == name) {
                    Some(i) if r.chance(50) => {
                        actions.remove(i);
                    }
                    Some(i) => {
                        actions[i]["definition"]["handler"] =
                            json!(format!("http://h/{}", r.below(3)))
                    }
                    None => {
                        actions.push(json!({"name": name, "definition": {"handler": "http://h/0"}}))
                    }
                }
            }
            _ => {
                if let Some(actions) = v.get_mut("actions").and_then(Value::as_array_mut) {
                    r.shuffle(actions);
                }
            }
        }
    }

    fn objects(changes: &[MetadataChange]) -> Vec<(String, String, &'static str)> {
        let mut out: Vec<_> = changes
            .iter()
            .map(|c| (c.section.clone(), c.object.clone(), c.change))
            .collect();
        out.sort();
        out
    }

    fn swapped(
        (section, object, change): (String, String, &'static str),
    ) -> (String, String, &'static str) {
        let change = match change {
            "added" => "removed",
            "removed" => "added",
            other => other,
        };
        (section, object, change)
    }

    /// A detail phrase as it reads in the other direction.
    fn mirrored(detail: &str) -> String {
        if let Some(s) = detail.strip_suffix(" added") {
            return format!("{s} removed");
        }
        if let Some(s) = detail.strip_suffix(" removed") {
            return format!("{s} added");
        }
        let words: Vec<&str> = detail.split(' ').collect();
        let first_set = words.iter().position(|w| w.starts_with(['+', '-']));
        match first_set {
            Some(i) if words[i..].iter().all(|w| w.starts_with(['+', '-'])) => {
                let flip = |sign: char, to: char| {
                    words[i..]
                        .iter()
                        .filter(move |w| w.starts_with(sign))
                        .map(move |w| format!("{to}{}", &w[1..]))
                };
                let set: Vec<String> = flip('-', '+').chain(flip('+', '-')).collect();
                format!("{} {}", words[..i].join(" "), set.join(" "))
            }
            _ => detail.to_string(),
        }
    }

    #[test]
    fn random_snapshots_diff_consistently() {
        let mut r = Lcg(0x5eed_1234_abcd_0001);
        let mut nonempty = 0;
        for round in 0..400 {
            let a = random_snapshot(&mut r);
            let mut b = a.clone();
            for _ in 0..=r.below(3) {
                mutate(&mut r, &mut b);
            }
            let ctx = || format!("round {round}\na = {a}\nb = {b}");
            assert!(describe_changes(&a, &a).is_empty(), "{}", ctx());
            assert!(describe_changes(&b, &b).is_empty(), "{}", ctx());

            let ab = describe_changes(&a, &b);
            let ba = describe_changes(&b, &a);
            assert_eq!(
                ab.is_empty(),
                snapshot_sha256(&a) == snapshot_sha256(&b),
                "{}\nchanges: {ab:?}",
                ctx()
            );
            assert_eq!(
                objects(&ba),
                objects(&ab).into_iter().map(swapped).collect::<Vec<_>>(),
                "{}",
                ctx()
            );
            // Details read the same backwards: "added" <-> "removed", "+c" <-> "-c".
            for c in &ab {
                let back = ba
                    .iter()
                    .find(|d| d.section == c.section && d.object == c.object)
                    .unwrap();
                let mirrored: Vec<String> = c.details.iter().map(|d| mirrored(d)).collect();
                if c.section != "version" {
                    assert_eq!(back.details, mirrored, "{}", ctx());
                }
                if c.change == "changed" && c.section == "tables" {
                    assert!(
                        !c.details.is_empty(),
                        "a changed table says what: {}",
                        ctx()
                    );
                }
            }
            assert_eq!(
                unified(&a, &b, "a", "b").is_empty(),
                snapshot_sha256(&a) == snapshot_sha256(&b)
            );
            nonempty += usize::from(!ab.is_empty());
        }
        // The generator really produces differences (and also equal pairs).
        assert!(nonempty > 200 && nonempty < 400, "{nonempty} of 400 differ");
    }

    /// Wrapping a v2 snapshot's tables into a v3 `default` source changes only the version.
    #[test]
    fn random_v2_to_v3_layout_change_reports_only_real_differences() {
        let to_v3 = |v: &Value| -> Value {
            let mut out = v.clone();
            let o = out.as_object_mut().unwrap();
            let tables = o.remove("tables").unwrap_or(json!([]));
            o.insert("version".into(), json!(3));
            o.insert(
                "sources".into(),
                json!([{"name": "default", "kind": "postgres", "configuration": {"x": 1}, "tables": tables}]),
            );
            out
        };
        let mut r = Lcg(42);
        let mut checked = 0;
        while checked < 150 {
            let a = random_snapshot(&mut r);
            if a.get("sources").is_some() {
                continue;
            }
            checked += 1;
            let mut b = a.clone();
            mutate(&mut r, &mut b);
            let version = vec!["version: changed: 2 -> 3".to_string()];
            assert_eq!(lines(&a, &to_v3(&a)), version, "{a}");
            let mut expected = lines(&a, &b);
            expected.insert(0, version[0].clone());
            assert_eq!(lines(&a, &to_v3(&b)), expected, "{a}\n{b}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Unified diff

    #[test]
    fn unified_is_empty_when_equal_or_only_reordered() {
        let a = v2(vec![table("a", json!({})), table("b", json!({}))]);
        let b = json!({"tables": [table("b", json!({})), table("a", json!({}))], "version": 2});
        assert_eq!(unified(&a, &a, "old", "new"), "");
        assert_eq!(unified(&a, &b, "old", "new"), "");
    }

    #[test]
    fn unified_shows_yaml_lines_with_context() {
        let perm =
            |cols: Value| json!([{"role": "user", "permission": {"columns": cols, "filter": {}}}]);
        let a = v2(vec![
            table("a", json!({})),
            table(
                "orders",
                json!({"select_permissions": perm(json!(["id", "phone"]))}),
            ),
        ]);
        let b = v2(vec![
            table("a", json!({})),
            table(
                "orders",
                json!({"select_permissions": perm(json!(["id", "email"]))}),
            ),
        ]);
        let d = unified(&a, &b, "database", "HEAD");
        let expected = "\
--- database
+++ HEAD
@@ -5,8 +5,8 @@
 - select_permissions:
   - permission:
       columns:
+      - email
       - id
-      - phone
     role: user
   table:
     name: orders
";
        assert_eq!(d, expected, "\n{d}");
    }

    #[test]
    fn unified_from_nothing_adds_every_line() {
        let b = v2(vec![table("a", json!({}))]);
        let d = unified(&Value::Null, &b, "(none)", "v1");
        assert!(d.starts_with("--- (none)\n+++ v1\n@@ -0,0 +1,"), "{d}");
        let body: Vec<&str> = d.lines().skip(3).collect();
        assert!(body.iter().all(|l| l.starts_with('+')), "{d}");
        assert!(body.contains(&"+version: 2"), "{d}");
        // Backwards everything is removed.
        let back = unified(&b, &Value::Null, "v1", "(none)");
        assert!(back.lines().skip(3).all(|l| l.starts_with('-')), "{back}");
    }
}
