//! Merging `metadata/actions.graphql` into the actions and custom types of a snapshot.
//!
//! Hasura projects keep actions in two files. `actions.yaml` holds each action's handler,
//! permissions and so on, and only the *names* of the custom types. `actions.graphql` holds the
//! GraphQL SDL: the action signatures (fields of `type Mutation` / `type Query`) and the fields of
//! the custom types. The server stores the merged form, which this module builds:
//!
//! - each action's `definition` gains `arguments: [{name, type, description?}]`,
//!   `output_type: "<TypeRef>"` and `type: "mutation" | "query"`;
//! - `custom_types` gains full definitions: `input_objects: [{name, description?, fields}]`,
//!   `objects: [{name, description?, fields: [{name, type, description?, arguments?}],
//!   relationships?}]`, `enums: [{name, description?, values: [{value, description?,
//!   is_deprecated?}]}]` and `scalars: [{name, description?}]`.
//!
//! Like the Hasura CLI (`metadataobject/actions` `Build`), an action listed in `actions.yaml`
//! without a field in `Mutation`/`Query` is an error, and so is a custom type listed in
//! `actions.yaml` that the SDL does not define with that kind. Types the SDL defines but
//! `actions.yaml` does not list are appended (the CLI sends every SDL type to the server).
//! Keys already present in `actions.yaml` (for example `relationships`, or a `description`) are
//! kept; a `description` from `actions.yaml` wins over the SDL's.
//!
//! The parser is a small hand-written one for the SDL subset Hasura uses: `type`, `input`,
//! `enum`, `scalar`, `extend …` (merged into the definition it extends), `implements A & B`
//! (skipped), field arguments with default values (skipped), `#` comments, `"…"` and
//! `"""…"""` descriptions, directives (skipped; `@deprecated` on enum values sets
//! `is_deprecated: true`), and commas as whitespace. `schema { … }`, `interface`, `union` and
//! `directive` definitions are not supported (Hasura custom types cannot use them).

use serde_json::{json, Map, Value};

/// Errors reading actions.graphql.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SdlError {
    /// The SDL text does not parse.
    #[error("actions.graphql:{line}:{column}: expected {expected}, found {found}")]
    Syntax {
        /// 1-based line of the offending token.
        line: usize,
        /// 1-based column (in characters) of the offending token.
        column: usize,
        /// What the parser expected at this point.
        expected: String,
        /// What it found instead.
        found: String,
    },
    /// A type is defined twice (not counting `extend`), or with two different kinds.
    #[error("actions.graphql:{line}:{column}: {what} `{name}` is defined more than once")]
    Duplicate {
        /// 1-based line of the second definition.
        line: usize,
        /// 1-based column of the second definition.
        column: usize,
        /// What is duplicated ("type", "field of Mutation", ...).
        what: String,
        /// The duplicated name.
        name: String,
    },
    /// An action in actions.yaml has no field in `type Mutation` or `type Query`.
    #[error(
        "action `{name}` in actions.yaml has no field in type Mutation or Query in actions.graphql"
    )]
    MissingAction {
        /// The action's name.
        name: String,
    },
    /// A custom type listed in actions.yaml is not defined (with that kind) in the SDL.
    #[error("custom type `{name}` ({kind}) in actions.yaml is not defined in actions.graphql")]
    MissingType {
        /// The type's name.
        name: String,
        /// The `custom_types` list it is in (`enums`, `input_objects`, `objects`, `scalars`).
        kind: String,
    },
    /// `actions_graphql` (or `actions` / `custom_types`) in the snapshot has the wrong JSON shape.
    #[error("metadata snapshot: {0}")]
    Shape(String),
}

