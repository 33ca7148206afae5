//! Hasura's `config.yaml` (read at the target revision) and the tool's own `git-migrate.yaml`
//! (read from the working tree or flags). Parsing is pure; callers hand in bytes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Problems with a project's `config.yaml`.
#[derive(Debug, thiserror::Error)]
pub enum HasuraConfigError {
    /// Not there.
    #[error("{path} is missing at {at}")]
    Missing {
        /// Path in the repository.
        path: String,
        /// Where.
        at: String,
    },
    /// YAML syntax or shape.
    #[error("{path}:{line}:{column} @ {at}: {message}")]
    Syntax {
        /// Path in the repository.
        path: String,
        /// Where.
        at: String,
        /// 1-based line (0 = unknown).
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// Config v1 (no `version` key).
    #[error("{path} @ {at} is a config v1 project (no `version` key); git-migrate reads config v2 and v3 only. Upgrade with `hasura scripts update-project-v2`")]
    V1 {
        /// Path.
        path: String,
        /// Where.
        at: String,
    },
    /// A folder setting that leaves the project (absolute, or with `..`).
    #[error("{path} @ {at}: {key} is {value:?}; it must be a relative path inside the project (no leading / and no ..)")]
    Folder {
        /// Path.
        path: String,
        /// Where.
        at: String,
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// Unknown version.
    #[error("{path} @ {at}: unsupported config version {version} (expected 2 or 3)")]
    Version {
        /// Path.
        path: String,
        /// Where.
        at: String,
        /// The version found.
        version: i64,
    },
}

/// Normalises a folder path that must stay inside its parent: strips `./` and trailing `/`;
/// `None` for absolute paths and paths with `..`. An empty result means "the parent itself".
pub(crate) fn relative_dir(value: &str) -> Option<String> {
    if value.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for part in value.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    // A leading backslash (`\x`, or `./\x`, which normalises to it) is a Windows absolute path.
    if parts.first().is_some_and(|p| p.starts_with('\\')) {
        return None;
    }
    Some(parts.join("/"))
}

/// The parts of Hasura's `config.yaml` that locate migrations and metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HasuraConfig {
    /// 2 or 3.
    pub version: u8,
    /// `metadata_directory` (default `metadata`).
    pub metadata_directory: String,
    /// `migrations_directory` (default `migrations`).
    pub migrations_directory: String,
    /// `seeds_directory` (default `seeds`).
    pub seeds_directory: String,
    /// Keys written twice in the file (the later value was used); the reader warns.
    pub duplicates: Vec<crate::yaml::DuplicateKey>,
}

#[derive(Deserialize)]
struct RawConfig {
    version: Option<i64>,
    metadata_directory: Option<String>,
    migrations_directory: Option<String>,
    seeds_directory: Option<String>,
}

impl HasuraConfig {
    /// Parses `config.yaml` bytes; `path` and `at` are used in errors.
    pub fn parse(bytes: &[u8], path: &str, at: &str) -> Result<HasuraConfig, HasuraConfigError> {
        let syntax = |e: yaml_serde::Error| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            HasuraConfigError::Syntax {
                path: path.to_string(),
                at: at.to_string(),
                line,
                column,
                message: e.to_string(),
            }
        };
        let text = std::str::from_utf8(bytes).map_err(|e| HasuraConfigError::Syntax {
            path: path.to_string(),
            at: at.to_string(),
            line: 0,
            column: 0,
            message: format!("not valid UTF-8: {e}"),
        })?;
        // A key written twice is an old mistake that history keeps: the later value wins and
        // the caller warns (crate::yaml). Without one, the typed parse gives its errors with
        // their line and column.
        let doc = crate::yaml::parse(text).map_err(syntax)?;
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig {
                version: None,
                metadata_directory: None,
                migrations_directory: None,
                seeds_directory: None,
            }
        } else if doc.duplicates.is_empty() {
            yaml_serde::from_str(text).map_err(syntax)?
        } else {
            yaml_serde::from_value(doc.value).map_err(syntax)?
        };
        let version = match raw.version {
            None => {
                return Err(HasuraConfigError::V1 {
                    path: path.to_string(),
                    at: at.to_string(),
                })
            }
            Some(v @ (2 | 3)) => v as u8,
            Some(1) => {
                return Err(HasuraConfigError::V1 {
                    path: path.to_string(),
                    at: at.to_string(),
                })
            }
            Some(v) => {
                return Err(HasuraConfigError::Version {
                    path: path.to_string(),
                    at: at.to_string(),
                    version: v,
                })
            }
        };
        let clean = |s: Option<String>, key: &'static str, d: &str| {
            let value = s.unwrap_or_default();
            match relative_dir(&value) {
                Some(v) if v.is_empty() => Ok(d.to_string()),
                Some(v) => Ok(v),
                None => Err(HasuraConfigError::Folder {
                    path: path.to_string(),
                    at: at.to_string(),
                    key,
                    value,
                }),
            }
        };
        Ok(HasuraConfig {
            version,
            metadata_directory: clean(raw.metadata_directory, "metadata_directory", "metadata")?,
            migrations_directory: clean(
                raw.migrations_directory,
                "migrations_directory",
                "migrations",
            )?,
            seeds_directory: clean(raw.seeds_directory, "seeds_directory", "seeds")?,
            duplicates: doc.duplicates,
        })
    }

    /// The migrations folder of the `default` database, relative to the project folder.
    /// Config v3 keeps one folder per database (`migrations/default/`).
    pub(crate) fn migrations_directory_for_default(&self) -> String {
        self.migrations_directory_for("default")
    }

    /// The migrations folder of database `name` (config v3: `migrations/<name>/`; config v2
    /// projects have one database and one folder).
    pub(crate) fn migrations_directory_for(&self, name: &str) -> String {
        if self.version >= 3 {
            format!("{}/{name}", self.migrations_directory)
        } else {
            self.migrations_directory.clone()
        }
    }
}

