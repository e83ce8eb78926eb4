//! The registry of long operations.
//!
//! A handler that starts slow work calls [`OperationRegistry::begin`], returns the operation
//! id to the client at once, and drives the returned [`OperationHandle`] through its stages.
//! Each operation publishes its latest snapshot on a `watch` channel, so a client can poll
//! (`GET /v1/operations/{id}`) or follow it live without the worker knowing who listens.
//! Finished operations are kept for a while (the newest [`KEEP_FINISHED`]) so a client that
//! polls late still sees the result.
//!
//! Invariant: stages only move forward. Starting a stage closes the running one as done;
//! finishing the operation closes any running stage as done (success) or failed (failure).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

use banger_proto::{ErrorBody, ErrorCode, Operation, OperationState, Stage, StageState};

use crate::ids;

/// How many finished operations are remembered.
pub const KEEP_FINISHED: usize = 64;

/// All operations this daemon has run recently. Cheap to clone.
#[derive(Clone, Default)]
pub struct OperationRegistry {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    entries: HashMap<String, Entry>,
    /// Ids in start order, to list stably and to evict the oldest finished.
    order: Vec<String>,
}

struct Entry {
    tx: watch::Sender<Operation>,
    started: Instant,
    stage_started: Instant,
}

impl OperationRegistry {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts tracking a new operation.
    pub fn begin(&self, kind: &str, target: Option<&str>) -> OperationHandle {
        let id = ids::op_id();
        let op = Operation {
            id: id.clone(),
            kind: kind.to_owned(),
            target: target.map(str::to_owned),
            state: OperationState::Running,
            stages: Vec::new(),
            error: None,
            started_at: ids::now_rfc3339(),
            duration_ms: None,
        };
        let now = Instant::now();
        let mut reg = self.lock();
        reg.entries.insert(
            id.clone(),
            Entry {
                tx: watch::channel(op).0,
                started: now,
                stage_started: now,
            },
        );
        reg.order.push(id.clone());
        reg.evict();
        OperationHandle {
            inner: Arc::new(HandleInner {
                registry: self.clone(),
                id,
            }),
        }
    }

    /// Every remembered operation, oldest first.
    pub fn list(&self) -> Vec<Operation> {
        let reg = self.lock();
        reg.order
            .iter()
            .filter_map(|id| reg.entries.get(id))
            .map(|e| e.tx.borrow().clone())
            .collect()
    }

    /// Operations still running.
    pub fn running(&self) -> Vec<Operation> {
        self.list()
            .into_iter()
            .filter(|op| op.state == OperationState::Running)
            .collect()
    }

    /// One operation's latest snapshot.
    pub fn get(&self, id: &str) -> Option<Operation> {
        self.lock().entries.get(id).map(|e| e.tx.borrow().clone())
    }

    /// Follows one operation: the receiver sees every later snapshot.
    pub fn subscribe(&self, id: &str) -> Option<watch::Receiver<Operation>> {
        self.lock().entries.get(id).map(|e| e.tx.subscribe())
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Operation, &mut Entry, Instant)) {
        let mut reg = self.lock();
        if let Some(entry) = reg.entries.get_mut(id) {
            let now = Instant::now();
            let mut op = entry.tx.borrow().clone();
            if op.state != OperationState::Running {
                return;
            }
            f(&mut op, entry, now);
            entry.tx.send_replace(op);
        }
        reg.evict();
    }
}

impl Registry {
    fn evict(&mut self) {
        let finished: Vec<String> = self
            .order
            .iter()
            .filter(|id| {
                self.entries
                    .get(*id)
                    .is_some_and(|e| e.tx.borrow().state != OperationState::Running)
            })
            .cloned()
            .collect();
        let excess = finished.len().saturating_sub(KEEP_FINISHED);
        for id in finished.into_iter().take(excess) {
            self.entries.remove(&id);
            self.order.retain(|o| *o != id);
        }
    }
}

fn elapsed_ms(since: Instant, now: Instant) -> u64 {
    u64::try_from(now.duration_since(since).as_millis()).unwrap_or(u64::MAX)
}

