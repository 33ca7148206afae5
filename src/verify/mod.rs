//! Proof that each down reverses its up (design §8 `--verify`, §12): in a scratch database,
//! run the migrations in order; for each one under test take a catalog fingerprint, run up,
//! run down, take the fingerprint again (the two must be equal), then run up again so the
//! next migration starts from the right schema.
//!
//! One database, one pass: the migrations before the first one under test run once, so the
//! cost per verified migration is two fingerprints and three scripts.

pub mod fingerprint;
mod sequence;
pub use sequence::*;
