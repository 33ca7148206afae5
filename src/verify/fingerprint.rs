//! A schema fingerprint from pg_catalog (being written).
