//! Random identifiers for records, requests and operations.
//!
//! Ids are lowercase hex from the kernel's CSPRNG, so they are unguessable, collision-free in
//! practice and safe in paths and URLs. Reading `/dev/urandom` cannot fail on a working Linux
//! host; if it does, the fallback mixes time and pid, which is still unique per process.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `n` random bytes as lowercase hex (2n characters).
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !filled {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = nanos
            ^ (u128::from(std::process::id()) << 64)
            ^ u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new record id (16 hex characters).
pub fn record_id() -> String {
    random_hex(8)
}

/// A new request or operation id: `op-` and 12 hex characters.
pub fn op_id() -> String {
    format!("op-{}", random_hex(6))
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    banger_model::time::rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_distinct() {
        let a = record_id();
        let b = record_id();
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(op_id().starts_with("op-"));
    }
}
