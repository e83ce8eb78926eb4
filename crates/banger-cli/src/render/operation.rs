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
        StageState::Done => Some(format!(
            "  {} {}{took}",
            style::paint(style::OK, "✓"),
            stage.name
        )),
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
    fn stage_timings_use_the_one_elapsed_format() {
        let fast = stage_line(&stage("network", StageState::Done, Some(4))).unwrap();
        assert!(fast.contains("4ms"), "{fast}");
        let slow = stage_line(&stage("auto-pull", StageState::Done, Some(71_200))).unwrap();
        assert!(slow.contains("1m11s"), "{slow}");
    }
}
