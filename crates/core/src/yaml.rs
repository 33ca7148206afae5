//! YAML read from history: a key written twice in one mapping (`version:` twice in
//! `config.yaml`, a table key twice in `tables.yaml`) is an old mistake that cannot be fixed in
//! the commits that have it. The strict parser refuses it, which would leave that commit and
//! every later one undeployable; [`parse`] keeps the later value (as Go's yaml.v2 did) and says
//! where each duplicate is, so that callers can warn. A file that cannot be parsed at all is
//! still an error.
//!
//! Warnings found while reading files are handed to the command layer through [`warn`] and
//! [`take_warnings`]: reads happen deep inside planning, building metadata snapshots and
//! checking ranges, and the library never prints.

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use yaml_serde::value::{Tag, TaggedValue};
use yaml_serde::{Mapping, Value};

/// A key written more than once in one mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The key as written (a scalar), or a description of a complex key.
    pub key: String,
    /// 1-based line of the occurrence whose value is kept (the last); 0 when not located.
    pub line: usize,
    /// 1-based line of the first occurrence; 0 when not located.
    pub first_line: usize,
}

impl DuplicateKey {
    /// The warning for this duplicate in `path` at `at` (a commit, the index, the working
    /// tree): `hasura/config.yaml @ abc1234567 line 4: duplicate key "version" (first at line
    /// 1); the later value wins`.
    pub fn warning(&self, path: &str, at: &str) -> String {
        let line = if self.line > 0 {
            format!(" line {}", self.line)
        } else {
            String::new()
        };
        let first = if self.first_line > 0 {
            format!(" (first at line {})", self.first_line)
        } else {
            String::new()
        };
        format!(
            "{path} @ {at}{line}: duplicate key {:?}{first}; the later value wins",
            self.key
        )
    }
}

/// A parsed document and the duplicate keys whose earlier values were dropped.
#[derive(Debug)]
pub struct Lenient {
    /// The document; a blank file is null.
    pub value: Value,
    /// Duplicate keys, in document order (empty for almost every file).
    pub duplicates: Vec<DuplicateKey>,
}

/// How many duplicates of one file get their lines looked up (two parses each).
const MAX_LOCATED: usize = 20;

/// Parses a YAML document into a value as `yaml_serde` does, except that a key repeated in a
/// mapping keeps its last value instead of failing. Any other error is `yaml_serde`'s, with its
/// line and column. Files without duplicates take the strict parser alone.
pub fn parse(text: &str) -> Result<Lenient, yaml_serde::Error> {
    if text.trim().is_empty() {
        return Ok(Lenient {
            value: Value::Null,
            duplicates: Vec::new(),
        });
    }
    let strict = match yaml_serde::from_str::<Value>(text) {
        Ok(value) => {
            return Ok(Lenient {
                value,
                duplicates: Vec::new(),
            })
        }
        Err(e) => e,
    };
    let state = RefCell::new(State::default());
    let Ok(value) = Any(&state).deserialize(yaml_serde::Deserializer::from_str(text)) else {
        return Err(strict);
    };
    let found = state.into_inner().found;
    if found.is_empty() {
        return Err(strict);
    }
    let mut duplicates: Vec<DuplicateKey> = Vec::new();
    for (i, (later, first, key)) in found.into_iter().enumerate() {
        let (line, first_line) = if i < MAX_LOCATED {
            (locate(text, later), locate(text, first))
        } else {
            (0, 0)
        };
        let d = DuplicateKey {
            key,
            line,
            first_line,
        };
        // A mapping reached through an alias is visited again: same keys, same lines.
        if !duplicates.contains(&d) {
            duplicates.push(d);
        }
    }
    Ok(Lenient { value, duplicates })
}