fn close_running_stage(op: &mut Operation, entry: &Entry, now: Instant, state: StageState) {
    if let Some(last) = op.stages.last_mut()
        && last.state == StageState::Running
    {
        last.state = state;
        last.duration_ms = Some(elapsed_ms(entry.stage_started, now));
    }
}

/// The worker's side of one operation. Clones drive the same operation (a blocking build
/// can take one while its caller keeps another); when the last clone goes away without a
/// result — a panic, an early return — the operation is failed, never left running.
#[derive(Clone)]
pub struct OperationHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    registry: OperationRegistry,
    id: String,
}

impl OperationHandle {
    /// The operation id, to return to the client.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    fn registry(&self) -> &OperationRegistry {
        &self.inner.registry
    }

    /// The operation's latest snapshot.
    pub fn snapshot(&self) -> Operation {
        self.registry()
            .lock()
            .entries
            .get(self.id())
            .map(|e| e.tx.borrow().clone())
            .unwrap_or_else(|| Operation {
                id: self.id().to_owned(),
                kind: String::new(),
                target: None,
                state: OperationState::Failed,
                stages: Vec::new(),
                error: None,
                started_at: ids::now_rfc3339(),
                duration_ms: None,
            })
    }

    /// Starts a stage, closing the running one as done.
    pub fn stage(&self, name: &str) {
        self.registry().update(self.id(), |op, entry, now| {
            close_running_stage(op, entry, now, StageState::Done);
            entry.stage_started = now;
            op.stages.push(Stage {
                name: name.to_owned(),
                state: StageState::Running,
                detail: None,
                duration_ms: None,
                warnings: Vec::new(),
            });
        });
    }

    /// Changes what the operation acts on (a create learns its generated name late).
    pub fn retarget(&self, target: &str) {
        self.registry().update(self.id(), |op, _, _| {
            op.target = Some(target.to_owned());
        });
    }

    /// Sets the running stage's detail (bytes so far, a path).
    pub fn detail(&self, detail: &str) {
        self.registry().update(self.id(), |op, _, _| {
            if let Some(last) = op.stages.last_mut() {
                last.detail = Some(detail.to_owned());
            }
        });
    }

    /// Adds a warning to the running stage: it succeeds, and the user is told.
    pub fn warn(&self, warning: &str) {
        self.registry().update(self.id(), |op, _, _| {
            if let Some(last) = op.stages.last_mut() {
                last.warnings.push(warning.to_owned());
            }
        });
    }

    /// Records a stage that was not needed, closing the running one as done.
    pub fn skip(&self, name: &str, why: &str) {
        self.registry().update(self.id(), |op, entry, now| {
            close_running_stage(op, entry, now, StageState::Done);
            op.stages.push(Stage {
                name: name.to_owned(),
                state: StageState::Skipped,
                detail: Some(why.to_owned()),
                duration_ms: Some(0),
                warnings: Vec::new(),
            });
        });
    }

    /// Ends the operation successfully.
    pub fn succeed(&self) {
        self.registry().update(self.id(), |op, entry, now| {
            close_running_stage(op, entry, now, StageState::Done);
            op.state = OperationState::Succeeded;
            op.duration_ms = Some(elapsed_ms(entry.started, now));
        });
    }

    /// Ends the operation with an error; the running stage is marked failed.
    pub fn fail(&self, code: ErrorCode, message: &str) {
        let id = self.id().to_owned();
        self.registry().update(self.id(), |op, entry, now| {
            close_running_stage(op, entry, now, StageState::Failed);
            op.state = OperationState::Failed;
            op.duration_ms = Some(elapsed_ms(entry.started, now));
            op.error = Some(ErrorBody {
                code,
                message: message.to_owned(),
                op_id: id,
            });
        });
    }
}