/// Which downs are computed from the schema instead of read from down.sql files
/// (`--compute-downs`, git-migrate.yaml `policy.compute_downs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputeDowns {
    /// None: a missing or empty down refuses the plan (and says a computed one is available).
    #[default]
    Off,
    /// Those of migrations whose down is missing, empty or only comments.
    Gaps,
    /// All of them: the written downs are ignored (a state-based rollback).
    All,
}

/// The out-of-order policy (git-migrate.yaml `policy.out_of_order`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutOfOrderPolicy {
    /// Allowed with a warning when git shows the version arrived through a merge.
    #[default]
    MergeAware,
    /// Always refused.
    Error,
    /// Always allowed.
    Allow,
}

/// Default `policy.capture_downs`: a capture reads the schema model, about 0.1-0.2 s at a few
/// hundred tables, so a first deploy of a long history captures only its latest migrations.
pub const CAPTURE_DOWNS: usize = 20;

/// Default `policy.statement_lock_timeout`: how long a migration's statement may wait for a
/// table lock. A waiting `ALTER TABLE` queues every later query on that table behind it, so the
/// wait is an outage of that table; 5 s is what request timeouts usually absorb, and longer than
/// the short transactions a healthy application holds (issue 16, docs/design-notes.md).
pub const STATEMENT_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Default `policy.lock_retries`: runs after the first one when a migration timed out waiting
/// for a lock (waits 1 s, 2 s, 4 s in between).
pub const LOCK_RETRIES: u32 = 3;

