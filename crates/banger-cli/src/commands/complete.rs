//! `banger __complete`: the live names behind the completion scripts.
//!
//! The scripts call `banger __complete line --cur=WORD -- WORDS…` with the words typed after
//! `banger` and before the cursor; this decides whether WORD is a VM, image, kernel or
//! catalog name ([`kind_at`], walking the same clap tree as the parser) and prints matching
//! names, one per line. Anywhere else it prints nothing and the script falls back to its
//! static completion of commands and flags. `banger __complete vms|images|kernels|catalog
//! [PREFIX]` lists one kind directly.
//!
//! Invariants: it never starts a daemon (one request to the socket, nothing if nobody
//! answers), every request is bounded by [`LIMIT`], and it never prints to stderr or fails:
//! whatever goes wrong, the answer is "no names" and exit 0. Catalog names come from config
//! (the default image and `[[catalog]]` entries), so they complete before any daemon runs.

use std::time::Duration;

use banger_model::{ImageRecord, KernelRecord, VmRecord};
use banger_proto::routes::{self, Route};
use clap::Command;
use serde::de::DeserializeOwned;

use crate::args::completion::CompleteArgs;
use crate::client::Client;
use crate::context::Context;
use crate::output::Stdout;

/// The longest a completion may wait for the daemon.
const LIMIT: Duration = Duration::from_millis(800);

/// What a word on the command line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// VM names.
    Vms,
    /// Local image names.
    Images,
    /// Local kernel names.
    Kernels,
    /// Catalog names (pullable images).
    Catalog,
    /// Local images and catalog names (`--image`).
    ImagesOrCatalog,
}

impl Kind {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "vms" => Some(Self::Vms),
            "images" => Some(Self::Images),
            "kernels" => Some(Self::Kernels),
            "catalog" => Some(Self::Catalog),
            _ => None,
        }
    }
}

/// Prints the names asked for; never fails and never writes to stderr.
pub async fn run(args: &CompleteArgs, ctx: &Context) {
    let Some((kind, cur, entered)) = request(&args.args) else {
        return;
    };
    let all = match tokio::time::timeout(LIMIT * 2, names(kind, ctx)).await {
        Ok(all) => all,
        Err(_) => return,
    };
    let mut out = Stdout::lock();
    for name in matching(all, &cur, &entered) {
        if out.line(&name).is_err() {
            return;
        }
    }
    let _ = out.finish();
}

/// What the arguments ask for: a kind, the word to complete, and names already on the line
/// that must not be offered again.
fn request(args: &[String]) -> Option<(Kind, String, Vec<String>)> {
    let (first, rest) = args.split_first()?;
    if first != "line" {
        let prefix = rest.first().cloned().unwrap_or_default();
        return Kind::parse(first).map(|k| (k, prefix, Vec::new()));
    }
    let (cur, rest) = match rest.split_first() {
        Some((c, rest)) if c.starts_with("--cur=") => (c["--cur=".len()..].to_owned(), rest),
        _ => (String::new(), rest),
    };
    let words = match rest.split_first() {
        Some((dashes, words)) if dashes == "--" => words,
        _ => rest,
    };
    let at = kind_at(&crate::cli::command(None), words, &cur)?;
    Some((at.kind, cur, at.entered))
}

/// The kind of word at the cursor, and the positional words already given to its command.
#[derive(Debug, PartialEq, Eq)]
pub struct At {
    /// What the word names.
    pub kind: Kind,
    /// Earlier names for a command that takes several (not offered twice).
    pub entered: Vec<String>,
}

/// What the word `cur` after `before` (the words after `banger`) names, if it is a name.
pub fn kind_at(root: &Command, before: &[String], cur: &str) -> Option<At> {
    let mut cmd = root;
    let mut path: Vec<&str> = Vec::new();
    let mut positionals: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    for word in before {
        if pending.take().is_some() {
            continue;
        }
        if word == "--" {
            // What follows is a command for the guest.
            return None;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            let arg = cmd.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases()
                        .is_some_and(|aliases| aliases.contains(&name))
            });
            if let Some(arg) = arg
                && arg.get_action().takes_values()
                && !inline
            {
                pending = Some(arg.get_id().to_string());
            }
            continue;
        }
        if let Some(shorts) = word.strip_prefix('-')
            && !shorts.is_empty()
        {
            let count = shorts.chars().count();
            for (i, c) in shorts.chars().enumerate() {
                let arg = cmd.get_arguments().find(|a| a.get_short() == Some(c));
                if let Some(arg) = arg
                    && arg.get_action().takes_values()
                {
                    if i + 1 == count {
                        pending = Some(arg.get_id().to_string());
                    }
                    break;
                }
            }
            continue;
        }
        if positionals.is_empty()
            && let Some(sub) = cmd.find_subcommand(word)
        {
            cmd = sub;
            path.push(sub.get_name());
            continue;
        }
        positionals.push(word.clone());
    }
    if let Some(flag) = pending {
        return flag_kind(&path, &flag).map(|kind| At {
            kind,
            entered: Vec::new(),
        });
    }
    if cur.starts_with('-') {
        return None;
    }
    let (kind, variadic) = positional_kind(&path, positionals.len())?;
    Some(At {
        kind,
        entered: if variadic { positionals } else { Vec::new() },
    })
}

