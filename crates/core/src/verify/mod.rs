//! Proof that each down reverses its up (design §8 `--verify`, §12): in a scratch database,
//! run the migrations in order; for each one under test take a catalog fingerprint, run up,
//! run down, take the fingerprint again (the two must be equal), then run up again so the
//! next migration starts from the right schema.
//!
//! One database, one pass: the migrations before the first one under test run once, so the
//! cost per verified migration is two fingerprints and three scripts. After a finding the
//! database is rebuilt to the history's schema and the pass goes on (issue 12), so one bad down
//! does not hide the next; see [`verify_sequence`].

pub mod fingerprint;
pub mod replay;
pub mod round_trip;
pub mod scratch_server;
mod sequence;
pub mod template;
pub use scratch_server::{ScratchDbs, ScratchServer, ScratchServerError};
pub use sequence::*;
