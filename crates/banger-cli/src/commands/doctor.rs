//! `banger doctor [-v] [--json]`: can this host run VMs, and what to fix if not.
//!
//! The host checks that need the daemon's adapters (the store opened read-only, the VMM choice,
//! the agent lookup) run in `bangerd doctor --json`: this command runs the `bangerd` that the
//! CLI would start (next to `banger`, else on `PATH`), parses its report and adds what only the
//! CLI knows: whether that `bangerd` exists and runs, whether it and a running daemon come from
//! this CLI's build. It never starts the daemon and creates nothing.
//!
//! Output: a healthy host (no warn or fail) gets one line; otherwise the warn and fail rows with
//! their fixes and a summary line; `-v` shows every row. `--json` prints every check as an
//! array of `{name, status, detail, fix}`. Exit 9 (a host problem) when any check fails.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use banger_proto::{BuildInfo, Check, CheckStatus, DaemonInfo, DoctorReport};

use crate::args::doctor::DoctorArgs;
use crate::client::autostart::{StartError, find_daemon};
use crate::client::{ApiError, Client};
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::output::Stdout;
use crate::style;

/// How long `bangerd doctor` may take (each tool's `--version` is bounded on its side).
const DOCTOR_LIMIT: Duration = Duration::from_secs(60);

/// Runs the checks and renders them.
pub async fn run(args: &DoctorArgs, ctx: &Context) -> Result<(), CliError> {
    let (checks, summary) = match find_daemon() {
        Ok(bangerd) => {
            let (check, report) = run_bangerd(&bangerd, ctx.is_system()).await;
            let mut checks = vec![check];
            match report {
                Some(report) => {
                    checks.push(version(
                        &banger_proto::build_info!(),
                        &report.build,
                        &bangerd,
                    ));
                    checks.push(running_daemon(ctx).await);
                    checks.extend(report.checks);
                    (checks, report.summary)
                }
                None => (checks, String::new()),
            }
        }
        Err(e) => (vec![missing_bangerd(&e)], String::new()),
    };
    let mut out = Stdout::lock();
    if args.json {
        out.json(&checks)?;
    } else {
        out.text(&render(&checks, &summary, args.verbose))?;
    }
    out.finish()?;
    if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        return Err(CliError::Exited(Exit::HostProblem.code()));
    }
    Ok(())
}

fn missing_bangerd(e: &StartError) -> Check {
    Check::fail(
        "bangerd",
        e.to_string(),
        "install banger's binaries (`sudo ./install.sh` from the source tree), or put bangerd \
         next to banger",
    )
}

/// Runs `bangerd doctor --json` and reads its report.
async fn run_bangerd(bangerd: &Path, system: bool) -> (Check, Option<DoctorReport>) {
    let mut cmd = tokio::process::Command::new(bangerd);
    cmd.arg("doctor").arg("--json");
    if system {
        cmd.arg("--system");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = bangerd.display();
    let fix = "install banger and bangerd from one build (`sudo ./install.sh`)";
    let out = match tokio::time::timeout(DOCTOR_LIMIT, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return (
                Check::fail("bangerd", format!("cannot run {shown}: {e}"), fix),
                None,
            );
        }
        Err(_) => {
            return (
                Check::fail(
                    "bangerd",
                    format!(
                        "{shown} doctor did not finish within {}s",
                        DOCTOR_LIMIT.as_secs()
                    ),
                    "run `bangerd doctor` by hand to see which check hangs",
                ),
                None,
            );
        }
    };
    match serde_json::from_slice::<DoctorReport>(&out.stdout) {
        Ok(report) => (Check::ok("bangerd", shown.to_string()), Some(report)),
        Err(e) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let said = stderr.lines().map(str::trim).find(|l| !l.is_empty());
            (
                Check::fail(
                    "bangerd",
                    format!(
                        "{shown} doctor --json gave no report ({}; {e}){}",
                        out.status,
                        said.map(|l| format!(": {l}")).unwrap_or_default()
                    ),
                    fix,
                ),
                None,
            )
        }
    }
}

