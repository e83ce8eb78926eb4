//! Operations: the `daemon operations` table and the stage lines a create prints as it goes.

use banger_proto::{Operation, OperationState, Stage, StageState};

use super::table::Table;
use super::{elapsed, short_id};
use crate::style;

/// What `daemon operations` prints when nothing is in flight.
pub const EMPTY_HINT: &str = "no operations";

fn state_word(state: OperationState) -> &'static str {
    match state {
        OperationState::Running => "running",
        OperationState::Succeeded => "succeeded",
        OperationState::Failed => "failed",
    }
}

/// The stage an operation is at: the running one, else the last one.
fn current_stage(op: &Operation) -> String {
    op.stages
        .iter()
        .find(|s| s.state == StageState::Running)
        .or_else(|| op.stages.last())
        .map_or_else(|| "-".to_owned(), |s| s.name.clone())
}

/// The `daemon operations` table.
pub fn table(ops: &[Operation]) -> Table {
    let mut t = Table::new(&["ID", "KIND", "TARGET", "STATE", "STAGE", "STARTED"]);
    for op in ops {
        t.row(vec![
            op.id.clone(),
            op.kind.clone(),
            op.target.clone().unwrap_or_else(|| "-".to_owned()),
            state_word(op.state).to_owned(),
            current_stage(op),
            op.started_at.clone(),
        ]);
    }
    t
}

/// One line for a finished (or skipped) stage; `None` while it is still running.
pub fn stage_line(stage: &Stage) -> Option<String> {
    let detail = stage
        .detail
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let took = stage
        .duration_ms
        .map(|ms| format!(" {}", style::paint(style::DIM, &elapsed(ms))))
        .unwrap_or_default();
    match stage.state {
        StageState::Running => None,
        StageState::Done => {
            let mut line = format!("  {} {}{took}", style::paint(style::OK, "✓"), stage.name);
            for warning in &stage.warnings {
                line.push_str(&format!(
                    "\n    {} {warning}",
                    style::paint(style::WARN, "warning:")
                ));
            }
            Some(line)
        }
        StageState::Skipped => Some(format!(
            "  {}",
            style::paint(style::DIM, &format!("- {} (skipped)", stage.name))
        )),
        StageState::Failed => Some(format!(
            "  {} {}{detail}{took}",
            style::paint(style::ERROR, "✗"),
            stage.name
        )),
    }
}

/// Frames of the spinner on the live line of a running stage.
const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The most characters of a stage's detail a live line shows.
const LIVE_DETAIL_MAX: usize = 100;

/// Whole seconds for people: `12s`, `1m05s`.
pub fn whole_seconds(secs: u64) -> String {
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// The live line of a running stage on a terminal: spinner frame `frame`, the time it has been
/// running and its detail (bytes so far, a path), e.g. `  ⠋ auto-pull 12s: 40 MiB`. Redrawn
/// in place until the stage ends and its [`stage_line`] replaces it.
pub fn live_line(stage: &Stage, running_secs: u64, frame: usize) -> String {
    let spinner = SPINNER[frame % SPINNER.len()];
    let detail = match stage.detail.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => {
            let mut short: String = d.chars().take(LIVE_DETAIL_MAX).collect();
            if short.len() < d.len() {
                short.push('…');
            }
            format!(": {short}")
        }
        _ => String::new(),
    };
    format!(
        "  {spinner} {} {}{detail}",
        stage.name,
        style::paint(style::DIM, &whole_seconds(running_secs))
    )
}

/// The plain line printed every so often for a long stage when stderr is not a terminal.
pub fn heartbeat_line(stage: &Stage, running_secs: u64) -> String {
    format!(
        "  … {} still running ({})",
        stage.name,
        whole_seconds(running_secs)
    )
}

/// The line for a stage the daemon left running in an operation that has ended: neither a
/// success nor the failure (the failed stage is the one marked failed).
pub fn unfinished_line(stage: &Stage) -> String {
    format!(
        "  {}",
        style::paint(style::DIM, &format!("- {} (did not finish)", stage.name))
    )
}

