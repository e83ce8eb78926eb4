//! Following a long operation until it ends, showing its stages as they go.
//!
//! The daemon answers a create with an [`Operation`] at once; this polls
//! `GET /v1/operations/{id}` and shows each stage on stderr:
//!
//! - every ended stage gets one line (`✓`, `-` skipped, `✗` failed), in order, on a terminal
//!   or not, so logs and pipes read well;
//! - on a terminal, the running stage gets a live line redrawn in place (spinner, seconds so
//!   far, the stage's detail), replaced by its final line when it ends;
//! - off a terminal, a stage running longer than [`HEARTBEAT_EVERY`] gets a plain
//!   `… still running (20s)` line every [`HEARTBEAT_EVERY`], so a slow first create never looks
//!   hung in a CI log.
//!
//! `✗` is drawn only on the stage whose state is `failed`; a stage the daemon left running in
//! an ended operation says it did not finish. What to draw is decided by [`View`], a pure
//! state machine over snapshots and instants; [`follow`] only polls and writes. A failed
//! operation becomes the daemon's error, carrying the operation id so it can be found in the
//! daemon log.
//!
//! A daemon that goes away mid-follow is not the end of the operation: [`crate::resume`]
//! reconnects (starting a daemon the usual way) and either keeps following or, when the new
//! daemon never heard of the operation, reports what became of its target.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use banger_proto::{Operation, OperationState, StageState, routes};

use crate::client::Client;
use crate::context::Context;
use crate::error::CliError;
use crate::render::operation::{heartbeat_line, live_line, reference, stage_line, unfinished_line};
use crate::{output, resume};

/// Time between polls (and between redraws of the live line).
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Off a terminal, how often a long stage says it is still running.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// Clears the terminal line the cursor is on and returns to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";
/// Turn automatic wrapping off and on again, so a live line wider than the terminal is cut
/// at its edge instead of wrapping onto a line `\r` cannot reach.
const WRAP_OFF: &str = "\x1b[?7l";
const WRAP_ON: &str = "\x1b[?7h";

/// Something to show on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Draw {
    /// A line that stays; on a terminal it replaces the live line.
    Line(String),
    /// The live line of the running stage, drawn over the previous one (terminals only).
    Live(String),
}

/// What has been shown of one operation so far, and what to show next.
#[derive(Debug)]
pub struct View {
    tty: bool,
    /// Stages `0..shown` have their final line.
    shown: usize,
    /// The running stage: its index, when it was first seen running, and the seconds of the
    /// last heartbeat printed for it.
    running: Option<(usize, Instant, u64)>,
    /// The spinner frame of the next live line.
    frame: usize,
}

impl View {
    /// A view for a terminal (`tty`) or for plain output.
    pub fn new(tty: bool) -> Self {
        Self {
            tty,
            shown: 0,
            running: None,
            frame: 0,
        }
    }

    /// What to draw for snapshot `op` seen at `now`.
    pub fn update(&mut self, op: &Operation, now: Instant) -> Vec<Draw> {
        let ended = op.state != OperationState::Running;
        let mut draws = Vec::new();
        for stage in op.stages.iter().skip(self.shown) {
            let line = match stage_line(stage) {
                Some(line) => line,
                None if ended => unfinished_line(stage),
                None => break,
            };
            draws.push(Draw::Line(line));
            self.shown += 1;
        }
        if ended {
            return draws;
        }
        let Some(stage) = op
            .stages
            .get(self.shown)
            .filter(|s| s.state == StageState::Running)
        else {
            return draws;
        };
        let (since, last_beat) = match self.running {
            Some((index, since, beat)) if index == self.shown => (since, beat),
            _ => (now, 0),
        };
        let secs = now.saturating_duration_since(since).as_secs();
        let mut beat = last_beat;
        if self.tty {
            draws.push(Draw::Live(live_line(stage, secs, self.frame)));
            self.frame = self.frame.wrapping_add(1);
        } else {
            let every = HEARTBEAT_EVERY.as_secs();
            let due = secs / every * every;
            if due > last_beat {
                draws.push(Draw::Line(heartbeat_line(stage, due)));
                beat = due;
            }
        }
        self.running = Some((self.shown, since, beat));
        draws
    }
}

/// Writes draws to stderr, remembering whether a live line is on screen.
struct Screen {
    live: bool,
}

impl Screen {
    fn draw(&mut self, draws: Vec<Draw>) {
        let mut raw = std::io::stderr();
        let mut styled = anstream::stderr();
        for draw in draws {
            // Control sequences go to the raw stream: the styled one strips escapes when
            // colour is off (NO_COLOR), and the live line needs them on any terminal.
            match draw {
                Draw::Line(line) => {
                    if self.live {
                        let _ = raw.write_all(CLEAR_LINE.as_bytes());
                        self.live = false;
                    }
                    let _ = writeln!(styled, "{line}");
                }
                Draw::Live(line) => {
                    let _ = write!(raw, "{CLEAR_LINE}{WRAP_OFF}");
                    let _ = raw.flush();
                    let _ = write!(styled, "{line}");
                    let _ = styled.flush();
                    let _ = raw.write_all(WRAP_ON.as_bytes());
                    self.live = true;
                }
            }
        }
        let _ = raw.flush();
    }

