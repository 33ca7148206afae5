//! Parsed metadata files for the config v3 builder: YAML parsed on every core, each distinct
//! blob once per process.
//!
//! A file is parsed into a [`Doc`]: the YAML document as written, the includes it holds (in the
//! order the builder resolves them) and whether it uses `<<` merge keys. The builder then takes
//! the document either as YAML (the exact, original procedure, used when any file of the build
//! has merge keys) or as JSON with a placeholder string at each include, which it splices
//! together without ever converting the whole tree again (every other build). Two kinds of
//! files skip the YAML value altogether: plain files (no `!`, `\` or `<<`) are deserialized
//! straight into JSON, and the include lists `hasura metadata export` writes are read line by
//! line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use git2::Oid;
use serde_json::Value;
use yaml_serde::Value as Yaml;

/// Start of the string that stands for include number `k` of a file in its JSON form
/// (`"\0gm-include\0<k>"`). A NUL cannot be typed into YAML unescaped, and a file whose strings
/// start with this anyway is built the exact way.
pub(super) const PLACEHOLDER: &str = "\u{0}gm-include\u{0}";

/// A file's bytes, shared without copying.
pub(super) type Bytes = Arc<Vec<u8>>;

/// One include as written: the path (unquoted) or, for `!include` followed by something else
/// than a string, what was found instead; how deep below the file's root value it sits (keys
/// and list items); and whether it sits below a `<<` merge key.
#[derive(Clone, Debug)]
pub(super) struct IncludeRef {
    pub target: Result<String, String>,
    pub depth: usize,
    pub under_merge: bool,
}

/// What parsing a file gave.
pub(super) enum Parsed {
    /// Not UTF-8.
    Encoding,
    /// A YAML error (the message without the include chain, which the builder adds).
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A document.
    Doc(Doc),
}

/// A parsed YAML document.
pub(super) struct Doc {
    bytes: Bytes,
    /// The includes, in the order in which the builder resolves them (document order).
    pub includes: Vec<IncludeRef>,
    /// A mapping reached through values has a `<<` key: merges apply, so only the exact (YAML)
    /// procedure reproduces the result.
    pub merge: bool,
    /// A string value starts with [`PLACEHOLDER`]: the JSON splice cannot tell it from an include.
    pub clash: bool,
    /// Keys written twice in one mapping (the later value is the document's); the builder
    /// warns, naming the file and the revision.
    pub duplicates: Vec<crate::yaml::DuplicateKey>,
    state: Mutex<State>,
}

enum State {
    /// The document as written.
    Yaml(Yaml),
    /// The JSON form (includes replaced by placeholders, other tags dropped), or the error
    /// message of the conversion.
    Json(Result<Value, String>),
    /// Handed over to a build; parsed again if needed once more.
    Spent,
}

impl Parsed {
    /// Parses a file's bytes (any thread).
    pub fn parse(bytes: Bytes) -> Parsed {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Parsed::Encoding;
        };
        if let Some(doc) = include_list(&bytes) {
            return Parsed::Doc(doc);
        }
        if let Some(json) = direct_json(text) {
            return Parsed::Doc(Doc {
                bytes,
                includes: Vec::new(),
                merge: false,
                clash: false,
                duplicates: Vec::new(),
                state: Mutex::new(State::Json(Ok(json))),
            });
        }
        let crate::yaml::Lenient {
            value: yaml,
            duplicates,
        } = match parse_text(text) {
            Ok(l) => l,
            Err(e) => {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                return Parsed::Syntax {
                    line,
                    column,
                    message: e.to_string(),
                };
            }
        };
        let mut scan = Scan::default();
        scan.walk(&yaml, 0, false);
        Parsed::Doc(Doc {
            bytes,
            includes: scan.includes,
            merge: scan.merge,
            clash: scan.clash,
            duplicates,
            state: Mutex::new(State::Yaml(yaml)),
        })
    }
}

/// An empty (or blank) file is null, as in the Hasura CLI; a key written twice keeps its later
/// value ([`crate::yaml::parse`]).
fn parse_text(text: &str) -> Result<crate::yaml::Lenient, yaml_serde::Error> {
    crate::yaml::parse(text)
}

