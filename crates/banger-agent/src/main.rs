//! `banger-agent`: the guest agent binary.
//!
//! Chooses init or service mode (see [`banger_agent::cli`]) and hands over to the library. Only
//! this file exits the process, and never as PID 1.

use std::process::ExitCode;

use banger_agent::cli::{self, Command, Mode};
use banger_agent::log;
use banger_agent::service::{self, ShutdownAction};
use banger_agent::transport::Transports;

fn main() -> ExitCode {
    let is_pid1 = nix::unistd::getpid().as_raw() == 1;
    let cmd = cli::parse(std::env::args_os().skip(1));
    let opts = match cmd {
        Ok(Command::Run(o)) => o,
        Ok(Command::Help) if !is_pid1 => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) if !is_pid1 => {
            println!("banger-agent {}", banger_agent::VERSION);
            return ExitCode::SUCCESS;
        }
        Ok(_) => cli::Options::default(),
        Err(e) if is_pid1 => {
            log!("{e}; ignoring the arguments");
            cli::Options::default()
        }
        Err(e) => {
            log!("{e}");
            eprint!("{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let kernel_cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mode = match cli::decide_mode(is_pid1, &opts, &kernel_cmdline) {
        Ok(m) => m,
        Err(e) => {
            log!("{e}");
            return ExitCode::from(2);
        }
    };
    let transports = match opts.listen_unix.clone() {
        Some(path) => Transports::Unix(path),
        None => Transports::Guest,
    };
    match mode {
        Mode::Init => {
            if !opts.unknown.is_empty() {
                log!("ignoring arguments: {}", opts.unknown.join(" "));
            }
            if opts.exit_on_shutdown {
                log!("ignoring --exit-on-shutdown in init mode");
            }
            banger_agent::init::run(transports)
        }
        Mode::Service => {
            let action = if opts.exit_on_shutdown {
                ShutdownAction::Exit
            } else {
                ShutdownAction::PowerOff
            };
            match service::run(transports, action) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
