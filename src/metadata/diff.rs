//! A short description of how two snapshots differ, per top-level section and object.

use super::{identity, normalize};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One changed object (or section) of the metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetadataChange {
    /// Section (`tables`, `functions`, `actions`, …).
    pub section: String,
    /// Object identity (`public.orders`), or empty for a whole section.
    pub object: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
}

impl std::fmt::Display for MetadataChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let singular = self.section.trim_end_matches('s');
        if self.object.is_empty() {
            write!(f, "{}: {}", self.section, self.change)
        } else {
            write!(f, "{singular} {} {}", self.object, self.change)
        }
    }
}

/// Lists the changes from `old` to `new` (either may be `Null` = empty metadata).
pub fn describe_changes(old: &Value, new: &Value) -> Vec<MetadataChange> {
    let old = normalize(old);
    let new = normalize(new);
    let empty = serde_json::Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let (a, b) = (o.get(key.as_str()), n.get(key.as_str()));
        if a == b || is_empty(a) && is_empty(b) {
            continue;
        }
        // The format version only counts as a change between two real snapshots.
        if key == "version" && (a.is_none() || b.is_none()) {
            continue;
        }
        let as_map = |v: Option<&Value>| -> Option<BTreeMap<String, Value>> {
            match v {
                None | Some(Value::Null) => Some(BTreeMap::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| identity(key, i).map(|id| (id, i.clone())))
                    .collect(),
                _ => None,
            }
        };
        match (as_map(a), as_map(b)) {
            (Some(am), Some(bm)) => {
                for (id, v) in &am {
                    match bm.get(id) {
                        None => out.push(change(key, id, "removed")),
                        Some(w) if w != v => out.push(change(key, id, "changed")),
                        _ => {}
                    }
                }
                for id in bm.keys().filter(|id| !am.contains_key(*id)) {
                    out.push(change(key, id, "added"));
                }
            }
            _ => out.push(change(key, "", "changed")),
        }
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

fn change(section: &str, object: &str, change: &'static str) -> MetadataChange {
    MetadataChange {
        section: section.to_string(),
        object: object.to_string(),
        change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let c: Vec<String> = describe_changes(&a, &b)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            c,
            vec![
                "network: changed",
                "table public.a removed",
                "table public.b changed",
                "table public.c added"
            ]
        );
        assert!(describe_changes(&a, &a).is_empty());
        assert_eq!(describe_changes(&Value::Null, &a).len(), 2);
        let empty_types = json!({"custom_types": {"enums": [], "objects": []}});
        assert!(describe_changes(&Value::Null, &empty_types).is_empty());
    }
}
