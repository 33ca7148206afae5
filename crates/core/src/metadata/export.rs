//! Writing a snapshot back out as the files of a metadata folder (design §6, "Export"): the
//! config v2 flat layout or the config v3 layout with per-table files and quoted `!include`s
//! (hasura-cli.md §1.3, §2.2), plus which files of an older export a re-export makes stale.
//!
//! Everything here is pure: [`export`] returns `(path relative to the metadata folder, bytes)`
//! and [`stale_files`] returns paths to delete; the caller does the I/O.
//!
//! # Layouts
//!
//! * **V2** writes `version.yaml`, `tables.yaml`, `functions.yaml`, `actions.yaml` (`actions` and
//!   `custom_types`), `actions.graphql` (only when the snapshot has `actions_graphql`),
//!   `allow_list.yaml` (from `allowlist`), `cron_triggers.yaml`, `query_collections.yaml`,
//!   `remote_schemas.yaml` and `network.yaml` (only when `network` has keys). A v3 snapshot
//!   (one with `sources`, or `version: 3`) is written the way the Hasura CLI writes one for a
//!   config v2 project: `version: 2`, and the tables and functions of the source named
//!   `default` (none when there is no such source). Other sources and the sections that only
//!   exist in v3 (`rest_endpoints`, `inherited_roles`, `api_limits`, …) have no file in this
//!   layout and are left out.
//! * **V3** writes `version.yaml` (`version: 3`), `databases/databases.yaml`, and per source
//!   `databases/<source>/tables/tables.yaml` (a list of `"!include <schema>_<table>.yaml"`, `[]`
//!   when the source tracks no table) with one file per table, and, only when the source has
//!   functions (as the CLI does), `databases/<source>/functions/functions.yaml` with one file
//!   per function. A source's entry in `databases.yaml` keeps every key but `tables` and
//!   `functions`, which become the double-quoted strings
//!   `"!include <source>/tables/tables.yaml"` / `"!include <source>/functions/functions.yaml"`
//!   (the `functions` key is left out when there are none). Every other top-level file of
//!   hasura-cli.md §2.2 is always written, empty ones as the CLI writes them: `[]` for lists,
//!   `{}` for mappings (`metrics_config.yaml` too; the builder leaves that key out when empty),
//!   `actions.yaml` with `actions: []` and the four `custom_types` lists, and an empty
//!   `actions.graphql`. A v2 snapshot becomes one source `default`, kind `postgres`,
//!   configuration `{connection_info: {database_url: {from_env: HASURA_GRAPHQL_DATABASE_URL}}}`:
//!   the variable the Hasura CLI and server use for the database of a v2 project; the pool and
//!   isolation settings are left to the server's defaults.
//!
//! In either layout, top-level keys that no file of the layout holds are left out, and values
//! are written as they are (nothing is validated or dropped inside an object).
//!
//! # File names
//!
//! Table files are `<schema>_<name>.yaml` (`<dataset>_<name>` when there is no `schema`,
//! `public_<name>` for a bare string, the parts joined by `_` for an array), function files
//! `<schema>_<name>.yaml`, source folders the source name, as the CLI names them, except that
//! names are made safe: `/`, `\`, control characters, the characters Windows refuses
//! (`: * ? " < > |`) and `'` become `_`, as does leading whitespace (the include reader trims
//! it) and, for a folder, trailing whitespace or dots and a name of nothing but dots (`..`);
//! names longer than 200 bytes are cut. Names that then collide, also when they differ only in
//! case (case-insensitive file systems), or that would be the index file (`tables.yaml`,
//! `functions.yaml`, `databases.yaml`) get `_2`, `_3`, … in identity order (the CLI does not
//! handle collisions). Every path is relative and stays inside the metadata folder.
//!
//! # YAML
//!
//! Written the way Hasura's Go `yaml.v3` encoder writes it: 2-space indent, sequences indented
//! under their key (`key:\n  - a`), `[]` / `{}` for empty collections. `yaml_serde` (libyaml)
//! cannot do that (it writes `key:\n- a` and has no indentation setting), so the block structure
//! is written here and `yaml_serde` renders every scalar and key (quoting, block literals for
//! multi-line strings). Include strings are double-quoted as the CLI writes them. Every file
//! is parsed back with `yaml_serde` the way the builders read it; if that ever does not give the
//! same value (an exotic key, e.g. one longer than YAML allows for an implicit key), the file is
//! written by `yaml_serde` itself instead (sequences not indented, keys sorted). Known
//! differences from a CLI export: libyaml and `yaml.v3` do not always pick the same quoting
//! style for a scalar (`'…'` or `"…"`, plain or quoted, a `|` block or a quoted string with
//! `\n`). The config v2 fixture (`fixtures/shop`) is in an older CLI's style (sequences not
//! indented, `schema` before `name`); both layouts are written in the `yaml.v3` style here.
//!
//! Keys follow Hasura's export order where it is well defined (the server's ordered JSON and
//! the CLI's structs): `table` first and then relationships, permissions and event triggers in
//! the server's order in a table; `name`, `kind`, `configuration`, … and `tables`/`functions`
//! last in a source; `role` before `permission`; the server's field order inside insert, select,
//! update and delete permissions; `name` first in named objects (actions, cron triggers, remote
//! schemas, relationships, …). All other keys are sorted. Identity-keyed lists (tables and
//! functions by schema + name, sources, actions, … by name, permissions by role) are sorted by
//! identity as [`normalize`](super::normalize) sorts them; other lists keep their order.
//!
//! A limitation shared with the Hasura CLI: in the V3 layout a string value that starts with
//! `!include ` reads back as an include.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

use super::identity;
use super::v3::V3_ROOT_FILES;
use super::V2_FILE_NAMES;

/// Which layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Config v2: flat files (`tables.yaml`, `functions.yaml`, …).
    V2,
    /// Config v3: `databases/` with per-table files and `!include`s.
    V3,
}

/// The source a v2 snapshot's tables and functions belong to.
const DEFAULT_SOURCE: &str = "default";

/// The environment variable a v2 project's database URL comes from.
const DEFAULT_DATABASE_URL_ENV: &str = "HASURA_GRAPHQL_DATABASE_URL";

/// The sources file.
const DATABASES_FILE: &str = "databases/databases.yaml";

/// Longest file or folder name written (bytes, before `.yaml`).
const MAX_NAME_BYTES: usize = 200;

/// Top-level list files of the v2 layout other than tables/functions: (file, key, context).
const V2_LIST_FILES: &[(&str, &str, Ctx)] = &[
    ("allow_list.yaml", "allowlist", Ctx::AllowlistEntry),
    ("cron_triggers.yaml", "cron_triggers", Ctx::CronTrigger),
    (
        "query_collections.yaml",
        "query_collections",
        Ctx::QueryCollection,
    ),
    ("remote_schemas.yaml", "remote_schemas", Ctx::RemoteSchema),
];

/// Top-level list files of the v3 layout: (file, key, context).
const V3_LIST_FILES: &[(&str, &str, Ctx)] = &[
    ("allow_list.yaml", "allowlist", Ctx::AllowlistEntry),
    ("cron_triggers.yaml", "cron_triggers", Ctx::CronTrigger),
    (
        "inherited_roles.yaml",
        "inherited_roles",
        Ctx::InheritedRole,
    ),
    (
        "query_collections.yaml",
        "query_collections",
        Ctx::QueryCollection,
    ),
    ("remote_schemas.yaml", "remote_schemas", Ctx::RemoteSchema),
    ("rest_endpoints.yaml", "rest_endpoints", Ctx::RestEndpoint),
];

/// Top-level mapping files of the v3 layout: (file, key).
const V3_MAPPING_FILES: &[(&str, &str)] = &[
    ("api_limits.yaml", "api_limits"),
    ("backend_configs.yaml", "backend_configs"),
    (
        "graphql_schema_introspection.yaml",
        "graphql_schema_introspection",
    ),
    ("metrics_config.yaml", "metrics_config"),
    ("network.yaml", "network"),
    ("opentelemetry.yaml", "opentelemetry"),
];

/// Renders a snapshot as the files of a metadata folder: (path relative to the metadata
/// folder, bytes), sorted by path. See the module documentation for the layouts, file names
/// and YAML style. Exporting the same snapshot (or one that differs only in the order of
/// identity-keyed lists or object keys) always gives the same bytes.
pub fn export(snapshot: &Value, layout: Layout) -> Vec<(String, Vec<u8>)> {
    let empty = Map::new();
    let root = snapshot.as_object().unwrap_or(&empty);
    let mut w = Writer::default();
    match layout {
        Layout::V2 => w.v2(root),
        Layout::V3 => w.v3(root),
    }
    let mut files = w.files;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    debug_assert!(files.iter().all(|(p, _)| is_inside(p)));
    files
}

