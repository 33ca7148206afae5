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
        if let Some(t) = template.filter(|t| t.starts_with(super::template::TEMPLATE_PREFIX)) {
            self.mark_used(t);
        }
        Ok(name)
    }

    fn connect(&mut self, name: &str) -> Result<postgres::Client, String> {
        if name.starts_with(super::template::TEMPLATE_PREFIX) {
            self.mark_used(name);
        }
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

    fn kept_templates(&mut self) -> Result<Vec<String>, String> {
        let sql = format!(
            "SELECT datname FROM pg_database WHERE starts_with(datname, {}) ORDER BY oid DESC",
            quote_literal(super::template::TEMPLATE_PREFIX)
        );
        let rows = self.client.simple_query(&sql).map_err(|e| {
            format!(
                "cannot list the kept templates on {}: {}",
                self.admin.redacted(),
                crate::db::describe_pg_error(&e)
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect())
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
        self.mark_used(name);
        self.prune_templates(name);
        Ok(true)
    }
}

/// How many kept templates a server holds; the least recently used beyond this are dropped,
/// unless they were used in the last [`RECENT_SECONDS`] (another run may be about to copy
/// them).
pub const KEPT_TEMPLATES: usize = 8;

/// See [`KEPT_TEMPLATES`].
pub const RECENT_SECONDS: u64 = 600;

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ScratchDbs<'_> {
    /// Records when a kept template was last used, in its comment (best effort).
    fn mark_used(&mut self, template: &str) {
        let _ = self.client.batch_execute(&format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(template),
            quote_literal(&format!(
                "git-migrate template, last used {}",
                now_seconds()
            ))
        ));
    }

    /// Drops the least recently used kept templates beyond [`KEPT_TEMPLATES`] that were not
    /// used in the last [`RECENT_SECONDS`] (never `keep`). Best effort: a template that cannot
    /// be dropped now is dropped by a later run.
    fn prune_templates(&mut self, keep: &str) {
        let sql = format!(
            "SELECT datname, used FROM (SELECT datname, oid, coalesce(substring(shobj_description(oid, 'pg_database') \
             FROM 'last used ([0-9]+)$'), '0')::bigint AS used FROM pg_database WHERE starts_with(datname, {})) t \
             ORDER BY used DESC, oid DESC",
            quote_literal(super::template::TEMPLATE_PREFIX)
        );
        let Ok(rows) = self.client.simple_query(&sql) else {
            return;
        };
        let used: Vec<(String, u64)> = rows
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some((
                    r.get(0)?.to_string(),
                    r.get(1).and_then(|t| t.parse().ok()).unwrap_or(0),
                )),
                _ => None,
            })
            .filter(|(n, _)| n != keep)
            .collect();
        let recent = now_seconds().saturating_sub(RECENT_SECONDS);
        for (old, last) in used.iter().skip(KEPT_TEMPLATES.saturating_sub(1)) {
            if *last >= recent {
                continue;
            }
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
