//! Content addressing for `metadata diff A B`: files shared by both revisions are not parsed.
//!
//! A file whose blob id is in both revisions and which is a plain leaf (no include, no merge
//! key, see [`super::parsed::is_plain_leaf`]) gives the same value in both. Both snapshots are
//! built with such files replaced by a sentinel `{"$gm_same_blob": "<blob id>"}`
//! ([`super::v3::build_v3_snapshot_with`]). [`strip_matched`] then checks that every sentinel
//! sits at the same place in both snapshots and removes them all, so that
//! [`super::describe_changes`] of the stripped snapshots says what it says of the full ones: an
//! object present and equal on both sides never shows up as a change. When a sentinel sits
//! elsewhere on the other side (a table file moved to another source), or somewhere removing it
//! could change what is reported, the caller builds the full snapshots instead.
//!
//! "The same place" is the path of keys from the root, where an element of an identity-keyed
//! list (tables, permissions, sources, …) is named by its identity, as `describe_changes` pairs
//! them. A sentinel may be the value of a key (not one that makes up an identity) inside objects
//! that are all reached that way, or an element of such a list whose other elements all have
//! distinct identities. Anywhere else (an element of a plain list, below an element without an
//! identity) the diff could depend on positions, so the snapshots are built in full.
//!
//! What this does not check, since it would need the parse it saves: that the element a list
//! sentinel stands for has an identity of its own, distinct from the others. Two table files
//! naming the same table (or a table file without `table`) make metadata the server rejects; for
//! such a pair of revisions `describe_changes` of the full snapshots reports the whole list as
//! changed where the stripped ones report the objects that changed. Likewise a shared file that
//! does not parse makes both full builds fail, while the stripped diff does not read it.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{identity, is_identity_list};

/// The key of a sentinel object.
pub(crate) const SENTINEL_KEY: &str = "$gm_same_blob";

/// Keys whose values make up an identity ([`super::identity`]): a sentinel there would hide it.
const IDENTITY_KEYS: &[&str] = &[
    "table",
    "function",
    "schema",
    "name",
    "role",
    "role_name",
    "collection",
];

/// The sentinel standing for the file with this blob id.
pub(crate) fn sentinel(blob_id: &str) -> Value {
    let mut m = Map::new();
    m.insert(SENTINEL_KEY.into(), Value::String(blob_id.into()));
    Value::Object(m)
}

fn sentinel_id(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) if o.len() == 1 => o.get(SENTINEL_KEY)?.as_str(),
        _ => None,
    }
}

/// The sentinels' blob ids by place, or `None` when one sits where removing it could change
/// what `describe_changes` reports. A place is written as its steps, each a kind letter and a
/// length-prefixed name: `K` a key, `I` an element of a list named by its identity, `E` "an
/// element of this list" (where a list sentinel sits).
fn sites(root: &Value) -> Option<HashMap<String, Vec<&str>>> {
    fn step(path: &mut String, kind: char, name: &str) {
        path.push(kind);
        path.push_str(&name.len().to_string());
        path.push(':');
        path.push_str(name);
    }
    /// `precise`: every step down to `v` is a key or an element named by a unique identity.
    fn walk<'v>(
        v: &'v Value,
        list_key: Option<&str>,
        precise: bool,
        path: &mut String,
        out: &mut HashMap<String, Vec<&'v str>>,
    ) -> bool {
        fn record<'v>(out: &mut HashMap<String, Vec<&'v str>>, path: &str, id: &'v str) {
            match out.get_mut(path) {
                Some(ids) => ids.push(id),
                None => {
                    out.insert(path.to_string(), vec![id]);
                }
            }
        }
        let len = path.len();
        match v {
            Value::Object(o) => o.iter().all(|(k, child)| {
                step(path, 'K', k);
                let ok = match sentinel_id(child) {
                    Some(id) => {
                        record(out, path, id);
                        precise && !IDENTITY_KEYS.contains(&k.as_str())
                    }
                    None => walk(child, Some(k), precise, path, out),
                };
                path.truncate(len);
                ok
            }),
            Value::Array(items) => {
                let key = list_key.filter(|k| is_identity_list(k));
                let ids: Vec<Option<String>> = items
                    .iter()
                    .map(|i| match sentinel_id(i) {
                        Some(_) => None,
                        None => key.and_then(|k| identity(k, i)),
                    })
                    .collect();
                // Compared as a set by identity: every other element has one, none twice.
                let keyed = key.is_some() && {
                    let mut seen = std::collections::HashSet::new();
                    items.iter().zip(&ids).all(|(i, id)| match id {
                        Some(id) => seen.insert(id.as_str()),
                        None => sentinel_id(i).is_some(),
                    })
                };
                items.iter().zip(&ids).all(|(item, id)| {
                    let ok = match sentinel_id(item) {
                        Some(blob) => {
                            step(path, 'E', "");
                            record(out, path, blob);
                            precise && keyed
                        }
                        None => {
                            step(path, 'I', id.as_deref().unwrap_or_default());
                            walk(item, None, precise && keyed, path, out)
                        }
                    };
                    path.truncate(len);
                    ok
                })
            }
            _ => true,
        }
    }
    let mut out = HashMap::new();
    walk(root, None, true, &mut String::new(), &mut out).then_some(out)
}