/// Returns `snapshot` with actions and custom types merged from its `actions_graphql` SDL (the key is removed). A snapshot without `actions_graphql` is returned unchanged (minus nothing).
pub(crate) fn merge_actions_sdl(snapshot: &Value) -> Result<Value, SdlError> {
    let Some(root) = snapshot.as_object() else {
        return Ok(snapshot.clone());
    };
    let Some(sdl) = root.get("actions_graphql") else {
        return Ok(snapshot.clone());
    };
    let sdl = sdl
        .as_str()
        .ok_or_else(|| SdlError::Shape("`actions_graphql` is not a string".into()))?;
    let doc = parse(sdl)?;
    let mut out = root.clone();
    out.remove("actions_graphql");

    // Actions.
    let actions = match out.get("actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(SdlError::Shape("`actions` is not a list".into())),
    };
    let mut merged_actions = Vec::with_capacity(actions.len());
    for action in actions {
        let Value::Object(mut action) = action else {
            return Err(SdlError::Shape("an action is not a mapping".into()));
        };
        let name = action
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| SdlError::Shape("an action has no `name`".into()))?
            .to_string();
        let (op, field) = doc
            .root_field("Mutation", &name)
            .map(|f| ("mutation", f))
            .or_else(|| doc.root_field("Query", &name).map(|f| ("query", f)))
            .ok_or(SdlError::MissingAction { name })?;
        let mut def = match action.remove("definition") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(d)) => d,
            Some(_) => {
                return Err(SdlError::Shape(
                    "an action's `definition` is not a mapping".into(),
                ))
            }
        };
        def.insert(
            "arguments".into(),
            Value::Array(field.arguments.iter().map(InputValue::to_json).collect()),
        );
        def.insert("output_type".into(), Value::String(field.ty.clone()));
        def.insert("type".into(), Value::String(op.into()));
        action.insert("definition".into(), Value::Object(def));
        merged_actions.push(Value::Object(action));
    }
    out.insert("actions".into(), Value::Array(merged_actions));

    // Custom types.
    let mut custom = match out.remove("custom_types") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(SdlError::Shape("`custom_types` is not a mapping".into())),
    };
    for (key, kind) in [
        ("enums", Kind::Enum),
        ("input_objects", Kind::Input),
        ("objects", Kind::Object),
        ("scalars", Kind::Scalar),
    ] {
        let listed = match custom.remove(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(SdlError::Shape(format!(
                    "`custom_types.{key}` is not a list"
                )))
            }
        };
        let mut seen: Vec<String> = Vec::new();
        let mut list = Vec::new();
        for item in listed {
            let Value::Object(mut item) = item else {
                return Err(SdlError::Shape(format!(
                    "an entry of `custom_types.{key}` is not a mapping"
                )));
            };
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    SdlError::Shape(format!("an entry of `custom_types.{key}` has no `name`"))
                })?
                .to_string();
            let def = doc
                .defs
                .iter()
                .find(|d| d.kind == kind && d.name == name)
                .ok_or_else(|| SdlError::MissingType {
                    name: name.clone(),
                    kind: key.into(),
                })?;
            for (k, v) in def.to_json() {
                if k == "description" && item.get("description").is_some_and(|d| !d.is_null()) {
                    continue;
                }
                item.insert(k, v);
            }
            seen.push(name);
            list.push(Value::Object(item));
        }
        for def in doc.defs.iter().filter(|d| d.kind == kind && !d.is_root()) {
            if !seen.contains(&def.name) {
                list.push(Value::Object(def.to_json()));
            }
        }
        custom.insert(key.into(), Value::Array(list));
    }
    out.insert("custom_types".into(), Value::Object(custom));
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// Document model

/// The kind of a type definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Input,
    Enum,
    Scalar,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Object => "type",
            Kind::Input => "input",
            Kind::Enum => "enum",
            Kind::Scalar => "scalar",
        }
    }
}

/// An argument or an input object field.
#[derive(Debug, Clone)]
struct InputValue {
    name: String,
    ty: String,
    description: Option<String>,
}

impl InputValue {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert("type".into(), Value::String(self.ty.clone()));
        if let Some(d) = &self.description {
            m.insert("description".into(), Value::String(d.clone()));
        }
        Value::Object(m)
    }
}

/// A field of an object type.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    ty: String,
    description: Option<String>,
    arguments: Vec<InputValue>,
    line: usize,
    column: usize,
}