/// The kind of the positional argument at `index` of the command at `path`, and whether the
/// command takes several of them.
fn positional_kind(path: &[&str], index: usize) -> Option<(Kind, bool)> {
    match (path, index) {
        (["vm", "start" | "stop" | "restart" | "kill" | "delete"], _) => Some((Kind::Vms, true)),
        (
            [
                "vm",
                "show" | "logs" | "stats" | "ports" | "set" | "health" | "ssh" | "exec",
            ],
            0,
        )
        | (["vm", "workspace", "prepare" | "export"] | ["image", "promote"], 0) => {
            Some((Kind::Vms, false))
        }
        (["image", "show"], 0) => Some((Kind::Images, false)),
        (["image", "delete"], _) => Some((Kind::Images, true)),
        (["image", "pull"], 0) => Some((Kind::Catalog, false)),
        (["kernel", "show" | "rm"], 0) => Some((Kind::Kernels, false)),
        _ => None,
    }
}

/// The kind of the value of flag `id` of the command at `path`.
fn flag_kind(path: &[&str], id: &str) -> Option<Kind> {
    match (path, id) {
        (["vm", "run" | "create"], "image") => Some(Kind::ImagesOrCatalog),
        (["image", "register"], "kernel") => Some(Kind::Kernels),
        _ => None,
    }
}

/// Every name of `kind`: catalog names from config, the rest from a daemon that already
/// answers (none otherwise).
async fn names(kind: Kind, ctx: &Context) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(kind, Kind::Catalog | Kind::ImagesOrCatalog) {
        let config = ctx.config_or_default();
        out.push(config.default_image().to_owned());
        out.extend(config.catalog.iter().map(|c| c.name.clone()));
    }
    let Ok(layout) = ctx.layout() else {
        return out;
    };
    let client = Client::new(layout.socket()).capped(LIMIT);
    match kind {
        Kind::Vms => {
            out.extend(listed::<VmRecord>(&client, routes::LIST_VMS, |v| v.name.to_string()).await)
        }
        Kind::Images | Kind::ImagesOrCatalog => {
            out.extend(listed::<ImageRecord>(&client, routes::LIST_IMAGES, |i| i.name).await);
        }
        Kind::Kernels => {
            out.extend(listed::<KernelRecord>(&client, routes::LIST_KERNELS, |k| k.name).await);
        }
        Kind::Catalog => {}
    }
    out
}

/// The names of a list route, or none when no daemon answers (it is never started).
async fn listed<T: DeserializeOwned>(
    client: &Client,
    route: Route,
    name: impl Fn(T) -> String,
) -> Vec<String> {
    client
        .get::<Vec<T>>(route, &[])
        .await
        .map(|items| items.into_iter().map(name).collect())
        .unwrap_or_default()
}