/// The 1-based line of the key visited `ordinal`-th (0-based, document order), found by
/// parsing again and stopping there: the parser puts the position of the node being visited
/// on the error. 0 when it cannot be found.
fn locate(text: &str, ordinal: usize) -> usize {
    let state = RefCell::new(State {
        stop_at: Some(ordinal),
        ..State::default()
    });
    match Any(&state).deserialize(yaml_serde::Deserializer::from_str(text)) {
        Err(e) if e.to_string().contains(STOP) => e.location().map_or(0, |l| l.line()),
        _ => 0,
    }
}

/// The message of the error that stops a parse at a key (never shown).
const STOP: &str = "\u{0}git-migrate: located";

#[derive(Default)]
struct State {
    /// Keys visited so far.
    keys: usize,
    /// Stop at this key with [`STOP`].
    stop_at: Option<usize>,
    /// (ordinal of the repeated key, ordinal of its first occurrence, the key).
    found: Vec<(usize, usize, String)>,
}

/// Any value, built as `yaml_serde::Value`'s own `Deserialize` builds it, except mappings.
#[derive(Clone, Copy)]
struct Any<'s>(&'s RefCell<State>);

/// A mapping key: counted, and the point where a locating parse stops.
struct Key<'s>(&'s RefCell<State>);

/// Visits a key's node, failing with [`STOP`] first when it is the one being located (so that
/// the error carries the key's own position).
struct KeyVisitor<'s> {
    any: Any<'s>,
    stop: bool,
}

fn describe(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => "(a complex key)".into(),
    }
}

impl<'de> DeserializeSeed<'de> for Any<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = (Value, usize);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(Value, usize), D::Error> {
        let (ordinal, stop) = {
            let mut s = self.0.borrow_mut();
            s.keys += 1;
            (s.keys - 1, s.stop_at == Some(s.keys - 1))
        };
        let value = d.deserialize_any(KeyVisitor {
            any: Any(self.0),
            stop,
        })?;
        Ok((value, ordinal))
    }
}

/// The tag of a tagged node (`!include` → `include`), as `yaml_serde` reads it.
struct TagSeed;

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = Tag;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Tag, D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for TagSeed {
    type Value = Tag;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML tag string")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Tag, E> {
        if s.is_empty() {
            return Err(E::custom("empty YAML tag is not allowed"));
        }
        Ok(Tag::new(s))
    }
}

impl<'de> Visitor<'de> for Any<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Number(u.into()))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(f.into()))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        let mut first: HashMap<Value, usize> = HashMap::new();
        while let Some((key, ordinal)) = map.next_key_seed(Key(self.0))? {
            let value = map.next_value_seed(self)?;
            match first.get(&key) {
                Some(&f) => {
                    self.0.borrow_mut().found.push((ordinal, f, describe(&key)));
                    // The later value wins, in the later place.
                    out.shift_remove(&key);
                }
                None => {
                    first.insert(key.clone(), ordinal);
                }
            }
            out.insert(key, value);
        }
        Ok(Value::Mapping(out))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        let (tag, contents) = data.variant_seed(TagSeed)?;
        let value = contents.newtype_variant_seed(self)?;
        Ok(Value::Tagged(Box::new(TaggedValue { tag, value })))
    }
}