/// The files under a metadata folder that an export owns and that a re-export may delete
/// when stale: of `existing` (paths relative to the metadata folder, `/`-separated), those that
/// an export of either layout writes, or could write, and that `exported` does not hold, sorted.
///
/// Owned are the top-level files of both layouts (`tables.yaml`, `network.yaml`,
/// `rest_endpoints.yaml`, …; the files the v2 and v3 builders read), `databases/databases.yaml`
/// and the `.yaml` files directly in `databases/<source>/tables/` and
/// `databases/<source>/functions/`. So a re-export removes per-table and per-function files of
/// objects no longer tracked, the folders of dropped sources, a `network.yaml` or
/// `actions.graphql` the new export leaves out, and, when the layout changes, the other
/// layout's files (a leftover `databases/` would make the v2 builder refuse the folder). Other
/// files (a README, `.yml` files, anything deeper) are never returned, nor is a path with
/// `.` or `..` segments, nor one that differs from an exported path only in case (on a
/// case-insensitive file system it is the file just written). `layout` is the layout of
/// `exported`; both layouts own the same files.
pub fn stale_files(
    existing: &[String],
    exported: &[(String, Vec<u8>)],
    layout: Layout,
) -> Vec<String> {
    let _ = layout;
    let written: HashSet<String> = exported.iter().map(|(p, _)| p.to_lowercase()).collect();
    let stale: BTreeSet<&String> = existing
        .iter()
        .filter(|p| is_owned(p) && !written.contains(&p.to_lowercase()))
        .collect();
    stale.into_iter().cloned().collect()
}

/// Whether an export owns the file at `path` (relative to the metadata folder).
fn is_owned(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return false;
    }
    match parts.as_slice() {
        [file] => {
            *file != "databases" && (V2_FILE_NAMES.contains(file) || V3_ROOT_FILES.contains(file))
        }
        ["databases", "databases.yaml"] => true,
        ["databases", _, "tables" | "functions", file] => file.ends_with(".yaml"),
        _ => false,
    }
}

/// A relative path without `.`/`..`/empty segments.
fn is_inside(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != ".." && !p.contains('\\'))
}

/// Whether a snapshot is in the v3 shape.
fn is_v3(root: &Map<String, Value>) -> bool {
    root.contains_key("sources")
        || match root.get("version") {
            Some(v) => v.as_i64() == Some(3) || v.as_str() == Some("3"),
            None => false,
        }
}

/// `root[key]` when it is a list (anything else, e.g. absent or null, is the empty list).
fn list<'a>(root: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    match root.get(key) {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

/// `root[key]`, or the empty list when absent or null.
fn list_value(root: &Map<String, Value>, key: &str) -> Value {
    match root.get(key) {
        None | Some(Value::Null) => Value::Array(vec![]),
        Some(v) => v.clone(),
    }
}

/// `root[key]`, or the empty mapping when absent or null.
fn mapping_value(root: &Map<String, Value>, key: &str) -> Value {
    match root.get(key) {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v) => v.clone(),
    }
}

/// The files being written, and a cache of rendered scalars.
#[derive(Default)]
struct Writer {
    files: Vec<(String, Vec<u8>)>,
    scalars: HashMap<String, String>,
}

impl Writer {
    /// Adds a YAML file: `value` with identity-keyed lists sorted, objects described by `ctx`.
    /// `list_key` is the key `value` sits under in the snapshot (for list sorting).
    fn yaml(&mut self, path: String, list_key: &str, value: &Value, ctx: Ctx) {
        let sorted = sort_lists(list_key, value);
        let text = self.render(&sorted, ctx);
        self.files.push((path, text.into_bytes()));
    }