    /// Removes a live line left on screen.
    fn clear(&mut self) {
        if self.live {
            let mut raw = std::io::stderr();
            let _ = raw.write_all(CLEAR_LINE.as_bytes());
            let _ = raw.flush();
            self.live = false;
        }
    }
}

/// How many times one follow reconnects to a daemon that went away.
const MAX_RECONNECTS: usize = 3;

/// Polls `op` until it ends; `Ok` with the final operation when it succeeded. The final
/// operation always has a `duration_ms` (measured here when the daemon gave none). `ctx` is
/// for reconnecting when the daemon goes away meanwhile.
pub async fn follow(
    ctx: &Context,
    client: &Client,
    mut op: Operation,
) -> Result<Operation, CliError> {
    let started = Instant::now();
    let mut client = client.clone();
    let mut reconnects = 0;
    let mut view = View::new(std::io::stderr().is_terminal());
    let mut screen = Screen { live: false };
    loop {
        screen.draw(view.update(&op, Instant::now()));
        match op.state {
            OperationState::Running => {
                // The daemon answers at the operation's next change or after POLL_EVERY,
                // so each stage (and the end) shows at once and the live line still ticks.
                let path = format!(
                    "{}?wait_ms={}",
                    routes::GET_OPERATION.url(&[&op.id]),
                    POLL_EVERY.as_millis()
                );
                let asked = Instant::now();
                match client.get_path(routes::GET_OPERATION, &path).await {
                    Ok(next) => {
                        if next == op {
                            // Unchanged early: a daemon that does not wait. Never spin.
                            tokio::time::sleep(POLL_EVERY.saturating_sub(asked.elapsed())).await;
                        }
                        op = next;
                    }
                    Err(e) if resume::is_lost(&e) => {
                        screen.clear();
                        if reconnects == MAX_RECONNECTS {
                            return Err(resume::unreachable(&op, &e.into()));
                        }
                        reconnects += 1;
                        output::note(&resume::lost_note(&op, &e));
                        client = resume::reconnect(ctx)
                            .await
                            .map_err(|cause| resume::unreachable(&op, &cause))?;
                    }
                    Err(e) if resume::is_unknown(&e) => {
                        // Operations live in the daemon's memory: this one restarted.
                        screen.clear();
                        let mut done = resume::settle(&client, op).await?;
                        done.duration_ms = u64::try_from(started.elapsed().as_millis()).ok();
                        return Ok(done);
                    }
                    Err(e) => {
                        screen.clear();
                        return Err(e.into());
                    }
                }
            }
            OperationState::Succeeded => {
                screen.clear();
                if op.duration_ms.is_none() {
                    op.duration_ms = u64::try_from(started.elapsed().as_millis()).ok();
                }
                return Ok(op);
            }
            OperationState::Failed => {
                screen.clear();
                return Err(failure(op));
            }
        }
    }
}