/// A short reference to an operation for notes.
pub fn reference(op: &Operation) -> String {
    format!("{} {}", op.kind, short_id(&op.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, state: StageState, ms: Option<u64>) -> Stage {
        Stage {
            name: name.into(),
            state,
            detail: None,
            duration_ms: ms,
            warnings: Vec::new(),
        }
    }

    fn op(stages: Vec<Stage>) -> Operation {
        Operation {
            id: "op-1".into(),
            kind: "vm.create".into(),
            target: Some("web".into()),
            state: OperationState::Running,
            stages,
            error: None,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: None,
        }
    }

    #[test]
    fn table_shows_the_running_stage() {
        let o = op(vec![
            stage("prepare disks", StageState::Done, Some(1200)),
            stage("boot", StageState::Running, None),
        ]);
        let lines = table(&[o]).lines();
        assert_eq!(lines[0], "ID    KIND       TARGET  STATE    STAGE  STARTED");
        assert_eq!(
            lines[1],
            "op-1  vm.create  web     running  boot   2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn stage_lines_only_for_ended_stages() {
        assert_eq!(stage_line(&stage("boot", StageState::Running, None)), None);
        let done = stage_line(&stage("boot", StageState::Done, Some(1200))).unwrap();
        assert!(done.contains("boot") && done.contains("1.2s"), "{done}");
        let skipped = stage_line(&stage("auto-pull", StageState::Skipped, None)).unwrap();
        assert!(skipped.contains("auto-pull (skipped)"), "{skipped}");
    }

    #[test]
    fn a_done_stage_shows_its_warnings_under_it() {
        let mut s = stage("file sync", StageState::Done, Some(180));
        s.warnings = vec!["file_sync[2] skipped: /h/x does not exist on the host".into()];
        let line = stage_line(&s).unwrap();
        let lines: Vec<&str> = line.lines().collect();
        assert_eq!(lines.len(), 2, "{line}");
        assert!(
            lines[1].contains("warning:") && lines[1].contains("file_sync[2]"),
            "{line}"
        );
    }

    #[test]
    fn stage_timings_use_the_one_elapsed_format() {
        let fast = stage_line(&stage("network", StageState::Done, Some(4))).unwrap();
        assert!(fast.contains("4ms"), "{fast}");
        let slow = stage_line(&stage("auto-pull", StageState::Done, Some(71_200))).unwrap();
        assert!(slow.contains("1m11s"), "{slow}");
    }

    #[test]
    fn live_lines_show_spinner_time_and_detail() {
        let mut s = stage("auto-pull", StageState::Running, None);
        let plain = live_line(&s, 12, 0);
        assert!(plain.starts_with("  ⠋ auto-pull "), "{plain}");
        assert!(plain.contains("12s"), "{plain}");
        assert!(!plain.contains(':'), "{plain}");
        s.detail = Some("40 MiB of 120 MiB".into());
        let next = live_line(&s, 75, 1);
        assert!(next.starts_with("  ⠙ auto-pull "), "{next}");
        assert!(
            next.contains("1m15s") && next.ends_with(": 40 MiB of 120 MiB"),
            "{next}"
        );
        assert_eq!(
            live_line(&s, 1, 10),
            live_line(&s, 1, 0),
            "frames wrap around"
        );
        s.detail = Some("x".repeat(500));
        let long = live_line(&s, 1, 0);
        assert!(long.ends_with('…') && long.chars().count() < 150, "{long}");
    }

    #[test]
    fn heartbeat_and_unfinished_lines() {
        let s = stage("auto-pull", StageState::Running, None);
        assert_eq!(heartbeat_line(&s, 20), "  … auto-pull still running (20s)");
        assert_eq!(
            heartbeat_line(&s, 70),
            "  … auto-pull still running (1m10s)"
        );
        let u = unfinished_line(&s);
        assert!(
            u.contains("- auto-pull (did not finish)") && !u.contains('✗'),
            "{u}"
        );
    }
}
