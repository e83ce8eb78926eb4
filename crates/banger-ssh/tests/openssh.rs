//! banger-ssh against the real OpenSSH client and server on loopback.
//!
//! Each sshd test starts its own `sshd -D -e` on 127.0.0.1 with a random free port, a throwaway
//! host key and an `AuthorizedKeysFile` holding the public key [`ensure_keypair`] generated; the
//! server is killed by a drop guard. `ssh` always runs with `HOME` pointing at a temporary
//! directory, and the tests check the real user's `~/.ssh/known_hosts` is never written. They need
//! root (sshd's privilege separation; logging in as root), so they are `#[ignore]`d and CI runs
//! them with `--include-ignored`. Every process is bounded in time.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use banger_ssh::command::{ControlMaster, ControlOp, SshCommand, TtyMode};
use banger_ssh::errors::SshError;
use banger_ssh::keys::{KeyPair, ensure_keypair};
use banger_ssh::known_hosts;
use banger_ssh::probe::wait_for_ssh;

const LIMIT: Duration = Duration::from_secs(30);

/// Runs `cmd` with stdin closed, killing it after `LIMIT`.
fn run_bounded(mut cmd: Command, dir: &Path) -> Output {
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: fs::read(&stdout_path).expect("read stdout"),
        stderr: fs::read(&stderr_path).expect("read stderr"),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn sshd_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        .into_iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join("sshd"))
        .find(|p| p.is_absolute() && p.is_file())
        .expect("sshd not found: install openssh-server")
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{out:?}");
}

/// A running sshd; killed on drop.
struct Sshd {
    child: Child,
    log: PathBuf,
}

impl Sshd {
    fn start(dir: &Path, port: u16, host_key: &Path, authorized_keys: &Path) -> Self {
        // sshd's privilege separation directory; systemd normally creates it.
        fs::create_dir_all("/run/sshd").expect("create /run/sshd (needs root)");
        let config = dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 AddressFamily inet\n\
                 HostKey {}\n\
                 AuthorizedKeysFile {}\n\
                 PidFile none\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 LogLevel VERBOSE\n",
                host_key.display(),
                authorized_keys.display()
            ),
        )
        .expect("write sshd_config");
        let log = dir.join("sshd.log");
        let child = Command::new(sshd_binary())
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("start sshd");
        let sshd = Self { child, log };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if let Err(e) = wait_for_ssh(addr, Duration::from_secs(10)) {
            panic!("sshd did not come up: {e}: {:?}\n{}", e, sshd.log());
        }
        sshd
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// banger's key pair and known_hosts in a temp dir, a fake HOME, and an sshd trusting the key.
struct Fixture {
    dir: tempfile::TempDir,
    keys: KeyPair,
    known_hosts: PathBuf,
    home: PathBuf,
    port: u16,
    host_key: PathBuf,
    sshd: Option<Sshd>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ssh_dir = dir.path().join("state/ssh");
        let keys = ensure_keypair(&ssh_dir).expect("keypair");
        let known_hosts = known_hosts::path(&ssh_dir);
        let home = dir.path().join("home");
        fs::create_dir(&home).expect("home");
        let server = dir.path().join("server");
        fs::create_dir(&server).expect("server dir");
        fs::write(
            server.join("authorized_keys"),
            format!("{}\n", keys.public_line),
        )
        .expect("authorized_keys");
        keygen(&server.join("host_a"));
        keygen(&server.join("host_b"));
        let host_key = server.join("host_key");
        let mut fixture = Self {
            dir,
            keys,
            known_hosts,
            home,
            port: free_port(),
            host_key,
            sshd: None,
        };
        fixture.serve_with("host_a");
        fixture
    }

    fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    /// (Re)starts sshd on the same port with host key `name`.
    fn serve_with(&mut self, name: &str) {
        self.sshd = None;
        let server = self.server_dir();
        fs::copy(server.join(name), &self.host_key).expect("copy host key");
        self.sshd = Some(Sshd::start(
            &server,
            self.port,
            &self.host_key,
            &server.join("authorized_keys"),
        ));
    }

    fn host_pub(&self, name: &str) -> String {
        let text = fs::read_to_string(self.server_dir().join(format!("{name}.pub"))).expect("pub");
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn ssh(&self, remote: &[&str]) -> SshCommand {
        let mut cmd = SshCommand::new("127.0.0.1", &self.keys.private, &self.known_hosts);
        cmd.port = self.port;
        cmd.connect_timeout = Duration::from_secs(10);
        cmd.tty = TtyMode::Disable;
        cmd.remote = remote.iter().map(|s| (*s).to_owned()).collect();
        cmd
    }

    fn run(&self, cmd: &SshCommand) -> Output {
        let mut command = cmd.to_command().expect("argv");
        command.env("HOME", &self.home);
        run_bounded(command, self.dir.path())
    }

    fn context(&self, out: &Output) -> String {
        format!(
            "{out:?}\nstderr: {}\nsshd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.sshd.as_ref().map(Sshd::log).unwrap_or_default()
        )
    }

    fn name(&self) -> String {
        known_hosts::host_key_name("127.0.0.1", self.port)
    }
}

