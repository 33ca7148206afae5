//! Where scratch databases come from: a server named by `--scratch-url`, or one throwaway
//! cluster ([`crate::scratch::Cluster`]) started on first use. The one implementation of
//! [`ScratchDatabases`], used by `verify`, `check --verify`, the replays of computed downs and
//! `--verify-target`.

use super::sequence::ScratchDatabases;
use crate::quote::{quote_ident, quote_literal};

/// Why no scratch database can be made.
#[derive(Debug, thiserror::Error)]
pub enum ScratchServerError {
    /// The throwaway cluster did not start (no server binaries, say).
    #[error("cannot start a scratch PostgreSQL server: {0}")]
    Start(#[source] crate::scratch::ScratchError),
    /// The server named by the URL refused the session that makes databases.
    #[error("cannot create a scratch database on {server}: {error}")]
    Connect {
        /// The server's URL, password redacted.
        server: String,
        /// Cause.
        #[source]
        error: crate::db::ConnectError,
    },
}

/// Where scratch databases come from, for one run: `--scratch-url`'s server, or one throwaway
/// cluster started on first use and shared by every database the run needs (design §12).
pub struct ScratchServer {
    url: Option<String>,
    cluster: Option<crate::scratch::Cluster>,
    made: usize,
}

/// The scratch databases of one verification, on one server. Each is dropped by
/// [`verify_sequence`] when it is done with it; whatever is left after an error is dropped here.
pub struct ScratchDbs<'s> {
    server: &'s mut ScratchServer,
    admin: crate::db::DbTarget,
    /// Session on the database the URL names, for CREATE and DROP DATABASE.
    client: postgres::Client,
    /// Made and not yet dropped.
    live: Vec<String>,
}

impl Drop for ScratchDbs<'_> {
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.live) {
            let _ = self.client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ));
        }
    }
}

impl ScratchDatabases for ScratchDbs<'_> {
    fn create(&mut self, template: Option<&str>) -> Result<String, String> {
        self.server.made += 1;
        let name = format!(
            "git_migrate_verify_{}_{}",
            std::process::id(),
            self.server.made
        );
        let mut sql = format!("CREATE DATABASE {}", quote_ident(&name));
        if let Some(t) = template {
            sql.push_str(&format!(" TEMPLATE {}", quote_ident(t)));
        }
        // A database of the same name can only be left from an earlier process with this pid.
        self.client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ))
            .and_then(|_| self.client.batch_execute(&sql))
            .map_err(|e| {
                format!(
                    "cannot create the scratch database {name} on {}: {}",
                    self.admin.redacted(),
                    crate::db::describe_pg_error(&e)
                )
            })?;
        self.live.push(name.clone());
        Ok(name)
    }

    fn connect(&mut self, name: &str) -> Result<postgres::Client, String> {
        self.admin
            .with_dbname(name)
            .connect()
            .map_err(|e| format!("cannot connect to the scratch database {name}: {e}"))
    }

    fn drop_database(&mut self, name: &str) -> Result<(), String> {
        self.client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .map_err(|e| {
                format!(
                    "cannot drop the scratch database {name} on {}: {}",
                    self.admin.redacted(),
                    crate::db::describe_pg_error(&e)
                )
            })?;
        self.live.retain(|n| n != name);
        Ok(())
    }

    fn find_template(&mut self, name: &str) -> Result<bool, String> {
        let sql = format!(
            "SELECT 1 FROM pg_database WHERE datname = {}",
            quote_literal(name)
        );
        let rows = self.client.simple_query(&sql).map_err(|e| {
            format!(
                "cannot look for the template {name} on {}: {}",
                self.admin.redacted(),
                crate::db::describe_pg_error(&e)
            )
        })?;
        Ok(rows
            .iter()
            .any(|m| matches!(m, postgres::SimpleQueryMessage::Row(_))))
    }

    fn keep_as_template(&mut self, made: &str, name: &str) -> Result<bool, String> {
        // A rename is atomic: when another run kept the same template first, it fails and
        // `made` stays ours.
        let renamed = self.client.batch_execute(&format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(made),
            quote_ident(name)
        ));
        if renamed.is_err() {
            return Ok(false);
        }
        self.live.retain(|n| n != made);
        // Nobody connects to a kept template (a session on it would stop every copy); copies
        // are made with CREATE DATABASE … TEMPLATE, which needs none.
        let locked = self.client.batch_execute(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            quote_ident(name)
        ));
        if let Err(e) = locked {
            let _ = self.client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ));
            return Err(format!(
                "cannot keep the template {name} on {}: {}",
                self.admin.redacted(),
                crate::db::describe_pg_error(&e)
            ));
        }
        self.prune_templates(name);
        Ok(true)
    }
}

/// How many kept templates a server holds; the oldest beyond this are dropped.
pub const KEPT_TEMPLATES: usize = 8;

impl ScratchDbs<'_> {
    /// Drops the oldest kept templates beyond [`KEPT_TEMPLATES`] (never `keep`). Best effort:
    /// a template that cannot be dropped now is dropped by a later run.
    fn prune_templates(&mut self, keep: &str) {
        let sql = format!(
            "SELECT datname FROM pg_database WHERE starts_with(datname, {}) ORDER BY oid DESC",
            quote_literal(super::template::TEMPLATE_PREFIX)
        );
        let Ok(rows) = self.client.simple_query(&sql) else {
            return;
        };
        let names: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .filter(|n| n != keep)
            .collect();
        for old in names.iter().skip(KEPT_TEMPLATES.saturating_sub(1)) {
            let _ = self.client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(old)
            ));
        }
    }
}

impl ScratchServer {
    /// Nothing is started until a database is needed.
    pub fn new(scratch_url: Option<&str>) -> ScratchServer {
        ScratchServer {
            url: scratch_url
                .filter(|u| !u.trim().is_empty())
                .map(str::to_string),
            cluster: None,
            made: 0,
        }
    }

    /// A session on the server (starting the throwaway cluster on first use) for making
    /// databases.
    pub fn databases(&mut self) -> Result<ScratchDbs<'_>, ScratchServerError> {
        let admin = match &self.url {
            Some(url) => {
                let admin = crate::db::DbTarget::from_url(url);
                if let Some(p) = admin.password() {
                    crate::db::secrets::register_secret(p);
                }
                admin
            }
            None => {
                if self.cluster.is_none() {
                    self.cluster =
                        Some(crate::scratch::Cluster::start().map_err(ScratchServerError::Start)?);
                }
                let cluster = self.cluster.as_ref().expect("started above");
                crate::db::DbTarget::from_url(&cluster.url("postgres"))
            }
        };
        let client = admin
            .connect()
            .map_err(|error| ScratchServerError::Connect {
                server: admin.redacted(),
                error,
            })?;
        Ok(ScratchDbs {
            server: self,
            admin,
            client,
            live: Vec::new(),
        })
    }
}
