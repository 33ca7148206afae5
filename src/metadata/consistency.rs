//! Consistency of a metadata snapshot with the database catalog.