    fn v2(&mut self, root: &Map<String, Value>) {
        let v3 = is_v3(root);
        let version = match root.get("version") {
            Some(v) if !v3 && !v.is_null() => v.clone(),
            _ => Value::from(2),
        };
        let mut version_doc = Map::new();
        version_doc.insert("version".into(), version);
        self.yaml(
            "version.yaml".into(),
            "",
            &Value::Object(version_doc),
            Ctx::Opaque,
        );

        let (tables, functions) = if v3 {
            let default = list(root, "sources")
                .iter()
                .filter_map(Value::as_object)
                .find(|s| s.get("name").and_then(Value::as_str) == Some(DEFAULT_SOURCE));
            match default {
                Some(s) => (list_value(s, "tables"), list_value(s, "functions")),
                None => (Value::Array(vec![]), Value::Array(vec![])),
            }
        } else {
            (list_value(root, "tables"), list_value(root, "functions"))
        };
        self.yaml("tables.yaml".into(), "tables", &tables, Ctx::Table);
        self.yaml(
            "functions.yaml".into(),
            "functions",
            &functions,
            Ctx::Function,
        );

        self.actions(root);
        if let Some(Value::String(sdl)) = root.get("actions_graphql") {
            self.files
                .push(("actions.graphql".into(), sdl.clone().into_bytes()));
        }
        for &(file, key, ctx) in V2_LIST_FILES {
            self.yaml(file.into(), key, &list_value(root, key), ctx);
        }
        match root.get("network") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) if o.is_empty() => {}
            Some(network) => self.yaml("network.yaml".into(), "network", network, Ctx::Opaque),
        }
    }

    /// `actions.yaml`: `actions` and `custom_types`, with the four type lists always present.
    fn actions(&mut self, root: &Map<String, Value>) {
        let mut custom_types = mapping_value(root, "custom_types");
        if let Value::Object(o) = &mut custom_types {
            for key in ["enums", "input_objects", "objects", "scalars"] {
                match o.get(key) {
                    None | Some(Value::Null) => {
                        o.insert(key.into(), Value::Array(vec![]));
                    }
                    Some(_) => {}
                }
            }
        }
        let mut doc = Map::new();
        doc.insert("actions".into(), list_value(root, "actions"));
        doc.insert("custom_types".into(), custom_types);
        self.yaml(
            "actions.yaml".into(),
            "",
            &Value::Object(doc),
            Ctx::ActionsFile,
        );
    }

    fn v3(&mut self, root: &Map<String, Value>) {
        let mut version_doc = Map::new();
        version_doc.insert("version".into(), Value::from(3));
        self.yaml(
            "version.yaml".into(),
            "",
            &Value::Object(version_doc),
            Ctx::Opaque,
        );

        let sources = if is_v3(root) {
            list_value(root, "sources")
        } else {
            Value::Array(vec![default_source(root)])
        };
        self.sources(&sort_lists("sources", &sources));

        self.actions(root);
        let sdl = match root.get("actions_graphql") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        self.files
            .push(("actions.graphql".into(), sdl.into_bytes()));
        for &(file, key, ctx) in V3_LIST_FILES {
            self.yaml(file.into(), key, &list_value(root, key), ctx);
        }
        for &(file, key) in V3_MAPPING_FILES {
            self.yaml(file.into(), key, &mapping_value(root, key), Ctx::Opaque);
        }
    }

    /// `databases/databases.yaml` and the per-source files. `sources` is already sorted.
    fn sources(&mut self, sources: &Value) {
        let Value::Array(items) = sources else {
            // Not a list: the builder will say so; keep it as it is.
            self.yaml(DATABASES_FILE.into(), "sources", sources, Ctx::Source);
            return;
        };
        // Folder names for the sources that have a string name; others are written inline.
        let names: Vec<Option<&str>> = items
            .iter()
            .map(|s| s.get("name").and_then(Value::as_str))
            .collect();
        let bases: Vec<String> = names.iter().flatten().map(|n| safe_name(n, true)).collect();
        let mut dirs = unique_names(&bases, &["databases.yaml"], "").into_iter();

        let mut entries = Vec::with_capacity(items.len());
        for (item, name) in items.iter().zip(&names) {
            let (Value::Object(source), Some(_)) = (item, name) else {
                entries.push(item.clone());
                continue;
            };
            let dir = dirs.next().unwrap_or_default();
            let mut entry = source.clone();
            for (key, ctx) in [("tables", Ctx::Table), ("functions", Ctx::Function)] {
                let objects = match source.get(key) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a.clone(),
                    // Not a list: the builder will say so; keep it inline.
                    Some(_) => continue,
                };
                if key == "functions" && objects.is_empty() {
                    entry.remove(key);
                    continue;
                }
                let folder = format!("{dir}/{key}");
                let bases: Vec<String> = objects
                    .iter()
                    .map(|o| safe_name(&object_file_base(key, o), false))
                    .collect();
                let files = unique_names(&bases, &[key], ".yaml");
                let mut includes = Vec::with_capacity(files.len());
                for (object, file) in objects.iter().zip(files) {
                    self.yaml(format!("databases/{folder}/{file}"), "", object, ctx);
                    includes.push(Value::String(format!("!include {file}")));
                }
                self.yaml(
                    format!("databases/{folder}/{key}.yaml"),
                    "",
                    &Value::Array(includes),
                    Ctx::Opaque,
                );
                entry.insert(
                    key.into(),
                    Value::String(format!("!include {folder}/{key}.yaml")),
                );
            }
            entries.push(Value::Object(entry));
        }
        self.yaml(
            DATABASES_FILE.into(),
            "",
            &Value::Array(entries),
            Ctx::Source,
        );
    }

    /// The YAML text of a document (ends with a newline).
    fn render(&mut self, value: &Value, ctx: Ctx) -> String {
        let mut out = String::new();
        match value {
            Value::Object(m) if !m.is_empty() => self.write_map(&mut out, m, 0, ctx, false),
            Value::Array(a) if !a.is_empty() => self.write_seq(&mut out, a, 0, ctx, false),
            scalar => self.write_scalar(&mut out, scalar, 0),
        }
        if reads_back_as(&out, value) {
            return out;
        }
        // Something the hand-written structure cannot express: let yaml_serde write it all.
        yaml_serde::to_string(value).unwrap_or(out)
    }

    /// Writes the entries of a non-empty mapping at `indent`; the first line's indentation is
    /// already written when `inline_first` (the mapping is a sequence item).
    fn write_map(
        &mut self,
        out: &mut String,
        map: &Map<String, Value>,
        indent: usize,
        ctx: Ctx,
        inline_first: bool,
    ) {
        for (i, (key, value)) in ordered(ctx, map).into_iter().enumerate() {
            if !(inline_first && i == 0) {
                push_indent(out, indent);
            }
            let key_text = self.key_text(key);
            out.push_str(&key_text);
            out.push(':');
            let child = ctx.child(key);
            match value {
                Value::Object(m) if !m.is_empty() => {
                    out.push('\n');
                    self.write_map(out, m, indent + 2, child, false);
                }
                Value::Array(a) if !a.is_empty() => {
                    out.push('\n');
                    self.write_seq(out, a, indent + 2, child, false);
                }
                scalar => {
                    out.push(' ');
                    self.write_scalar(out, scalar, indent);
                }
            }
        }
    }

    /// Writes the items of a non-empty sequence at `indent`, each `- item`; `ctx` describes
    /// the items.
    fn write_seq(
        &mut self,
        out: &mut String,
        items: &[Value],
        indent: usize,
        ctx: Ctx,
        inline_first: bool,
    ) {
        for (i, item) in items.iter().enumerate() {
            if !(inline_first && i == 0) {
                push_indent(out, indent);
            }
            out.push_str("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.write_map(out, m, indent + 2, ctx, true),
                Value::Array(a) if !a.is_empty() => self.write_seq(out, a, indent + 2, ctx, true),
                scalar => self.write_scalar(out, scalar, indent),
            }
        }
    }

    /// Writes a scalar (or an empty collection) that follows `key: ` or `- ` on a line whose
    /// parent node is at `indent`, including the final newline.
    fn write_scalar(&mut self, out: &mut String, value: &Value, indent: usize) {
        let text = match value {
            Value::Null => "null".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) => "[]".to_string(),
            Value::Object(_) => "{}".to_string(),
            Value::Number(_) => yaml_serde::to_string(value)
                .map(|s| s.trim_end().to_string())
                .unwrap_or_else(|_| value.to_string()),
            Value::String(s) if s.starts_with("!include") => double_quoted(s),
            Value::String(s) => self.string_text(s),
        };
        if is_block(&text) {
            // A block scalar: header, then the body indented below the parent.
            let (header, body) = text.split_once('\n').unwrap_or((&text, ""));
            out.push_str(header);
            out.push('\n');
            for line in body.split_inclusive('\n') {
                if line.trim_end_matches('\n').is_empty() {
                    out.push('\n');
                } else {
                    push_indent(out, indent);
                    out.push_str(line);
                }
            }
            if !out.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(&text);
            out.push('\n');
        }
    }

    /// How yaml_serde writes a string on its own, without the final newline (a block literal
    /// keeps its body lines, indented by 2); double-quoted with escapes when it would span
    /// lines in any other way.
    fn string_text(&mut self, s: &str) -> String {
        if is_plain_word(s) {
            return s.to_string();
        }
        if let Some(t) = self.scalars.get(s) {
            return t.clone();
        }
        let mut text = yaml_serde::to_string(s).unwrap_or_else(|_| double_quoted(s));
        if !is_block(&text) {
            text.truncate(text.trim_end_matches('\n').len());
            if text.contains(is_line_break) {
                text = double_quoted(s);
            }
        }
        self.scalars.insert(s.to_string(), text.clone());
        text
    }

    /// A mapping key: as yaml_serde writes the string when that is one line, else
    /// double-quoted.
    fn key_text(&mut self, key: &str) -> String {
        let text = self.string_text(key);
        if is_block(&text) || text.contains(is_line_break) {
            double_quoted(key)
        } else {
            text
        }
    }
}

/// A word yaml_serde writes plain, as it is (checked against yaml_serde in the tests): a letter
/// or `_`, then letters, digits, `_`, `-` and `.`, and not a YAML null or boolean (no such word
/// is a number).
fn is_plain_word(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(
            s,
            "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
        )
}

/// Whether rendered scalar text is a block scalar (`|`, `>`).
fn is_block(text: &str) -> bool {
    text.starts_with('|') || text.starts_with('>')
}

/// The characters YAML 1.1 (libyaml) reads as line breaks.
fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// A YAML double-quoted scalar: one line, every character that is not printable, or is a line
/// break or a byte-order mark, escaped.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c if matches!(c as u32, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..) => {
                out.push(c)
            }
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Whether `text` reads back as `value` the way the builders read a file (yaml_serde, merge
/// keys applied, converted to JSON).
fn reads_back_as(text: &str, value: &Value) -> bool {
    let Ok(mut yaml) = yaml_serde::from_str::<yaml_serde::Value>(text) else {
        return false;
    };
    if yaml.apply_merge().is_err() {
        return false;
    }
    serde_json::to_value(&yaml).is_ok_and(|v| v == *value)
}

/// The v3 source a v2 snapshot's tables and functions become.
fn default_source(root: &Map<String, Value>) -> Value {
    let mut from_env = Map::new();
    from_env.insert(
        "from_env".into(),
        Value::String(DEFAULT_DATABASE_URL_ENV.into()),
    );
    let mut connection_info = Map::new();
    connection_info.insert("database_url".into(), Value::Object(from_env));
    let mut configuration = Map::new();
    configuration.insert("connection_info".into(), Value::Object(connection_info));
    let mut source = Map::new();
    source.insert("name".into(), Value::String(DEFAULT_SOURCE.into()));
    source.insert("kind".into(), Value::String("postgres".into()));
    source.insert("configuration".into(), Value::Object(configuration));
    source.insert("tables".into(), list_value(root, "tables"));
    source.insert("functions".into(), list_value(root, "functions"));
    Value::Object(source)
}

/// The file name (without `.yaml`) the CLI gives a table (`key` "tables") or a function.
fn object_file_base(key: &str, object: &Value) -> String {
    let id_key = if key == "tables" { "table" } else { "function" };
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    match object.get(id_key) {
        Some(Value::Object(o)) => {
            let namespace = text(o.get("schema"))
                .filter(|s| !s.is_empty())
                .or_else(|| text(o.get("dataset")))
                .unwrap_or_else(|| "public".into());
            format!("{namespace}_{}", text(o.get("name")).unwrap_or_default())
        }
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| text(Some(p)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("_"),
        Some(Value::String(s)) => format!("public_{s}"),
        _ => id_key.to_string(),
    }
}

/// A name made safe as one path component (see the module documentation). `folder`: also no
/// trailing whitespace or dots, and not only dots.
fn safe_name(raw: &str, folder: bool) -> String {
    let mut chars: Vec<char> = raw
        .chars()
        .map(|c| {
            if c.is_control()
                || matches!(
                    c,
                    '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' | '\''
                )
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    for c in chars.iter_mut() {
        if !c.is_whitespace() {
            break;
        }
        *c = '_';
    }
    if folder {
        for c in chars.iter_mut().rev() {
            if !(c.is_whitespace() || *c == '.') {
                break;
            }
            *c = '_';
        }
    }
    let mut name = String::new();
    for c in chars {
        if name.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        name.push(c);
    }
    if name.is_empty() {
        name.push('_');
    }
    name
}

/// `bases` made unique (case-insensitively, and not one of `reserved`) with `suffix` appended:
/// the first holder of a name keeps it, later ones get `_2`, `_3`, … (never a name another
/// object holds).
fn unique_names(bases: &[String], reserved: &[&str], suffix: &str) -> Vec<String> {
    let fold = |s: &str| s.to_lowercase();
    let mut used: HashSet<String> = reserved.iter().map(|r| fold(r)).collect();
    let mut out: Vec<Option<String>> = bases
        .iter()
        .map(|b| used.insert(fold(b)).then(|| b.clone()))
        .collect();
    for (slot, base) in out.iter_mut().zip(bases) {
        if slot.is_none() {
            let mut n = 2usize;
            loop {
                let candidate = format!("{base}_{n}");
                if used.insert(fold(&candidate)) {
                    *slot = Some(candidate);
                    break;
                }
                n += 1;
            }
        }
    }
    out.into_iter()
        .map(|n| format!("{}{suffix}", n.unwrap_or_default()))
        .collect()
}

/// `value` with every identity-keyed list (all elements have an identity under the key the
/// list sits under) stably sorted by identity, recursively. `key` is the key `value` sits
/// under.
fn sort_lists(key: &str, value: &Value) -> Value {
    match value {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), sort_lists(k, v)))
                .collect(),
        ),
        Value::Array(items) => {
            let mut out: Vec<Value> = items.iter().map(|i| sort_lists("", i)).collect();
            if !out.is_empty() {
                if let Some(ids) = out
                    .iter()
                    .map(|i| identity(key, i))
                    .collect::<Option<Vec<String>>>()
                {
                    let mut keyed: Vec<(String, Value)> = ids.into_iter().zip(out).collect();
                    keyed.sort_by(|a, b| a.0.cmp(&b.0));
                    out = keyed.into_iter().map(|(_, v)| v).collect();
                }
            }
            Value::Array(out)
        }
        other => other.clone(),
    }
}