/// A value of an enum type.
#[derive(Debug, Clone)]
struct EnumValue {
    value: String,
    description: Option<String>,
    deprecated: bool,
}

/// One type definition (after merging `extend`s).
#[derive(Debug, Clone)]
struct TypeDef {
    kind: Kind,
    name: String,
    description: Option<String>,
    fields: Vec<Field>,
    values: Vec<EnumValue>,
}

impl TypeDef {
    fn is_root(&self) -> bool {
        self.kind == Kind::Object && (self.name == "Query" || self.name == "Mutation")
    }

    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(self.name.clone()));
        if let Some(d) = &self.description {
            m.insert("description".into(), Value::String(d.clone()));
        }
        match self.kind {
            Kind::Scalar => {}
            Kind::Enum => {
                let values = self
                    .values
                    .iter()
                    .map(|v| {
                        let mut e = Map::new();
                        e.insert("value".into(), Value::String(v.value.clone()));
                        if let Some(d) = &v.description {
                            e.insert("description".into(), Value::String(d.clone()));
                        }
                        if v.deprecated {
                            e.insert("is_deprecated".into(), Value::Bool(true));
                        }
                        Value::Object(e)
                    })
                    .collect();
                m.insert("values".into(), Value::Array(values));
            }
            Kind::Input => {
                let fields = self
                    .fields
                    .iter()
                    .map(|f| {
                        InputValue {
                            name: f.name.clone(),
                            ty: f.ty.clone(),
                            description: f.description.clone(),
                        }
                        .to_json()
                    })
                    .collect();
                m.insert("fields".into(), Value::Array(fields));
            }
            Kind::Object => {
                let fields = self
                    .fields
                    .iter()
                    .map(|f| {
                        let mut o = json!({"name": f.name, "type": f.ty});
                        if let Some(d) = &f.description {
                            o["description"] = Value::String(d.clone());
                        }
                        if !f.arguments.is_empty() {
                            o["arguments"] =
                                Value::Array(f.arguments.iter().map(InputValue::to_json).collect());
                        }
                        o
                    })
                    .collect();
                m.insert("fields".into(), Value::Array(fields));
            }
        }
        m
    }
}

/// A parsed actions.graphql.
#[derive(Debug, Default)]
struct Document {
    defs: Vec<TypeDef>,
}