/// A wait as written in `git-migrate.yaml` or on the command line: whole seconds (`5`), or a
/// number with `ms`, `s` or `min` (`500ms`, `5s`); `0` and `off` mean no limit (`None`).
pub fn parse_wait(text: &str) -> Result<Option<std::time::Duration>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a wait: use seconds (5), 500ms, 5s, 1min or off"))?;
    let d = match unit.trim() {
        "" | "s" => std::time::Duration::from_secs(n),
        "ms" => std::time::Duration::from_millis(n),
        "min" => std::time::Duration::from_secs(n.saturating_mul(60)),
        _ => {
            return Err(format!(
                "{text:?} is not a wait: use seconds (5), 500ms, 5s, 1min or off"
            ))
        }
    };
    Ok((!d.is_zero()).then_some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_versions() {
        let c = HasuraConfig::parse(b"version: 2\nendpoint: http://x\n", "config.yaml", "HEAD")
            .unwrap();
        assert_eq!(c.metadata_directory, "metadata");
        assert_eq!(c.migrations_directory_for_default(), "migrations");
        let c = HasuraConfig::parse(
            b"version: 3\nmigrations_directory: db/migrations/\n",
            "config.yaml",
            "HEAD",
        )
        .unwrap();
        assert_eq!(
            c.migrations_directory_for_default(),
            "db/migrations/default"
        );
    }

    #[test]
    fn errors_name_the_file() {
        let e = HasuraConfig::parse(b"endpoint: http://x\n", "hasura/config.yaml", "abc123")
            .unwrap_err();
        assert!(e.to_string().contains("config v1"), "{e}");
        let e =
            HasuraConfig::parse(b"version: 2\nendpoint: [\n", "config.yaml", "abc123").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("config.yaml:3:") || s.starts_with("config.yaml:2:"),
            "{s}"
        );
        assert!(s.contains("@ abc123"), "{s}");
        for bad in ["/etc", "../x", "a/../../b", "'\\x'", "'././\\\\'"] {
            let text = format!("version: 2\nmigrations_directory: {bad}\n");
            let e = HasuraConfig::parse(text.as_bytes(), "config.yaml", "HEAD").unwrap_err();
            assert!(e.to_string().contains("migrations_directory"), "{e}");
        }
        assert_eq!(
            relative_dir("./db/migrations/").as_deref(),
            Some("db/migrations")
        );
        // Found by the hasura_config fuzz target: `./` in front of a Windows absolute path.
        assert_eq!(relative_dir("././\\\\"), None);
        assert_eq!(relative_dir("a/\\b").as_deref(), Some("a/\\b"));
        let e = HasuraConfig::parse(b"version: 7\n", "config.yaml", "HEAD").unwrap_err();
        assert!(e.to_string().contains("unsupported config version 7"));
    }

    #[test]
    fn a_key_written_twice_keeps_the_later_value() {
        let c = HasuraConfig::parse(
            b"version: 2\nendpoint: http://x\nversion: 3\nmigrations_directory: a\nmigrations_directory: db\n",
            "hasura/config.yaml",
            "abc123",
        )
        .unwrap();
        assert_eq!(c.version, 3);
        assert_eq!(c.migrations_directory, "db");
        let lines: Vec<(&str, usize, usize)> = c
            .duplicates
            .iter()
            .map(|d| (d.key.as_str(), d.line, d.first_line))
            .collect();
        assert_eq!(lines, [("version", 3, 1), ("migrations_directory", 5, 4)]);
        // Still refused: a file that does not parse, with its line.
        let e = HasuraConfig::parse(b"version: 2\nversion: 3\nx: [\n", "config.yaml", "abc123")
            .unwrap_err();
        assert!(e.to_string().starts_with("config.yaml:"), "{e}");
        assert!(!e.to_string().starts_with("config.yaml:0:"), "{e}");
    }
}

/// The tool's own settings (`git-migrate.yaml`, design §4). Read from the working tree, or
/// from `HEAD`'s tree in a bare repository; never from the target revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolConfig {
    /// Project folder inside the repository.
    pub project: Option<String>,
    /// Schema of the ledger.
    pub ledger_schema: String,
    /// Out-of-order policy.
    pub out_of_order: OutOfOrderPolicy,
    /// SQL run before the first migration of a fresh database.
    pub prelude_sql: Option<String>,
    /// Hooks refuse new migrations without a down (`policy.require_down`, default true).
    pub require_down: bool,
    /// Deploys record the new checksum of edited applied migrations instead of refusing
    /// (`policy.accept_edited`, default false; `--accept-edited` for one run).
    pub accept_edited: bool,
    /// Which downs deploys and rollbacks compute from the schema (`policy.compute_downs`:
    /// `true` for missing and empty ones, `all`, default false; `--compute-downs` for one run).
    pub compute_downs: ComputeDowns,
    /// How many migrations without a usable down one deployment captures the down of, the
    /// last ones (`policy.capture_downs`, default [`CAPTURE_DOWNS`]; 0: none).
    pub capture_downs: usize,
    /// The migration linter's settings (`lint:`).
    pub lint: crate::lint::LintConfig,
    /// `lock_timeout` for the migrations' statements (`policy.statement_lock_timeout`, default
    /// [`STATEMENT_LOCK_TIMEOUT`]; `off`: the server's setting).
    pub statement_lock_timeout: Option<std::time::Duration>,
    /// How many times a deployment whose migration timed out waiting for a lock is run again
    /// (`policy.lock_retries`, default [`LOCK_RETRIES`]).
    pub lock_retries: u32,
    /// Named environments, in file order.
    pub environments: Vec<Environment>,
    /// Where it was read from, if anywhere.
    pub origin: Option<String>,
}