/// Kinds of permission, for the order of keys inside `permission`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Perm {
    Insert,
    Select,
    Update,
    Delete,
    Other,
}

/// What an object (or the items of a list) is, for the order of its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// A metadata object not listed below: `name` first, then sorted.
    Generic,
    /// Plain data (configuration, boolean expressions, payloads, …): sorted, and so below.
    Opaque,
    ActionsFile,
    CustomTypes,
    CustomType,
    Action,
    ActionDefinition,
    Source,
    Table,
    Function,
    Permission(Perm),
    PermissionBody(Perm),
    Relationship,
    RemoteRelationship,
    EventTrigger,
    ComputedField,
    CronTrigger,
    RemoteSchema,
    QueryCollection,
    QueryCollectionDefinition,
    Query,
    AllowlistEntry,
    RestEndpoint,
    InheritedRole,
}

impl Ctx {
    /// What the value under `key` of an object of this kind is.
    fn child(self, key: &str) -> Ctx {
        use Ctx::*;
        match (self, key) {
            (Opaque | PermissionBody(_), _) => Opaque,
            (_, "insert_permissions") => Permission(Perm::Insert),
            (_, "select_permissions") => Permission(Perm::Select),
            (_, "update_permissions") => Permission(Perm::Update),
            (_, "delete_permissions") => Permission(Perm::Delete),
            (Function | Action | RemoteSchema | Generic, "permissions") => Permission(Perm::Other),
            (Permission(p), "permission") => PermissionBody(p),
            (Permission(_), _) => Opaque,
            (ActionsFile, "actions") => Action,
            (ActionsFile, "custom_types") => CustomTypes,
            (CustomTypes, _) => CustomType,
            (CustomType, _) => Generic,
            (Action, "definition") => ActionDefinition,
            (Action, _) => Generic,
            (ActionDefinition, "headers" | "arguments") => Generic,
            (Source, "tables") => Table,
            (Source, "functions") => Function,
            (Source, "configuration" | "customization" | "query_tags" | "health_check") => Opaque,
            (Table, "object_relationships" | "array_relationships") => Relationship,
            (Table, "computed_fields") => ComputedField,
            (Table, "remote_relationships") => RemoteRelationship,
            (Table, "event_triggers") => EventTrigger,
            (Table | Function, "table" | "function" | "configuration") => Opaque,
            (EventTrigger | CronTrigger, "headers") => Generic,
            (RemoteSchema, "remote_relationships") => Generic,
            (QueryCollection, "definition") => QueryCollectionDefinition,
            (QueryCollectionDefinition, "queries") => Query,
            (Source | Table | Function | Generic, _) => Generic,
            _ => Opaque,
        }
    }

    /// Keys written first, in this order, and keys written last; the rest sorted in between.
    fn order(self) -> (&'static [&'static str], &'static [&'static str]) {
        use Ctx::*;
        let first: &'static [&'static str] = match self {
            Generic => &["name"],
            Opaque | CustomTypes | QueryCollectionDefinition => &[],
            ActionsFile => &["actions", "custom_types"],
            CustomType => &["name", "description", "fields", "values", "relationships"],
            Action => &["name", "definition", "permissions", "comment"],
            ActionDefinition => &[
                "kind",
                "type",
                "handler",
                "arguments",
                "output_type",
                "forward_client_headers",
                "headers",
                "timeout",
                "request_transform",
                "response_transform",
            ],
            Source => &[
                "name",
                "kind",
                "configuration",
                "query_tags",
                "customization",
                "health_check",
                "custom_return_types",
                "native_queries",
            ],
            Table => &[
                "table",
                "is_enum",
                "configuration",
                "object_relationships",
                "array_relationships",
                "computed_fields",
                "remote_relationships",
                "insert_permissions",
                "select_permissions",
                "update_permissions",
                "delete_permissions",
                "event_triggers",
                "apollo_federation_config",
                "logical_model",
            ],
            Function => &["function", "configuration", "permissions", "comment"],
            Permission(_) => &["role", "permission", "definition", "comment"],
            PermissionBody(Perm::Insert) => {
                &["check", "set", "columns", "backend_only", "validate_input"]
            }
            PermissionBody(Perm::Select) => &[
                "columns",
                "computed_fields",
                "filter",
                "limit",
                "allow_aggregations",
                "query_root_fields",
                "subscription_root_fields",
            ],
            PermissionBody(Perm::Update) => &[
                "columns",
                "filter",
                "check",
                "set",
                "backend_only",
                "validate_input",
            ],
            PermissionBody(Perm::Delete) => &["filter", "backend_only", "validate_input"],
            PermissionBody(Perm::Other) => &[],
            Relationship => &["name", "using", "comment"],
            RemoteRelationship => &["name", "definition"],
            EventTrigger => &[
                "name",
                "definition",
                "retry_conf",
                "webhook",
                "webhook_from_env",
                "headers",
                "request_transform",
                "response_transform",
                "cleanup_config",
            ],
            ComputedField => &["name", "definition", "comment"],
            CronTrigger => &[
                "name",
                "webhook",
                "schedule",
                "include_in_metadata",
                "payload",
                "retry_conf",
                "headers",
                "comment",
                "request_transform",
                "response_transform",
            ],
            RemoteSchema => &[
                "name",
                "definition",
                "comment",
                "permissions",
                "remote_relationships",
            ],
            QueryCollection => &["name", "definition", "comment"],
            Query => &["name", "query"],
            AllowlistEntry => &["collection", "scope"],
            RestEndpoint => &["name", "url", "methods", "definition", "comment"],
            InheritedRole => &["role_name", "role_set"],
        };
        let last: &'static [&'static str] = match self {
            Source => &["tables", "functions"],
            _ => &[],
        };
        (first, last)
    }
}