/// `version`: do this CLI and the `bangerd` it would start come from one build?
fn version(cli: &BuildInfo, daemon: &BuildInfo, bangerd: &Path) -> Check {
    const UNKNOWN: &str = "unknown";
    if cli.commit == UNKNOWN || daemon.commit == UNKNOWN {
        return Check::info(
            "version",
            format!(
                "cannot compare builds without a commit: {} and {}",
                cli.version_line("banger"),
                daemon.version_line("bangerd")
            ),
        );
    }
    if cli.commit == daemon.commit && cli.version == daemon.version {
        return Check::ok(
            "version",
            format!(
                "banger and bangerd are one build: {} (commit {})",
                cli.version,
                cli.short_commit()
            ),
        );
    }
    Check::warn(
        "version",
        format!(
            "{}, but {} is {}",
            cli.version_line("banger"),
            bangerd.display(),
            daemon.version_line("bangerd")
        ),
        "install banger and bangerd from one build (`sudo ./install.sh`), then `banger daemon \
         stop` so the next command starts the new daemon",
    )
}

/// `daemon`: a daemon already running, and its build; never starts one.
async fn running_daemon(ctx: &Context) -> Check {
    let socket = match ctx.layout() {
        Ok(layout) => layout.socket(),
        Err(e) => return Check::warn("daemon", e.to_string(), "set HOME to an absolute path"),
    };
    let answer = Client::new(socket).ping().await;
    daemon_check(&banger_proto::build_info!(), answer)
}

fn daemon_check(cli: &BuildInfo, answer: Result<DaemonInfo, ApiError>) -> Check {
    match answer {
        Ok(info) if info.build.commit == cli.commit && info.build.version == cli.version => {
            Check::ok("daemon", format!("running (pid {}), this build", info.pid))
        }
        Ok(info) => Check::warn(
            "daemon",
            format!(
                "running (pid {}) from another build: {}",
                info.pid,
                info.build.version_line("bangerd")
            ),
            "banger daemon stop (VMs keep running); the next command starts the installed bangerd",
        ),
        Err(ApiError::NotRunning { .. }) => {
            Check::ok("daemon", "not running; banger starts it on demand")
        }
        Err(e) => Check::warn(
            "daemon",
            crate::render::error::chain(&e),
            "banger daemon status shows more",
        ),
    }
}

/// The text output: one line when healthy; otherwise the rows that need attention (all rows
/// with `verbose`) and a summary line.
fn render(checks: &[Check], summary: &str, verbose: bool) -> String {
    let mut out = String::new();
    let attention = checks.iter().filter(|c| !c.status.passed()).count();
    if verbose || attention > 0 {
        let width = checks
            .iter()
            .filter(|c| verbose || !c.status.passed())
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0);
        for c in checks.iter().filter(|c| verbose || !c.status.passed()) {
            out.push_str(&format!(
                "{}  {:<width$}  {}\n",
                status_label(c.status),
                c.name,
                c.detail
            ));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
            }
        }
    }
    let facts = if summary.is_empty() {
        String::new()
    } else {
        format!(" ({summary})")
    };
    if attention == 0 {
        out.push_str(&format!(
            "banger doctor: all {} checks passed{facts}\n",
            checks.len()
        ));
    } else {
        let failed = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .count();
        let warned = attention - failed;
        let more = if verbose {
            ""
        } else {
            "; -v shows every check"
        };
        out.push_str(&format!(
            "banger doctor: {failed} failed, {warned} {}, {} passed{facts}{more}\n",
            if warned == 1 { "warning" } else { "warnings" },
            checks.len() - attention
        ));
    }
    out
}