impl Document {
    fn root_field(&self, root: &str, name: &str) -> Option<&Field> {
        self.defs
            .iter()
            .filter(|d| d.kind == Kind::Object && d.name == root)
            .flat_map(|d| d.fields.iter())
            .find(|f| f.name == name)
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    /// Int or Float literal (kept as text).
    Number(String),
    Punct(char),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Name(n) => format!("`{n}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Number(n) => format!("number `{n}`"),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Eof => "end of input".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    column: usize,
}

fn syntax(line: usize, column: usize, expected: &str, found: impl Into<String>) -> SdlError {
    SdlError::Syntax {
        line,
        column,
        expected: expected.into(),
        found: found.into(),
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            chars: src
                .strip_prefix('\u{feff}')
                .unwrap_or(src)
                .chars()
                .peekable(),
            line: 1,
            column: 1,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else if c == '\r' {
            // `\r\n` counts as one line break; handled when `\n` follows.
            if self.chars.peek() != Some(&'\n') {
                self.line += 1;
                self.column = 1;
            }
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn tokens(mut self) -> Result<Vec<Token>, SdlError> {
        let mut out = Vec::new();
        loop {
            // Skip whitespace, commas and comments.
            while let Some(&c) = self.chars.peek() {
                if c == '#' {
                    while let Some(&c) = self.chars.peek() {
                        if c == '\n' || c == '\r' {
                            break;
                        }
                        self.bump();
                    }
                } else if c.is_whitespace() || c == ',' || c == '\u{feff}' {
                    self.bump();
                } else {
                    break;
                }
            }
            let (line, column) = (self.line, self.column);
            let Some(&c) = self.chars.peek() else {
                out.push(Token {
                    tok: Tok::Eof,
                    line,
                    column,
                });
                return Ok(out);
            };
            let tok = if c == '_' || c.is_ascii_alphabetic() {
                let mut s = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c == '_' || c.is_ascii_alphanumeric() {
                        s.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                Tok::Name(s)
            } else if c == '-' || c.is_ascii_digit() {
                let mut s = String::new();
                while let Some(&c) = self.chars.peek() {
                    let sign_ok = (c == '-' || c == '+')
                        && (s.is_empty() || s.ends_with('e') || s.ends_with('E'));
                    if c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || sign_ok {
                        s.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                if !s.chars().any(|c| c.is_ascii_digit()) {
                    return Err(syntax(line, column, "a number", format!("`{s}`")));
                }
                Tok::Number(s)
            } else if c == '"' {
                Tok::Str(self.string(line, column)?)
            } else if "{}()[]:!=@&|$".contains(c) {
                self.bump();
                Tok::Punct(c)
            } else {
                return Err(syntax(line, column, "a token", format!("`{c}`")));
            };
            out.push(Token { tok, line, column });
        }
    }

    /// A `"…"` or `"""…"""` string; the opening quote is next.
    fn string(&mut self, line: usize, column: usize) -> Result<String, SdlError> {
        self.bump();
        if self.chars.peek() == Some(&'"') {
            self.bump();
            if self.chars.peek() == Some(&'"') {
                self.bump();
                return self.block_string(line, column);
            }
            return Ok(String::new()); // ""
        }
        let mut s = String::new();
        loop {
            let (l, c) = (self.line, self.column);
            match self.bump() {
                None | Some('\n') | Some('\r') => {
                    return Err(syntax(
                        line,
                        column,
                        "a closing `\"` for this string",
                        "end of line",
                    ))
                }
                Some('"') => return Ok(s),
                Some('\\') => match self.bump() {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('/') => s.push('/'),
                    Some('b') => s.push('\u{8}'),
                    Some('f') => s.push('\u{c}'),
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                syntax(l, c, "a `\\uXXXX` escape", format!("`\\u{hex}`"))
                            })?;
                        s.push(ch);
                    }
                    other => {
                        return Err(syntax(
                            l,
                            c,
                            "an escape sequence",
                            other.map_or("end of input".into(), |o| format!("`\\{o}`")),
                        ))
                    }
                },
                Some(ch) => s.push(ch),
            }
        }
    }

    /// The rest of a `"""…"""` block string, with GraphQL's indentation removal.
    fn block_string(&mut self, line: usize, column: usize) -> Result<String, SdlError> {
        let mut raw = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(syntax(
                        line,
                        column,
                        "a closing `\"\"\"` for this block string",
                        "end of input",
                    ))
                }
                Some('\\') if raw_peek3(&mut self.chars) => {
                    // \""" is an escaped triple quote.
                    self.bump();
                    self.bump();
                    self.bump();
                    raw.push_str("\"\"\"");
                }
                Some('"') => {
                    if self.chars.peek() == Some(&'"') {
                        self.bump();
                        if self.chars.peek() == Some(&'"') {
                            self.bump();
                            return Ok(block_string_value(&raw));
                        }
                        raw.push_str("\"\"");
                    } else {
                        raw.push('"');
                    }
                }
                Some(c) => raw.push(c),
            }
        }
    }
}

/// Whether the next three characters are `"""` (without consuming them).
fn raw_peek3(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    let rest: String = chars.clone().take(3).collect();
    rest == "\"\"\""
}

/// GraphQL `BlockStringValue`: common indentation and leading/trailing blank lines removed.
fn block_string_value(raw: &str) -> String {
    let normalised = raw.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter_map(|l| {
            let n = l.len() - l.trim_start_matches([' ', '\t']).len();
            (n < l.len()).then_some(n)
        })
        .min()
        .unwrap_or(0);
    let mut out: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                l.get(indent.min(l.len())..).unwrap_or("").to_string()
            }
        })
        .collect();
    let blank = |s: &String| s.trim_matches([' ', '\t']).is_empty();
    while out.first().is_some_and(blank) {
        out.remove(0);
    }
    while out.last().is_some_and(blank) {
        out.pop();
    }
    out.join("\n")
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