/// The real user's known_hosts (ssh finds `~` through the password database, not `$HOME`).
fn real_user_known_hosts() -> PathBuf {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .expect("getpwuid")
        .expect("a passwd entry");
    user.dir.join(".ssh/known_hosts")
}

#[test]
#[ignore = "needs root: runs sshd"]
fn remote_exit_codes_and_arguments_survive() {
    let fx = Fixture::new();
    let out = fx.run(&fx.ssh(&["sh", "-c", "exit 42"]));
    assert_eq!(out.status.code(), Some(42), "{}", fx.context(&out));
    let cmd = fx.ssh(&["sh", "-c", "exit 42"]);
    assert_eq!(
        cmd.classify_exit(out.status.code(), &String::from_utf8_lossy(&out.stderr)),
        Ok(42)
    );

    let args = [
        "printf",
        "<%s>\\n",
        "hello world",
        "it's",
        "$HOME",
        "`id`",
        "back\\slash",
        "two\nlines",
        "",
        "ünïcødé 😀",
        "*",
    ];
    let out = fx.run(&fx.ssh(&args));
    assert!(out.status.success(), "{}", fx.context(&out));
    let expected: String = args[2..].iter().map(|a| format!("<{a}>\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(
        out.stderr.is_empty(),
        "LogLevel=ERROR keeps stderr clean: {}",
        fx.context(&out)
    );
}

#[test]
#[ignore = "needs root: runs sshd"]
fn trust_on_first_use_pins_in_bangers_known_hosts_only() {
    let fx = Fixture::new();
    let user_known_hosts = real_user_known_hosts();
    let before = known_hosts::entries_for(&user_known_hosts, &fx.name()).expect("entries");
    assert!(
        known_hosts::entries_for(&fx.known_hosts, &fx.name())
            .expect("entries")
            .is_empty()
    );

    let out = fx.run(&fx.ssh(&["true"]));
    assert!(out.status.success(), "{}", fx.context(&out));

    let pinned = known_hosts::entries_for(&fx.known_hosts, &fx.name()).expect("entries");
    assert_eq!(pinned, [format!("{} {}", fx.name(), fx.host_pub("host_a"))]);
    assert_eq!(
        known_hosts::entries_for(&user_known_hosts, &fx.name()).expect("entries"),
        before,
        "the user's known_hosts is untouched"
    );
    assert!(
        !fx.home.join(".ssh").exists(),
        "ssh created nothing under HOME"
    );

    // A second connection uses the pinned key without rewriting it.
    let out = fx.run(&fx.ssh(&["true"]));
    assert!(out.status.success(), "{}", fx.context(&out));
    assert_eq!(
        known_hosts::entries_for(&fx.known_hosts, &fx.name()).expect("entries"),
        pinned
    );
}

#[test]
#[ignore = "needs root: runs sshd"]
fn a_changed_host_key_is_a_possible_mitm_until_the_entry_is_removed() {
    let mut fx = Fixture::new();
    let cmd = fx.ssh(&["true"]);
    let out = fx.run(&cmd);
    assert!(out.status.success(), "{}", fx.context(&out));

    fx.serve_with("host_b");
    let out = fx.run(&cmd);
    assert_eq!(out.status.code(), Some(255), "{}", fx.context(&out));
    let err = cmd
        .classify_exit(out.status.code(), &String::from_utf8_lossy(&out.stderr))
        .expect_err("must fail");
    assert_eq!(
        err,
        SshError::HostKeyChanged {
            host: fx.name(),
            known_hosts: fx.known_hosts.clone()
        },
        "{}",
        fx.context(&out)
    );
    let msg = err.to_string();
    assert!(msg.contains("man-in-the-middle"), "{msg}");
    assert!(msg.contains(&fx.known_hosts.display().to_string()), "{msg}");

    assert!(known_hosts::remove_host(&fx.known_hosts, &fx.name()).expect("remove"));
    let out = fx.run(&cmd);
    assert!(out.status.success(), "{}", fx.context(&out));
    assert_eq!(
        known_hosts::entries_for(&fx.known_hosts, &fx.name()).expect("entries"),
        [format!("{} {}", fx.name(), fx.host_pub("host_b"))]
    );
}

#[test]
#[ignore = "needs root: runs sshd"]
fn a_control_master_is_shared_and_stoppable() {
    let fx = Fixture::new();
    let mut cmd = fx.ssh(&["echo", "first"]);
    cmd.control = Some(ControlMaster {
        path: fx.dir.path().join("ctl"),
        persist: Duration::from_secs(30),
    });
    let out = fx.run(&cmd);
    assert_eq!(out.stdout, b"first\n", "{}", fx.context(&out));
    assert!(fx.dir.path().join("ctl").exists(), "the master persists");

    let check = cmd
        .control_args(ControlOp::Check)
        .expect("argv")
        .expect("some");
    let mut command = Command::new("ssh");
    command.args(&check);
    let out = run_bounded(command, fx.dir.path());
    assert!(out.status.success(), "{}", fx.context(&out));

    cmd.remote = vec!["sh".into(), "-c".into(), "exit 7".into()];
    assert_eq!(fx.run(&cmd).status.code(), Some(7));

    let exit = cmd
        .control_args(ControlOp::Exit)
        .expect("argv")
        .expect("some");
    let mut command = Command::new("ssh");
    command.args(&exit);
    let out = run_bounded(command, fx.dir.path());
    assert!(out.status.success(), "{}", fx.context(&out));
    let deadline = Instant::now() + Duration::from_secs(5);
    while fx.dir.path().join("ctl").exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!fx.dir.path().join("ctl").exists(), "the master is gone");
}

