//! No-transaction migrations in the ledger (design §7.3): deployments written in segments (a
//! `partial` deployment row, finished as `ok`), ledger rows marked `dirty` while a migration
//! runs outside a transaction, and `git migrate repair`.
//!
//! `dirty_direction` says what the dirty migration was doing: `up` (the row was inserted
//! before its up SQL ran) or `down` (the row is kept while its down SQL runs). Hasura's state
//! stores carry the same dirty flag (their value for a version *is* the dirty flag).

use super::cli_state::{sync_ctes, HasuraStores};
use super::{q, DeploymentRecord, Ledger, LedgerError, LedgerRow, SCHEMA_VERSION};
use crate::project::Version;
use postgres::types::Type;
use postgres::GenericClient;

/// What a dirty ledger row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DirtyDirection {
    /// An up migration started outside a transaction and did not finish.
    Up,
    /// A down migration started outside a transaction and did not finish.
    Down,
}

impl DirtyDirection {
    /// `up` / `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirtyDirection::Up => "up",
            DirtyDirection::Down => "down",
        }
    }
}

/// One ledger row as `repair` reads it (under the lock, `FOR UPDATE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairRow {
    /// Version.
    pub version: Version,
    /// Name.
    pub name: String,
    /// Dirty flag.
    pub dirty: bool,
    /// What the dirty migration was doing (`up` when the ledger does not say).
    pub direction: DirtyDirection,
    /// Recorded checksum of up.sql.
    pub up_sha256: Option<String>,
    /// Recorded blob id of up.sql.
    pub up_blob: Option<String>,
    /// Commit it was applied from.
    pub applied_commit: Option<String>,
}

/// CTEs (each starting with `,\n`) setting the dirty flag of version `version` (a bigint
/// parameter) to `dirty` (an SQL boolean literal) in every Hasura store that exists; the
/// version is added when missing.
fn hasura_dirty_ctes(stores: HasuraStores, version: &str, dirty: &str, database: &str) -> String {
    let mut out = String::new();
    if stores.schema_migrations {
        out.push_str(&format!(
            ",
 hd_sm AS (INSERT INTO hdb_catalog.schema_migrations (version, dirty) VALUES ({version}::bigint, {dirty})
           ON CONFLICT (version) DO UPDATE SET dirty = EXCLUDED.dirty)"
        ));
    }
    if stores.cli_state {
        out.push_str(&format!(
            ",
 hd_cs AS (UPDATE hdb_catalog.hdb_version AS hv SET cli_state = jsonb_set(
            jsonb_set(
              jsonb_set(
                CASE WHEN jsonb_typeof(hv.cli_state) = 'object' THEN hv.cli_state ELSE '{{}}'::jsonb END,
                '{{migrations}}',
                CASE WHEN jsonb_typeof(hv.cli_state -> 'migrations') = 'object'
                     THEN hv.cli_state -> 'migrations' ELSE '{{}}'::jsonb END),
              ARRAY['migrations', {database}::text],
              CASE WHEN jsonb_typeof(hv.cli_state -> 'migrations' -> {database}::text) = 'object'
                   THEN hv.cli_state -> 'migrations' -> {database}::text ELSE '{{}}'::jsonb END),
            ARRAY['migrations', {database}::text, ({version}::bigint)::text],
            to_jsonb({dirty})))"
        ));
    }
    out
}

