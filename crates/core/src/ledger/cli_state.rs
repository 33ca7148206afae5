//! Hasura's own migration state, read for adoption and kept in step with every deployment
//! (design §5.2; hasura-cli.md §3).
//!
//! The Hasura CLI records which versions are applied in one of two stores:
//!
//! * config v1/v2: the table `hdb_catalog.schema_migrations (version bigint primary key, dirty
//!   boolean not null)` in the user database; one row per applied version;
//! * config v3: the jsonb column `hdb_catalog.hdb_version.cli_state` in the metadata database,
//!   `{"migrations": {"<database>": {"<version>": <dirty>}}, "settings": {…}, …}`, where the
//!   value is the *dirty* flag: `false` means applied and clean, `true` means a migration
//!   started and did not finish.
//!
//! Every git-migrate transaction that applies or reverts migrations updates each store that
//! exists, with the same statement that writes the ledger ([`sync_ctes`]): schema_migrations
//! gets an upsert per applied version and a delete per reverted one; cli_state gets the one key
//! path `migrations.<database>` rewritten as *its current value* minus the reverted keys plus
//! the applied keys set to `false`. That is a single `UPDATE … SET cli_state = f(cli_state)` on
//! the one `hdb_version` row: it takes the row lock, and under READ COMMITTED PostgreSQL
//! re-evaluates `f` on the newest committed version of the row if another transaction changed
//! it meanwhile (the same guarantee as `SELECT … FOR UPDATE` followed by the write), so
//! concurrent writers never lose each other's keys. Hasura's `set_catalog_state` replaces the
//! whole document from a copy it read earlier; it can lose our update, we cannot lose its.
//!
//! Adoption reads the stores and writes the ledger from what it read, so it first locks them
//! explicitly ([`lock_stores`]: `SELECT … FOR UPDATE` on the hdb_version row, `SHARE ROW
//! EXCLUSIVE` on schema_migrations) and reads them again under those locks.

use crate::project::Version;
use postgres::GenericClient;
use std::collections::BTreeMap;

/// The database name a project's migrations belong to (config v2 projects, and config v3's
/// `migrations/default/`): the key under `cli_state.migrations`.
pub(crate) const DEFAULT_DATABASE: &str = "default";

/// Which of Hasura's state stores exist in this database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HasuraStores {
    /// `hdb_catalog.schema_migrations` exists.
    pub schema_migrations: bool,
    /// `hdb_catalog.hdb_version` exists with a jsonb `cli_state` column.
    pub cli_state: bool,
}

/// One of Hasura's state stores.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "store", rename_all = "snake_case")]
pub enum StateStore {
    /// `hdb_catalog.schema_migrations` (config v1/v2).
    SchemaMigrations,
    /// `hdb_catalog.hdb_version.cli_state -> 'migrations' -> database` (config v3).
    CliState {
        /// The database name (key under `migrations`).
        database: String,
    },
}

impl std::fmt::Display for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateStore::SchemaMigrations => write!(f, "hdb_catalog.schema_migrations"),
            StateStore::CliState { database } => {
                write!(
                    f,
                    "hdb_catalog.hdb_version.cli_state (database {database:?})"
                )
            }
        }
    }
}

/// Hasura's migration state as read from the database: version → dirty flag, per store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HasuraState {
    /// Rows of `hdb_catalog.schema_migrations`; `None` when the table does not exist.
    pub schema_migrations: Option<BTreeMap<Version, bool>>,
    /// `cli_state -> 'migrations'`, per database; `None` when the column does not exist.
    pub cli_state: Option<BTreeMap<String, BTreeMap<Version, bool>>>,
}

impl HasuraState {
    /// The versions (with dirty flags) one store lists for `database` (`None`: store absent).
    pub fn store(&self, store: &StateStore) -> Option<&BTreeMap<Version, bool>> {
        static EMPTY: BTreeMap<Version, bool> = BTreeMap::new();
        match store {
            StateStore::SchemaMigrations => self.schema_migrations.as_ref(),
            StateStore::CliState { database } => self
                .cli_state
                .as_ref()
                .map(|dbs| dbs.get(database).unwrap_or(&EMPTY)),
        }
    }