fn status_label(status: CheckStatus) -> String {
    let style = match status {
        CheckStatus::Ok => style::OK,
        CheckStatus::Info => style::DIM,
        CheckStatus::Warn => style::WARN,
        CheckStatus::Fail => style::ERROR,
    };
    style::paint(style, &format!("{:<4}", status.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The rendering without colour codes (the output stream strips them off a terminal).
    fn plain(checks: &[Check], summary: &str, verbose: bool) -> String {
        anstream::adapter::strip_str(&render(checks, summary, verbose)).to_string()
    }

    fn build(commit: &str) -> BuildInfo {
        BuildInfo {
            version: "0.1.0".into(),
            commit: commit.into(),
            built_at: "2026-12-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn healthy_is_one_line_with_the_summary() {
        let checks = vec![
            Check::ok("kvm", "usable"),
            Check::info("dns", "not built yet"),
        ];
        assert_eq!(
            plain(&checks, "vmm: qemu, kvm: not usable, tcg", false),
            "banger doctor: all 2 checks passed (vmm: qemu, kvm: not usable, tcg)\n"
        );
        let verbose = plain(&checks, "vmm: qemu", true);
        assert!(
            verbose.starts_with("ok    kvm  usable\ninfo  dns  not built yet\n"),
            "{verbose}"
        );
        assert!(
            verbose.ends_with("all 2 checks passed (vmm: qemu)\n"),
            "{verbose}"
        );
    }

    #[test]
    fn problems_show_only_their_rows_fixes_and_a_summary() {
        let checks = vec![
            Check::ok("kvm", "usable"),
            Check::fail("vmm", "no VMM", "install QEMU"),
            Check::warn("store", "no state yet", "nothing to do"),
        ];
        let text = plain(&checks, "vmm: none", false);
        assert_eq!(
            text,
            "fail  vmm    no VMM\n             fix: install QEMU\n\
             warn  store  no state yet\n             fix: nothing to do\n\
             banger doctor: 1 failed, 1 warning, 1 passed (vmm: none); -v shows every check\n"
        );
        let missing = render(
            &[missing_bangerd(&StartError::NotFound {
                dir: PathBuf::from("/x"),
            })],
            "",
            false,
        );
        assert!(
            missing.contains("cannot find bangerd next to /x or on PATH"),
            "{missing}"
        );
        assert!(
            missing
                .ends_with("banger doctor: 1 failed, 0 warnings, 0 passed; -v shows every check\n")
        );
    }

    #[test]
    fn version_drift_warns_unknown_commits_are_not_compared() {
        let path = Path::new("/usr/local/bin/bangerd");
        assert_eq!(
            version(&build("aaaa1111"), &build("aaaa1111"), path).status,
            CheckStatus::Ok
        );
        let drift = version(&build("aaaa1111"), &build("bbbb2222"), path);
        assert_eq!(drift.status, CheckStatus::Warn);
        assert!(
            drift
                .detail
                .contains("/usr/local/bin/bangerd is bangerd 0.1.0 (commit bbbb2222"),
            "{}",
            drift.detail
        );
        assert!(
            drift
                .fix
                .as_deref()
                .unwrap_or_default()
                .contains("banger daemon stop")
        );
        assert_eq!(
            version(&build("unknown"), &build("bbbb2222"), path).status,
            CheckStatus::Info
        );
    }

    #[test]
    fn a_running_daemon_from_another_build_warns() {
        let info = |commit: &str| DaemonInfo {
            build: build(commit),
            pid: 42,
            mode: banger_model::Mode::User,
            owner_uid: 1000,
            socket: PathBuf::from("/run/b.sock"),
            state_dir: PathBuf::from("/s"),
            started_at: "2026-12-01T00:00:00Z".into(),
            dns: None,
            guest_dns: None,
        };
        let cli = build("aaaa1111");
        assert_eq!(
            daemon_check(&cli, Ok(info("aaaa1111"))).status,
            CheckStatus::Ok
        );
        let other = daemon_check(&cli, Ok(info("bbbb2222")));
        assert_eq!(other.status, CheckStatus::Warn);
        assert!(other.detail.contains("pid 42"));
        let down = daemon_check(
            &cli,
            Err(ApiError::NotRunning {
                socket: PathBuf::from("/run/b.sock"),
                source: std::io::ErrorKind::NotFound.into(),
            }),
        );
        assert_eq!(down.status, CheckStatus::Ok);
    }
}