impl Ledger {
    /// Brings a ledger of an older format up to [`SCHEMA_VERSION`] inside the caller's
    /// transaction (under the deploy lock). `found` is the version [`Ledger::read`] saw;
    /// nothing happens when it is current or the ledger does not exist.
    pub fn upgrade(
        &self,
        c: &mut impl GenericClient,
        found: Option<i32>,
    ) -> Result<(), LedgerError> {
        if found.is_some_and(|v| v >= SCHEMA_VERSION) {
            return Ok(());
        }
        // Format 1 → 2: `dirty_direction` for no-transaction migrations (`dirty` exists since
        // format 1; added here too for ledgers created by hand from older docs).
        // Format 2 → 3: the schema each deployment left (`schema_digest`, `schema_fingerprint`,
        // `catalog_digest`).
        // Format 3 → 4: the down computed when a migration without one was applied
        // (`computed_down`).
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {sv} (version int NOT NULL, installed_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE {m} ADD COLUMN IF NOT EXISTS dirty boolean NOT NULL DEFAULT false;
ALTER TABLE {m} ADD COLUMN IF NOT EXISTS dirty_direction text CHECK (dirty_direction IN ('up','down'));
ALTER TABLE {d} ADD COLUMN IF NOT EXISTS schema_digest text;
ALTER TABLE {d} ADD COLUMN IF NOT EXISTS schema_fingerprint jsonb;
ALTER TABLE {d} ADD COLUMN IF NOT EXISTS catalog_digest text;
ALTER TABLE {m} ADD COLUMN IF NOT EXISTS computed_down jsonb;
INSERT INTO {sv} (version) SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {sv} WHERE version >= {SCHEMA_VERSION});",
            m = self.t("migrations"),
            d = self.t("deployments"),
            sv = self.t("schema_version"),
        );
        c.batch_execute(&sql)
            .map_err(q("upgrading the ledger to the current format"))
    }

    /// Inserts the deployment row of a deployment that runs in segments, with status
    /// `partial` (finished by [`Ledger::finish_partial`]). Returns its id.
    pub(crate) fn start_partial(
        &self,
        c: &mut impl GenericClient,
        rec: &DeploymentRecord,
    ) -> Result<i64, LedgerError> {
        let sql = format!(
            "INSERT INTO {d} (started_at, actor, tool_version, kind, target_ref, from_commit, to_commit,
                     worktree_dirty, reverted, applied, status, plan)
             VALUES (now(), $1, $2, $3, $4, $5, $6, $7, $8, $9, 'partial', $10::jsonb)
             RETURNING id",
            d = self.t("deployments")
        );
        let plan = rec.plan.to_string();
        let rows = c
            .query_typed(
                &sql,
                &[
                    (&rec.actor, Type::TEXT),
                    (&env!("CARGO_PKG_VERSION"), Type::TEXT),
                    (&rec.kind, Type::TEXT),
                    (&rec.target_ref, Type::TEXT),
                    (&rec.from_commit, Type::TEXT),
                    (&rec.to_commit, Type::TEXT),
                    (&rec.dirty, Type::BOOL),
                    (&rec.reverted, Type::INT8_ARRAY),
                    (&rec.applied, Type::INT8_ARRAY),
                    (&plan, Type::TEXT),
                ],
            )
            .map_err(q("recording the start of the deployment"))?;
        Ok(rows.first().map(|r| r.get(0)).unwrap_or_default())
    }

    /// Writes the ledger rows of one transactional segment: deletes `reverted`, inserts `rows`
    /// (belonging to deployment `deployment_id`, applied from `applied_commit`), and keeps
    /// Hasura's stores in step. One statement.
    pub(crate) fn record_segment(
        &self,
        c: &mut impl GenericClient,
        deployment_id: i64,
        applied_commit: Option<&str>,
        reverted: &[Version],
        rows: &[LedgerRow],
        hasura: HasuraStores,
    ) -> Result<(), LedgerError> {
        if reverted.is_empty() && rows.is_empty() {
            return Ok(());
        }
        let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let up_sha: Vec<&str> = rows.iter().map(|r| r.up_sha256.as_str()).collect();
        let up_blob: Vec<Option<&str>> = rows.iter().map(|r| r.up_blob.as_deref()).collect();
        let down_sha: Vec<Option<&str>> = rows.iter().map(|r| r.down_sha256.as_deref()).collect();
        let down_sql: Vec<Option<&str>> = rows.iter().map(|r| r.down_sql.as_deref()).collect();
        let down_blob: Vec<Option<&str>> = rows.iter().map(|r| r.down_blob.as_deref()).collect();
        let folder_tree: Vec<Option<&str>> =
            rows.iter().map(|r| r.folder_tree.as_deref()).collect();
        let sql = format!(
            "WITH del AS (DELETE FROM {m} WHERE version = ANY($1)),
 ins AS (INSERT INTO {m} (version, name, up_sha256, up_blob, down_sha256, down_sql, down_blob, folder_tree, applied_commit, deployment_id)
         SELECT u.v, u.n, u.us, u.ub, u.ds, u.dq, u.db, u.ft, $3, $4
         FROM unnest($2::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
              AS u(v, n, us, ub, ds, dq, db, ft)){hasura}
SELECT 1",
            m = self.t("migrations"),
            hasura = sync_ctes(hasura, "$2", "$1", "$12"),
        );
        c.query_typed(
            &sql,
            &[
                (&reverted, Type::INT8_ARRAY),
                (&versions, Type::INT8_ARRAY),
                (&applied_commit, Type::TEXT),
                (&deployment_id, Type::INT8),
                (&names, Type::TEXT_ARRAY),
                (&up_sha, Type::TEXT_ARRAY),
                (&up_blob, Type::TEXT_ARRAY),
                (&down_sha, Type::TEXT_ARRAY),
                (&down_sql, Type::TEXT_ARRAY),
                (&down_blob, Type::TEXT_ARRAY),
                (&folder_tree, Type::TEXT_ARRAY),
                (&self.database, Type::TEXT),
            ],
        )
        .map_err(q("recording the migrations in the ledger"))?;
        Ok(())
    }

    /// Before an up migration runs outside a transaction: inserts its row marked dirty
    /// (direction `up`), and marks it dirty in Hasura's stores. One statement (it commits by
    /// itself when run outside a transaction).
    pub(crate) fn mark_dirty_up(
        &self,
        c: &mut impl GenericClient,
        deployment_id: i64,
        applied_commit: Option<&str>,
        row: &LedgerRow,
        hasura: HasuraStores,
    ) -> Result<(), LedgerError> {
        let sql = format!(
            "WITH ins AS (INSERT INTO {m} (version, name, up_sha256, up_blob, down_sha256, down_sql, down_blob,
                          folder_tree, applied_commit, deployment_id, dirty, dirty_direction)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true, 'up')){hasura}
