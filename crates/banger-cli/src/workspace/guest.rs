//! The guest side of a workspace: fixed shell scripts run over SSH, with every interpolated
//! value single-quoted by [`quote`].
//!
//! Each function returns the remote argv (`sh -c SCRIPT …`); the daemon quotes each argument
//! once more for the remote login shell, so the script reaches `sh -c` byte for byte and the
//! user's command words reach `"$@"` verbatim.

/// Where a workspace lives in the guest.
pub const GUEST_PATH: &str = banger_guest::paths::WORKSPACE_DIR;

/// Where the git bundle is parked in the guest between the two prepare steps.
pub const BUNDLE: &str = "/tmp/banger-ws.bundle";

/// Exit code of [`bootstrap`] when mise is not installed in the guest.
pub const NO_MISE: i32 = 90;

/// POSIX single quoting (the model's one implementation).
pub use banger_model::shell::quote;

fn sh(script: String, rest: &[String]) -> Vec<String> {
    let mut argv = vec!["sh".to_owned(), "-c".to_owned(), script];
    if !rest.is_empty() {
        argv.push("sh".to_owned());
        argv.extend(rest.iter().cloned());
    }
    argv
}

/// Step 1 of prepare: the bundle arrives on stdin.
pub fn receive_bundle() -> Vec<String> {
    sh(format!("cat > {}", quote(BUNDLE)), &[])
}

/// What step 2 of prepare checks out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkout {
    /// The ref to fetch from the bundle (`HEAD`, or `--from`'s ref).
    pub fetch: String,
    /// The branch to create; `None` leaves a detached HEAD.
    pub branch: Option<String>,
    /// `user.name` for the guest repo.
    pub name: Option<String>,
    /// `user.email` for the guest repo.
    pub email: Option<String>,
    /// Unpack a tar of the selected files from stdin over the checkout.
    pub untar: bool,
}

/// Exit code of [`checkout`] when the guest has no git and `--from` asked for a commit.
pub const NO_GIT: i32 = 91;

/// Step 2 of prepare: a fresh repo at [`GUEST_PATH`] from the bundle, the host identity, and
/// (when `untar`) the selected files from one tar stream on stdin. A guest without git (many
/// application images) gets the files alone, with a note on stderr; `--from` (no tar) cannot
/// work there and exits [`NO_GIT`] naming the fix.
pub fn checkout(path: &str, c: &Checkout) -> Vec<String> {
    let p = quote(path);
    let b = quote(BUNDLE);
    let switch = match &c.branch {
        Some(branch) => format!("-B {}", quote(branch)),
        None => "--detach".to_owned(),
    };
    // Every program started costs a fork and an exec, hundreds of milliseconds in a guest
    // under emulation: shell builtins test for the old tree and write the identity.
    let mut s = format!(
        "set -e\nif [ -e {p} ] || [ -L {p} ]; then rm -rf {p}; fi\n\
         if command -v git >/dev/null 2>&1; then\n\
         git -c init.defaultBranch=banger init -q {p}\n\
         git -C {p} fetch -q {b} {} </dev/null\n\
         git -C {p} checkout -q -f {switch} FETCH_HEAD </dev/null\n",
        quote(&c.fetch)
    );
    s.push_str(&user_config(path, c.name.as_deref(), c.email.as_deref()));
    s.push_str("else\n");
    if c.untar {
        s.push_str(&format!(
            "mkdir -p {p}\necho 'banger: the image has no git: copied the files without \
             history (install git in the image for a repository and `vm workspace export`)' >&2\n"
        ));
    } else {
        s.push_str(&format!(
            "echo 'banger: the image has no git, which --from needs; install git in the image \
             or prepare without --from' >&2\nrm -f {b}\nexit {NO_GIT}\n"
        ));
    }
    s.push_str(&format!("fi\nrm -f {b}\n"));
    if c.untar {
        s.push_str(&format!("tar -x -C {p}\n"));
    }
    sh(s, &[])
}