/// Removes every sentinel from both snapshots when they match: the same blob ids at the same
/// places on both sides (as multisets), each where removing it cannot change the diff, and
/// exactly as many as the builds put in (`expected`: so no real value that merely looks like a
/// sentinel is taken for one). Returns false, and changes nothing, otherwise: then only full
/// snapshots give the right diff.
pub(crate) fn strip_matched(old: &mut Value, new: &mut Value, expected: (usize, usize)) -> bool {
    let matched = {
        let (Some(mut a), Some(mut b)) = (sites(old), sites(new)) else {
            return false;
        };
        let count = |s: &HashMap<String, Vec<&str>>| s.values().map(Vec::len).sum::<usize>();
        if (count(&a), count(&b)) != expected || a.len() != b.len() {
            return false;
        }
        a.values_mut()
            .chain(b.values_mut())
            .for_each(|ids| ids.sort_unstable());
        a.iter().all(|(place, ids)| b.get(place) == Some(ids))
    };
    if matched {
        strip(old);
        strip(new);
    }
    matched
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|_, c| sentinel_id(c).is_none());
            o.values_mut().for_each(strip);
        }
        Value::Array(items) => {
            items.retain(|c| sentinel_id(c).is_none());
            items.iter_mut().for_each(strip);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::describe_changes;
    use serde_json::json;

    fn table(name: &str, extra: Value) -> Value {
        let mut t = json!({"table": {"schema": "public", "name": name}});
        t.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        t
    }

    fn snapshot(sources: Vec<(&str, Vec<Value>)>) -> Value {
        json!({
            "version": 3,
            "sources": sources
                .into_iter()
                .map(|(name, tables)| json!({"name": name, "kind": "postgres", "tables": tables, "functions": []}))
                .collect::<Vec<_>>(),
        })
    }

    fn lines(a: &Value, b: &Value) -> Vec<String> {
        describe_changes(a, b)
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    /// The stripped diff equals the full one (`full_*` are the same snapshots with the
    /// sentinels' real values).
    fn check_same_diff(
        full_a: &Value,
        full_b: &Value,
        mut a: Value,
        mut b: Value,
        n: (usize, usize),
    ) {
        assert!(strip_matched(&mut a, &mut b, n), "expected a match");
        assert!(sites(&a).unwrap().is_empty() && sites(&b).unwrap().is_empty());
        assert!(!a.to_string().contains(SENTINEL_KEY) && !b.to_string().contains(SENTINEL_KEY));
        assert_eq!(lines(&a, &b), lines(full_a, full_b));
    }

    #[test]
    fn matching_sentinels_are_stripped_and_the_diff_is_unchanged() {
        let perm = |cols: Value| json!({"select_permissions": [{"role": "user", "permission": {"columns": cols, "filter": {}}}]});
        let shared = table("a", perm(json!(["id"])));
        let full_a = snapshot(vec![(
            "default",
            vec![
                shared.clone(),
                table("b", perm(json!(["id"]))),
                table("gone", json!({})),
            ],
        )]);
        let full_b = snapshot(vec![(
            "default",
            vec![
                table("b", perm(json!(["id", "x"]))),
                shared.clone(),
                table("new", json!({})),
            ],
        )]);
        let a = snapshot(vec![(
            "default",
            vec![
                sentinel("1111"),
                table("b", perm(json!(["id"]))),
                table("gone", json!({})),
            ],
        )]);
        let b = snapshot(vec![(
            "default",
            vec![
                table("b", perm(json!(["id", "x"]))),
                sentinel("1111"),
                table("new", json!({})),
            ],
        )]);
        check_same_diff(&full_a, &full_b, a, b, (1, 1));
        assert_eq!(
            lines(&full_a, &full_b),
            [
                "table public.b changed: select permission for role user: columns +x",
                "table public.gone removed",
                "table public.new added"
            ]
        );

        // A shared file as the value of a key, inside a changed table: only the rest counts.
        let body = json!({"columns": ["id"], "filter": {"id": {"_eq": "X-Hasura-User-Id"}}});
        let t = |p: Value, limit: i64| {
            table(
                "c",
                json!({"select_permissions": [{"role": "user", "permission": p, "comment": limit}]}),
            )
        };
        let full_a = snapshot(vec![("default", vec![t(body.clone(), 1)])]);
        let full_b = snapshot(vec![("default", vec![t(body.clone(), 2)])]);
        let a = snapshot(vec![("default", vec![t(sentinel("22"), 1)])]);
        let b = snapshot(vec![("default", vec![t(sentinel("22"), 2)])]);
        check_same_diff(&full_a, &full_b, a, b, (1, 1));
    }

    #[test]
    fn a_table_file_moved_to_another_source_does_not_match() {
        let mut a = snapshot(vec![
            ("default", vec![sentinel("33"), table("x", json!({}))]),
            ("other", vec![table("y", json!({}))]),
        ]);
        let mut b = snapshot(vec![
            ("default", vec![table("x", json!({}))]),
            ("other", vec![table("y", json!({})), sentinel("33")]),
        ]);
        let before = (a.clone(), b.clone());
        assert!(!strip_matched(&mut a, &mut b, (1, 1)));
        assert_eq!((a, b), before, "nothing is stripped when they do not match");
    }

    #[test]
    fn unsafe_places_and_wrong_counts_do_not_match() {
        // An element of a list that is not identity-keyed: positions could matter.
        let s = |v: Value| {
            json!({"version": 3, "sources": [{"name": "d", "tables": [
            {"table": {"schema": "public", "name": "t"}, "computed_fields": [], "x": {"list": v}}]}]})
        };
        assert!(sites(&s(json!([sentinel("1"), 2]))).is_none());
        // The value of an identity key.
        let t =
            json!({"version": 3, "sources": [{"name": "d", "tables": [{"table": sentinel("1")}]}]});
        assert!(sites(&t).is_none());
        // Below an element without an identity, or next to one.
        let u = json!({"version": 3, "sources": [{"name": "d", "tables": [
            {"no_table": 1, "select_permissions": [{"role": "u", "permission": sentinel("1")}]}]}]});
        assert!(sites(&u).is_none());
        let w =
            json!({"version": 3, "sources": [{"name": "d", "tables": [{"x": 1}, sentinel("1")]}]});
        assert!(sites(&w).is_none());
        // Two elements with the same identity next to a sentinel.
        let d = json!({"version": 3, "sources": [{"name": "d", "tables": [
            {"table": "a"}, {"table": {"schema": "public", "name": "a"}}, sentinel("1")]}]});
        assert!(sites(&d).is_none());
        // A real value that looks like a sentinel: more sentinels than the build put in.
        let mut a = snapshot(vec![("default", vec![sentinel("1")])]);
        let mut b = a.clone();
        assert!(!strip_matched(&mut a, &mut b, (0, 0)));
        assert!(strip_matched(&mut a, &mut b, (1, 1)));
        // The same blob twice on one side, once on the other.
        let mut a = snapshot(vec![("default", vec![sentinel("1"), sentinel("1")])]);
        let mut b = snapshot(vec![("default", vec![sentinel("1")])]);
        assert!(!strip_matched(&mut a, &mut b, (2, 1)));
    }

    #[test]
    fn no_sentinels_is_a_match() {
        let mut a = snapshot(vec![("default", vec![table("x", json!({}))])]);
        let mut b = snapshot(vec![]);
        assert!(strip_matched(&mut a, &mut b, (0, 0)));
        assert_eq!(
            lines(&a, &b),
            ["source default removed", "table public.x removed"]
        );
    }
}