fn failure(op: Operation) -> CliError {
    match op.error {
        Some(mut body) => {
            if body.op_id.is_empty() {
                body.op_id = op.id;
            }
            body.into()
        }
        None => CliError::Failed(format!("{} failed without saying why", reference(&op))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_proto::{ErrorBody, ErrorCode, Stage};

    fn stage(name: &str, state: StageState, detail: Option<&str>, ms: Option<u64>) -> Stage {
        Stage {
            name: name.into(),
            state,
            detail: detail.map(String::from),
            duration_ms: ms,
            warnings: Vec::new(),
        }
    }

    fn op(state: OperationState, stages: Vec<Stage>, error: Option<ErrorBody>) -> Operation {
        Operation {
            id: "op-9".into(),
            kind: "vm.create".into(),
            target: None,
            state,
            stages,
            error,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: None,
        }
    }

    fn booting() -> Operation {
        op(
            OperationState::Running,
            vec![
                stage("resolve image", StageState::Done, None, Some(10)),
                stage("boot", StageState::Running, Some("qemu pid 7"), None),
            ],
            None,
        )
    }

    fn lines(draws: &[Draw]) -> Vec<&str> {
        draws
            .iter()
            .filter_map(|d| match d {
                Draw::Line(l) => Some(l.as_str()),
                Draw::Live(_) => None,
            })
            .collect()
    }

    fn lives(draws: &[Draw]) -> Vec<&str> {
        draws
            .iter()
            .filter_map(|d| match d {
                Draw::Live(l) => Some(l.as_str()),
                Draw::Line(_) => None,
            })
            .collect()
    }

    #[test]
    fn ended_stages_print_once_and_in_order() {
        let t0 = Instant::now();
        let mut view = View::new(false);
        let first = view.update(&booting(), t0);
        assert_eq!(lines(&first).len(), 1);
        assert!(lines(&first)[0].contains("resolve image"));
        assert!(
            view.update(&booting(), t0 + Duration::from_secs(1))
                .is_empty()
        );
    }

    #[test]
    fn a_terminal_gets_a_live_line_with_time_and_detail() {
        let t0 = Instant::now();
        let mut view = View::new(true);
        let first = view.update(&booting(), t0);
        assert_eq!(lives(&first).len(), 1, "{first:?}");
        assert!(lives(&first)[0].starts_with("  ⠋ boot "), "{first:?}");
        assert!(lives(&first)[0].ends_with(": qemu pid 7"), "{first:?}");
        let later = view.update(&booting(), t0 + Duration::from_millis(12_300));
        assert_eq!(lines(&later).len(), 0, "{later:?}");
        let live = lives(&later)[0];
        assert!(
            live.starts_with("  ⠙ boot ") && live.contains("12s"),
            "{live}"
        );
        // The stage ends: its final line replaces the live one, and nothing is live.
        let mut done = booting();
        done.stages[1] = stage("boot", StageState::Done, None, Some(12_500));
        done.state = OperationState::Succeeded;
        let last = view.update(&done, t0 + Duration::from_secs(13));
        assert_eq!(lives(&last).len(), 0, "{last:?}");
        assert!(lines(&last)[0].contains("✓") && lines(&last)[0].contains("12.5s"));
    }

    #[test]
    fn plain_output_gets_a_heartbeat_every_ten_seconds() {
        let t0 = Instant::now();
        let mut view = View::new(false);
        let at = |s: u64| t0 + Duration::from_millis(s * 1000 + 100);
        view.update(&booting(), t0);
        let mut beats = Vec::new();
        for s in 1..=35 {
            for d in view.update(&booting(), at(s)) {
                let Draw::Line(l) = d else {
                    panic!("a live line off a terminal: {d:?}")
                };
                beats.push(l);
            }
        }
        assert_eq!(
            beats,
            [
                "  … boot still running (10s)",
                "  … boot still running (20s)",
                "  … boot still running (30s)",
            ]
        );
    }

    #[test]
    fn a_new_stage_restarts_the_clock() {
        let t0 = Instant::now();
        let mut view = View::new(true);
        view.update(&booting(), t0);
        let mut next = booting();
        next.stages[1] = stage("boot", StageState::Done, None, Some(30_000));
        next.stages
            .push(stage("wait for agent", StageState::Running, None, None));
        let draws = view.update(&next, t0 + Duration::from_secs(30));
        assert!(lines(&draws)[0].contains("boot"), "{draws:?}");
        let live = lives(&draws)[0];
        assert!(
            live.contains("wait for agent") && live.contains("0s"),
            "{live}"
        );
    }

    #[test]
    fn the_cross_is_on_the_failed_stage_only() {
        let failed = op(
            OperationState::Failed,
            vec![
                stage("prepare disks", StageState::Done, None, Some(600)),
                stage("network", StageState::Running, None, None),
                stage(
                    "boot",
                    StageState::Failed,
                    Some("see /x/console.log"),
                    Some(90),
                ),
            ],
            None,
        );
        for tty in [false, true] {
            let mut view = View::new(tty);
            let draws = view.update(&failed, Instant::now());
            assert!(lives(&draws).is_empty(), "{draws:?}");
            let l = lines(&draws);
            assert_eq!(l.len(), 3, "{l:?}");
            assert!(l[0].contains('✓') && !l[0].contains('✗'), "{l:?}");
            assert!(l[1].contains("network (did not finish)") && !l[1].contains('✗'));
            assert!(l[2].contains('✗') && l[2].contains("boot: see /x/console.log"));
        }
    }

    #[test]
    fn a_failure_after_live_stages_marks_the_failed_one() {
        let t0 = Instant::now();
        let mut view = View::new(true);
        view.update(&booting(), t0);
        let mut failed = booting();
        failed.stages[1] = stage("boot", StageState::Failed, Some("kernel panic"), Some(900));
        failed.state = OperationState::Failed;
        let draws = view.update(&failed, t0 + Duration::from_secs(1));
        let l = lines(&draws);
        assert_eq!(l.len(), 1, "{draws:?}");
        assert!(
            l[0].contains("✗") && l[0].contains("boot: kernel panic"),
            "{l:?}"
        );
    }

    #[test]
    fn failures_carry_the_operation_id() {
        let body = ErrorBody {
            code: ErrorCode::OperationFailed,
            message: "boot failed".into(),
            op_id: String::new(),
        };
        let err = failure(op(OperationState::Failed, Vec::new(), Some(body)));
        assert_eq!(err.op_id(), Some("op-9"));
        assert_eq!(err.exit().code(), 1);
        let err = failure(op(OperationState::Failed, Vec::new(), None));
        assert!(err.to_string().contains("vm.create"), "{err}");
    }
}