    /// Whether any store lists a version for `database`.
    pub(crate) fn lists_versions(&self, database: &str) -> bool {
        self.schema_migrations
            .as_ref()
            .is_some_and(|m| !m.is_empty())
            || self
                .cli_state
                .as_ref()
                .and_then(|dbs| dbs.get(database))
                .is_some_and(|m| !m.is_empty())
    }

    /// How many distinct versions the stores list for `database`.
    pub(crate) fn version_count(&self, database: &str) -> usize {
        let mut all: std::collections::BTreeSet<Version> = Default::default();
        if let Some(m) = &self.schema_migrations {
            all.extend(m.keys());
        }
        if let Some(m) = self.cli_state.as_ref().and_then(|dbs| dbs.get(database)) {
            all.extend(m.keys());
        }
        all.len()
    }

    /// The store the Hasura CLI of a config `config_version` project reads, with its
    /// versions; the other store when that one lists nothing for `database` (what the CLI's
    /// own automatic state copy does when moving to config v3). `None` when neither lists a
    /// version.
    pub fn choose(
        &self,
        config_version: u8,
        database: &str,
    ) -> Option<(StateStore, &BTreeMap<Version, bool>)> {
        let sm = StateStore::SchemaMigrations;
        let cs = StateStore::CliState {
            database: database.to_string(),
        };
        let order = if config_version >= 3 {
            [cs, sm]
        } else {
            [sm, cs]
        };
        order.into_iter().find_map(|s| {
            let m = self.store(&s)?;
            if m.is_empty() {
                None
            } else {
                Some((s, m))
            }
        })
    }
}

/// Parses `cli_state -> 'migrations'` (JSON text): database → version → dirty.
///
/// A value that is not a boolean counts as dirty (the CLI itself could not read it); a key
/// that is not a version is an error naming it.
pub(crate) fn parse_migrations(
    text: &str,
) -> Result<BTreeMap<String, BTreeMap<Version, bool>>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    let Some(dbs) = v.as_object() else {
        return Ok(out);
    };
    for (db, versions) in dbs {
        let mut m = BTreeMap::new();
        if let Some(versions) = versions.as_object() {
            for (k, dirty) in versions {
                let version: Version = k.trim().parse().map_err(|_| {
                    format!("migrations.{db} has the key {k:?}, which is not a migration version")
                })?;
                m.insert(version, dirty.as_bool().unwrap_or(true));
            }
        }
        out.insert(db.clone(), m);
    }
    Ok(out)
}

/// Data-modifying CTEs (each starting with `,\n`) that bring every existing Hasura store in
/// step: `applied` and `reverted` name `bigint[]` parameters (e.g. `$12`), `database` a `text`
/// parameter. Nothing is written when both arrays are empty. See the module documentation.
pub fn sync_ctes(stores: HasuraStores, applied: &str, reverted: &str, database: &str) -> String {
    let mut out = String::new();
    if stores.schema_migrations {
        out.push_str(&format!(
            ",
 hsm_del AS (DELETE FROM hdb_catalog.schema_migrations WHERE version = ANY({reverted}::bigint[])),
 hsm_ins AS (INSERT INTO hdb_catalog.schema_migrations (version, dirty)
          SELECT v, false FROM unnest({applied}::bigint[]) AS v
          ON CONFLICT (version) DO UPDATE SET dirty = false)"
        ));
    }
    if stores.cli_state {
        // cli_state is `{}` on a new server; `migrations` and `migrations.<db>` are created
        // when missing (jsonb_set creates only the last key of a path).
        out.push_str(&format!(
            ",
 hcs AS (UPDATE hdb_catalog.hdb_version AS hv SET cli_state = jsonb_set(
            jsonb_set(
              CASE WHEN jsonb_typeof(hv.cli_state) = 'object' THEN hv.cli_state ELSE '{{}}'::jsonb END,
              '{{migrations}}',
              CASE WHEN jsonb_typeof(hv.cli_state -> 'migrations') = 'object'
                   THEN hv.cli_state -> 'migrations' ELSE '{{}}'::jsonb END),
            ARRAY['migrations', {database}::text],
            (CASE WHEN jsonb_typeof(hv.cli_state -> 'migrations' -> {database}::text) = 'object'
                  THEN hv.cli_state -> 'migrations' -> {database}::text ELSE '{{}}'::jsonb END
               - ({reverted}::bigint[])::text[])
            || coalesce((SELECT jsonb_object_agg(v::text, false) FROM unnest({applied}::bigint[]) AS v),
                        '{{}}'::jsonb))
        WHERE cardinality({applied}::bigint[]) + cardinality({reverted}::bigint[]) > 0)"
        ));
    }
    out
}

