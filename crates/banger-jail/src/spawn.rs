//! Starting the jailer so the VM it becomes outlives whoever started it.
//!
//! The same rules as an unjailed Firecracker (SPEC §4: a daemon or helper restart never takes
//! guests down), in safe std: its own process group (signals aimed at the starter's group miss
//! it), stdin `/dev/null`, stdout and stderr on the console descriptor the caller opened (the
//! guest's serial console; under the helper it is the daemon's own file, passed over the
//! socket, so the helper never opens a path the owner named), working directory `/`, every
//! other descriptor closed on exec, and a plain thread reaping it so it never lingers as a
//! zombie. No parent-death signal: when the starter exits, the VM is re-parented, not killed.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// Runs `argv` (binary first) detached as described in the module docs; returns its pid once
/// `exec` succeeded.
pub fn spawn_detached(argv: &[OsString], console: File) -> io::Result<u32> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command line"))?;
    let stderr = console.try_clone()?;
    // The reaper exists before the child, so a child is never left without one.
    let (tx, rx) = std::sync::mpsc::channel::<Child>();
    std::thread::Builder::new()
        .name("jailer-reaper".to_owned())
        .spawn(move || {
            if let Ok(mut child) = rx.recv() {
                let _ = child.wait();
            }
        })?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(stderr)
        .current_dir("/")
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    // The reaper only ends after receiving, so the send cannot fail.
    let _ = tx.send(child);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_goes_to_the_console_and_the_pid_is_the_childs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("console.log");
        let console = File::create(&log).expect("console");
        let pid = spawn_detached(
            &[
                "/bin/sh".into(),
                "-c".into(),
                "echo out; echo err >&2".into(),
            ],
            console,
        )
        .expect("spawned");
        assert!(pid > 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
            < 2
        {
            assert!(std::time::Instant::now() < deadline, "no output");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(text.contains("out") && text.contains("err"), "{text}");
    }

    #[test]
    fn a_missing_binary_is_not_found() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let console = File::create(tmp.path().join("c.log")).expect("console");
        let err = spawn_detached(&["/nonexistent/jailer".into()], console).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(spawn_detached(&[], File::create(tmp.path().join("d")).expect("f")).is_err());
    }
}
