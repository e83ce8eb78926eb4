//! Following a long operation until it ends, printing each stage as it finishes.
//!
//! The daemon answers a create with an [`Operation`] at once; this polls
//! `GET /v1/operations/{id}` and prints one stderr line per ended stage (plain lines, so logs
//! and pipes read well too). A failed operation becomes the daemon's error, carrying the
//! operation id so it can be found in the daemon log.

use std::time::Duration;

use banger_proto::{Operation, OperationState, routes};

use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::render::operation::{reference, stage_line};

/// Time between polls.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Polls `op` until it ends; `Ok` with the final operation when it succeeded.
pub async fn follow(client: &Client, mut op: Operation) -> Result<Operation, CliError> {
    let mut shown = 0;
    loop {
        shown = print_new_stages(&op, shown);
        match op.state {
            OperationState::Running => {
                tokio::time::sleep(POLL_EVERY).await;
                op = client.get(routes::GET_OPERATION, &[&op.id]).await?;
            }
            OperationState::Succeeded => return Ok(op),
            OperationState::Failed => return Err(failure(op)),
        }
    }
}

/// Prints stages from index `shown` on, up to the first one still running.
fn print_new_stages(op: &Operation, mut shown: usize) -> usize {
    for stage in op.stages.iter().skip(shown) {
        match stage_line(stage) {
            Some(line) => {
                output::info(&line);
                shown += 1;
            }
            None => break,
        }
    }
    shown
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
    use banger_proto::{ErrorBody, ErrorCode, Stage, StageState};

    fn op(state: OperationState, error: Option<ErrorBody>) -> Operation {
        Operation {
            id: "op-9".into(),
            kind: "vm.create".into(),
            target: None,
            state,
            stages: vec![
                Stage {
                    name: "resolve image".into(),
                    state: StageState::Done,
                    detail: None,
                    duration_ms: Some(10),
                },
                Stage {
                    name: "boot".into(),
                    state: StageState::Running,
                    detail: None,
                    duration_ms: None,
                },
            ],
            error,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: None,
        }
    }

    #[test]
    fn stages_print_once_and_in_order() {
        let o = op(OperationState::Running, None);
        assert_eq!(print_new_stages(&o, 0), 1);
        assert_eq!(print_new_stages(&o, 1), 1);
    }

    #[test]
    fn failures_carry_the_operation_id() {
        let body = ErrorBody {
            code: ErrorCode::OperationFailed,
            message: "boot failed".into(),
            op_id: String::new(),
        };
        let err = failure(op(OperationState::Failed, Some(body)));
        assert_eq!(err.op_id(), Some("op-9"));
        assert_eq!(err.exit().code(), 1);
        let err = failure(op(OperationState::Failed, None));
        assert!(err.to_string().contains("vm.create"), "{err}");
    }
}
