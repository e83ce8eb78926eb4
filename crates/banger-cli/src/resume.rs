//! Picking a followed operation up again after the daemon went away.
//!
//! Guests outlive the daemon, and a restarted daemon adopts the VMs it finds, so a daemon
//! crash in the middle of `vm create` does not mean the create failed. When the connection is
//! lost while [`crate::progress::follow`] polls an operation:
//!
//! 1. reconnect the way every command connects ([`connect_or_start`]: in user mode that starts
//!    a daemon), a few tries over at most [`RECONNECT_LIMIT`];
//! 2. if the daemon knows the operation id, following goes on;
//! 3. if not (operations live in the daemon's memory, so a restarted one has never heard of
//!    it), the operation's target is looked up and its real state reported ([`settle`]): a
//!    running VM is a success, any other state or a missing VM a failure (exit 1) that says
//!    what to do next;
//! 4. if no daemon answers again, the error says the VM may exist and how to check (exit 8).

use std::time::{Duration, Instant};

use banger_model::{ImageRecord, KernelRecord, VmName, VmRecord, VmState};
use banger_proto::{ErrorCode, Operation, OperationState, routes};

use crate::client::connect::connect_or_start;
use crate::client::{ApiError, Client};
use crate::context::Context;
use crate::error::CliError;
use crate::exit::Exit;
use crate::output;

/// The longest time spent trying to reach a daemon again.
pub const RECONNECT_LIMIT: Duration = Duration::from_secs(20);
/// The pause before each try; the tries stop at [`RECONNECT_LIMIT`].
const RECONNECT_WAITS: [Duration; 5] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// What a followed operation was doing, as far as picking it up again goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// `vm.create` of this VM (`None`: the name was not known yet).
    CreateVm(Option<String>),
    /// `vm.start` of this VM.
    StartVm(Option<String>),
    /// `image.pull` of this image.
    PullImage(Option<String>),
    /// `kernel.pull` of this kernel.
    PullKernel(Option<String>),
    /// Anything else: kind and id.
    Other(String, String),
}

impl Task {
    /// The task an operation performs.
    pub fn of(op: &Operation) -> Self {
        let target = op.target.clone().filter(|t| !t.is_empty());
        // A create learns a generated name late; until then its target is a placeholder.
        let vm = || target.clone().filter(|t| VmName::parse(t).is_ok());
        match op.kind.as_str() {
            "vm.create" => Self::CreateVm(vm()),
            "vm.start" => Self::StartVm(vm()),
            "image.pull" => Self::PullImage(target),
            "kernel.pull" => Self::PullKernel(target),
            _ => Self::Other(op.kind.clone(), op.id.clone()),
        }
    }

    /// `the create of web`, for messages.
    fn during(&self) -> String {
        let of = |what: &str, target: &Option<String>| match target {
            Some(t) => format!("the {what} of {t}"),
            None => format!("a {what}"),
        };
        match self {
            Self::CreateVm(t) => of("create", t),
            Self::StartVm(t) => of("start", t),
            Self::PullImage(t) | Self::PullKernel(t) => of("pull", t),
            Self::Other(kind, id) => format!("operation {kind} ({id})"),
        }
    }

    /// How to see for oneself whether the target exists.
    fn check_hint(&self) -> String {
        match self {
            Self::CreateVm(Some(vm)) | Self::StartVm(Some(vm)) => {
                format!("`banger vm show {vm}`")
            }
            Self::PullImage(Some(image)) => format!("`banger image show {image}`"),
            Self::PullKernel(Some(kernel)) => format!("`banger kernel show {kernel}`"),
            Self::PullImage(None) => "`banger image ls`".to_owned(),
            Self::PullKernel(None) => "`banger kernel ls`".to_owned(),
            _ => "`banger vm ls`".to_owned(),
        }
    }
}

/// Whether an API error means the daemon went away: its socket is gone or refuses
/// connections, or the connection broke in the middle of the exchange.
pub fn is_lost(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::NotRunning { .. } | ApiError::Http { .. } | ApiError::Connect { .. }
    )
}

/// Whether the daemon answered that it does not know the operation.
pub fn is_unknown(e: &ApiError) -> bool {
    matches!(e, ApiError::Daemon(body) if body.code == ErrorCode::NotFound)
}

/// The note shown when the connection is lost.
pub fn lost_note(op: &Operation, e: &ApiError) -> String {
    format!(
        "lost bangerd during {} ({}); reconnecting",
        Task::of(op).during(),
        crate::render::error::chain(e)
    )
}

/// The error when no daemon answered again: the target may exist all the same.
pub fn unreachable(op: &Operation, cause: &CliError) -> CliError {
    let task = Task::of(op);
    let maybe = match &task {
        Task::CreateVm(Some(vm)) => format!("{vm} may exist and run all the same"),
        Task::StartVm(Some(vm)) => format!("{vm} may be running all the same"),
        Task::PullImage(Some(t)) | Task::PullKernel(Some(t)) => {
            format!("{t} may have been pulled all the same")
        }
        _ => "it may have finished all the same".to_owned(),
    };
    // The cause can take several lines (a daemon's log tail): the hint comes last.
    CliError::DaemonLost(format!(
        "bangerd went away during {} and could not be reached again: {}\n\
         {maybe}: check with {} once bangerd runs",
        task.during(),
        crate::render::error::message(cause),
        task.check_hint()
    ))
}

