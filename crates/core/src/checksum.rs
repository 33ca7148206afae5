//! Checksums as git-migrate writes them, `sha256:<64 lower-case hex digits>`: of migration files
//! (the ledger's `up_sha256`, `down_sha256`), metadata snapshots, schema fingerprints and the
//! ledger's lock key. The one copy of the format and of its check.

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in d.iter() {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Whether `s` is a checksum as git-migrate writes them: `sha256:` and 64 lower-case hex digits.
pub(crate) fn is_checksum(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_as_written() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(is_checksum(&format!("sha256:{hex}")));
        for bad in [
            String::new(),
            "tampered".into(),
            hex.clone(),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}g", &hex[1..]),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{hex}0"),
            format!("sha512:{hex}"),
            format!("sha256:{}é", &hex[2..]),
        ] {
            assert!(!is_checksum(&bad), "{bad:?}");
        }
    }
}
