//! JSON logs on stderr, one object per line.
//!
//! The CLI sends an on-demand daemon's stderr to `bangerd.log`; under systemd it goes to the
//! journal. The level comes from `--log-level`/`BANGER_LOG`, then config `log_level`, then
//! `info`.

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, from `main`'s thread.
pub fn init(level: &str) -> Result<()> {
    init_for("banger_daemon", level)
}

/// Installs the global subscriber with `crate_name` (and `bangerd`) at `level`.
pub fn init_for(crate_name: &str, level: &str) -> Result<()> {
    let filter = EnvFilter::try_new(format!("warn,{crate_name}={level},bangerd={level}"))
        .with_context(|| format!("invalid log level {level:?}"))?;
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
