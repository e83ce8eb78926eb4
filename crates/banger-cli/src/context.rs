//! The one place the CLI reads its environment for paths and settings.
//!
//! [`Context::from_process`] resolves the [`Layout`] once (user mode from XDG variables, or the
//! system layout when `/etc/banger/install.toml` exists) and commands receive it; nothing else
//! reads the environment for paths. A layout error is kept rather than raised, so commands
//! that need no paths (`version`, `completion`, `--help`) still work without `HOME`.
//! Reading the config never writes anything: a missing file means defaults.

use std::path::{Path, PathBuf};

use banger_model::layout::INSTALL_METADATA;
use banger_model::{Config, Layout, LayoutError, Mode};

use crate::error::CliError;

/// Paths and settings for one run of the CLI.
#[derive(Debug, Clone)]
pub struct Context {
    layout: Result<Layout, LayoutError>,
}

impl Context {
    /// Resolves the layout from the process environment and the install metadata.
    pub fn from_process() -> Self {
        let system = Path::new(INSTALL_METADATA).exists();
        Self::resolve(&|k: &str| std::env::var_os(k), system)
    }

    /// Resolves the layout from `env`; `system` says whether a system install exists.
    pub fn resolve(env: &dyn banger_model::Env, system: bool) -> Self {
        let layout = Layout::user(env).map(|user| {
            if system {
                // The system daemon reads the owner's config; the owner is the one running
                // the CLI, so it is this user's config file.
                Layout::system(user.config_file)
            } else {
                user
            }
        });
        Self { layout }
    }

    /// The layout, or why it could not be resolved.
    pub fn layout(&self) -> Result<&Layout, CliError> {
        self.layout
            .as_ref()
            .map_err(|e| CliError::Layout(e.clone()))
    }

    /// Whether the daemon is a system service (never started on demand).
    pub fn is_system(&self) -> bool {
        matches!(&self.layout, Ok(l) if l.mode == Mode::System)
    }

    /// The parsed config file; all defaults when it does not exist.
    pub fn config(&self) -> Result<Config, CliError> {
        let path = &self.layout()?.config_file;
        load_config(path)
    }

    /// The config if it loads, for best-effort uses such as `--help` defaults.
    pub fn config_or_default(&self) -> Config {
        self.config().unwrap_or_default()
    }
}

fn load_config(path: &PathBuf) -> Result<Config, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => {
            return Err(CliError::Config {
                path: path.clone(),
                message: e.to_string(),
            });
        }
    };
    Config::parse(&text).map_err(|e| CliError::Config {
        path: path.clone(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env(k: &str) -> Option<OsString> {
        match k {
            "HOME" => Some("/home/u".into()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".into()),
            _ => None,
        }
    }

    #[test]
    fn user_mode_uses_the_runtime_dir() {
        let ctx = Context::resolve(&env, false);
        let layout = ctx.layout().unwrap();
        assert_eq!(
            layout.socket(),
            Path::new("/run/user/1000/banger/bangerd.sock")
        );
        assert!(!ctx.is_system());
    }

    #[test]
    fn system_install_uses_the_system_socket_and_the_users_config() {
        let ctx = Context::resolve(&env, true);
        let layout = ctx.layout().unwrap();
        assert_eq!(layout.socket(), Path::new("/run/banger/bangerd.sock"));
        assert_eq!(
            layout.config_file,
            Path::new("/home/u/.config/banger/config.toml")
        );
        assert!(ctx.is_system());
    }

    #[test]
    fn layout_errors_wait_until_a_command_needs_paths() {
        let ctx = Context::resolve(&|_: &str| None, false);
        assert!(ctx.layout().is_err());
        assert_eq!(ctx.config_or_default(), Config::default());
    }

    #[test]
    fn bad_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "vcpus = 2\n").unwrap();
        let err = load_config(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");
        assert!(err.contains("vcpus"), "{err}");
        let missing = load_config(&dir.path().join("none.toml")).unwrap();
        assert_eq!(missing, Config::default());
    }
}