/// One environment of `git-migrate.yaml` (design §4, §9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// Its name (`staging`).
    pub name: String,
    /// The connection string as written, `${VAR}` not yet expanded (so that a secret read from
    /// the environment is never stored, and a variable only one environment needs is only
    /// required when that environment is used).
    pub database_url: Option<String>,
    /// A fleet (issue 17): many databases, each URL as written (`${VAR}` not yet expanded).
    pub database_urls: Vec<String>,
    /// A fleet listed by a command's stdout, one URL per line (run with `sh -c` when the
    /// environment is used).
    pub database_urls_command: Option<String>,
    /// A glob (`v*`): only commits a matching tag points at may be deployed here.
    pub require_tag: Option<String>,
    /// The environment whose commit `promote` copies here.
    pub promote_from: Option<String>,
    /// Ask for confirmation before every change (not only reverts). Default: true when the
    /// environment has `require_tag`.
    pub confirm: bool,
    /// `deploy` refuses a plan that moves the database back (issue 16: migrations run when a pod
    /// starts); `rollback` and `deploy --no-forward-only` are the explicit ways back.
    pub forward_only: bool,
}

impl Environment {
    /// Whether it names many databases (`database_urls` or `database_urls_command`).
    pub fn is_fleet(&self) -> bool {
        !self.database_urls.is_empty() || self.database_urls_command.is_some()
    }

    /// The database URL with `${VAR}` expanded from `get`.
    pub fn expanded_url(
        &self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ExpandError> {
        self.database_url
            .as_deref()
            .map(|u| expand_vars(u, &get))
            .transpose()
    }

    /// Whether a tag name is accepted by `require_tag` (any tag when there is none).
    pub fn accepts_tag(&self, tag: &str) -> bool {
        self.require_tag
            .as_deref()
            .is_none_or(|glob| glob_match(glob, tag))
    }
}

/// A `${VAR}` that could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// The variable is not set (or empty).
    #[error("${{{0}}} is not set")]
    Missing(String),
    /// `${` without a closing brace, or a bad name.
    #[error("{0}")]
    Syntax(String),
}

