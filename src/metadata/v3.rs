//! Config v3 metadata: `databases/databases.yaml` with nested `!include`s, plus the top-level
//! files, built into one snapshot (Hasura metadata version 3 shape).