SELECT 1",
            m = self.t("migrations"),
            hasura = hasura_dirty_ctes(hasura, "$1", "true", "$11"),
        );
        c.query_typed(
            &sql,
            &[
                (&row.version, Type::INT8),
                (&row.name, Type::TEXT),
                (&row.up_sha256, Type::TEXT),
                (&row.up_blob, Type::TEXT),
                (&row.down_sha256, Type::TEXT),
                (&row.down_sql, Type::TEXT),
                (&row.down_blob, Type::TEXT),
                (&row.folder_tree, Type::TEXT),
                (&applied_commit, Type::TEXT),
                (&deployment_id, Type::INT8),
                (&self.database, Type::TEXT),
            ],
        )
        .map_err(q("marking the migration dirty in the ledger"))?;
        Ok(())
    }

    /// Before a down migration runs outside a transaction: marks its row dirty (direction
    /// `down`), in Hasura's stores too. One statement.
    pub(crate) fn mark_dirty_down(
        &self,
        c: &mut impl GenericClient,
        version: Version,
        hasura: HasuraStores,
    ) -> Result<(), LedgerError> {
        let sql = format!(
            "WITH up AS (UPDATE {m} SET dirty = true, dirty_direction = 'down' WHERE version = $1){hasura}
SELECT 1",
            m = self.t("migrations"),
            hasura = hasura_dirty_ctes(hasura, "$1", "true", "$2"),
        );
        c.query_typed(
            &sql,
            &[(&version, Type::INT8), (&self.database, Type::TEXT)],
        )
        .map_err(q("marking the migration dirty in the ledger"))?;
        Ok(())
    }

    /// Settles a dirty row: `applied` keeps it, clean (the migration is applied), otherwise it
    /// is deleted (the migration is not applied); Hasura's stores follow. One statement.
    pub fn settle(
        &self,
        c: &mut impl GenericClient,
        version: Version,
        applied: bool,
        hasura: HasuraStores,
    ) -> Result<(), LedgerError> {
        let none: Vec<i64> = vec![];
        let one = vec![version];
        let sql = if applied {
            format!(
                "WITH up AS (UPDATE {m} SET dirty = false, dirty_direction = NULL WHERE version = $1){hasura}
SELECT 1",
                m = self.t("migrations"),
                hasura = hasura_dirty_ctes(hasura, "$1", "false", "$2"),
            )
        } else {
            format!(
                "WITH del AS (DELETE FROM {m} WHERE version = $1){hasura}
SELECT 1",
                m = self.t("migrations"),
                hasura = sync_ctes(hasura, "$4", "$3", "$2"),
            )
        };
        let params: Vec<(&(dyn postgres::types::ToSql + Sync), Type)> = if applied {
            vec![(&version, Type::INT8), (&self.database, Type::TEXT)]
        } else {
            vec![
                (&version, Type::INT8),
                (&self.database, Type::TEXT),
                (&one, Type::INT8_ARRAY),
                (&none, Type::INT8_ARRAY),
            ]
        };
        c.query_typed(&sql, &params)
            .map_err(q("recording the outcome of the no-transaction migration"))?;
        Ok(())
    }

    /// Ends a deployment that ran in segments: writes the metadata row (as
    /// [`Ledger::record`] does) and turns the deployment row `ok`. One statement.
    pub(crate) fn finish_partial(
        &self,
        c: &mut impl GenericClient,
        deployment_id: i64,
        rec: &DeploymentRecord,
    ) -> Result<(), LedgerError> {
        let sql = format!(
            "WITH d AS (UPDATE {d} SET status = 'ok', finished_at = clock_timestamp(), metadata_sha256 = $2
            WHERE id = $1 RETURNING id),
 md AS (INSERT INTO {md} (id, snapshot, sha256, tree_id, commit, updated_at)
        SELECT 1, $3::jsonb, $2, $4, $5, now() WHERE $3::text IS NOT NULL
        ON CONFLICT (id) DO UPDATE SET snapshot = EXCLUDED.snapshot, sha256 = EXCLUDED.sha256,
          tree_id = EXCLUDED.tree_id, commit = EXCLUDED.commit, updated_at = EXCLUDED.updated_at),
 md2 AS (UPDATE {md} SET tree_id = $4, commit = $5, updated_at = now() WHERE id = 1 AND $3::text IS NULL)
SELECT id FROM d",
            d = self.t("deployments"),
            md = self.t("metadata"),
        );
        let snapshot = rec.snapshot.as_ref().map(|s| s.to_string());
        c.query_typed(
            &sql,
            &[
                (&deployment_id, Type::INT8),
                (&rec.metadata_sha256, Type::TEXT),
                (&snapshot, Type::TEXT),
                (&rec.metadata_tree, Type::TEXT),
                (&rec.to_commit, Type::TEXT),
            ],
        )
        .map_err(q("recording the end of the deployment"))?;
        Ok(())
    }

    /// Whether the session `pid` still holds this ledger's advisory lock.
    pub(crate) fn lock_held_by(
        &self,
        c: &mut impl GenericClient,
        pid: i32,
    ) -> Result<bool, LedgerError> {
        let key = self.lock_key();
        let classid = (key >> 32) as u32 as i64;
        let objid = (key & 0xffff_ffff) as u32 as i64;
        let row = c
            .query_typed_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted
                 AND pid = $1 AND classid::bigint = $2 AND objid::bigint = $3 AND objsubid = 1)",
                &[
                    (&pid, Type::INT4),
                    (&classid, Type::INT8),
                    (&objid, Type::INT8),
                ],
            )
            .map_err(q("checking the deploy lock"))?;
        Ok(row.get(0))
    }

    /// Reads one ledger row for `repair`, locking it. `None` when the version is not recorded.
    /// Call [`Ledger::upgrade`] first.
    pub fn repair_row(
        &self,
        c: &mut impl GenericClient,
        version: Version,
    ) -> Result<Option<RepairRow>, LedgerError> {
        let sql = format!(
            "SELECT name, dirty, dirty_direction, up_sha256, up_blob, applied_commit FROM {m} WHERE version = $1 FOR UPDATE",
            m = self.t("migrations")
        );
        let rows = c
            .query_typed(&sql, &[(&version, Type::INT8)])
            .map_err(q("reading the ledger row"))?;
        Ok(rows.first().map(|r| RepairRow {
            version,
            name: r.get(0),
            dirty: r.get(1),
            direction: match r.get::<_, Option<String>>(2).as_deref() {
                Some("down") => DirtyDirection::Down,
                _ => DirtyDirection::Up,
            },
            up_sha256: r.get(3),
            up_blob: r.get(4),
            applied_commit: r.get(5),
        }))
    }

    /// Records a new checksum (and blob id and folder tree) for an applied migration whose
    /// up.sql changed after it was applied (`repair --accept`).
    pub fn accept_checksum(
        &self,
        c: &mut impl GenericClient,
        version: Version,
        up_sha256: &str,
        up_blob: Option<&str>,
        folder_tree: Option<&str>,
    ) -> Result<(), LedgerError> {
        let sql = format!(
            "UPDATE {m} SET up_sha256 = $2, up_blob = $3, folder_tree = $4 WHERE version = $1",
            m = self.t("migrations")
        );
        c.query_typed(
            &sql,
            &[
                (&version, Type::INT8),
                (&up_sha256, Type::TEXT),
                (&up_blob, Type::TEXT),
                (&folder_tree, Type::TEXT),
            ],
        )
        .map_err(q("recording the accepted checksum"))?;
        Ok(())
    }

    /// Appends a `repair` deployment row (status `ok`): the database stays at `commit`
    /// (`worktree_dirty` as it was); `plan` says what was repaired. Returns its id.
    pub fn record_repair(
        &self,
        c: &mut impl GenericClient,
        commit: Option<&str>,
        worktree_dirty: bool,
        metadata_sha256: Option<&str>,
        plan: &serde_json::Value,
        actor: &str,
    ) -> Result<i64, LedgerError> {
        let sql = format!(
            "INSERT INTO {d} (started_at, finished_at, actor, tool_version, kind, target_ref, from_commit, to_commit,
                     worktree_dirty, metadata_sha256, status, plan)
             VALUES (now(), clock_timestamp(), $1, $2, 'repair', NULL, $3, $3, $4, $5, 'ok', $6::jsonb)
             RETURNING id",
            d = self.t("deployments")
        );
        let plan = plan.to_string();
        let rows = c
            .query_typed(
                &sql,
                &[
                    (&actor, Type::TEXT),
                    (&env!("CARGO_PKG_VERSION"), Type::TEXT),
                    (&commit, Type::TEXT),
                    (&worktree_dirty, Type::BOOL),
                    (&metadata_sha256, Type::TEXT),
                    (&plan, Type::TEXT),
                ],
            )
            .map_err(q("recording the repair"))?;
        Ok(rows.first().map(|r| r.get(0)).unwrap_or_default())
    }
}
