//! banger's real-guest end-to-end tests live in `tests/`; this crate has no library code.
//!
//! They need root, QEMU and the Debian mirror (for the host-side pulls), so every test is
//! `#[ignore = "needs root, QEMU and a real guest"]` and `.ci/run` runs them with
//! `--include-ignored`. The harness is `tests/common/mod.rs`.