/// `ssh NAME.vm` through the installed Include block uses banger's key and known_hosts.
#[test]
#[ignore = "needs root: runs sshd"]
fn plain_ssh_through_the_include_block() {
    let fx = Fixture::new();
    let banger_config = fx.dir.path().join("state/ssh_config");
    // The files `banger ssh-config --install` writes, from the same pure text functions.
    let rendered = banger_model::ssh_config::render(
        &fx.keys.private,
        &fx.known_hosts,
        Path::new("/usr/bin/banger"),
    )
    .expect("render");
    fs::create_dir_all(banger_config.parent().expect("parent")).expect("mkdir");
    fs::write(&banger_config, rendered).expect("write");
    let user_config = fx.home.join(".ssh/config");
    fs::create_dir_all(fx.home.join(".ssh")).expect("mkdir");
    let include = banger_model::ssh_config::include_line(&banger_config).expect("include");
    let installed =
        banger_model::ssh_config::install_text(b"Host *\n    User nobody\n", &include, false)
            .expect("install");
    fs::write(&user_config, installed).expect("write");

    let mut command = Command::new("ssh");
    command
        .arg("-F")
        .arg(&user_config)
        .args(["-o", "HostName=127.0.0.1", "-o", "ProxyCommand=none"])
        .args(["-o", "BatchMode=yes", "-p"])
        .arg(fx.port.to_string())
        .args(["demo.vm", "id", "-un"])
        .env("HOME", &fx.home);
    let out = run_bounded(command, fx.dir.path());
    assert_eq!(out.stdout, b"root\n", "{}", fx.context(&out));
    // ssh pins under the name it connected to (here the HostName override; `NAME.vm` when DNS
    // resolves it), in banger's file.
    assert_eq!(
        known_hosts::entries_for(&fx.known_hosts, &fx.name()).expect("entries"),
        [format!("{} {}", fx.name(), fx.host_pub("host_a"))]
    );
}

/// No server needed: a closed loopback port is classified as unreachable, and the probe gives up
/// in bounded time.
#[test]
fn a_closed_port_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = ensure_keypair(&dir.path().join("ssh")).expect("keypair");
    let known_hosts = known_hosts::path(&dir.path().join("ssh"));
    let port = free_port();
    let mut cmd = SshCommand::new("127.0.0.1", &keys.private, &known_hosts);
    cmd.port = port;
    cmd.remote = vec!["true".into()];
    let mut command = cmd.to_command().expect("argv");
    command.env("HOME", dir.path());
    let out = run_bounded(command, dir.path());
    let err = cmd
        .classify_exit(out.status.code(), &String::from_utf8_lossy(&out.stderr))
        .expect_err("must fail");
    assert!(
        matches!(&err, SshError::Unreachable { detail, .. } if detail.contains("Connection refused")),
        "{err:?}"
    );
    assert!(err.to_string().contains("banger vm logs"));

    let start = Instant::now();
    let err = wait_for_ssh(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .expect_err("closed");
    assert!(start.elapsed() < Duration::from_secs(3), "{err}");
}
