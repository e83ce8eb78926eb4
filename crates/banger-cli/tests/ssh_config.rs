//! `banger ssh-config`: banger's ssh_config and the Include block in `~/.ssh/config`. No daemon.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use banger_testkit::{TestEnv, bin_path};

fn user_config(env: &TestEnv) -> PathBuf {
    env.home().join(".ssh/config")
}

fn banger_config(env: &TestEnv) -> PathBuf {
    env.layout().state_dir.join("ssh_config")
}

fn known_hosts(env: &TestEnv) -> PathBuf {
    env.layout().state_dir.join("ssh/known_hosts")
}

fn ssh_config(env: &TestEnv, args: &[&str]) -> String {
    let out = env
        .command("banger")
        .arg("ssh-config")
        .args(args)
        .output()
        .expect("run banger");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn prints_the_path_and_include_line_and_writes_banger_config() {
    let env = TestEnv::new().unwrap();
    let out = ssh_config(&env, &[]);
    let path = banger_config(&env);
    assert_eq!(
        out,
        format!("{}\nInclude \"{}\"\n", path.display(), path.display())
    );
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).expect("read");
    let bin = fs::canonicalize(bin_path("banger")).expect("canonicalize");
    assert!(
        text.contains(&format!(
            "    ProxyCommand '{}' vm ssh-proxy %h\n",
            bin.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "    UserKnownHostsFile \"{}\"\n",
            known_hosts(&env).display()
        )),
        "{text}"
    );
    assert!(
        text.contains("    StrictHostKeyChecking accept-new\n"),
        "{text}"
    );
    assert!(
        !user_config(&env).exists(),
        "plain ssh-config never edits ~/.ssh/config"
    );
}

#[test]
fn install_twice_leaves_one_block_and_creates_private_files() {
    let env = TestEnv::new().unwrap();
    ssh_config(&env, &["--install"]);
    let once = fs::read(user_config(&env)).expect("read");
    ssh_config(&env, &["--install"]);
    let twice = fs::read_to_string(user_config(&env)).expect("read");
    assert_eq!(once, twice.as_bytes());
    assert_eq!(twice.matches("# >>> banger >>>").count(), 1, "{twice}");
    assert_eq!(twice.matches("# <<< banger <<<").count(), 1, "{twice}");
    assert_eq!(twice.matches("Include ").count(), 1, "{twice}");
    assert_eq!(mode(&env.home().join(".ssh")), 0o700);
    assert_eq!(mode(&user_config(&env)), 0o600);
    // install created the file, so uninstall removes it.
    ssh_config(&env, &["--uninstall"]);
    assert!(!user_config(&env).exists());
}

#[test]
fn install_then_uninstall_restores_an_existing_file_byte_for_byte() {
    for original in [
        &b"Host *\n    User me\n"[..],
        &b"Host *\n    User me"[..],
        &b"Host a\r\n  User \xff\r\n"[..],
    ] {
        let env = TestEnv::new().unwrap();
        fs::create_dir_all(env.home().join(".ssh")).expect("mkdir");
        fs::write(user_config(&env), original).expect("write");
        fs::set_permissions(user_config(&env), fs::Permissions::from_mode(0o640)).expect("chmod");
        ssh_config(&env, &["--install"]);
        let installed = fs::read(user_config(&env)).expect("read");
        assert!(installed.starts_with(b"# >>> banger >>>"));
        assert!(installed.ends_with(original));
        assert_eq!(mode(&user_config(&env)), 0o640);
        ssh_config(&env, &["--install"]);
        assert_eq!(fs::read(user_config(&env)).expect("read"), installed);
        ssh_config(&env, &["--uninstall"]);
        assert_eq!(fs::read(user_config(&env)).expect("read"), original);
        assert_eq!(mode(&user_config(&env)), 0o640);
        let names: Vec<_> = fs::read_dir(env.home().join(".ssh"))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["config"], "no temporary files left");
    }
}

#[test]
fn uninstall_when_not_installed_is_a_no_op() {
    let env = TestEnv::new().unwrap();
    ssh_config(&env, &["--uninstall"]);
    assert!(env.files().is_empty(), "{:?}", env.files());
    fs::create_dir_all(env.home().join(".ssh")).expect("mkdir");
    fs::write(user_config(&env), "Host x\n").expect("write");
    ssh_config(&env, &["--uninstall"]);
    assert_eq!(fs::read(user_config(&env)).expect("read"), b"Host x\n");
}

#[test]
fn install_and_uninstall_conflict() {
    let env = TestEnv::new().unwrap();
    env.command("banger")
        .args(["ssh-config", "--install", "--uninstall"])
        .output()
        .map(|out| assert_eq!(out.status.code(), Some(2), "{out:?}"))
        .expect("run banger");
    assert!(env.files().is_empty());
}

/// The real ssh resolves `NAME.vm` through the installed block: banger's ProxyCommand and
/// known_hosts, even with a user's `Host *` below.
#[test]
fn real_ssh_resolves_name_vm_through_banger() {
    let env = TestEnv::new().unwrap();
    fs::create_dir_all(env.home().join(".ssh")).expect("mkdir");
    fs::write(
        user_config(&env),
        "Host *\n    User bob\n    UserKnownHostsFile /bob/known_hosts\n",
    )
    .expect("write");
    ssh_config(&env, &["--install"]);
    let resolve = |host: &str| {
        let mut cmd = Command::new("ssh");
        cmd.arg("-G").arg("-F").arg(user_config(&env)).arg(host);
        env.apply(&mut cmd);
        let out = cmd.output().expect("ssh -G");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let vm = resolve("web.vm");
    let bin = fs::canonicalize(bin_path("banger")).expect("canonicalize");
    let proxy = vm
        .lines()
        .find(|l| l.starts_with("proxycommand "))
        .unwrap_or_else(|| panic!("no proxycommand: {vm}"));
    // Older OpenSSH prints `%h` unexpanded; newer ones print the host.
    let prefix = format!("proxycommand '{}' vm ssh-proxy ", bin.display());
    assert!(
        proxy == format!("{prefix}web.vm") || proxy == format!("{prefix}%h"),
        "{proxy}"
    );
    assert!(
        vm.lines()
            .any(|l| l == format!("userknownhostsfile {}", known_hosts(&env).display())),
        "{vm}"
    );
    assert!(vm.lines().any(|l| l == "user root"), "{vm}");
    assert!(
        vm.lines().any(|l| l == "stricthostkeychecking accept-new"),
        "{vm}"
    );
    let other = resolve("example.org");
    assert!(!other.contains("ssh-proxy"), "{other}");
    assert!(other.lines().any(|l| l == "user bob"), "{other}");
}
