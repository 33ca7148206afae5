//! Hasura's `config.yaml` (read at the target revision) and the tool's own `git-migrate.yaml`
//! (read from the working tree or flags). Parsing is pure; callers hand in bytes.

use serde::Deserialize;

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
pub fn relative_dir(value: &str) -> Option<String> {
    if value.starts_with('/') || value.starts_with('\\') {
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
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig {
                version: None,
                metadata_directory: None,
                migrations_directory: None,
                seeds_directory: None,
            }
        } else {
            yaml_serde::from_str(text).map_err(syntax)?
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
        })
    }

    /// The migrations folder of the `default` database, relative to the project folder.
    /// Config v3 keeps one folder per database (`migrations/default/`).
    pub fn migrations_directory_for_default(&self) -> String {
        self.migrations_directory_for("default")
    }

    /// The migrations folder of database `name` (config v3: `migrations/<name>/`; config v2
    /// projects have one database and one folder).
    pub fn migrations_directory_for(&self, name: &str) -> String {
        if self.version >= 3 {
            format!("{}/{name}", self.migrations_directory)
        } else {
            self.migrations_directory.clone()
        }
    }
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
        for bad in ["/etc", "../x", "a/../../b"] {
            let text = format!("version: 2\nmigrations_directory: {bad}\n");
            let e = HasuraConfig::parse(text.as_bytes(), "config.yaml", "HEAD").unwrap_err();
            assert!(e.to_string().contains("migrations_directory"), "{e}");
        }
        assert_eq!(
            relative_dir("./db/migrations/").as_deref(),
            Some("db/migrations")
        );
        let e = HasuraConfig::parse(b"version: 7\n", "config.yaml", "HEAD").unwrap_err();
        assert!(e.to_string().contains("unsupported config version 7"));
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
    pub out_of_order: crate::plan::OutOfOrderPolicy,
    /// SQL run before the first migration of a fresh database.
    pub prelude_sql: Option<String>,
    /// Where it was read from, if anywhere.
    pub origin: Option<String>,
}

impl Default for ToolConfig {
    fn default() -> Self {
        ToolConfig {
            project: None,
            ledger_schema: "git_migrate".into(),
            out_of_order: Default::default(),
            prelude_sql: None,
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
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTool {
    project: Option<String>,
    #[serde(default)]
    environments: Option<yaml_serde::Value>,
    #[serde(default)]
    policy: RawPolicy,
    ledger_schema: Option<String>,
    prelude_sql: Option<String>,
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
        let _ = (raw.environments, raw.policy.require_down);
        let out_of_order = match raw.policy.out_of_order.as_deref() {
            None | Some("merge-aware") => crate::plan::OutOfOrderPolicy::MergeAware,
            Some("error") => crate::plan::OutOfOrderPolicy::Error,
            Some("allow") => crate::plan::OutOfOrderPolicy::Allow,
            Some(other) => {
                return Err(err(format!(
                    "policy.out_of_order must be merge-aware, error or allow, not {other:?}"
                )))
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
            origin: Some(path.to_string()),
        })
    }

    /// Loads from an explicit file, else `git-migrate.yaml` at the work tree root, else from
    /// `HEAD` in a bare repository; defaults when absent.
    pub fn load(
        repo: &crate::source::Repo,
        explicit: Option<&std::path::Path>,
    ) -> Result<ToolConfig, ToolConfigError> {
        if let Some(p) = explicit {
            let text = std::fs::read_to_string(p).map_err(|e| ToolConfigError {
                path: p.display().to_string(),
                message: e.to_string(),
            })?;
            return ToolConfig::parse(&text, &p.display().to_string());
        }
        let g = repo.git();
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
        assert_eq!(c.out_of_order, crate::plan::OutOfOrderPolicy::Error);
        let e = ToolConfig::parse("policy:\n  out_of_order: sometimes\n", "g.yaml").unwrap_err();
        assert!(e.to_string().contains("sometimes"));
        let e = ToolConfig::parse("projcet: x\n", "g.yaml").unwrap_err();
        assert!(e.to_string().contains("projcet"), "{e}");
        assert!(ToolConfig::parse("ledger_schema: \"a;b\"\n", "g").is_err());
    }
}