/// Appends the `[user]` section (name, email) to the repository at `path`'s `.git/config`
/// with the shell's `printf` (no `git config` process per key); nothing without either.
pub fn user_config(path: &str, name: Option<&str>, email: Option<&str>) -> String {
    let mut lines = Vec::new();
    for (key, value) in [("name", name), ("email", email)] {
        if let Some(value) = value {
            lines.push(quote(&format!("\t{key} = {}", git_config_value(value))));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "printf '%s\\n' '[user]' {} >> {}\n",
        lines.join(" "),
        quote(&format!("{path}/.git/config"))
    )
}

/// `value` as a double-quoted git config value (`\\`, `\"`, and newline and tab escaped).
fn git_config_value(value: &str) -> String {
    let mut out = String::from("\"");
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `vm exec`: CMD in `dir`, through `mise exec --` when mise exists; args stay verbatim.
pub fn exec(dir: &str, command: &[String]) -> Vec<String> {
    sh(
        format!(
            "cd {} && if command -v mise >/dev/null 2>&1; then exec mise exec -- \"$@\"; \
             else exec \"$@\"; fi",
            quote(dir)
        ),
        command,
    )
}

/// `vm run` without CMD: a login shell in `dir`.
pub fn shell(dir: &str) -> Vec<String> {
    sh(
        format!("cd {} && exec \"${{SHELL:-/bin/sh}}\" -l", quote(dir)),
        &[],
    )
}

/// `vm run` bootstrap: `mise install` in `dir`, or exit [`NO_MISE`] when mise is missing.
pub fn bootstrap(dir: &str) -> Vec<String> {
    sh(
        format!(
            "command -v mise >/dev/null 2>&1 || exit {NO_MISE}\ncd {} || exit 1\n\
             mise trust --yes . >/dev/null 2>&1 || true\nexec mise install",
            quote(dir)
        ),
        &[],
    )
}

/// `vm workspace export`: a binary diff of the work tree (new commits, edits, untracked
/// non-ignored files) against the prepared commit `head`, through a temporary index so the
/// real index, the work tree and the refs stay as they were.
pub fn export(dir: &str, head: &str) -> Vec<String> {
    let h = quote(head);
    sh(
        format!(
            "set -e\ncommand -v git >/dev/null 2>&1 || {{ echo 'banger: workspace export needs \
             git in the guest and the image has none; install git in the image' >&2; exit {NO_GIT}; }}\n\
             cd {}\nGIT_INDEX_FILE=$(mktemp -u)\nexport GIT_INDEX_FILE\n\
             trap 'rm -f \"$GIT_INDEX_FILE\"' EXIT\n\
             git read-tree {h}\ngit add -A\ngit diff --cached --binary {h}\n",
            quote(dir)
        ),
        &[],
    )
}

/// Whether `head` is a full commit id (40 hex), the only form recorded and exported.
pub fn is_commit(head: &str) -> bool {
    head.len() == 40 && head.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `argv` locally (as the guest would) and returns stdout.
    fn run(argv: &[String]) -> String {
        let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn quoting_survives_the_shell() {
        for value in [
            "plain",
            "two words",
            "it's",
            "'",
            "$HOME `id` \\ \"q\"",
            "",
            "a\nb",
        ] {
            let argv = sh(format!("printf %s {}", quote(value)), &[]);
            assert_eq!(run(&argv), value, "{value:?}");
        }
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn exec_passes_arguments_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let weird = dir.path().join("a 'b' $c");
        std::fs::create_dir(&weird).unwrap();
        let cmd: Vec<String> = [
            "sh",
            "-c",
            "pwd; printf '%s|' \"$@\"",
            "x",
            "two words",
            "it's",
            "$HOME",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut argv = exec(weird.to_str().unwrap(), &cmd);
        // Locally mise may exist or not; either way the script must run the command.
        argv[2] = argv[2].replace("command -v mise", "false");
        let out = run(&argv);
        assert_eq!(out, format!("{}\ntwo words|it's|$HOME|", weird.display()));
        assert_eq!(argv[3], "sh");
        assert_eq!(&argv[4..], cmd.as_slice());
    }

    #[test]
    fn checkout_quotes_every_value() {
        let c = Checkout {
            fetch: "HEAD".into(),
            branch: Some("feat/it's".into()),
            name: Some("O'Brien $x".into()),
            email: Some("o@example.com".into()),
            untar: true,
        };
        let argv = checkout("/root/repo", &c);
        let s = &argv[2];
        assert!(
            s.starts_with(
                "set -e\nif [ -e '/root/repo' ] || [ -L '/root/repo' ]; then rm -rf '/root/repo'; fi\n"
            ),
            "{s}"
        );
        assert!(s.contains("fetch -q '/tmp/banger-ws.bundle' 'HEAD'"), "{s}");
        assert!(
            s.contains("checkout -q -f -B 'feat/it'\\''s' FETCH_HEAD"),
            "{s}"
        );
        assert!(s.contains("'\tname = \"O'\\''Brien $x\"'"), "{s}");
        assert!(s.ends_with("tar -x -C '/root/repo'\n"), "{s}");
        let detached = checkout(
            "/root/repo",
            &Checkout {
                fetch: "HEAD".into(),
                ..Checkout::default()
            },
        );
        assert!(detached[2].contains("--detach FETCH_HEAD"));
        assert!(!detached[2].contains("[user]"));
        assert!(!detached[2].contains("tar -x"));
        assert_eq!(detached.len(), 3);
    }

    /// A PATH with only the tools a git-less image has (no git).
    fn no_git_path(dir: &std::path::Path) -> std::path::PathBuf {
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).unwrap();
        for tool in ["sh", "rm", "mkdir", "tar", "cat"] {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| std::path::Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap();
            std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
        }
        bin
    }

    #[test]
    fn without_git_the_files_are_copied_and_from_fails_clearly() {
        use std::io::Write;
        let t = tempfile::tempdir().unwrap();
        let bin = no_git_path(t.path());
        let repo = t.path().join("repo");
        let c = Checkout {
            fetch: "HEAD".into(),
            untar: true,
            ..Checkout::default()
        };
        // The files as the host streams them: one tar.
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/a.txt"), "tracked\n").unwrap();
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&src)
            .args(["-cf", "-", "."])
            .output()
            .unwrap()
            .stdout;
        let argv = checkout(repo.to_str().unwrap(), &c);
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env("PATH", &bin)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&tar).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("no git"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(repo.join("sub/a.txt")).unwrap(),
            "tracked\n"
        );
        assert!(!repo.join(".git").exists());

        let from = Checkout {
            fetch: "v1".into(),
            ..Checkout::default()
        };
        let repo = repo.to_str().unwrap();
        for argv in [checkout(repo, &from), export(repo, &"a".repeat(40))] {
            let out = Command::new(&argv[0])
                .args(&argv[1..])
                .env("PATH", &bin)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(NO_GIT), "{argv:?}");
            assert!(String::from_utf8_lossy(&out.stderr).contains("install git in the image"));
        }
    }

    #[test]
    fn receive_and_shell_and_bootstrap() {
        assert_eq!(
            receive_bundle(),
            ["sh", "-c", "cat > '/tmp/banger-ws.bundle'"]
        );
        assert_eq!(
            shell("/root/repo")[2],
            "cd '/root/repo' && exec \"${SHELL:-/bin/sh}\" -l"
        );
        let b = &bootstrap("/root/repo")[2];
        assert!(
            b.contains("|| exit 90")
                && b.contains("cd '/root/repo'")
                && b.ends_with("exec mise install")
        );
    }

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@e")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@e")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The export script, run on a local repo: the patch covers commits, edits and untracked
    /// files, applies at the prepared commit, and leaves index, work tree and refs alone.
    #[test]
    fn export_is_a_patch_against_the_prepared_commit_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        std::fs::write(repo.join("a.txt"), "one\n").unwrap();
        std::fs::write(repo.join(".gitignore"), "*.log\n").unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-qm", "base"]);
        let prepared = git(&repo, &["rev-parse", "HEAD"]).trim().to_owned();
        std::fs::write(repo.join("b.txt"), "committed\n").unwrap();
        git(&repo, &["add", "b.txt"]);
        git(&repo, &["commit", "-qm", "second"]);
        std::fs::write(repo.join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(repo.join("new.bin"), [0u8, 1, 2, 255]).unwrap();
        std::fs::write(repo.join("x.log"), "ignored\n").unwrap();
        let status = git(&repo, &["status", "--porcelain"]);
        let head = git(&repo, &["rev-parse", "HEAD"]);

        let argv = export(repo.to_str().unwrap(), &prepared);
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let patch = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(patch.contains("b.txt") && patch.contains("new.bin") && patch.contains("+two"));
        assert!(!patch.contains("x.log"));
        assert_eq!(git(&repo, &["status", "--porcelain"]), status);
        assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head);

        let check = dir.path().join("check");
        git(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "--detach",
                check.to_str().unwrap(),
                &prepared,
            ],
        );
        let file = dir.path().join("p.diff");
        std::fs::write(&file, &out.stdout).unwrap();
        git(&check, &["apply", "--check", file.to_str().unwrap()]);
    }

    /// The identity written by the shell reads back through git, whatever its characters.
    #[test]
    fn the_user_config_reads_back_through_git() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        let name = "O'Brien \"Bob\" \\ $x\ttab";
        let script = user_config(repo.to_str().unwrap(), Some(name), Some("o@example.com"));
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            git(&repo, &["config", "user.name"]).trim_end_matches('\n'),
            name
        );
        assert_eq!(
            git(&repo, &["config", "user.email"]).trim(),
            "o@example.com"
        );
        assert_eq!(user_config("/r", None, None), "");
    }

    #[test]
    fn commits_are_40_hex() {
        assert!(is_commit(&"a".repeat(40)));
        assert!(!is_commit("abc"));
        assert!(!is_commit(&"g".repeat(40)));
    }
}
