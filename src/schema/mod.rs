//! A model of the user schemas of a database, read from the catalog in one batch, and a pure
//! differ that turns one model into another with ordered DDL (issue 13).
