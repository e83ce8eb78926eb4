//! Project automation for banger.
//!
//! `cargo run -p xtask -- check-deps` enforces the crate dependency rules of the workspace
//! (see `deps.rs`). The same check runs as a test, so `cargo test` catches a violation.

mod deps;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "check-deps" => {
            let metadata = deps::cargo_metadata().context("cannot read cargo metadata")?;
            let violations = deps::check(&metadata);
            if violations.is_empty() {
                println!("dependency rules: ok");
                return Ok(());
            }
            for v in &violations {
                eprintln!("{v}");
            }
            bail!("{} dependency rule violation(s)", violations.len())
        }
        _ => bail!("usage: cargo run -p xtask -- check-deps"),
    }
}