impl Drop for HandleInner {
    /// A worker that vanishes without finishing (a panic, an early return) must not leave an
    /// operation "running" forever.
    fn drop(&mut self) {
        let id = self.id.clone();
        self.registry.update(&self.id, |op, entry, now| {
            close_running_stage(op, entry, now, StageState::Failed);
            op.state = OperationState::Failed;
            op.duration_ms = Some(elapsed_ms(entry.started, now));
            op.error = Some(ErrorBody {
                code: ErrorCode::OperationFailed,
                message: "operation ended without a result".to_owned(),
                op_id: id,
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_move_forward_with_timings() {
        let reg = OperationRegistry::default();
        let op = reg.begin("vm.create", Some("web"));
        let id = op.id().to_owned();
        op.stage("resolve image");
        op.skip("auto-pull", "image cached");
        op.stage("prepare disks");
        op.detail("overlay: dm-snapshot");
        assert_eq!(reg.running().len(), 1);
        op.succeed();
        let done = reg.get(&id).unwrap();
        assert_eq!(done.state, OperationState::Succeeded);
        let states: Vec<_> = done
            .stages
            .iter()
            .map(|s| (s.name.as_str(), s.state))
            .collect();
        assert_eq!(
            states,
            [
                ("resolve image", StageState::Done),
                ("auto-pull", StageState::Skipped),
                ("prepare disks", StageState::Done),
            ]
        );
        assert!(done.stages.iter().all(|s| s.duration_ms.is_some()));
        assert_eq!(
            done.stages[2].detail.as_deref(),
            Some("overlay: dm-snapshot")
        );
        assert!(done.duration_ms.is_some());
        assert!(reg.running().is_empty());
    }

    #[test]
    fn failure_marks_the_running_stage_and_carries_the_op_id() {
        let reg = OperationRegistry::default();
        let op = reg.begin("vm.create", None);
        let id = op.id().to_owned();
        op.stage("boot");
        op.fail(ErrorCode::OperationFailed, "kernel panicked");
        let failed = reg.get(&id).unwrap();
        assert_eq!(failed.state, OperationState::Failed);
        assert_eq!(failed.stages[0].state, StageState::Failed);
        let err = failed.error.unwrap();
        assert_eq!(err.op_id, id);
        assert_eq!(err.message, "kernel panicked");
    }

    #[test]
    fn a_dropped_handle_fails_the_operation() {
        let reg = OperationRegistry::default();
        let id = {
            let op = reg.begin("image.pull", None);
            op.stage("download");
            op.id().to_owned()
        };
        let op = reg.get(&id).unwrap();
        assert_eq!(op.state, OperationState::Failed);
        assert_eq!(op.stages[0].state, StageState::Failed);
    }

    #[test]
    fn clones_share_one_operation_that_fails_only_when_the_last_goes() {
        let reg = OperationRegistry::default();
        let op = reg.begin("image.pull", None);
        let id = op.id().to_owned();
        let worker = op.clone();
        let panicked = std::thread::spawn(move || {
            worker.stage("build");
            panic!("the build crashed");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(reg.get(&id).unwrap().state, OperationState::Running);
        assert_eq!(op.snapshot().stages[0].name, "build");
        drop(op);
        let ended = reg.get(&id).unwrap();
        assert_eq!(ended.state, OperationState::Failed);
        assert_eq!(ended.stages[0].state, StageState::Failed);
        assert_eq!(reg.list().len(), 1, "no phantom operation");
    }

    #[tokio::test]
    async fn subscribers_see_progress() {
        let reg = OperationRegistry::default();
        let op = reg.begin("vm.create", None);
        let mut rx = reg.subscribe(op.id()).unwrap();
        op.stage("boot");
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow().stages.len(), 1);
        op.succeed();
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow().state, OperationState::Succeeded);
    }

    #[test]
    fn only_recent_finished_operations_are_kept() {
        let reg = OperationRegistry::default();
        let running = reg.begin("long", None);
        for _ in 0..(KEEP_FINISHED + 10) {
            reg.begin("short", None).succeed();
        }
        let all = reg.list();
        assert_eq!(all.len(), KEEP_FINISHED + 1);
        assert_eq!(
            all[0].id,
            running.id(),
            "running operations are never evicted"
        );
    }
}
