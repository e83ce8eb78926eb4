//! The `firecracker` process's command line, built as data.
//!
//! Why pure: the supervisor that spawns the process needs root-free tests of exactly which
//! flags it passes (`--api-sock`, `--id`, logging). Flag names follow Firecracker's `main.rs`.
//! Invariant: arguments are `OsString`s, never a shell string, so paths need no quoting.

use std::ffi::OsString;
use std::path::PathBuf;

use super::api::LogLevel;

/// Longest instance id Firecracker accepts for `--id`.
pub const MAX_INSTANCE_ID: usize = 64;

/// Flags of one `firecracker` process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirecrackerArgs {
    /// `--api-sock`: where the API socket is created (must not exist yet).
    pub api_sock: PathBuf,
    /// `--id`: instance id, reported by `GET /` and in logs (see [`is_valid_instance_id`]).
    pub id: Option<String>,
    /// `--log-path`: log file or fifo, configured at startup (then `PUT /logger` is not needed).
    pub log_path: Option<PathBuf>,
    /// `--level`.
    pub level: Option<LogLevel>,
    /// `--show-level`.
    pub show_level: bool,
    /// `--show-log-origin`.
    pub show_log_origin: bool,
    /// `--enable-pci`: virtio over PCI (needed for device hotplug, ≥ 1.16).
    pub enable_pci: bool,
}

impl FirecrackerArgs {
    /// Only `--api-sock`.
    pub fn new(api_sock: impl Into<PathBuf>) -> Self {
        Self {
            api_sock: api_sock.into(),
            id: None,
            log_path: None,
            level: None,
            show_level: false,
            show_log_origin: false,
            enable_pci: false,
        }
    }
}

/// Whether Firecracker accepts `id` for `--id`: 1..=64 alphanumerics or `-`.
pub fn is_valid_instance_id(id: &str) -> bool {
    (1..=MAX_INSTANCE_ID).contains(&id.len()) && id.chars().all(|c| c == '-' || c.is_alphanumeric())
}

/// `argv` of the process: `firecracker_bin` first, then the flags in a fixed order.
pub fn command_line(firecracker_bin: impl Into<OsString>, args: &FirecrackerArgs) -> Vec<OsString> {
    let mut argv = vec![
        firecracker_bin.into(),
        "--api-sock".into(),
        args.api_sock.clone().into_os_string(),
    ];
    if let Some(id) = &args.id {
        argv.push("--id".into());
        argv.push(id.into());
    }
    if let Some(log_path) = &args.log_path {
        argv.push("--log-path".into());
        argv.push(log_path.clone().into_os_string());
    }
    if let Some(level) = args.level {
        argv.push("--level".into());
        argv.push(level.as_str().into());
    }
    if args.show_level {
        argv.push("--show-level".into());
    }
    if args.show_log_origin {
        argv.push("--show-log-origin".into());
    }
    if args.enable_pci {
        argv.push("--enable-pci".into());
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_full_command_lines() {
        let argv = command_line("/usr/bin/firecracker", &FirecrackerArgs::new("/run/a.sock"));
        assert_eq!(argv, ["/usr/bin/firecracker", "--api-sock", "/run/a.sock"]);

        let args = FirecrackerArgs {
            id: Some("sbx-1".to_owned()),
            log_path: Some("/run/fc.log".into()),
            level: Some(LogLevel::Debug),
            show_level: true,
            show_log_origin: true,
            enable_pci: true,
            ..FirecrackerArgs::new("/run/a b.sock")
        };
        assert_eq!(
            command_line("firecracker", &args),
            [
                "firecracker",
                "--api-sock",
                "/run/a b.sock",
                "--id",
                "sbx-1",
                "--log-path",
                "/run/fc.log",
                "--level",
                "Debug",
                "--show-level",
                "--show-log-origin",
                "--enable-pci",
            ]
        );
    }

    #[test]
    fn instance_ids() {
        assert!(is_valid_instance_id("sbx-01"));
        assert!(!is_valid_instance_id(""));
        assert!(!is_valid_instance_id("a_b"));
        assert!(!is_valid_instance_id(&"a".repeat(65)));
    }
}
