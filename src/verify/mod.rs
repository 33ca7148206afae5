//! Proof that each down reverses its up (design §8 `--verify`, §12): a catalog fingerprint
//! taken before the up and after the down, compared object by object.

pub mod fingerprint;