/// The list file `hasura metadata export` writes (`tables.yaml`, `functions.yaml`): nothing but
/// lines `- "!include <name>"` with a plain file name. Read without the YAML parser; its JSON
/// form is what [`to_json`] gives (a list of placeholders) and its includes what [`Scan`] finds
/// (a string include at depth 1 each). `None` for anything else, which is parsed.
fn include_list(bytes: &Bytes) -> Option<Doc> {
    const HEAD: &[u8] = b"- \"!include ";
    let body = bytes.strip_suffix(b"\n")?;
    let mut includes = Vec::new();
    let mut items = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let name = line.strip_prefix(HEAD)?.strip_suffix(b"\"")?;
        let plain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/');
        if name.is_empty() || !name.iter().all(plain) {
            return None;
        }
        items.push(Value::String(format!("{PLACEHOLDER}{}", includes.len())));
        includes.push(IncludeRef {
            target: Ok(String::from_utf8(name.to_vec()).ok()?),
            depth: 1,
            under_merge: false,
        });
    }
    Some(Doc {
        bytes: bytes.clone(),
        includes,
        merge: false,
        clash: false,
        duplicates: Vec::new(),
        state: Mutex::new(State::Json(Ok(Value::Array(items)))),
    })
}

/// A plain file (no `!` at all, so no tags and no includes; no `\` escapes; no `<<`)
/// deserialized straight into JSON, skipping the YAML value and its conversion. `None` for any
/// other file, and whenever the YAML route could give something else (a key that is not a
/// string, a repeated key, an error): that file takes the YAML route, which gives the exact
/// value or error.
fn direct_json(text: &str) -> Option<Value> {
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    let b = text.as_bytes();
    if text.trim().is_empty() || b.contains(&b'!') || b.contains(&b'\\') || find(b, b"<<") {
        return None;
    }

    /// Any value, as the YAML value's visitor builds it and `serde_json::to_value` converts it.
    #[derive(Clone, Copy)]
    struct Any;
    /// A key that is a string (the only kind converted as is).
    struct Key;

    impl<'de> DeserializeSeed<'de> for Any {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Any {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any YAML value")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Number(v.into()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            // As `to_value` does: a number, or null for NaN and infinities.
            Ok(Value::from(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
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
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(v) = seq.next_element_seed(Any)? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(k) = map.next_key_seed(Key)? {
                if out.contains_key(&k) {
                    return Err(de::Error::custom("repeated key"));
                }
                let v = map.next_value_seed(Any)?;
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
    }

    impl<'de> DeserializeSeed<'de> for Key {
        type Value = String;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Key {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
    }

    struct Whole(Value);
    impl<'de> serde::Deserialize<'de> for Whole {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Whole, D::Error> {
            d.deserialize_any(Any).map(Whole)
        }
    }

    yaml_serde::from_str::<Whole>(text).ok().map(|d| d.0)
}

impl Doc {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Size of the file in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    fn reparse(&self) -> Yaml {
        let text = std::str::from_utf8(&self.bytes).expect("parsed once already");
        parse_text(text).expect("parsed once already").value
    }

    /// The document as written (a copy).
    pub fn yaml(&self) -> Yaml {
        match &*self.lock() {
            State::Yaml(y) => y.clone(),
            _ => self.reparse(),
        }
    }

    /// Converts the document to its JSON form now, if not done yet (for the parallel phase).
    pub(crate) fn prepare_json(&self) {
        let mut state = self.lock();
        if let State::Yaml(_) = &*state {
            let State::Yaml(y) = std::mem::replace(&mut *state, State::Spent) else {
                unreachable!()
            };
            *state = State::Json(to_json(y));
        }
    }

    /// The JSON form: a copy when `keep` (the cache serves other builds too), else handed over.
    pub fn json(&self, keep: bool) -> Result<Value, String> {
        let mut state = self.lock();
        let value = match std::mem::replace(&mut *state, State::Spent) {
            State::Yaml(y) => to_json(y),
            State::Json(v) => v,
            State::Spent => to_json(self.reparse()),
        };
        if keep {
            *state = State::Json(value.clone());
        }
        value
    }
}

/// The JSON form of a document: tags other than `!include` dropped (keeping the value) and each
/// include replaced by its placeholder, in the builder's order.
fn to_json(mut yaml: Yaml) -> Result<Value, String> {
    let mut next = 0;
    placehold(&mut yaml, &mut next);
    serde_json::to_value(&yaml).map_err(|e| e.to_string())
}

/// Whether a YAML value is an include, and what it names (see `Builder::resolve`, which this
/// mirrors: both must see the same includes in the same order).
fn include_of(v: &Yaml) -> Option<Result<String, String>> {
    match v {
        Yaml::String(s) => string_include(s).map(|p| Ok(p.to_string())),
        Yaml::Tagged(t) if t.tag == "include" => Some(match &t.value {
            Yaml::String(s) => Ok(unquote(s.trim()).to_string()),
            other => Err(match other {
                Yaml::Null => "nothing".to_string(),
                Yaml::Bool(_) | Yaml::Number(_) => "a non-string scalar".to_string(),
                Yaml::Sequence(_) => "a list".to_string(),
                Yaml::Mapping(_) => "a mapping".to_string(),
                _ => "a tagged value".to_string(),
            }),
        }),
        _ => None,
    }
}

fn placehold(v: &mut Yaml, next: &mut usize) {
    if include_of(v).is_some() {
        *v = Yaml::String(format!("{PLACEHOLDER}{next}"));
        *next += 1;
        return;
    }
    match v {
        Yaml::Tagged(t) => {
            let mut inner = std::mem::replace(&mut t.value, Yaml::Null);
            placehold(&mut inner, next);
            *v = inner;
        }
        Yaml::Sequence(items) => items.iter_mut().for_each(|i| placehold(i, next)),
        Yaml::Mapping(map) => map.iter_mut().for_each(|(_, x)| placehold(x, next)),
        Yaml::Null | Yaml::Bool(_) | Yaml::Number(_) | Yaml::String(_) => {}
    }
}

#[derive(Default)]
struct Scan {
    includes: Vec<IncludeRef>,
    merge: bool,
    clash: bool,
}

impl Scan {
    /// Walks what `Builder::resolve` and `apply_merge` walk: values, list items, tagged values.
    fn walk(&mut self, v: &Yaml, depth: usize, under_merge: bool) {
        if let Some(target) = include_of(v) {
            self.includes.push(IncludeRef {
                target,
                depth,
                under_merge,
            });
            return;
        }
        match v {
            Yaml::String(s) => self.clash |= s.starts_with(PLACEHOLDER),
            Yaml::Tagged(t) => self.walk(&t.value, depth, under_merge),
            Yaml::Sequence(items) => items
                .iter()
                .for_each(|i| self.walk(i, depth + 1, under_merge)),
            Yaml::Mapping(map) => {
                for (k, x) in map {
                    let merge_key = k.as_str() == Some("<<");
                    self.merge |= merge_key;
                    self.walk(x, depth + 1, under_merge || merge_key);
                }
            }
            Yaml::Null | Yaml::Bool(_) | Yaml::Number(_) => {}
        }
    }
}

/// The places of the placeholders in a JSON form, by include number; `None` when they are not
/// exactly `0..count` once each.
pub(super) fn placeholder_slots(value: &mut Value, count: usize) -> Option<Vec<&mut Value>> {
    fn go<'v>(v: &'v mut Value, out: &mut [Option<&'v mut Value>]) -> bool {
        if let Value::String(s) = &*v {
            if let Some(k) = s.strip_prefix(PLACEHOLDER) {
                let Some(slot) = k.parse::<usize>().ok().and_then(|k| out.get_mut(k)) else {
                    return false;
                };
                if slot.is_some() {
                    return false;
                }
                *slot = Some(v);
                return true;
            }
        }
        match v {
            Value::Array(items) => items.iter_mut().all(|i| go(i, out)),
            Value::Object(map) => map.values_mut().all(|i| go(i, out)),
            _ => true,
        }
    }
    let mut out: Vec<Option<&mut Value>> = (0..count).map(|_| None).collect();
    if !go(value, &mut out) {
        return None;
    }
    out.into_iter().collect()
}

/// Whether an unparsed file certainly gives a value of its own: valid UTF-8 with no include,
/// no `<<` merge key and nothing that could spell either in another way (escapes, verbatim
/// tags, tag directives or URI escapes in tags). Such a file means the same wherever it is
/// included, so a file with the same blob id in two revisions means the same in both.
pub(super) fn is_plain_leaf(bytes: &[u8]) -> bool {
    // `contains` on bytes is memchr: these are fast passes over files that have none of them.
    if bytes.contains(&b'\\') || find(bytes, b"<<") {
        return false;
    }
    if bytes.contains(&b'!')
        && (bytes.contains(&b'%') || find(bytes, b"!include") || find(bytes, b"!<"))
    {
        return false;
    }
    std::str::from_utf8(bytes).is_ok()
}

/// Whether `needle` (2 bytes or more) occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> bool {
    let mut rest = hay;
    while let Some(i) = memchr(needle[0], rest) {
        if rest[i..].starts_with(needle) {
            return true;
        }
        rest = &rest[i + 1..];
    }
    false
}

/// The first position of `b` in `hay`.
fn memchr(b: u8, hay: &[u8]) -> Option<usize> {
    if !hay.contains(&b) {
        return None;
    }
    hay.iter().position(|&c| c == b)
}

/// Parse results shared by the builds of one process, by blob id, and whether values are
/// copied out of it (more builds to come) or handed over.
#[derive(Default)]
pub struct BuildCache {
    pub(super) by_id: std::cell::RefCell<HashMap<Oid, Arc<Parsed>>>,
    pub(super) keep: std::cell::Cell<bool>,
}

impl BuildCache {
    /// An empty cache that hands parsed values over to the build (one build).
    pub fn new() -> BuildCache {
        BuildCache::default()
    }

    /// Whether builds copy parsed values (so that a later build using the same cache finds them)
    /// or take them (the last build). Either way the results are the same.
    pub(crate) fn keep_values(&self, keep: bool) {
        self.keep.set(keep);
    }
}

/// A fast hasher for the builder's own maps (paths, folder listings): not resistant to chosen
/// keys, which is no concern for the names in a repository being read.
#[derive(Clone, Copy, Default)]
pub(super) struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

/// The hasher of [`FastHash`] (FxHash's mixing step, 8 bytes at a time).
pub(super) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map with [`FastHash`].
pub(super) type FastMap<K, V> = HashMap<K, V, FastHash>;

/// How many threads parse: the available cores.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `work` over every item, on all cores when there is enough to do; results in item order.
pub(super) fn parallel<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    // Below this many bytes a thread costs more than it saves.
    const MIN_PARALLEL_BYTES: usize = 64 * 1024;
    let n = threads().min(items.len());
    if n < 2 || items.iter().map(weight).sum::<usize>() < MIN_PARALLEL_BYTES {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    const CHUNK: usize = 8;
    let run = || {
        let mut done = Vec::new();
        loop {
            let start = next.fetch_add(CHUNK, Ordering::Relaxed);
            if start >= items.len() {
                break;
            }
            for (i, item) in items.iter().enumerate().skip(start).take(CHUNK) {
                done.push((i, work(item)));
            }
        }
        done
    };
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..n).map(|_| s.spawn(run)).collect();
        let mut parts = vec![run()];
        parts.extend(
            helpers
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        parts
    });
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (i, r) in parts.into_iter().flatten() {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.expect("every item is done once"))
        .collect()
}

/// The path of a string-form include (`"!include path"`), or None for any other string.
///
/// Hasura's CLI splits on spaces and rejoins everything after `!include`, trimming `"`; so
/// `"!include s 4/tables/tables.yaml"` and `"!include \"s 5/tables/tables.yaml\""` both name a
/// folder with a space. The same here, except that the string must *start* with `!include`
/// followed by a space or tab (the CLI takes any string merely containing `!include`).
pub(super) fn string_include(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("!include")?;
    if rest.is_empty() {
        return Some("");
    }
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(unquote(rest.trim()))
}

/// `"x"` → `x`, `'x'` → `x`; anything else unchanged.
pub(super) fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Doc {
        match Parsed::parse(Arc::new(text.as_bytes().to_vec())) {
            Parsed::Doc(d) => d,
            _ => panic!("not a document: {text}"),
        }
    }

    #[test]
    fn includes_are_found_in_resolve_order_with_their_depth() {
        let d = doc("a: !include x.yaml\nb:\n  - \"!include y.yaml\"\n  - !custom \"!include z.yaml\"\nc: !include {k: 1}\n<<: {d: !include m.yaml}\n");
        let got: Vec<_> = d
            .includes
            .iter()
            .map(|i| (i.target.clone(), i.depth, i.under_merge))
            .collect();
        assert_eq!(
            got,
            [
                (Ok("x.yaml".to_string()), 1, false),
                (Ok("y.yaml".to_string()), 2, false),
                (Ok("z.yaml".to_string()), 2, false),
                (Err("a mapping".to_string()), 1, false),
                (Ok("m.yaml".to_string()), 2, true),
            ]
        );
        assert!(d.merge);
        assert!(!d.clash);
        let mut json = d.json(false).unwrap();
        let slots = placeholder_slots(&mut json, 5).unwrap();
        assert_eq!(slots.len(), 5);
        assert!(!doc("a: 1\n").merge);
        assert!(doc("a: \"\\0gm-include\\0\"\n").clash);
    }

    #[test]
    fn direct_json_is_the_yaml_route_or_nothing() {
        let via_yaml = |t: &str| -> Option<Value> {
            let y: Yaml = yaml_serde::from_str(t).ok()?;
            serde_json::to_value(&y).ok()
        };
        for text in [
            "table: {name: a, schema: public}\ncolumns: [id, 'b', \"c\"]\n",
            "a: 1\nb: -2\nc: 3.5\nd: .nan\ne: -.inf\nf: 1e3\ng: 18446744073709551615\n",
            "h: 99999999999999999999\n",
            "a: ~\nb: null\nc:\nd: true\ne: False\nf: 0x10\ng: 0o17\nh: '012'\ni: 012\n",
            "base: &b {x: 1, y: [1, 2]}\nother: *b\n",
            "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
            "\"quoted key\": 1\n'single': 2\nplain key: 3\n",
            "- 1\n- [a, {b: c}]\n- {}\n- []\n",
            "just a string\n",
            "42\n",
            "a: 1\na: 2\n",
            "1: a\n",
            "true: a\n",
            "~: a\n",
            "? [a, b]\n: c\n",
            "a: [unclosed\n",
            "---\na: 1\n---\nb: 2\n",
            "a: 1 # comment\n# only a comment\n",
        ] {
            let direct = direct_json(text);
            if let Some(d) = &direct {
                assert_eq!(Some(d.clone()), via_yaml(text), "{text}");
            }
            let expected_direct = ![
                "a: 1\na: 2\n",
                "1: a\n",
                "true: a\n",
                "~: a\n",
                "? [a, b]\n: c\n",
                "a: [unclosed\n",
                "h: 99999999999999999999\n",
                "---\na: 1\n---\nb: 2\n",
            ]
            .contains(&text);
            assert_eq!(direct.is_some(), expected_direct, "{text}");
            // Either way, parsing gives the value of the YAML route (a key written twice keeps
            // its later value there).
            let lenient = crate::yaml::parse(text)
                .ok()
                .and_then(|l| serde_json::to_value(&l.value).ok());
            if let Parsed::Doc(d) = Parsed::parse(Arc::new(text.as_bytes().to_vec())) {
                assert_eq!(d.json(false).ok(), lenient, "{text}");
            }
        }
        assert!(direct_json("a: !tag 1\n").is_none());
        assert!(direct_json("a: \"\\x41\"\n").is_none());
        assert!(direct_json("<<: {a: 1}\n").is_none());
        let Parsed::Doc(d) = Parsed::parse(Arc::new(b"a: 1\nb: 2\na: 3\n".to_vec())) else {
            panic!("a key written twice is not an error");
        };
        assert_eq!(d.json(false).unwrap(), serde_json::json!({"b": 2, "a": 3}));
        assert_eq!((d.duplicates[0].line, d.duplicates[0].first_line), (3, 1));
    }

    #[test]
    fn include_lists_read_without_the_parser_equal_the_parsed_ones() {
        for text in [
            "- \"!include public_a.yaml\"\n- \"!include public_b-c.1.yaml\"\n",
            "- \"!include x/../y.yaml\"\n",
            "- \"!include a.yaml\"\n",
        ] {
            let bytes: Bytes = Arc::new(text.as_bytes().to_vec());
            let fast = include_list(&bytes).expect(text);
            let Parsed::Doc(slow) = ({
                let yaml: Yaml = yaml_serde::from_str(text).unwrap();
                let mut scan = Scan::default();
                scan.walk(&yaml, 0, false);
                Parsed::Doc(Doc {
                    bytes: bytes.clone(),
                    includes: scan.includes,
                    merge: scan.merge,
                    clash: scan.clash,
                    duplicates: Vec::new(),
                    state: Mutex::new(State::Yaml(yaml)),
                })
            }) else {
                unreachable!()
            };
            let show = |d: &Doc| {
                d.includes
                    .iter()
                    .map(|i| format!("{:?} {} {}", i.target, i.depth, i.under_merge))
                    .collect::<Vec<_>>()
            };
            assert_eq!(show(&fast), show(&slow), "{text}");
            assert_eq!((fast.merge, fast.clash), (slow.merge, slow.clash));
            assert_eq!(fast.json(true), slow.json(true), "{text}");
            assert_eq!(fast.yaml(), slow.yaml(), "{text}");
        }
        for text in [
            "- \"!include a.yaml\"",
            "- \"!include a b.yaml\"\n",
            "- \"!include a.yaml\" # c\n",
            "- \"!include \\x41.yaml\"\n",
            "- \"!include a.yaml\"\r\n",
            "- '!include a.yaml'\n",
            "- \"!include \"\n",
            "\n",
            "- \"!include a.yaml\"\n\n",
        ] {
            assert!(
                include_list(&Arc::new(text.as_bytes().to_vec())).is_none(),
                "{text}"
            );
        }
    }

    #[test]
    fn placeholders_must_be_exact() {
        let mut v = serde_json::json!([format!("{PLACEHOLDER}0"), format!("{PLACEHOLDER}0")]);
        assert!(placeholder_slots(&mut v, 1).is_none(), "twice");
        let mut v = serde_json::json!([format!("{PLACEHOLDER}1")]);
        assert!(placeholder_slots(&mut v, 1).is_none(), "out of range");
        let mut v = serde_json::json!([format!("{PLACEHOLDER}0")]);
        assert!(placeholder_slots(&mut v, 2).is_none(), "one missing");
    }

    #[test]
    fn plain_leaves() {
        assert!(is_plain_leaf(b"table:\n  name: a\n  schema: public\n"));
        assert!(is_plain_leaf(b"comment: hi!\n"));
        assert!(is_plain_leaf(b"filter: {name: {_like: \"%a%\"}}\n"));
        assert!(is_plain_leaf(b""));
        for text in [
            &b"x: !include a.yaml\n"[..],
            b"x: \"!include a.yaml\"\n",
            b"x: \"\\x21include a.yaml\"\n",
            b"x: !<include> a.yaml\n",
            b"%TAG !e! tag:x,2000:\n---\nx: !e!y a\n",
            b"x: !%69nclude a.yaml\n",
            b"<<: {a: 1}\n",
            b"x: \xff\n",
        ] {
            assert!(!is_plain_leaf(text), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn parallel_keeps_the_order() {
        let items: Vec<usize> = (0..1000).collect();
        let out = parallel(&items, |_| 1 << 20, |i| i * 2);
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
