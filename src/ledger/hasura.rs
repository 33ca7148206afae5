//! Hasura's catalog (`hdb_catalog.hdb_metadata` and friends), kept in step with deployments.
