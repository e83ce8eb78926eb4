//! `banger update`'s pure parts: release versions, the release manifest, and the checks that
//! decide whether downloaded files are trusted (signature over `SHA256SUMS`, then each file's
//! SHA-256). Nothing here touches the network or the install; `commands::update` does, and
//! trusts a file only after [`verify`] said so.

pub mod manifest;
pub mod verify;
pub mod version;