/// Expands `${VAR}` and `${VAR:-default}` (and `$$` as a literal `$`) in `text`. A variable that
/// is unset or empty without a default is an error naming it: a silently empty URL would
/// connect to whatever the libpq defaults point at.
pub fn expand_vars(
    text: &str,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                ExpandError::Syntax(format!("`${{` without a closing `}}` in {text:?}"))
            })?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ExpandError::Syntax(format!(
                    "`${{{inner}}}` is not a variable reference (use ${{NAME}} with letters, digits and _)"
                )));
            }
            match (get(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(ExpandError::Missing(name.to_string())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Shell-style glob for tag names: `*` (any run), `?` (one character), `[abc]`/`[a-z]`/`[!x]`.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut gi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() {
            match g[gi] {
                '*' => {
                    star = Some((gi, ti));
                    gi += 1;
                    continue;
                }
                '?' => {
                    gi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(&g, gi, t[ti]) {
                        if matched {
                            gi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        gi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    gi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sg, st)) => {
                gi = sg + 1;
                ti = st + 1;
                star = Some((sg, st + 1));
            }
            None => return false,
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `g[start] == '['`: (matched, index after `]`), or
/// None when the class is not closed (then `[` is literal).
fn class_match(g: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(g.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < g.len() {
        if g[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if g.get(i + 1) == Some(&'-') && g.get(i + 2).is_some_and(|&e| e != ']') {
            if g[i] <= c && c <= g[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if g[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

impl Default for ToolConfig {
    fn default() -> Self {
        ToolConfig {
            project: None,
            ledger_schema: "git_migrate".into(),
            out_of_order: Default::default(),
            prelude_sql: None,
            require_down: true,
            accept_edited: false,
            compute_downs: Default::default(),
            capture_downs: CAPTURE_DOWNS,
            lint: Default::default(),
            statement_lock_timeout: Some(STATEMENT_LOCK_TIMEOUT),
            lock_retries: LOCK_RETRIES,
            environments: Vec::new(),
            origin: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    require_down: Option<bool>,
    #[serde(default)]
    out_of_order: Option<String>,
    #[serde(default)]
    accept_edited: Option<bool>,
    #[serde(default)]
    compute_downs: Option<RawComputeDowns>,
    #[serde(default)]
    capture_downs: Option<usize>,
    #[serde(default)]
    statement_lock_timeout: Option<RawWait>,
    #[serde(default)]
    lock_retries: Option<u32>,
}

/// `policy.statement_lock_timeout`: seconds, or a word (`5s`, `500ms`, `off`).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawWait {
    Seconds(u64),
    Word(String),
}

/// `policy.compute_downs`: a boolean, or `all`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawComputeDowns {
    Flag(bool),
    Word(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    database_url: Option<String>,
    #[serde(default)]
    database_urls: Vec<String>,
    database_urls_command: Option<String>,
    require_tag: Option<String>,
    promote_from: Option<String>,
    confirm: Option<bool>,
    forward_only: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTool {
    project: Option<String>,
    #[serde(default)]
    environments: Option<yaml_serde::Mapping>,
    #[serde(default)]
    policy: RawPolicy,
    ledger_schema: Option<String>,
    prelude_sql: Option<String>,
    #[serde(default)]
    lint: Option<RawLint>,
}

/// `lint:` (issue 16).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLint {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    rules: BTreeMap<String, String>,
    #[serde(default)]
    pg_version: Option<yaml_serde::Value>,
}

impl RawLint {
    /// The configuration, or what is wrong with it.
    fn parse(self) -> Result<crate::lint::LintConfig, String> {
        let mut rules = BTreeMap::new();
        for (id, severity) in self.rules {
            if crate::lint::rule_id(&id).is_none() {
                return Err(format!(
                    "lint.rules names {id:?}, which is not a rule (squawk's rules, down-drops-data, up-drops-tracked; see docs/lint.md)"
                ));
            }
            let Some(s) = crate::lint::Severity::parse(&severity) else {
                return Err(format!(
                    "lint.rules.{id} is {severity:?}; it must be error, warning or off"
                ));
            };
            rules.insert(id, s);
        }
        let pg_version = match self.pg_version {
            None => None,
            Some(yaml_serde::Value::Number(n)) => Some(n.to_string()),
            Some(yaml_serde::Value::String(s)) => Some(s),
            Some(_) => return Err("lint.pg_version must be a version such as 15 or 13.4".into()),
        };
        if let Some(v) = &pg_version {
            if !v
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!(
                    "lint.pg_version is {v:?}; it must be a version such as 15 or 13.4"
                ));
            }
        }
        Ok(crate::lint::LintConfig {
            enabled: self.enabled.unwrap_or(true),
            rules,
            pg_version,
        })
    }
}

/// Problems with `git-migrate.yaml`.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ToolConfigError {
    /// File.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ToolConfig {
    /// Parses `git-migrate.yaml` text.
    pub fn parse(text: &str, path: &str) -> Result<ToolConfig, ToolConfigError> {
        let err = |message: String| ToolConfigError {
            path: path.to_string(),
            message,
        };
        let raw: RawTool = if text.trim().is_empty() {
            RawTool::default()
        } else {
            yaml_serde::from_str(text).map_err(|e| {
                err(match e.location() {
                    Some(l) => format!("line {} column {}: {e}", l.line(), l.column()),
                    None => e.to_string(),
                })
            })?
        };
        let mut environments = Vec::new();
        for (key, value) in raw.environments.unwrap_or_default() {
            let Some(name) = key.as_str().map(str::to_string) else {
                return Err(err(format!(
                    "environments: every key must be a name, found {key:?}"
                )));
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(err(format!(
                    "environments: {name:?} is not a usable environment name (letters, digits, _ - .)"
                )));
            }
            let e: RawEnvironment = if value.is_null() {
                RawEnvironment::default()
            } else {
                yaml_serde::from_value(value)
                    .map_err(|e| err(format!("environments.{name}: {e}")))?
            };
            if let Some(u) = &e.database_url {
                // Syntax only; the variables are read when the environment is used.
                if let Err(ExpandError::Syntax(m)) = expand_vars(u, &|_| Some("x".into())) {
                    return Err(err(format!("environments.{name}.database_url: {m}")));
                }
            }
            for (i, u) in e.database_urls.iter().enumerate() {
                if let Err(ExpandError::Syntax(m)) = expand_vars(u, &|_| Some("x".into())) {
                    return Err(err(format!("environments.{name}.database_urls[{i}]: {m}")));
                }
            }
            let given = [
                e.database_url.is_some(),
                !e.database_urls.is_empty(),
                e.database_urls_command.is_some(),
            ];
            if given.iter().filter(|g| **g).count() > 1 {
                return Err(err(format!(
                    "environments.{name}: give one of database_url, database_urls and database_urls_command"
                )));
            }
            if e.database_urls_command
                .as_deref()
                .is_some_and(|c| c.trim().is_empty())
            {
                return Err(err(format!(
                    "environments.{name}.database_urls_command is empty; remove it or give a command that prints one URL per line"
                )));
            }
            if e.require_tag.as_deref().is_some_and(str::is_empty) {
                return Err(err(format!(
                    "environments.{name}.require_tag is empty; remove it or give a glob such as \"v*\""
                )));
            }
            environments.push(Environment {
                confirm: e.confirm.unwrap_or(e.require_tag.is_some()),
                name,
                database_url: e.database_url,
                database_urls: e.database_urls,
                database_urls_command: e.database_urls_command,
                require_tag: e.require_tag,
                promote_from: e.promote_from,
                forward_only: e.forward_only.unwrap_or(false),
            });
        }
        for e in &environments {
            if let Some(from) = &e.promote_from {
                if from == &e.name {
                    return Err(err(format!(
                        "environments.{}.promote_from names the environment itself",
                        e.name
                    )));
                }
                if !environments.iter().any(|o| &o.name == from) {
                    return Err(err(format!(
                        "environments.{}.promote_from is {from:?}, which is not an environment here",
                        e.name
                    )));
                }
            }
        }
        let out_of_order = match raw.policy.out_of_order.as_deref() {
            None | Some("merge-aware") => OutOfOrderPolicy::MergeAware,
            Some("error") => OutOfOrderPolicy::Error,
            Some("allow") => OutOfOrderPolicy::Allow,
            Some(other) => {
                return Err(err(format!(
                    "policy.out_of_order must be merge-aware, error or allow, not {other:?}"
                )))
            }
        };
        let compute_downs = match raw.policy.compute_downs {
            None | Some(RawComputeDowns::Flag(false)) => ComputeDowns::Off,
            Some(RawComputeDowns::Flag(true)) => ComputeDowns::Gaps,
            Some(RawComputeDowns::Word(w)) if w == "all" => ComputeDowns::All,
            Some(RawComputeDowns::Word(w)) => {
                return Err(err(format!(
                    "policy.compute_downs must be true, false or all, not {w:?}"
                )))
            }
        };
        let statement_lock_timeout = match raw.policy.statement_lock_timeout {
            None => Some(STATEMENT_LOCK_TIMEOUT),
            Some(RawWait::Seconds(n)) => (n > 0).then(|| std::time::Duration::from_secs(n)),
            Some(RawWait::Word(w)) => {
                parse_wait(&w).map_err(|m| err(format!("policy.statement_lock_timeout: {m}")))?
            }
        };
        let ledger_schema = raw.ledger_schema.unwrap_or_else(|| "git_migrate".into());
        if ledger_schema.is_empty()
            || !ledger_schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(err(format!(
                "ledger_schema must be a plain identifier, not {ledger_schema:?}"
            )));
        }
        let project = match raw.project {
            Some(p) => Some(relative_dir(&p).ok_or_else(|| {
                err(format!(
                    "project is {p:?}; it must be a folder inside the repository (relative, no ..)"
                ))
            })?),
            None => None,
        };
        Ok(ToolConfig {
            project,
            ledger_schema,
            out_of_order,
            prelude_sql: raw.prelude_sql,
            require_down: raw.policy.require_down.unwrap_or(true),
            accept_edited: raw.policy.accept_edited.unwrap_or(false),
            compute_downs,
            capture_downs: raw.policy.capture_downs.unwrap_or(CAPTURE_DOWNS),
            lint: raw.lint.unwrap_or_default().parse().map_err(err)?,
            statement_lock_timeout,
            lock_retries: raw.policy.lock_retries.unwrap_or(LOCK_RETRIES),
            environments,
            origin: Some(path.to_string()),
        })
    }

    /// The environment called `name`.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// Loads from an explicit file, else `git-migrate.yaml` at the work tree root, else from
    /// `HEAD` in a bare repository; defaults when absent.
    pub fn load(
        repo: &git2::Repository,
        explicit: Option<&std::path::Path>,
    ) -> Result<ToolConfig, ToolConfigError> {
        if let Some(p) = explicit {
            let text = std::fs::read_to_string(p).map_err(|e| ToolConfigError {
                path: p.display().to_string(),
                message: e.to_string(),
            })?;
            return ToolConfig::parse(&text, &p.display().to_string());
        }
        let g = repo;
        if let Some(wd) = g.workdir() {
            let p = wd.join("git-migrate.yaml");
            return match std::fs::read_to_string(&p) {
                Ok(text) => ToolConfig::parse(&text, &p.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ToolConfig::default()),
                Err(e) => Err(ToolConfigError {
                    path: p.display().to_string(),
                    message: e.to_string(),
                }),
            };
        }
        let blob = g
            .head()
            .ok()
            .and_then(|h| h.peel_to_tree().ok())
            .and_then(|t| t.get_name("git-migrate.yaml").map(|e| e.id()))
            .and_then(|id| g.find_blob(id).ok());
        match blob {
            Some(b) => ToolConfig::parse(
                &String::from_utf8_lossy(b.content()),
                "git-migrate.yaml @ HEAD",
            ),
            None => Ok(ToolConfig::default()),
        }
    }
}

#[cfg(test)]
mod tool_tests {
    use super::*;

    #[test]
    fn tool_config() {
        let c = ToolConfig::parse(
            "project: hasura/\npolicy:\n  out_of_order: error\n  require_down: true\nenvironments:\n  staging:\n    database_url: ${X}\n",
            "git-migrate.yaml",
        )
        .unwrap();
        assert_eq!(c.project.as_deref(), Some("hasura"));
        assert_eq!(c.out_of_order, OutOfOrderPolicy::Error);
        assert_eq!(c.compute_downs, ComputeDowns::Off);
        for (text, want) in [
            ("true", ComputeDowns::Gaps),
            ("all", ComputeDowns::All),
            ("false", ComputeDowns::Off),
        ] {
            let c = ToolConfig::parse(&format!("policy:\n  compute_downs: {text}\n"), "g.yaml")
                .unwrap();
            assert_eq!(c.compute_downs, want, "{text}");
        }
        let e = ToolConfig::parse("policy:\n  compute_downs: some\n", "g.yaml").unwrap_err();
        assert!(e.to_string().contains("true, false or all"), "{e}");
        let e = ToolConfig::parse("policy:\n  out_of_order: sometimes\n", "g.yaml").unwrap_err();
        assert!(e.to_string().contains("sometimes"));
        let e = ToolConfig::parse("projcet: x\n", "g.yaml").unwrap_err();
        assert!(e.to_string().contains("projcet"), "{e}");
        assert!(ToolConfig::parse("ledger_schema: \"a;b\"\n", "g").is_err());
    }

    #[test]
    fn lock_timeout_and_retries() {
        use std::time::Duration;
        let c = ToolConfig::parse("", "g.yaml").unwrap();
        assert_eq!(c.statement_lock_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.lock_retries, 3);
        for (text, want) in [
            ("2", Some(Duration::from_secs(2))),
            ("0", None),
            ("off", None),
            ("250ms", Some(Duration::from_millis(250))),
            ("\"10s\"", Some(Duration::from_secs(10))),
            ("1min", Some(Duration::from_secs(60))),
        ] {
            let c = ToolConfig::parse(
                &format!("policy:\n  statement_lock_timeout: {text}\n  lock_retries: 0\n"),
                "g.yaml",
            )
            .unwrap();
            assert_eq!(c.statement_lock_timeout, want, "{text}");
            assert_eq!(c.lock_retries, 0);
        }
        let e =
            ToolConfig::parse("policy:\n  statement_lock_timeout: soon\n", "g.yaml").unwrap_err();
        assert!(
            e.to_string().contains("policy.statement_lock_timeout"),
            "{e}"
        );
        assert!(parse_wait("5h").is_err());
        assert!(parse_wait("-1").is_err());
    }

    #[test]
    fn environments() {
        let c = ToolConfig::parse(
            "environments:\n  staging:\n    database_url: ${STAGING_URL}\n  production:\n    database_url: postgresql://app:${PW}@db/prod\n    require_tag: \"v*\"\n    promote_from: staging\n",
            "git-migrate.yaml",
        )
        .unwrap();
        assert_eq!(c.environments.len(), 2);
        let prod = c.environment("production").unwrap();
        assert_eq!(prod.promote_from.as_deref(), Some("staging"));
        assert!(prod.confirm, "require_tag implies confirmation");
        assert!(!c.environment("staging").unwrap().confirm);
        assert!(!prod.forward_only, "forward_only defaults to false");
        let f = ToolConfig::parse("environments:\n  p:\n    forward_only: true\n", "g").unwrap();
        assert!(f.environment("p").unwrap().forward_only);
        assert!(prod.accepts_tag("v1.4.0") && !prod.accepts_tag("release-1"));
        assert!(c.environment("staging").unwrap().accepts_tag("anything"));
        assert!(!prod.is_fleet());
        let f = ToolConfig::parse(
            "environments:\n  tenants:\n    database_urls:\n      - postgresql://h/t1\n      - ${T2}\n  regions:\n    database_urls_command: ./list-regions\n",
            "g",
        )
        .unwrap();
        let tenants = f.environment("tenants").unwrap();
        assert!(tenants.is_fleet() && f.environment("regions").unwrap().is_fleet());
        assert_eq!(tenants.database_urls, ["postgresql://h/t1", "${T2}"]);
        let get = |k: &str| (k == "PW").then(|| "pw".to_string());
        assert_eq!(
            prod.expanded_url(get).unwrap().as_deref(),
            Some("postgresql://app:pw@db/prod")
        );
        assert_eq!(
            c.environment("staging").unwrap().expanded_url(|_| None),
            Err(ExpandError::Missing("STAGING_URL".into()))
        );
        for bad in [
            "environments:\n  p:\n    promote_from: q\n",
            "environments:\n  p:\n    promote_from: p\n",
            "environments:\n  p:\n    database_url: ${X\n",
            "environments:\n  p:\n    databse_url: x\n",
            "environments:\n  p:\n    require_tag: \"\"\n",
            "environments:\n  \"a b\":\n    database_url: x\n",
            "environments:\n  p:\n    database_url: x\n    database_urls: [y]\n",
            "environments:\n  p:\n    database_urls: [\"${Y\"]\n",
            "environments:\n  p:\n    database_urls_command: \" \"\n",
        ] {
            let e = ToolConfig::parse(bad, "g.yaml").unwrap_err();
            assert!(e.to_string().contains("environments"), "{bad}: {e}");
        }
    }

    #[test]
    fn expansion() {
        let get = |k: &str| match k {
            "A" => Some("1".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand_vars("x${A}y", &get).unwrap(), "x1y");
        assert_eq!(expand_vars("$$A $A ${B:-d}", &get).unwrap(), "$A $A d");
        assert_eq!(
            expand_vars("${EMPTY}", &get),
            Err(ExpandError::Missing("EMPTY".into()))
        );
        assert!(matches!(
            expand_vars("${1X}", &get),
            Err(ExpandError::Syntax(_))
        ));
        assert!(matches!(
            expand_vars("${A", &get),
            Err(ExpandError::Syntax(_))
        ));
    }

    #[test]
    fn globs() {
        for (g, t, m) in [
            ("v*", "v1.4.0", true),
            ("v*", "1.4.0", false),
            ("v?.*", "v1.4", true),
            ("v?.*", "v10.4", false),
            ("release-[0-9]*", "release-2", true),
            ("release-[!0-9]*", "release-2", false),
            ("*", "", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("[", "[", true),
            ("v1.*.0", "v1.4.0", true),
        ] {
            assert_eq!(glob_match(g, t), m, "{g} ~ {t}");
        }
    }
}