/// The entries of `map` in the order an object of kind `ctx` is written.
fn ordered(ctx: Ctx, map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let (first, last) = ctx.order();
    let rank = |k: &str| -> (usize, usize) {
        if let Some(i) = first.iter().position(|f| *f == k) {
            (0, i)
        } else if let Some(i) = last.iter().position(|l| *l == k) {
            (2, i)
        } else {
            (1, 0)
        }
    };
    // serde_json's map iterates in key order, and the sort is stable: the middle stays sorted.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(k, _)| rank(k));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::v3::build_v3_snapshot;
    use crate::metadata::{build_snapshot, describe_changes, snapshot_sha256, MetadataFiles};
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::path::Path;

    /// A metadata folder: relative path → bytes.
    type Tree = BTreeMap<String, Vec<u8>>;

    /// The metadata folder (`metadata/`) at every tag of a fixture: the union of steps 01..N,
    /// later steps replacing files, `.delete` removing them.
    fn fixture(name: &str) -> Vec<(String, Tree)> {
        fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for path in entries {
                let file = path.file_name().unwrap().to_str().unwrap().to_string();
                let rel = if rel.is_empty() {
                    file
                } else {
                    format!("{rel}/{file}")
                };
                if path.is_dir() {
                    walk(&path, &rel, out);
                } else {
                    out.push((rel, std::fs::read(&path).unwrap()));
                }
            }
        }
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures")).join(name);
        let mut steps: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        steps.sort();
        let mut tree: Tree = BTreeMap::new();
        let mut tags = Vec::new();
        for step in steps {
            let dir = step.file_name().unwrap().to_str().unwrap().to_string();
            let tag = dir.split_once('-').unwrap().1.to_string();
            let mut files = Vec::new();
            walk(&step, "", &mut files);
            for (path, bytes) in files {
                match path.as_str() {
                    ".message" => {}
                    ".delete" => {
                        for line in String::from_utf8(bytes).unwrap().lines() {
                            tree.remove(line.trim());
                        }
                    }
                    _ => {
                        tree.insert(path, bytes);
                    }
                }
            }
            let metadata: Tree = tree
                .iter()
                .filter_map(|(p, b)| Some((p.strip_prefix("metadata/")?.to_string(), b.clone())))
                .collect();
            tags.push((tag, metadata));
        }
        assert!(tags.len() >= 4, "{name}: {tags:?}");
        tags.into_iter()
            .map(|(t, m)| (t, m.into_iter().collect()))
            .collect()
    }

    fn build_v2(tree: &Tree) -> Value {
        let mut files: Vec<(String, Vec<u8>)> = tree
            .iter()
            .filter(|(p, _)| !p.contains('/'))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect();
        if tree.keys().any(|p| p.starts_with("databases/")) {
            files.push(("databases".into(), Vec::new()));
        }
        build_snapshot(&MetadataFiles {
            dir: "metadata".into(),
            at: "test".into(),
            files,
        })
        .unwrap()
    }

    fn build_v3(tree: &Tree) -> Value {
        let map: HashMap<String, Vec<u8>> =
            tree.iter().map(|(p, b)| (p.clone(), b.clone())).collect();
        build_v3_snapshot(&map, "metadata", "test").unwrap()
    }

    fn build(tree: &Tree, layout: Layout) -> Value {
        match layout {
            Layout::V2 => build_v2(tree),
            Layout::V3 => build_v3(tree),
        }
    }

    fn tree(files: &[(String, Vec<u8>)]) -> Tree {
        files.iter().cloned().collect()
    }

    fn text(files: &[(String, Vec<u8>)], path: &str) -> String {
        let bytes = &files
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("{path} not exported"))
            .1;
        String::from_utf8(bytes.clone()).unwrap()
    }

    fn paths(files: &[(String, Vec<u8>)]) -> Vec<&str> {
        files.iter().map(|(p, _)| p.as_str()).collect()
    }

    /// Export, rebuild in the same layout, same hash; sorted, inside the folder, stable.
    fn assert_round_trip(snapshot: &Value, layout: Layout) -> Vec<(String, Vec<u8>)> {
        let files = export(snapshot, layout);
        let mut sorted = paths(&files);
        sorted.sort();
        sorted.dedup();
        assert_eq!(paths(&files), sorted, "sorted by path, no duplicates");
        for (p, _) in &files {
            assert!(is_inside(p), "{p}");
        }
        let rebuilt = build(&tree(&files), layout);
        assert_eq!(
            snapshot_sha256(snapshot),
            snapshot_sha256(&rebuilt),
            "{layout:?}\n{snapshot:#}\n{rebuilt:#}"
        );
        assert_eq!(export(snapshot, layout), files, "exporting twice");
        assert_eq!(export(&rebuilt, layout), files, "re-exporting the rebuilt");
        files
    }

    fn version_change_only(old: &Value, new: &Value) {
        let changes = describe_changes(old, new);
        assert_eq!(changes.len(), 1, "{changes:#?}");
        assert_eq!(changes[0].section, "version", "{changes:#?}");
    }

    #[test]
    fn v2_fixture_round_trips_at_every_tag() {
        for (tag, tree) in fixture("shop") {
            let snapshot = build_v2(&tree);
            let files = assert_round_trip(&snapshot, Layout::V2);
            let mut expected = vec![
                "actions.graphql",
                "actions.yaml",
                "allow_list.yaml",
                "cron_triggers.yaml",
                "functions.yaml",
                "query_collections.yaml",
                "remote_schemas.yaml",
                "tables.yaml",
                "version.yaml",
            ];
            expected.sort();
            assert_eq!(paths(&files), expected, "{tag}");
            assert_eq!(text(&files, "version.yaml"), "version: 2\n");
            assert_eq!(
                text(&files, "actions.graphql").as_bytes(),
                tree["actions.graphql"].as_slice()
            );
        }
    }

    #[test]
    fn v3_fixture_round_trips_at_every_tag() {
        for (tag, tree) in fixture("shop-v3") {
            let snapshot = build_v3(&tree);
            let files = assert_round_trip(&snapshot, Layout::V3);
            // Every file the fixture has, except the index of functions while there are none
            // (the CLI leaves it out; the fixture keeps it).
            for path in tree.keys() {
                let has_functions = snapshot["sources"][0]["functions"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty());
                if path == "databases/default/functions/functions.yaml" && !has_functions {
                    assert!(!paths(&files).contains(&path.as_str()), "{tag}");
                    continue;
                }
                assert!(paths(&files).contains(&path.as_str()), "{tag}: {path}");
            }
            // The fixture is written as `hasura metadata export` writes it; only databases.yaml
            // (which uses the YAML tag form for functions) and actions.yaml (`type` after
            // `handler`; the CLI's order is kind, type, handler) are written differently.
            for (path, bytes) in &files {
                let Some(fixture) = tree.get(path) else {
                    continue;
                };
                if path == "databases/databases.yaml" || path == "actions.yaml" {
                    continue;
                }
                assert_eq!(
                    String::from_utf8_lossy(bytes),
                    String::from_utf8_lossy(fixture),
                    "{tag}: {path}"
                );
            }
            assert_eq!(
                text(&files, "databases/databases.yaml"),
                format!(
                    "- name: default\n  kind: postgres\n  configuration:\n    connection_info:\n      \
                     database_url:\n        from_env: HASURA_GRAPHQL_DATABASE_URL\n      \
                     isolation_level: read-committed\n      pool_settings:\n        \
                     connection_lifetime: 600\n        idle_timeout: 180\n        \
                     max_connections: 50\n        retries: 1\n      use_prepared_statements: true\n  \
                     tables: \"!include default/tables/tables.yaml\"\n{}",
                    if tag == "v2.0.0" {
                        "  functions: \"!include default/functions/functions.yaml\"\n"
                    } else {
                        ""
                    }
                ),
                "{tag}"
            );
        }
    }

    #[test]
    fn v3_layout_writes_every_top_level_file() {
        let (_, tree) = fixture("shop-v3").remove(0);
        let files = export(&build_v3(&tree), Layout::V3);
        assert_eq!(
            paths(&files),
            [
                "actions.graphql",
                "actions.yaml",
                "allow_list.yaml",
                "api_limits.yaml",
                "backend_configs.yaml",
                "cron_triggers.yaml",
                "databases/databases.yaml",
                "databases/default/tables/public_customers.yaml",
                "databases/default/tables/public_products.yaml",
                "databases/default/tables/tables.yaml",
                "graphql_schema_introspection.yaml",
                "inherited_roles.yaml",
                "metrics_config.yaml",
                "network.yaml",
                "opentelemetry.yaml",
                "query_collections.yaml",
                "remote_schemas.yaml",
                "rest_endpoints.yaml",
                "version.yaml",
            ]
        );
        assert_eq!(text(&files, "version.yaml"), "version: 3\n");
        assert_eq!(text(&files, "metrics_config.yaml"), "{}\n");
        assert_eq!(text(&files, "rest_endpoints.yaml"), "[]\n");
        assert_eq!(
            text(&files, "actions.yaml"),
            "actions:\n  - name: place_order\n    definition:\n      kind: synchronous\n      \
             type: mutation\n      handler: '{{ACTION_BASE_URL}}/place_order'\n    permissions:\n      \
             - role: user\ncustom_types:\n  enums: []\n  input_objects:\n    - name: PlaceOrderInput\n  \
             objects:\n    - name: PlaceOrderOutput\n  scalars: []\n"
        );
        // Nothing at all: the files still exist, empty the way the CLI writes them.
        let files = export(&json!({"version": 3}), Layout::V3);
        assert_eq!(text(&files, "databases/databases.yaml"), "[]\n");
        assert_eq!(text(&files, "actions.graphql"), "");
        assert_eq!(
            text(&files, "actions.yaml"),
            "actions: []\ncustom_types:\n  enums: []\n  input_objects: []\n  objects: []\n  scalars: []\n"
        );
        assert_round_trip(&json!({"version": 3}), Layout::V3);
    }

    #[test]
    fn switching_layouts_changes_only_the_version() {
        for (tag, tree) in fixture("shop") {
            let v2 = build_v2(&tree);
            let files = export(&v2, Layout::V3);
            let as_v3 = build_v3(&tree_of(&files));
            version_change_only(&v2, &as_v3);
            assert_eq!(
                as_v3["sources"][0]["configuration"],
                json!({"connection_info": {"database_url": {"from_env": "HASURA_GRAPHQL_DATABASE_URL"}}}),
                "{tag}"
            );
            // And back again.
            let back = build_v2(&tree_of(&export(&as_v3, Layout::V2)));
            assert_eq!(snapshot_sha256(&v2), snapshot_sha256(&back), "{tag}");
        }
        let v2_tags = fixture("shop");
        for (i, (tag, tree)) in fixture("shop-v3").into_iter().enumerate() {
            let v3 = build_v3(&tree);
            let as_v2 = build_v2(&tree_of(&export(&v3, Layout::V2)));
            version_change_only(&v3, &as_v2);
            // The two fixtures hold the same metadata.
            assert_eq!(v2_tags[i].0, tag);
            assert_eq!(
                snapshot_sha256(&as_v2),
                snapshot_sha256(&build_v2(&v2_tags[i].1)),
                "{tag}"
            );
        }
    }

    fn tree_of(files: &[(String, Vec<u8>)]) -> Tree {
        tree(files)
    }

    #[test]
    fn v2_layout_of_a_v3_snapshot_takes_the_default_source() {
        let snapshot = json!({
            "version": 3,
            "sources": [
                {"name": "other", "kind": "postgres", "tables": [{"table": {"schema": "x", "name": "y"}}]},
                {"name": "default", "kind": "postgres", "configuration": {},
                 "tables": [{"table": {"schema": "public", "name": "b"}}, {"table": {"schema": "public", "name": "a"}}],
                 "functions": [{"function": {"schema": "public", "name": "f"}}]}
            ],
            "rest_endpoints": [{"name": "r", "url": "r", "methods": ["GET"], "definition": {}}],
            "network": {"tls_allowlist": [{"host": "h"}]},
            "actions_graphql": "type Query { a: Int }\n"
        });
        let files = export(&snapshot, Layout::V2);
        assert_eq!(text(&files, "version.yaml"), "version: 2\n");
        assert_eq!(
            text(&files, "tables.yaml"),
            "- table:\n    name: a\n    schema: public\n- table:\n    name: b\n    schema: public\n"
        );
        assert_eq!(
            text(&files, "functions.yaml"),
            "- function:\n    name: f\n    schema: public\n"
        );
        assert_eq!(
            text(&files, "network.yaml"),
            "tls_allowlist:\n  - host: h\n"
        );
        assert_eq!(text(&files, "actions.graphql"), "type Query { a: Int }\n");
        assert!(!paths(&files).contains(&"rest_endpoints.yaml"));
        // No default source: nothing tracked.
        let files = export(&json!({"version": 3, "sources": []}), Layout::V2);
        assert_eq!(text(&files, "tables.yaml"), "[]\n");
        assert!(!paths(&files).contains(&"network.yaml"));
        assert!(!paths(&files).contains(&"actions.graphql"));
    }

    /// A snapshot with most kinds of objects, in no particular order.
    fn rich_v3() -> Value {
        json!({
            "version": 3,
            "sources": [
                {
                    "tables": [
                        {"table": {"schema": "public", "name": "orders"},
                         "event_triggers": [{"webhook_from_env": "W", "retry_conf": {"timeout_sec": 60, "num_retries": 0, "interval_sec": 10},
                                             "name": "created", "definition": {"insert": {"columns": "*"}, "enable_manual": false},
                                             "headers": [{"value": "v", "name": "h"}],
                                             "request_transform": {"body": "{\n  \"a\": 1\n}", "template_engine": "Kriti"}}],
                         "update_permissions": [{"permission": {"set": {}, "check": {}, "filter": {"id": {"_eq": "X-Hasura-User-Id"}}, "columns": ["status"]}, "role": "user"}],
                         "delete_permissions": [{"permission": {"filter": {}, "backend_only": true}, "role": "admin2"}],
                         "select_permissions": [
                             {"role": "z", "permission": {"limit": 10, "filter": {}, "columns": "*", "allow_aggregations": true}},
                             {"role": "a", "permission": {"filter": {"name": {"_eq": "x"}, "age": {"_gt": 1}}, "columns": ["b", "a"]}, "comment": "c"}
                         ],
                         "object_relationships": [{"using": {"manual_configuration": {"remote_table": {"schema": "public", "name": "users"}, "column_mapping": {"user_id": "id"}}}, "name": "user"}],
                         "computed_fields": [{"definition": {"function": {"schema": "public", "name": "f"}}, "name": "full"}],
                         "configuration": {"custom_root_fields": {}, "custom_name": "Order", "column_config": {}},
                         "is_enum": false},
                        {"table": {"name": "users", "schema": "public"}}
                    ],
                    "configuration": {"connection_info": {"use_prepared_statements": false, "database_url": "postgres://x"}},
                    "customization": {"root_fields": {"namespace": "a"}},
                    "kind": "postgres",
                    "name": "second",
                    "functions": [{"configuration": {"exposed_as": "mutation"}, "function": {"schema": "public", "name": "f"}, "permissions": [{"role": "user"}]}]
                },
                {"name": "default", "kind": "postgres", "tables": [], "functions": [],
                 "configuration": {"connection_info": {"database_url": {"from_env": "HASURA_GRAPHQL_DATABASE_URL"}}}}
            ],
            "actions": [
                {"permissions": [{"role": "b"}, {"role": "a"}], "definition": {"handler": "http://h", "kind": "synchronous", "type": "query", "timeout": 5, "headers": [{"value_from_env": "E", "name": "x"}]}, "name": "b_action", "comment": "hi"},
                {"name": "a_action", "definition": {"handler": "http://h", "kind": "asynchronous"}}
            ],
            "custom_types": {"objects": [{"fields": [{"type": "Int!", "name": "id"}], "name": "Out", "relationships": [{"name": "r", "type": "object", "remote_table": "t", "field_mapping": {"a": "b"}}]}], "scalars": [], "enums": [{"name": "E", "values": [{"value": "A"}]}]},
            "actions_graphql": "type Query {\n  b_action: Out\n}\n",
            "remote_schemas": [{"definition": {"url": "http://rs", "timeout_seconds": 60, "forward_client_headers": true}, "name": "rs", "comment": "", "permissions": [{"definition": {"schema": "type Query { a: Int }"}, "role": "user"}]}],
            "query_collections": [{"definition": {"queries": [{"query": "query q { a }", "name": "q"}]}, "name": "allowed-queries"}],
            "allowlist": [{"scope": {"global": true}, "collection": "allowed-queries"}],
            "cron_triggers": [{"schedule": "0 3 * * *", "payload": {}, "webhook": "{{W}}", "name": "nightly", "include_in_metadata": true, "comment": "multi\nline\n"}],
            "rest_endpoints": [{"url": "a/:id", "name": "a", "methods": ["GET", "POST"], "definition": {"query": {"query_name": "q", "collection_name": "allowed-queries"}}, "comment": null}],
            "inherited_roles": [{"role_set": ["a", "b"], "role_name": "ab"}],
            "network": {"tls_allowlist": [{"suffix": "s", "host": "h"}]},
            "api_limits": {"disabled": false, "depth_limit": {"global": 10, "per_role": {}}},
            "graphql_schema_introspection": {"disabled_for_roles": ["anon"]},
            "metrics_config": {"analyze_query_variables": true},
            "opentelemetry": {"status": "disabled"},
            "backend_configs": {"dataconnector": {}}
        })
    }

    #[test]
    fn rich_snapshot_round_trips_in_both_layouts() {
        let snapshot = rich_v3();
        let files = assert_round_trip(&snapshot, Layout::V3);
        assert_eq!(
            text(&files, "databases/second/tables/public_orders.yaml"),
            r#"table:
  name: orders
  schema: public
is_enum: false
configuration:
  column_config: {}
  custom_name: Order
  custom_root_fields: {}
object_relationships:
  - name: user
    using:
      manual_configuration:
        column_mapping:
          user_id: id
        remote_table:
          name: users
          schema: public
computed_fields:
  - name: full
    definition:
      function:
        name: f
        schema: public
select_permissions:
  - role: a
    permission:
      columns:
        - b
        - a
      filter:
        age:
          _gt: 1
        name:
          _eq: x
    comment: c
  - role: z
    permission:
      columns: '*'
      filter: {}
      limit: 10
      allow_aggregations: true
update_permissions:
  - role: user
    permission:
      columns:
        - status
      filter:
        id:
          _eq: X-Hasura-User-Id
      check: {}
      set: {}
delete_permissions:
  - role: admin2
    permission:
      filter: {}
      backend_only: true
event_triggers:
  - name: created
    definition:
      enable_manual: false
      insert:
        columns: '*'
    retry_conf:
      interval_sec: 10
      num_retries: 0
      timeout_sec: 60
    webhook_from_env: W
    headers:
      - name: h
        value: v
    request_transform:
      body: |-
        {
          "a": 1
        }
      template_engine: Kriti
"#
        );
        assert_eq!(
            text(&files, "databases/databases.yaml"),
            r#"- name: default
  kind: postgres
  configuration:
    connection_info:
      database_url:
        from_env: HASURA_GRAPHQL_DATABASE_URL
  tables: "!include default/tables/tables.yaml"
- name: second
  kind: postgres
  configuration:
    connection_info:
      database_url: postgres://x
      use_prepared_statements: false
  customization:
    root_fields:
      namespace: a
  tables: "!include second/tables/tables.yaml"
  functions: "!include second/functions/functions.yaml"
"#
        );
        assert_eq!(
            text(&files, "databases/second/tables/tables.yaml"),
            "- \"!include public_orders.yaml\"\n- \"!include public_users.yaml\"\n"
        );
        assert_eq!(
            text(&files, "databases/second/functions/public_f.yaml"),
            "function:\n  name: f\n  schema: public\nconfiguration:\n  exposed_as: mutation\n\
             permissions:\n  - role: user\n"
        );
        assert_eq!(text(&files, "databases/default/tables/tables.yaml"), "[]\n");
        assert_eq!(
            text(&files, "actions.yaml"),
            r#"actions:
  - name: a_action
    definition:
      kind: asynchronous
      handler: http://h
  - name: b_action
    definition:
      kind: synchronous
      type: query
      handler: http://h
      headers:
        - name: x
          value_from_env: E
      timeout: 5
    permissions:
      - role: a
      - role: b
    comment: hi
custom_types:
  enums:
    - name: E
      values:
        - value: A
  input_objects: []
  objects:
    - name: Out
      fields:
        - name: id
          type: Int!
      relationships:
        - name: r
          field_mapping:
            a: b
          remote_table: t
          type: object
  scalars: []
"#
        );
        assert_eq!(
            text(&files, "cron_triggers.yaml"),
            "- name: nightly\n  webhook: '{{W}}'\n  schedule: 0 3 * * *\n  include_in_metadata: true\n  \
             payload: {}\n  comment: |\n    multi\n    line\n"
        );
        assert_eq!(
            text(&files, "remote_schemas.yaml"),
            "- name: rs\n  definition:\n    forward_client_headers: true\n    timeout_seconds: 60\n    \
             url: http://rs\n  comment: ''\n  permissions:\n    - role: user\n      definition:\n        \
             schema: 'type Query { a: Int }'\n"
        );
        assert_eq!(
            text(&files, "query_collections.yaml"),
            "- name: allowed-queries\n  definition:\n    queries:\n      - name: q\n        query: query q { a }\n"
        );
        assert_eq!(
            text(&files, "allow_list.yaml"),
            "- collection: allowed-queries\n  scope:\n    global: true\n"
        );
        assert_eq!(
            text(&files, "rest_endpoints.yaml"),
            "- name: a\n  url: a/:id\n  methods:\n    - GET\n    - POST\n  definition:\n    query:\n      \
             collection_name: allowed-queries\n      query_name: q\n  comment: null\n"
        );
        assert_eq!(
            text(&files, "inherited_roles.yaml"),
            "- role_name: ab\n  role_set:\n    - a\n    - b\n"
        );

        // The V2 layout keeps what it can hold: the default source (empty here) is checked
        // above; a v2 snapshot with the same objects round-trips.
        let mut v2 = snapshot.as_object().unwrap().clone();
        let second = v2.remove("sources").unwrap()[0].clone();
        for key in [
            "rest_endpoints",
            "inherited_roles",
            "api_limits",
            "graphql_schema_introspection",
            "metrics_config",
            "opentelemetry",
            "backend_configs",
        ] {
            v2.remove(key);
        }
        v2.insert("version".into(), json!(2));
        v2.insert("tables".into(), second["tables"].clone());
        v2.insert("functions".into(), second["functions"].clone());
        let v2 = Value::Object(v2);
        let files = assert_round_trip(&v2, Layout::V2);
        assert!(text(&files, "tables.yaml").starts_with(
            "- table:\n    name: orders\n    schema: public\n  is_enum: false\n  configuration:\n"
        ));
        let as_v3 = build_v3(&tree(&export(&v2, Layout::V3)));
        version_change_only(&v2, &as_v3);
    }

    #[test]
    fn list_and_key_order_never_change_the_bytes() {
        let a = rich_v3();
        // The same snapshot with every list of objects reversed, where order does not count.
        fn reverse_identity_lists(key: &str, v: &Value) -> Value {
            match v {
                Value::Object(o) => Value::Object(
                    o.iter()
                        .map(|(k, v)| (k.clone(), reverse_identity_lists(k, v)))
                        .collect(),
                ),
                Value::Array(items) => {
                    let mut out: Vec<Value> = items
                        .iter()
                        .map(|i| reverse_identity_lists("", i))
                        .collect();
                    if out.iter().all(|i| identity(key, i).is_some()) {
                        out.reverse();
                    }
                    Value::Array(out)
                }
                other => other.clone(),
            }
        }
        let b = reverse_identity_lists("", &a);
        assert_ne!(a, b);
        for layout in [Layout::V2, Layout::V3] {
            assert_eq!(export(&a, layout), export(&b, layout), "{layout:?}");
        }
    }

    #[test]
    fn awkward_scalars_and_keys_read_back() {
        let strings = [
            "",
            " ",
            "true",
            "False",
            "null",
            "~",
            "yes",
            "no",
            "on",
            "1",
            "0x1f",
            "1e3",
            "1.5",
            ".inf",
            "- x",
            "a: b",
            "#c",
            "x #c",
            "*ref",
            "&a",
            "!tag",
            "!include x.yaml",
            "'",
            "\"",
            "\\",
            "a\nb",
            "a\n\nb\n",
            "a\n\n",
            " leading\nspace",
            "trailing \nspace",
            "\ttab\n",
            "\n",
            "{{X}}",
            "[a]",
            "ünïcödé ✓",
            "\u{2028}x",
            "\u{85}y",
            "\u{7f}\u{1}",
            "<<",
        ];
        let mut map = Map::new();
        let mut seq = Vec::new();
        for (i, s) in strings.iter().enumerate() {
            map.insert(format!("k{i:02}"), json!(s));
            if !s.starts_with("!include") && *s != "<<" {
                map.insert((*s).to_string(), json!({"v": s, "l": [s, [s], {"x": s}]}));
            }
            seq.push(json!(s));
            seq.push(json!([s, s]));
            seq.push(json!({ "name": s, "x": [s] }));
        }
        map.insert(
            "numbers".into(),
            json!([0, -1, 1.5, 1e300, u64::MAX, i64::MIN, 0.1]),
        );
        map.insert(
            "nested".into(),
            json!([[[]], [{}], [[1, [2]]], {"a": [[]]}]),
        );
        map.insert("long".into(), json!("x".repeat(5000)));
        map.insert("y".repeat(2000), json!(1));
        let doc = Value::Object(map);
        let mut w = Writer::default();
        for (value, ctx) in [(doc.clone(), Ctx::Generic), (Value::Array(seq), Ctx::Table)] {
            let out = w.render(&value, ctx);
            assert!(reads_back_as(&out, &value), "{out}");
        }
        // Without the over-long key, the hand-written form is used (sequences indented).
        let mut doc = doc.as_object().unwrap().clone();
        doc.remove(&"y".repeat(2000));
        let mut w = Writer::default();
        let mut out = String::new();
        let value = Value::Object(doc);
        w.write_map(&mut out, value.as_object().unwrap(), 0, Ctx::Generic, false);
        assert!(reads_back_as(&out, &value), "{out}");
        assert!(out.contains("\nnested:\n  - - []\n"), "{out}");
    }

    #[test]
    fn block_literals_are_indented_under_their_parent() {
        let v = json!({"a": {"b": ["x\ny\n", {"c": "p\n  q"}]}});
        let out = Writer::default().render(&v, Ctx::Opaque);
        assert_eq!(
            out,
            "a:\n  b:\n    - |\n      x\n      y\n    - c: |-\n        p\n          q\n"
        );
    }

    #[test]
    fn odd_names_stay_inside_the_folder_and_do_not_collide() {
        let snapshot = json!({
            "version": 3,
            "sources": [
                {"name": "../..", "kind": "postgres", "tables": [
                    {"table": {"schema": "../../..", "name": "/etc/passwd"}},
                    {"table": {"schema": "a_b", "name": "c"}},
                    {"table": {"schema": "a", "name": "b_c"}},
                    {"table": {"schema": "public", "name": "Users"}},
                    {"table": {"schema": "public", "name": "users"}},
                    {"table": {"schema": "public", "name": "users_2"}},
                    {"table": ["tables"]},
                    {"table": {"dataset": "ds", "name": "t"}},
                    {"table": {"name": "no_schema"}},
                    {"table": "bare"},
                    {"table": {"schema": " x", "name": "q\"uote'd: *?<>|\\"}}
                ]},
                {"name": "a/b", "kind": "postgres", "tables": [{"table": {"schema": "s", "name": "t"}}]},
                {"name": "A", "kind": "postgres", "functions": [
                    {"function": {"schema": "s", "name": "f"}},
                    {"function": {"schema": "S", "name": "F"}},
                    {"function": ["functions"]}
                ]},
                {"name": "a", "kind": "postgres"},
                {"name": "databases.yaml", "kind": "postgres"},
                {"name": " .", "kind": "postgres"},
                {"name": "x".repeat(300), "kind": "postgres"}
            ]
        });
        let files = assert_round_trip(&snapshot, Layout::V3);
        let lower: HashSet<String> = files.iter().map(|(p, _)| p.to_lowercase()).collect();
        assert_eq!(lower.len(), files.len(), "no case-insensitive collisions");
        for (p, _) in &files {
            for part in p.split('/') {
                assert!(part.len() <= MAX_NAME_BYTES + 5, "{p}");
            }
        }
        let names = paths(&files);
        for expected in [
            "databases/..___/tables/tables.yaml",
            "databases/..___/tables/.._.._..__etc_passwd.yaml",
            "databases/..___/tables/a_b_c.yaml",
            "databases/..___/tables/a_b_c_2.yaml",
            "databases/..___/tables/public_Users.yaml",
            "databases/..___/tables/public_users_2.yaml",
            "databases/..___/tables/public_users_3.yaml",
            "databases/..___/tables/tables_2.yaml",
            "databases/..___/tables/ds_t.yaml",
            "databases/..___/tables/public_no_schema.yaml",
            "databases/..___/tables/public_bare.yaml",
            "databases/..___/tables/_x_q_uote_d_ ______.yaml",
            "databases/__/tables/tables.yaml",
            "databases/a_b/tables/s_t.yaml",
            "databases/A/functions/s_f.yaml",
            "databases/A/functions/S_F_2.yaml",
            "databases/A/functions/functions_2.yaml",
            "databases/A/functions/functions.yaml",
            "databases/A/tables/tables.yaml",
            "databases/a_2/tables/tables.yaml",
            "databases/databases.yaml_2/tables/tables.yaml",
        ] {
            assert!(names.contains(&expected), "{expected} not in {names:#?}");
        }
        assert!(!names
            .iter()
            .any(|p| p.starts_with("databases/A/tables/") && p.ends_with("functions.yaml")));
    }

    #[test]
    fn stale_files_are_the_owned_files_not_exported() {
        let tags = fixture("shop-v3");
        let newest = export(&build_v3(&tags[3].1), Layout::V3);
        let oldest = export(&build_v3(&tags[0].1), Layout::V3);
        let mut existing: Vec<String> = newest.iter().map(|(p, _)| p.clone()).collect();
        existing.extend(
            [
                "README.md",
                ".gitkeep",
                "tables.yaml",
                "functions.yaml",
                "databases/default/tables/notes.txt",
                "databases/default/tables/public_x.yml",
                "databases/default/tables/sub/public_x.yaml",
                "databases/old/tables/tables.yaml",
                "databases/old/tables/public_t.yaml",
                "databases/old/functions/functions.yaml",
                "databases/old/README.md",
                "databases/../tables/x.yaml",
                "databases/./tables/x.yaml",
                "../version.yaml",
                "/version.yaml",
                "databases//tables/x.yaml",
                "databases/default/tables/PUBLIC_CUSTOMERS.yaml",
                "other/databases.yaml",
            ]
            .map(String::from),
        );
        assert_eq!(
            stale_files(&existing, &oldest, Layout::V3),
            [
                "databases/default/functions/functions.yaml",
                "databases/default/functions/public_search_products.yaml",
                "databases/default/tables/public_orders.yaml",
                "databases/default/tables/public_product_ratings.yaml",
                "databases/default/tables/public_reviews.yaml",
                "databases/old/functions/functions.yaml",
                "databases/old/tables/public_t.yaml",
                "databases/old/tables/tables.yaml",
                "functions.yaml",
                "tables.yaml",
            ]
        );
        assert!(stale_files(&existing, &newest, Layout::V3)
            .iter()
            .all(|p| !newest.iter().any(|(n, _)| n == p)));

        // Switching to V2: the whole v3 tree and the v3-only files are stale.
        let v2 = export(&build_v3(&tags[3].1), Layout::V2);
        let stale = stale_files(&existing, &v2, Layout::V2);
        for p in [
            "databases/databases.yaml",
            "databases/default/tables/tables.yaml",
            "rest_endpoints.yaml",
            "api_limits.yaml",
            "metrics_config.yaml",
            "network.yaml",
        ] {
            assert!(stale.contains(&p.to_string()), "{p}: {stale:?}");
        }
        for p in ["tables.yaml", "version.yaml", "README.md", "actions.yaml"] {
            assert!(!stale.contains(&p.to_string()), "{p}");
        }
        assert!(stale_files(&[], &v2, Layout::V2).is_empty());
    }

    /// Writing an export over a folder and deleting the stale files gives a folder that builds
    /// to the exported snapshot, whatever was there before.
    #[test]
    fn re_export_over_any_earlier_export_builds_the_new_snapshot() {
        let mut snapshots: Vec<Value> = Vec::new();
        for (_, tree) in fixture("shop") {
            snapshots.push(build_v2(&tree));
        }
        for (_, tree) in fixture("shop-v3") {
            snapshots.push(build_v3(&tree));
        }
        snapshots.push(rich_v3());
        let layouts = [Layout::V2, Layout::V3];
        for old in &snapshots {
            for old_layout in layouts {
                for new in &snapshots {
                    for layout in layouts {
                        let mut folder = tree(&export(old, old_layout));
                        let files = export(new, layout);
                        let existing: Vec<String> = folder.keys().cloned().collect();
                        let stale = stale_files(&existing, &files, layout);
                        folder.extend(files.iter().cloned());
                        for p in &stale {
                            folder.remove(p);
                        }
                        assert_eq!(
                            folder,
                            tree(&files),
                            "nothing of the old export is left over"
                        );
                        let rebuilt = build(&folder, layout);
                        assert_eq!(
                            snapshot_sha256(&rebuilt),
                            snapshot_sha256(&build(&tree(&files), layout))
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn plain_words_are_written_as_yaml_serde_writes_them() {
        let words = [
            "a",
            "_",
            "id",
            "X-Hasura-User-Id",
            "a.b",
            "a-b",
            "a_b",
            "null",
            "Null",
            "NULL",
            "nULL",
            "true",
            "True",
            "TRUE",
            "tRUE",
            "false",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "nan",
            "NaN",
            "inf",
            "Infinity",
            "e5",
            "E",
            "x1e5",
            "a..",
            "a--",
            "_1",
            "o0",
            "x0",
            "public_users",
            "read-committed",
            "synchronous",
        ];
        for word in words {
            let by_yaml_serde = yaml_serde::to_string(word).unwrap();
            let plain = format!("{word}\n") == by_yaml_serde;
            assert_eq!(is_plain_word(word), plain, "{word}: {by_yaml_serde}");
            assert_eq!(
                Writer::default().string_text(word),
                by_yaml_serde.trim_end(),
                "{word}"
            );
        }
        for not_plain in ["", "1a", "-a", ".a", "a b", "a:", "a#", "ä", "a/b"] {
            assert!(!is_plain_word(not_plain), "{not_plain}");
        }
    }
}
