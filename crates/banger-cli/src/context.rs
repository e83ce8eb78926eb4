//! The one place the CLI reads its environment for paths and settings.
//!
//! [`Context::from_process`] resolves the [`Layout`] once (user mode from XDG variables, or the
//! system layout when `/etc/banger/install.toml` or `/run/banger/bangerd.sock` exists) and commands receive it; nothing else
//! reads the environment for paths. A layout error is kept rather than raised, so commands
//! that need no paths (`version`, `completion`, `--help`) still work without `HOME`.
//! Reading the config never writes anything: a missing file means defaults.

use std::path::{Path, PathBuf};

use banger_model::layout::INSTALL_METADATA;
use banger_model::{Config, ConfigError, Layout, LayoutError, Mode};

use crate::error::CliError;

/// Paths and settings for one run of the CLI.
#[derive(Debug, Clone)]
pub struct Context {
    layout: Result<Layout, LayoutError>,
}

impl Context {
    /// Resolves the layout from the process environment and the system install, which is in
    /// use when its metadata or its daemon's socket exists (a half-removed install still
    /// never gets a user daemon started beside it).
    pub fn from_process() -> Self {
        let system_socket = Layout::system(PathBuf::new()).socket();
        let system = Path::new(INSTALL_METADATA).exists() || system_socket.exists();
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
        Err(source) => {
            return Err(CliError::ConfigUnreadable {
                path: path.clone(),
                source,
            });
        }
    };
    Config::parse(&text).map_err(|e| CliError::Config {
        path: path.clone(),
        message: describe(e, &text),
    })
}

/// One line for a config error: `field: reason`. TOML syntax and schema errors come as
/// several lines (position, snippet, reason); the field is read back from the line they
/// point at, with its table (`vm_defaults.memory`, `file_sync[1].guest`).
fn describe(error: ConfigError, text: &str) -> String {
    match error {
        ConfigError::Invalid { field, reason } => format!("{field}: {reason}"),
        ConfigError::Parse(message) => {
            let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
            let head = lines.next().unwrap_or_default();
            let reason = lines.next_back().unwrap_or(head);
            let line = head
                .strip_prefix("TOML parse error at line ")
                .and_then(|rest| rest.split(',').next())
                .and_then(|n| n.parse::<usize>().ok());
            match line {
                Some(n) => match field_at(text, n) {
                    Some(field) => format!("{field}: {reason} (line {n})"),
                    None => format!("line {n}: {reason}"),
                },
                None => reason.to_owned(),
            }
        }
    }
}

/// The dotted key set on line `n` (1-based) of a TOML text, with its table; the table itself
/// when the line is a table header.
fn field_at(text: &str, n: usize) -> Option<String> {
    let mut table = String::new();
    let mut arrays: Vec<(String, usize)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let header = if let Some(rest) = line.strip_prefix("[[") {
            let name = rest
                .split("]]")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let index = match arrays.iter_mut().find(|(a, _)| *a == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    arrays.push((name.clone(), 0));
                    0
                }
            };
            Some(format!("{name}[{index}]"))
        } else {
            line.strip_prefix('[')
                .map(|rest| rest.split(']').next().unwrap_or_default().trim().to_owned())
        };
        let is_header = header.is_some();
        if let Some(header) = header {
            table = header;
        }
        if i + 1 != n {
            continue;
        }
        if is_header {
            return Some(table);
        }
        let (key, _) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        if key.is_empty() || key.starts_with('#') {
            return None;
        }
        return Some(if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        });
    }
    None
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
        let err = load_config(&path).unwrap_err();
        assert_eq!(err.exit().code(), 2);
        let err = err.to_string();
        assert!(
            err.starts_with(&format!("invalid config: {}: vcpus: ", path.display())),
            "{err}"
        );
        assert!(err.contains("unknown field `vcpus`"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let missing = load_config(&dir.path().join("none.toml")).unwrap();
        assert_eq!(missing, Config::default());
    }

    #[test]
    fn parse_errors_name_the_field_and_its_table() {
        let cases = [
            ("vcpus = 2\n", "vcpus: unknown field `vcpus`"),
            (
                "vmm = \"auto\"\n[vm_defaults]\nmemory = \"lots\"\n",
                "vm_defaults.memory: size \"lots\"",
            ),
            (
                "[[file_sync]]\nhost = \"~/a\"\nguest = \"~/a\"\n[[file_sync]]\nhots = 1\n",
                "file_sync[1].hots: unknown field `hots`",
            ),
            (
                "log_level = \"loud\"\n",
                "log_level: \"loud\" is not one of",
            ),
            ("vmm = \n", "vmm: string values must be quoted"),
            ("= 1\n", "line 1: "),
        ];
        for (text, want) in cases {
            let err = Config::parse(text).unwrap_err();
            let got = describe(err, text);
            assert!(got.starts_with(want), "{text:?}: {got}");
            assert!(!got.contains('\n'), "{got}");
        }
    }
}
