//! The schema differ against real servers: applying `diff(a, b)` to a database in state `a`
//! yields the catalog fingerprint of `b`.