/// Locks Hasura's state stores against concurrent writers until the caller's transaction ends:
/// `SELECT … FOR UPDATE` on the hdb_version row and `SHARE ROW EXCLUSIVE` on
/// schema_migrations (blocks the CLI's inserts and deletes, not readers). One round trip.
pub fn lock_stores(
    c: &mut impl GenericClient,
    stores: HasuraStores,
) -> Result<(), postgres::Error> {
    let mut sql = String::new();
    if stores.schema_migrations {
        sql.push_str("LOCK TABLE hdb_catalog.schema_migrations IN SHARE ROW EXCLUSIVE MODE;\n");
    }
    if stores.cli_state {
        sql.push_str("SELECT 1 FROM hdb_catalog.hdb_version FOR UPDATE;\n");
    }
    if sql.is_empty() {
        return Ok(());
    }
    c.batch_execute(&sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_state_migrations() {
        let m = parse_migrations(
            r#"{"default": {"1700000000001": false, "1700000000002": true, "3": null}, "other": {}}"#,
        )
        .unwrap();
        assert_eq!(
            m["default"],
            BTreeMap::from([(1700000000001, false), (1700000000002, true), (3, true)])
        );
        assert!(m["other"].is_empty());
        assert!(parse_migrations("null").unwrap().is_empty());
        let e = parse_migrations(r#"{"default": {"abc": false}}"#).unwrap_err();
        assert!(e.contains("\"abc\""), "{e}");
    }

    #[test]
    fn chooses_the_store_of_the_config_version_then_the_other() {
        let both = HasuraState {
            schema_migrations: Some(BTreeMap::from([(1, false)])),
            cli_state: Some(BTreeMap::from([(
                "default".to_string(),
                BTreeMap::from([(2, false)]),
            )])),
        };
        let (s, m) = both.choose(2, "default").unwrap();
        assert_eq!(s, StateStore::SchemaMigrations);
        assert!(m.contains_key(&1));
        let (s, m) = both.choose(3, "default").unwrap();
        assert!(matches!(s, StateStore::CliState { .. }));
        assert!(m.contains_key(&2));
        // The v3 store lists nothing for that database: fall back to the table.
        let (s, _) = both.choose(3, "other").unwrap();
        assert_eq!(s, StateStore::SchemaMigrations);
        let only_v3 = HasuraState {
            schema_migrations: Some(BTreeMap::new()),
            ..both.clone()
        };
        assert!(matches!(
            only_v3.choose(2, "default").unwrap().0,
            StateStore::CliState { .. }
        ));
        assert!(only_v3.choose(2, "other").is_none());
        assert!(HasuraState::default().choose(3, "default").is_none());
        assert_eq!(both.version_count("default"), 2);
        assert!(both.lists_versions("other"));
        assert!(!only_v3.lists_versions("other"));
    }

    #[test]
    fn sync_writes_only_existing_stores() {
        let none = sync_ctes(HasuraStores::default(), "$1", "$2", "$3");
        assert!(none.is_empty());
        let sm = sync_ctes(
            HasuraStores {
                schema_migrations: true,
                cli_state: false,
            },
            "$1",
            "$2",
            "$3",
        );
        assert!(sm.contains("schema_migrations") && !sm.contains("hdb_version"));
        let cs = sync_ctes(
            HasuraStores {
                schema_migrations: false,
                cli_state: true,
            },
            "$1",
            "$2",
            "$3",
        );
        assert!(cs.contains("hdb_version") && !cs.contains("schema_migrations"));
        assert!(cs.contains("ARRAY['migrations', $3::text]"));
    }
}
