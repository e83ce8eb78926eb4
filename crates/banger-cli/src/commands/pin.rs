//! Pinning the records a destructive command acts on (`vm delete|stop|kill`, `image rm`,
//! `kernel rm`) before it acts.
//!
//! The daemon resolves a reference as exact id, exact name, then unique prefix, so a typo
//! (`vm delete w`) can name a VM the user never meant. Rules:
//!
//! 1. Each reference is looked up first (`GET` of the record). A lookup error (not found,
//!    ambiguous) is kept for that reference and reported when the command gets to it.
//! 2. A record whose name and id both differ from what was typed matched only by prefix. With
//!    `-f` that is fine; on a terminal the user is asked (`[y/N]`, a no leaves it alone); off
//!    a terminal the whole command is refused (exit 2) before anything is touched.
//! 3. The destructive request then names the record by its **id**, so a VM renamed or
//!    created between the lookup and the request cannot become the target.
//!
//! Every question is asked before the first destructive request is sent.

use banger_model::{ImageRecord, KernelRecord, VmRecord};
use banger_proto::routes::{self, Route};
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::CliError;
use crate::render::short_id;
use crate::{output, prompt};

/// A kind of record and how to look one up.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// `vm`, `image` or `kernel`, as in messages.
    pub noun: &'static str,
    /// The route that shows one record.
    route: Route,
    /// Reads `(id, name)` from the looked-up record.
    lookup: Lookup,
}

#[derive(Debug, Clone, Copy)]
enum Lookup {
    Vm,
    Image,
    Kernel,
}

/// VMs.
pub const VM: Kind = Kind {
    noun: "vm",
    route: routes::GET_VM,
    lookup: Lookup::Vm,
};
/// Images.
pub const IMAGE: Kind = Kind {
    noun: "image",
    route: routes::GET_IMAGE,
    lookup: Lookup::Image,
};
/// Kernels.
pub const KERNEL: Kind = Kind {
    noun: "kernel",
    route: routes::GET_KERNEL,
    lookup: Lookup::Kernel,
};

/// What the command does, for the question and the refusal.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    /// `delete`, `stop`, `kill`.
    pub verb: &'static str,
    /// `deleted`, `stopped`, `killed`.
    pub done: &'static str,
}

/// One record, pinned by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// What the user typed.
    pub reference: String,
    /// The record's id: what the destructive request names.
    pub id: String,
    /// The record's name, for messages.
    pub name: String,
}

/// How a reference matched its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Its exact id or exact name.
    Exact,
    /// Only a prefix of the id or the name.
    Prefix,
}

/// How `reference` matched the record with `id` and `name`.
pub fn matched(reference: &str, id: &str, name: &str) -> Match {
    if reference == id || reference == name {
        Match::Exact
    } else {
        Match::Prefix
    }
}

/// `"w" matches vm webapp (id 1a2b3c4d) only by prefix`.
fn prefix_match(kind: Kind, p: &Pinned) -> String {
    format!(
        "{:?} matches {} {} (id {}) only by prefix",
        p.reference,
        kind.noun,
        p.name,
        short_id(&p.id)
    )
}

/// The question asked on a terminal.
pub fn question(kind: Kind, action: Action, p: &Pinned) -> String {
    format!("{}; {} it? [y/N] ", prefix_match(kind, p), action.verb)
}

/// The refusal off a terminal.
pub fn refusal(kind: Kind, action: Action, p: &Pinned) -> CliError {
    CliError::Usage(format!(
        "{}; not {} without asking, and stdin is not a terminal: use the full name, or -f",
        prefix_match(kind, p),
        action.done
    ))
}

/// Looks every reference up and settles prefix-only matches (see the module doc). The outer
/// error refuses the whole command; each inner result is one reference's record or why it
/// could not be looked up. References the user declined are left out, with a note.
pub async fn pin_all(
    client: &Client,
    kind: Kind,
    action: Action,
    references: &[String],
    force: bool,
) -> Result<Vec<Result<Pinned, CliError>>, CliError> {
    let mut looked_up = Vec::with_capacity(references.len());
    for reference in references {
        looked_up.push(look_up(client, kind, reference).await);
    }
    let interactive = prompt::interactive();
    if !force && !interactive {
        // Refuse before asking anything or touching anything.
        let prefixed = looked_up.iter().flatten().find(|p| is_prefix(p));
        if let Some(p) = prefixed {
            return Err(refusal(kind, action, p));
        }
    }
    let mut pinned = Vec::with_capacity(looked_up.len());
    for result in looked_up {
        match result {
            Ok(p) if !force && is_prefix(&p) => {
                if prompt::confirm(&question(kind, action, &p)).await? {
                    pinned.push(Ok(p));
                } else {
                    output::note(&format!("{} not {}", p.name, action.done));
                }
            }
            other => pinned.push(other),
        }
    }
    Ok(pinned)
}

fn is_prefix(p: &Pinned) -> bool {
    matched(&p.reference, &p.id, &p.name) == Match::Prefix
}

async fn look_up(client: &Client, kind: Kind, reference: &str) -> Result<Pinned, CliError> {
    async fn get<T: DeserializeOwned>(
        client: &Client,
        route: Route,
        reference: &str,
    ) -> Result<T, CliError> {
        Ok(client.get(route, &[reference]).await?)
    }
    let (id, name) = match kind.lookup {
        Lookup::Vm => {
            let vm: VmRecord = get(client, kind.route, reference).await?;
            (vm.id, vm.name.to_string())
        }
        Lookup::Image => {
            let image: ImageRecord = get(client, kind.route, reference).await?;
            (image.id, image.name)
        }
        Lookup::Kernel => {
            let kernel: KernelRecord = get(client, kind.route, reference).await?;
            (kernel.id, kernel.name)
        }
    };
    Ok(Pinned {
        reference: reference.to_owned(),
        id,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELETE: Action = Action {
        verb: "delete",
        done: "deleted",
    };

    fn webapp(reference: &str) -> Pinned {
        Pinned {
            reference: reference.into(),
            id: "1a2b3c4d5e6f7081".into(),
            name: "webapp".into(),
        }
    }

    #[test]
    fn only_a_reference_that_is_neither_name_nor_id_is_a_prefix_match() {
        let id = "1a2b3c4d5e6f7081";
        assert_eq!(matched("webapp", id, "webapp"), Match::Exact);
        assert_eq!(matched(id, id, "webapp"), Match::Exact);
        assert_eq!(matched("w", id, "webapp"), Match::Prefix);
        assert_eq!(matched("1a2b", id, "webapp"), Match::Prefix);
        // A name that is itself an id prefix of another record is still exact for its own.
        assert_eq!(matched("1a2b", id, "1a2b"), Match::Exact);
    }

    #[test]
    fn the_question_and_the_refusal_name_the_match() {
        assert_eq!(
            question(VM, DELETE, &webapp("w")),
            "\"w\" matches vm webapp (id 1a2b3c4d) only by prefix; delete it? [y/N] "
        );
        let stop = Action {
            verb: "stop",
            done: "stopped",
        };
        assert!(question(VM, stop, &webapp("w")).ends_with("; stop it? [y/N] "));
        let refused = refusal(IMAGE, DELETE, &webapp("w"));
        assert_eq!(refused.exit().code(), 2);
        assert_eq!(
            refused.to_string(),
            "\"w\" matches image webapp (id 1a2b3c4d) only by prefix; not deleted without \
             asking, and stdin is not a terminal: use the full name, or -f"
        );
    }
}