/// Reaches a daemon again, starting one where commands do; a few tries, bounded by
/// [`RECONNECT_LIMIT`]. Errors other than "no daemon" (another user's socket, a broken
/// config) end the tries at once.
pub async fn reconnect(ctx: &Context) -> Result<Client, CliError> {
    let deadline = Instant::now() + RECONNECT_LIMIT;
    let mut last = None;
    for wait in RECONNECT_WAITS {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(wait.min(left)).await;
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, connect_or_start(ctx)).await {
            Ok(Ok(daemon)) => return Ok(daemon.client),
            Ok(Err(e)) if e.exit() == Exit::NoDaemon => last = Some(e),
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    Err(last.unwrap_or_else(|| {
        CliError::Failed(format!("no answer within {}s", RECONNECT_LIMIT.as_secs()))
    }))
}

/// What a lookup of the target found.
#[derive(Debug)]
pub enum Found {
    /// A VM in this state, with its last error.
    Vm(String, VmState, Option<String>),
    /// The image or kernel is there.
    Present(String),
    /// Nothing by that name.
    Missing,
}

/// The daemon no longer knows `op`: look its target up and say what became of it. `Ok` with
/// the operation marked succeeded (the target is there and, for a VM, running), after a line
/// saying so; otherwise the failure, or [`unreachable`] when the daemon went away again.
pub async fn settle(client: &Client, mut op: Operation) -> Result<Operation, CliError> {
    let task = Task::of(&op);
    let found = match look_up(client, &task).await {
        Ok(found) => found,
        Err(CliError::Api(e)) if is_lost(&e) => return Err(unreachable(&op, &e.into())),
        Err(e) => return Err(e),
    };
    let (line, name) = outcome(&task, found)?;
    output::info(&line);
    op.state = OperationState::Succeeded;
    op.target = Some(name);
    op.error = None;
    Ok(op)
}

async fn look_up(client: &Client, task: &Task) -> Result<Found, CliError> {
    fn missing<T>(result: Result<T, ApiError>) -> Result<Option<T>, CliError> {
        match result {
            Ok(found) => Ok(Some(found)),
            Err(e) if is_unknown(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    let found = match task {
        Task::CreateVm(Some(vm)) | Task::StartVm(Some(vm)) => {
            missing(client.get::<VmRecord>(routes::GET_VM, &[vm]).await)?
                .map(|vm| Found::Vm(vm.name.to_string(), vm.state, vm.last_error))
        }
        Task::PullImage(Some(image)) => {
            missing(client.get::<ImageRecord>(routes::GET_IMAGE, &[image]).await)?
                .map(|image| Found::Present(image.name))
        }
        Task::PullKernel(Some(kernel)) => missing(
            client
                .get::<KernelRecord>(routes::GET_KERNEL, &[kernel])
                .await,
        )?
        .map(|kernel| Found::Present(kernel.name)),
        _ => return Ok(Found::Missing),
    };
    Ok(found.unwrap_or(Found::Missing))
}

/// The success line and the target's name, or the failure, for what the lookup found.
pub fn outcome(task: &Task, found: Found) -> Result<(String, String), CliError> {
    let during = task.during();
    let verb = match task {
        Task::CreateVm(_) => "create",
        Task::StartVm(_) => "start",
        _ => "pull",
    };
    match (task, found) {
        (Task::Other(..) | Task::CreateVm(None) | Task::StartVm(None), _)
        | (Task::PullImage(None) | Task::PullKernel(None), _) => Err(CliError::Failed(format!(
            "the daemon restarted during {during} and no longer knows it, so how it \
                 ended is unknown: see {}",
            task.check_hint()
        ))),
        (_, Found::Vm(name, VmState::Running, _)) => Ok((
            format!(
                "{name} is running (the daemon restarted during the {verb}; it adopted the VM)"
            ),
            name,
        )),
        (_, Found::Vm(name, state, last_error)) => {
            let why = last_error.map(|e| format!(" ({e})")).unwrap_or_default();
            let next = if matches!(task, Task::StartVm(_)) {
                format!("`banger vm start {name}` tries again")
            } else {
                format!("`banger vm delete {name}` removes it")
            };
            Err(CliError::Failed(format!(
                "the daemon restarted during {during}, and {name} is now {}{why}: \
                 `banger vm logs {name}` shows why; {next}",
                state.as_str()
            )))
        }
        (Task::CreateVm(Some(name)), Found::Missing | Found::Present(_)) => {
            Err(CliError::Failed(format!(
                "the daemon restarted during {during}, and {name} does not exist: the create \
                 did not complete; run it again"
            )))
        }
        (Task::StartVm(Some(name)), Found::Missing | Found::Present(_)) => Err(CliError::Failed(
            format!("the daemon restarted during {during}, and {name} no longer exists"),
        )),
        (_, Found::Present(name)) => Ok((
            format!("{name} is here (the daemon restarted during the pull, after it finished)"),
            name,
        )),
        (Task::PullImage(Some(name)) | Task::PullKernel(Some(name)), Found::Missing) => {
            let group = if matches!(task, Task::PullImage(_)) {
                "image"
            } else {
                "kernel"
            };
            Err(CliError::Failed(format!(
                "the daemon restarted during {during}, and {name} is not here: the pull did \
                 not complete; run `banger {group} pull {name}` again"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: &str, target: Option<&str>) -> Operation {
        Operation {
            id: "op-9".into(),
            kind: kind.into(),
            target: target.map(String::from),
            state: OperationState::Running,
            stages: Vec::new(),
            error: None,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: None,
        }
    }

    fn create(name: &str) -> Task {
        Task::of(&op("vm.create", Some(name)))
    }

    #[test]
    fn tasks_come_from_the_operation_kind_and_target() {
        assert_eq!(create("web"), Task::CreateVm(Some("web".into())));
        // The placeholder of a create whose name is not generated yet is no VM name.
        assert_eq!(create("(unnamed)"), Task::CreateVm(None));
        assert_eq!(
            Task::of(&op("image.pull", Some("debian-bookworm"))),
            Task::PullImage(Some("debian-bookworm".into()))
        );
        assert_eq!(
            Task::of(&op("vm.frobnicate", None)),
            Task::Other("vm.frobnicate".into(), "op-9".into())
        );
    }

    #[test]
    fn a_running_vm_is_a_success_after_a_restart() {
        let found = Found::Vm("web".into(), VmState::Running, None);
        let (line, name) = outcome(&create("web"), found).unwrap();
        assert_eq!(
            line,
            "web is running (the daemon restarted during the create; it adopted the VM)"
        );
        assert_eq!(name, "web");
        let start = Task::StartVm(Some("web".into()));
        let found = Found::Vm("web".into(), VmState::Running, None);
        assert!(
            outcome(&start, found)
                .unwrap()
                .0
                .contains("during the start")
        );
    }

    #[test]
    fn any_other_state_fails_with_what_to_do_next() {
        for state in [VmState::Error, VmState::Created, VmState::Stopped] {
            let found = Found::Vm("web".into(), state, Some("create was interrupted".into()));
            let err = outcome(&create("web"), found).unwrap_err();
            assert_eq!(err.exit().code(), 1);
            let msg = err.to_string();
            assert!(
                msg.contains(&format!(
                    "web is now {} (create was interrupted)",
                    state.as_str()
                )),
                "{msg}"
            );
            assert!(msg.contains("`banger vm logs web`"), "{msg}");
            assert!(msg.contains("`banger vm delete web`"), "{msg}");
        }
        let start = Task::StartVm(Some("web".into()));
        let err = outcome(&start, Found::Vm("web".into(), VmState::Stopped, None)).unwrap_err();
        assert!(err.to_string().contains("`banger vm start web`"), "{err}");
    }

    #[test]
    fn a_missing_target_says_the_work_did_not_complete() {
        let err = outcome(&create("web"), Found::Missing).unwrap_err();
        assert_eq!(err.exit().code(), 1);
        assert!(
            err.to_string()
                .contains("web does not exist: the create did not complete"),
            "{err}"
        );
        let pull = Task::PullKernel(Some("debian-cloud".into()));
        let err = outcome(&pull, Found::Missing).unwrap_err();
        assert!(
            err.to_string()
                .contains("`banger kernel pull debian-cloud` again"),
            "{err}"
        );
        let (line, _) = outcome(&pull, Found::Present("debian-cloud".into())).unwrap();
        assert!(line.starts_with("debian-cloud is here"), "{line}");
        let err = outcome(&Task::CreateVm(None), Found::Missing).unwrap_err();
        assert!(err.to_string().contains("`banger vm ls`"), "{err}");
    }

    #[test]
    fn unreachable_says_the_vm_may_exist_and_how_to_check() {
        let cause = CliError::Failed("no answer".into());
        let err = unreachable(&op("vm.create", Some("web")), &cause);
        assert_eq!(err.exit().code(), 8);
        let msg = err.to_string();
        assert!(msg.contains("during the create of web"), "{msg}");
        assert!(
            msg.contains("could not be reached again: no answer\n"),
            "{msg}"
        );
        assert!(msg.contains("web may exist"), "{msg}");
        assert!(msg.contains("`banger vm show web`"), "{msg}");
    }

    #[test]
    fn only_a_broken_connection_is_lost() {
        let gone = ApiError::from_connect(
            "/s".into(),
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        );
        assert!(is_lost(&gone));
        let slow = ApiError::Timeout {
            method: "GET",
            path: "/v1/operations/op-9".into(),
            secs: 60,
        };
        assert!(!is_lost(&slow));
        assert!(!is_lost(&ApiError::Denied {
            socket: "/s".into()
        }));
    }
}