impl KeyVisitor<'_> {
    fn check<E: de::Error>(&self) -> Result<(), E> {
        if self.stop {
            Err(E::custom(STOP))
        } else {
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for KeyVisitor<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.check()?;
        self.any.visit_bool(b)
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        self.check()?;
        self.any.visit_i64(i)
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        self.check()?;
        self.any.visit_u64(u)
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        self.check()?;
        self.any.visit_f64(f)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.check()?;
        self.any.visit_str(s)
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.check()?;
        self.any.visit_string(s)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.check()?;
        self.any.visit_unit()
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.check()?;
        self.any.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.check()?;
        self.any.visit_some(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        self.check()?;
        self.any.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        self.check()?;
        self.any.visit_map(map)
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        self.check()?;
        self.any.visit_enum(data)
    }
}

/// Every warning handed over so far (each once), and how many were taken.
static WARNINGS: Mutex<(Vec<String>, usize)> = Mutex::new((Vec::new(), 0));

/// Hands a warning about a file read from history to the command layer, which shows it with
/// the command's output. A warning already handed over is not repeated (the same file is often
/// read more than once in one run: planned, then planned again under the lock).
pub fn warn(text: String) {
    let mut g = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
    if !g.0.contains(&text) {
        g.0.push(text);
    }
}

/// The warnings handed over since the last call, in the order they came.
pub fn take_warnings() -> Vec<String> {
    let mut g = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
    let from = g.1;
    g.1 = g.0.len();
    g.0[from..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_without_duplicates_are_the_strict_parse() {
        for text in [
            "a: 1\nb: [x, {c: d}]\n",
            "x: !include a.yaml\ny: !custom {k: v}\n",
            "base: &b {x: 1}\nother: *b\n<<: {m: 1}\n",
            "- 1\n- ~\n- 2.5\n",
        ] {
            let l = parse(text).unwrap();
            assert_eq!(l.value, yaml_serde::from_str::<Value>(text).unwrap());
            assert!(l.duplicates.is_empty());
        }
        assert_eq!(parse("  \n").unwrap().value, Value::Null);
    }

    #[test]
    fn the_later_value_wins_and_both_lines_are_named() {
        let text = "version: 2\nendpoint: http://x\n# comment\nversion: 3\n";
        let l = parse(text).unwrap();
        assert_eq!(l.value["version"], Value::from(3));
        assert_eq!(l.value["endpoint"], Value::from("http://x"));
        assert_eq!(
            l.duplicates,
            vec![DuplicateKey {
                key: "version".into(),
                line: 4,
                first_line: 1,
            }]
        );
        assert_eq!(
            l.duplicates[0].warning("hasura/config.yaml", "abc1234567"),
            "hasura/config.yaml @ abc1234567 line 4: duplicate key \"version\" (first at line 1); the later value wins"
        );
    }

    #[test]
    fn nested_flow_tagged_and_aliased_duplicates() {
        let text = "- table:\n    name: a\n    schema: public\n    name: b\n- {x: 1, x: !include y.yaml}\n- &m {k: 1, k: 2}\n- *m\n";
        let l = parse(text).unwrap();
        let expected: Value = yaml_serde::from_str(
            "- table:\n    schema: public\n    name: b\n- {x: !include y.yaml}\n- {k: 2}\n- {k: 2}\n",
        )
        .unwrap();
        assert_eq!(l.value, expected);
        let got: Vec<(String, usize, usize)> = l
            .duplicates
            .iter()
            .map(|d| (d.key.clone(), d.line, d.first_line))
            .collect();
        assert_eq!(
            got,
            [
                ("name".to_string(), 4, 2),
                ("x".to_string(), 5, 5),
                ("k".to_string(), 6, 6)
            ]
        );
        // Non-string keys too.
        let l = parse("1: a\n1: b\n").unwrap();
        assert_eq!(l.duplicates[0].key, "1");
        assert_eq!(l.value[1], Value::from("b"));
    }

    #[test]
    fn other_errors_are_the_strict_parsers() {
        let e = parse("a: 1\na: 2\nb: [\n").unwrap_err();
        assert!(e.location().is_some(), "{e}");
        assert!(!e.to_string().contains(STOP));
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.to_string().contains("more than one document"), "{e}");
    }

    #[test]
    fn warnings_are_handed_over_once() {
        let mark = "yaml::tests::once";
        warn(format!("{mark} 1"));
        warn(format!("{mark} 1"));
        let taken: Vec<String> = take_warnings()
            .into_iter()
            .filter(|w| w.starts_with(mark))
            .collect();
        assert_eq!(taken, [format!("{mark} 1")]);
        warn(format!("{mark} 1"));
        assert!(!take_warnings().iter().any(|w| w.starts_with(mark)));
    }
}