/// Parses actions.graphql into its type definitions.
fn parse(src: &str) -> Result<Document, SdlError> {
    let mut p = Parser {
        toks: Lexer::new(src).tokens()?,
        pos: 0,
    };
    let mut doc = Document::default();
    while p.peek().tok != Tok::Eof {
        p.definition(&mut doc)?;
    }
    Ok(doc)
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn err(&self, expected: &str) -> SdlError {
        let t = self.peek();
        syntax(t.line, t.column, expected, t.tok.describe())
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek().tok == Tok::Punct(c)
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.is_punct(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, c: char) -> Result<(), SdlError> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.err(&format!("`{c}`")))
        }
    }

    fn name(&mut self, expected: &str) -> Result<Token, SdlError> {
        match self.peek().tok {
            Tok::Name(_) => Ok(self.next()),
            _ => Err(self.err(expected)),
        }
    }

    fn name_text(t: &Token) -> String {
        match &t.tok {
            Tok::Name(n) => n.clone(),
            _ => String::new(),
        }
    }

    fn description(&mut self) -> Option<String> {
        if let Tok::Str(s) = &self.peek().tok {
            let s = s.clone();
            self.pos += 1;
            Some(s)
        } else {
            None
        }
    }

    fn definition(&mut self, doc: &mut Document) -> Result<(), SdlError> {
        let description = self.description();
        let kw = self.name("a definition (`type`, `input`, `enum`, `scalar` or `extend`)")?;
        let mut word = Self::name_text(&kw);
        let extend = word == "extend";
        if extend {
            word =
                Self::name_text(&self.name("`type`, `input`, `enum` or `scalar` after `extend`")?);
        }
        let kind = match word.as_str() {
            "type" => Kind::Object,
            "input" => Kind::Input,
            "enum" => Kind::Enum,
            "scalar" => Kind::Scalar,
            _ => {
                return Err(syntax(
                    kw.line,
                    kw.column,
                    "a definition (`type`, `input`, `enum`, `scalar` or `extend`)",
                    format!("`{word}`"),
                ))
            }
        };
        let name_tok = self.name("a type name")?;
        let name = Self::name_text(&name_tok);
        if kind == Kind::Object && self.peek().tok == Tok::Name("implements".into()) {
            self.pos += 1;
            self.eat_punct('&');
            self.name("an interface name")?;
            while self.eat_punct('&') {
                self.name("an interface name")?;
            }
        }
        self.directives()?;
        let mut def = TypeDef {
            kind,
            name: name.clone(),
            description,
            fields: Vec::new(),
            values: Vec::new(),
        };
        match kind {
            Kind::Scalar => {}
            Kind::Enum => {
                if self.eat_punct('{') {
                    while !self.eat_punct('}') {
                        def.values.push(self.enum_value()?);
                    }
                }
            }
            Kind::Input | Kind::Object => {
                if self.eat_punct('{') {
                    while !self.eat_punct('}') {
                        def.fields.push(self.field(kind == Kind::Object)?);
                    }
                }
            }
        }
        let root = def.is_root();
        match doc.defs.iter_mut().find(|d| d.name == name) {
            Some(existing) if existing.kind == kind && (extend || root) => {
                if existing.description.is_none() {
                    existing.description = def.description;
                }
                for f in def.fields {
                    if existing.fields.iter().any(|e| e.name == f.name) {
                        return Err(SdlError::Duplicate {
                            line: f.line,
                            column: f.column,
                            what: format!("field of {name}"),
                            name: f.name,
                        });
                    }
                    existing.fields.push(f);
                }
                existing.values.extend(def.values);
            }
            Some(_) => {
                return Err(SdlError::Duplicate {
                    line: name_tok.line,
                    column: name_tok.column,
                    what: kind.word().into(),
                    name,
                })
            }
            None => {
                let mut seen: Vec<&str> = Vec::new();
                for f in &def.fields {
                    if seen.contains(&f.name.as_str()) {
                        return Err(SdlError::Duplicate {
                            line: f.line,
                            column: f.column,
                            what: format!("field of {name}"),
                            name: f.name.clone(),
                        });
                    }
                    seen.push(&f.name);
                }
                doc.defs.push(def);
            }
        }
        Ok(())
    }

    fn enum_value(&mut self) -> Result<EnumValue, SdlError> {
        let description = self.description();
        let value = Self::name_text(&self.name("an enum value or `}`")?);
        let deprecated = self.directives()?;
        Ok(EnumValue {
            value,
            description,
            deprecated,
        })
    }

    /// A field of an object (with arguments) or input object (with a default value).
    fn field(&mut self, object: bool) -> Result<Field, SdlError> {
        let description = self.description();
        let name_tok = self.name("a field name or `}`")?;
        let mut arguments = Vec::new();
        if object && self.eat_punct('(') {
            while !self.eat_punct(')') {
                arguments.push(self.input_value()?);
            }
        }
        self.expect_punct(':')?;
        let ty = self.type_ref()?;
        if !object && self.eat_punct('=') {
            self.value()?;
        }
        self.directives()?;
        Ok(Field {
            name: Self::name_text(&name_tok),
            ty,
            description,
            arguments,
            line: name_tok.line,
            column: name_tok.column,
        })
    }

    /// An argument definition: `"desc" name: Type = default @dir`.
    fn input_value(&mut self) -> Result<InputValue, SdlError> {
        let description = self.description();
        let name = Self::name_text(&self.name("an argument name or `)`")?);
        self.expect_punct(':')?;
        let ty = self.type_ref()?;
        if self.eat_punct('=') {
            self.value()?;
        }
        self.directives()?;
        Ok(InputValue {
            name,
            ty,
            description,
        })
    }

    /// A type reference, rendered without whitespace: `Int!`, `[String!]!`.
    fn type_ref(&mut self) -> Result<String, SdlError> {
        let mut s = if self.eat_punct('[') {
            let inner = self.type_ref()?;
            self.expect_punct(']')?;
            format!("[{inner}]")
        } else {
            Self::name_text(&self.name("a type")?)
        };
        if self.eat_punct('!') {
            s.push('!');
        }
        Ok(s)
    }

    /// Skips a constant value (default values and directive arguments).
    fn value(&mut self) -> Result<(), SdlError> {
        match self.peek().tok.clone() {
            Tok::Name(_) | Tok::Str(_) | Tok::Number(_) => {
                self.pos += 1;
                Ok(())
            }
            Tok::Punct('$') => {
                self.pos += 1;
                self.name("a variable name").map(|_| ())
            }
            Tok::Punct('[') => {
                self.pos += 1;
                while !self.eat_punct(']') {
                    if self.peek().tok == Tok::Eof {
                        return Err(self.err("a value or `]`"));
                    }
                    self.value()?;
                }
                Ok(())
            }
            Tok::Punct('{') => {
                self.pos += 1;
                while !self.eat_punct('}') {
                    self.name("a field name or `}`")?;
                    self.expect_punct(':')?;
                    self.value()?;
                }
                Ok(())
            }
            _ => Err(self.err("a value")),
        }
    }

    /// Skips directives; returns whether one of them is `@deprecated`.
    fn directives(&mut self) -> Result<bool, SdlError> {
        let mut deprecated = false;
        while self.eat_punct('@') {
            let name = Self::name_text(&self.name("a directive name")?);
            deprecated |= name == "deprecated";
            if self.eat_punct('(') {
                while !self.eat_punct(')') {
                    self.name("a directive argument name or `)`")?;
                    self.expect_punct(':')?;
                    self.value()?;
                }
            }
        }
        Ok(deprecated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> String {
        let path = format!(
            "{}/../../fixtures/shop/01-v1.0.0/metadata/{rel}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn snapshot(actions: Value, custom_types: Value, sdl: &str) -> Value {
        json!({"version": 2, "actions": actions, "custom_types": custom_types, "actions_graphql": sdl})
    }

    #[test]
    fn shop_fixture_merges() {
        let yaml: Value = yaml_serde::from_str(&fixture("actions.yaml")).unwrap();
        let snap = snapshot(
            yaml["actions"].clone(),
            yaml["custom_types"].clone(),
            &fixture("actions.graphql"),
        );
        let out = merge_actions_sdl(&snap).unwrap();
        assert!(out.get("actions_graphql").is_none());
        assert_eq!(out["version"], 2);
        let def = &out["actions"][0]["definition"];
        assert_eq!(out["actions"][0]["name"], "place_order");
        assert_eq!(out["actions"][0]["permissions"], json!([{"role": "user"}]));
        assert_eq!(def["kind"], "synchronous");
        assert_eq!(def["handler"], "{{ACTION_BASE_URL}}/place_order");
        assert_eq!(def["type"], "mutation");
        assert_eq!(def["output_type"], "PlaceOrderOutput");
        assert_eq!(
            def["arguments"],
            json!([{"name": "input", "type": "PlaceOrderInput!"}])
        );
        assert_eq!(
            out["custom_types"]["input_objects"],
            json!([{"name": "PlaceOrderInput", "fields": [
                {"name": "product_id", "type": "Int!"},
                {"name": "quantity", "type": "Int!"}
            ]}])
        );
        assert_eq!(
            out["custom_types"]["objects"],
            json!([{"name": "PlaceOrderOutput", "fields": [
                {"name": "order_id", "type": "Int!"},
                {"name": "status", "type": "String!"}
            ]}])
        );
        assert_eq!(out["custom_types"]["enums"], json!([]));
        assert_eq!(out["custom_types"]["scalars"], json!([]));
    }

    #[test]
    fn query_action_nested_lists_and_field_arguments() {
        let sdl = "# comment\nextend type Query {\n  search(term: String!, tags: [[String!]]! = [\"a\", \"b\"], limit: Int = 10,): [[Hit!]!]\n}\n\
                   type Hit { id: uuid!, score(scale: Float = 1.5e3 @x): Float }\n";
        let snap = snapshot(
            json!([{"name": "search", "definition": {"kind": "synchronous", "handler": "http://h", "timeout": 5},
                     "permissions": [], "comment": "c"}]),
            json!({"objects": [{"name": "Hit", "relationships": [{"name": "r", "type": "object"}]}]}),
            sdl,
        );
        let out = merge_actions_sdl(&snap).unwrap();
        let action = &out["actions"][0];
        assert_eq!(action["comment"], "c");
        assert_eq!(action["definition"]["type"], "query");
        assert_eq!(action["definition"]["timeout"], 5);
        assert_eq!(action["definition"]["output_type"], "[[Hit!]!]");
        assert_eq!(
            action["definition"]["arguments"],
            json!([{"name": "term", "type": "String!"}, {"name": "tags", "type": "[[String!]]!"},
                   {"name": "limit", "type": "Int"}])
        );
        assert_eq!(
            out["custom_types"]["objects"],
            json!([{"name": "Hit", "relationships": [{"name": "r", "type": "object"}], "fields": [
                {"name": "id", "type": "uuid!"},
                {"name": "score", "type": "Float", "arguments": [{"name": "scale", "type": "Float"}]}
            ]}])
        );
        // Lists absent from the snapshot are created.
        assert_eq!(out["custom_types"]["enums"], json!([]));
    }

    #[test]
    fn descriptions_enums_and_scalars() {
        let sdl = r#"
"""
  The roots.
    Indented line.
"""
type Mutation {
  "Places an order."
  place(
    "how many"
    n: Int!
    status: Status = NEW
  ): Out
}

"An order status"
enum Status {
  "brand new"
  NEW
  OLD @deprecated(reason: "use NEW")
  GONE,
}

"""Timestamps"""
scalar timestamptz

input In @example { at: timestamptz = "2020-01-01" @x(a: {b: [1, 2]}) }

type Out {
  """
  The status \""" quoted
  """
  status: Status!
}
"#;
        let snap = snapshot(
            json!([{"name": "place", "definition": {"kind": "synchronous", "handler": "h"}}]),
            json!({"enums": [{"name": "Status"}], "scalars": [{"name": "timestamptz", "description": "from yaml"}],
                   "objects": [{"name": "Out"}], "input_objects": []}),
            sdl,
        );
        let out = merge_actions_sdl(&snap).unwrap();
        assert_eq!(
            out["actions"][0]["definition"]["arguments"],
            json!([{"name": "n", "type": "Int!", "description": "how many"},
                   {"name": "status", "type": "Status"}])
        );
        assert_eq!(
            out["custom_types"]["enums"],
            json!([{"name": "Status", "description": "An order status", "values": [
                {"value": "NEW", "description": "brand new"},
                {"value": "OLD", "is_deprecated": true},
                {"value": "GONE"}
            ]}])
        );
        // The description in actions.yaml wins.
        assert_eq!(
            out["custom_types"]["scalars"],
            json!([{"name": "timestamptz", "description": "from yaml"}])
        );
        // A type only in the SDL is appended.
        assert_eq!(
            out["custom_types"]["input_objects"],
            json!([{"name": "In", "fields": [{"name": "at", "type": "timestamptz"}]}])
        );
        assert_eq!(
            out["custom_types"]["objects"][0]["fields"][0]["description"],
            "The status \"\"\" quoted"
        );
        assert_eq!(
            block_string_value("\n  The roots.\n    Indented line.\n"),
            "The roots.\n  Indented line."
        );
    }

    #[test]
    fn action_missing_from_sdl_is_an_error() {
        let snap = snapshot(
            json!([{"name": "place_order", "definition": {}}, {"name": "cancel_order", "definition": {}}]),
            json!({}),
            "type Mutation { place_order: Int }\ntype Query { other: Int }",
        );
        let err = merge_actions_sdl(&snap).unwrap_err();
        assert!(matches!(&err, SdlError::MissingAction { name } if name == "cancel_order"));
        assert!(err.to_string().contains("cancel_order"), "{err}");
    }

    #[test]
    fn custom_type_missing_from_sdl_is_an_error() {
        let snap = snapshot(
            json!([]),
            json!({"input_objects": [{"name": "Out"}]}),
            "type Out { a: Int }",
        );
        let err = merge_actions_sdl(&snap).unwrap_err();
        assert!(matches!(&err, SdlError::MissingType { name, .. } if name == "Out"));
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let snap = snapshot(
            json!([]),
            json!({}),
            "type Mutation {\n  place(a Int): Out\n}\n",
        );
        let err = merge_actions_sdl(&snap).unwrap_err();
        assert!(
            matches!(
                &err,
                SdlError::Syntax {
                    line: 2,
                    column: 11,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "actions.graphql:2:11: expected `:`, found `Int`"
        );

        let err = parse("type A {\n  a: Int\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "actions.graphql:3:1: expected a field name or `}`, found end of input"
        );
        let err = parse("union U = A | B").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("actions.graphql:1:1: expected a definition"));
        let err = parse("type A { a: String }\n\n  \"open").unwrap_err();
        assert!(err.to_string().starts_with("actions.graphql:3:3:"), "{err}");
        let err = parse("type A { a: Int }\ninput A { b: Int }").unwrap_err();
        assert!(matches!(
            err,
            SdlError::Duplicate {
                line: 2,
                column: 7,
                ..
            }
        ));
    }

    #[test]
    fn snapshot_without_sdl_is_unchanged() {
        let snap = json!({"version": 2, "actions": [{"name": "a", "definition": {"kind": "synchronous"}}],
                          "custom_types": {"objects": [{"name": "X"}]}});
        assert_eq!(merge_actions_sdl(&snap).unwrap(), snap);
    }
}