/// Names starting with `cur`, sorted, without duplicates or ones already `entered`.
fn matching(mut names: Vec<String>, cur: &str, entered: &[String]) -> Vec<String> {
    names.retain(|n| n.starts_with(cur) && !entered.contains(n));
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: &str, cur: &str) -> Option<At> {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        kind_at(&crate::cli::command(None), &words, cur)
    }

    fn kind(line: &str, cur: &str) -> Option<Kind> {
        at(line, cur).map(|a| a.kind)
    }

    #[test]
    fn vm_commands_complete_vm_names() {
        for line in [
            "vm ssh",
            "vm stop",
            "vm start",
            "vm rm",
            "vm delete",
            "vm show",
            "vm logs -f",
            "vm logs --follow",
            "vm exec --auto-prepare",
            "vm workspace export",
            "vm workspace prepare",
            "image promote",
        ] {
            assert_eq!(kind(line, ""), Some(Kind::Vms), "{line}");
            assert_eq!(kind(line, "we"), Some(Kind::Vms), "{line}");
        }
    }

    #[test]
    fn several_vms_skip_the_ones_already_given() {
        let a = at("vm stop web db", "").unwrap();
        assert_eq!(a.kind, Kind::Vms);
        assert_eq!(a.entered, ["web", "db"]);
        // A single-VM command takes no second VM.
        assert_eq!(kind("vm ssh web", ""), None);
        assert_eq!(kind("vm workspace prepare web", ""), None);
    }

    #[test]
    fn images_kernels_and_catalog() {
        assert_eq!(kind("image show", ""), Some(Kind::Images));
        assert_eq!(kind("image rm a", ""), Some(Kind::Images));
        assert_eq!(kind("image pull", ""), Some(Kind::Catalog));
        assert_eq!(kind("kernel show", ""), Some(Kind::Kernels));
        assert_eq!(kind("kernel delete", ""), Some(Kind::Kernels));
        assert_eq!(kind("vm run --image", ""), Some(Kind::ImagesOrCatalog));
        assert_eq!(
            kind("vm create --name web --image", "deb"),
            Some(Kind::ImagesOrCatalog)
        );
        assert_eq!(kind("image register --kernel", ""), Some(Kind::Kernels));
    }

    #[test]
    fn flags_values_and_guest_commands_are_not_names() {
        assert_eq!(kind("vm ssh", "-"), None);
        assert_eq!(kind("vm ssh web --", ""), None);
        assert_eq!(kind("vm run --name", ""), None);
        // A flag's value is skipped: the VM comes after it.
        assert_eq!(kind("vm run --image=x", ""), None);
        assert_eq!(
            kind("vm workspace export -o out.patch", ""),
            Some(Kind::Vms)
        );
        assert_eq!(kind("", ""), None);
        assert_eq!(kind("vm", ""), None);
        assert_eq!(kind("ps", ""), None);
        assert_eq!(kind("kernel pull", ""), None);
    }

    #[test]
    fn requests_parse_both_forms() {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (k, cur, _) = request(&s(&["vms", "we"])).unwrap();
        assert_eq!((k, cur.as_str()), (Kind::Vms, "we"));
        let (k, cur, _) = request(&s(&["line", "--cur=w", "--", "vm", "ssh"])).unwrap();
        assert_eq!((k, cur.as_str()), (Kind::Vms, "w"));
        // A shell that drops an empty --cur= still works.
        let (k, cur, _) = request(&s(&["line", "--", "vm", "ssh"])).unwrap();
        assert_eq!((k, cur.as_str()), (Kind::Vms, ""));
        assert!(request(&s(&["line", "--cur=", "--", "vm"])).is_none());
        assert!(request(&s(&["bogus"])).is_none());
        assert!(request(&[]).is_none());
    }

    #[test]
    fn matching_filters_sorts_and_dedups() {
        let names = ["web", "db", "web-2", "web"].map(String::from).to_vec();
        assert_eq!(matching(names.clone(), "we", &[]), ["web", "web-2"]);
        assert_eq!(matching(names, "", &["web".into()]), ["db", "web-2"]);
    }

    #[test]
    fn the_table_names_real_commands() {
        let root = crate::cli::command(None);
        let paths: &[&[&str]] = &[
            &["vm", "start"],
            &["vm", "stop"],
            &["vm", "restart"],
            &["vm", "kill"],
            &["vm", "delete"],
            &["vm", "show"],
            &["vm", "logs"],
            &["vm", "stats"],
            &["vm", "ports"],
            &["vm", "set"],
            &["vm", "health"],
            &["vm", "ssh"],
            &["vm", "exec"],
            &["vm", "workspace", "prepare"],
            &["vm", "workspace", "export"],
            &["image", "promote"],
            &["image", "show"],
            &["image", "delete"],
            &["image", "pull"],
            &["kernel", "show"],
            &["kernel", "rm"],
        ];
        for path in paths {
            let mut cmd = &root;
            for name in *path {
                cmd = cmd
                    .find_subcommand(name)
                    .unwrap_or_else(|| panic!("no {path:?}"));
            }
            assert!(positional_kind(path, 0).is_some(), "{path:?}");
        }
        let run = root.find_subcommand("vm").unwrap().find_subcommand("run");
        assert!(run.unwrap().get_arguments().any(|a| a.get_id() == "image"));
        let reg = root.find_subcommand("image").unwrap();
        let reg = reg.find_subcommand("register").unwrap();
        assert!(reg.get_arguments().any(|a| a.get_id() == "kernel"));
    }
}
