//! Resolving where things are: the layout for the chosen mode and the config file.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use banger_model::layout::INSTALL_METADATA;
use banger_model::{Config, Layout};

/// The layout for user or system mode.
pub fn layout(system: bool) -> Result<Layout> {
    if system {
        return Ok(Layout::system(system_config_path()));
    }
    Layout::user(&|k: &str| std::env::var_os(k)).context("cannot resolve banger's directories")
}

/// A system install reads the owner's config; `install.toml` names the owner's home.
fn system_config_path() -> PathBuf {
    let owner_home = std::fs::read_to_string(INSTALL_METADATA)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "owner_home").then(|| value.trim().trim_matches('"').to_owned())
            })
        })
        .filter(|home| home.starts_with('/'))
        .unwrap_or_else(|| "/root".to_owned());
    PathBuf::from(owner_home).join(".config/banger/config.toml")
}

/// The config file's contents, or defaults when it does not exist.
pub fn config(layout: &Layout) -> Result<Config> {
    let path = &layout.config_file;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    match Config::parse(&text) {
        Ok(config) => {
            if let Some(why) = config
                .jailer_bin
                .as_deref()
                .and_then(crate::backends::check_jailer_bin)
            {
                bail!("{}: invalid config: {why}", path.display());
            }
            Ok(config)
        }
        Err(e) => bail!("{}: {e}", path.display()),
    }
}
