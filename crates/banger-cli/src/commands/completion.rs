//! `banger completion SHELL`: a completion script on stdout.
//!
//! Commands and flags come from clap_complete, generated from the same clap tree as the
//! parser, so they cannot go stale. On top of that each script gets a small hook that asks
//! `banger __complete line --cur=WORD -- WORDS…` (see [`super::complete`]) for live names —
//! VMs, images, kernels, catalog names — and uses them when there are any, falling back to the
//! static completion otherwise. The hook is registered in place of clap's own function.
//!
//! Printing the script never contacts or starts the daemon and writes no file. clap_complete
//! panics on write errors, so the script is rendered into memory first and written through
//! [`Stdout`], where a closed pipe is an ordinary error.

use clap_complete::Shell as ClapShell;

use crate::args::completion::{CompletionArgs, Shell};
use crate::error::CliError;
use crate::output::Stdout;

/// Prints the completion script for the requested shell.
pub fn run(args: &CompletionArgs) -> Result<(), CliError> {
    let script = script(args.shell);
    let mut out = Stdout::lock();
    out.text(&script)?;
    out.finish()
}

fn script(shell: Shell) -> String {
    let generator = match shell {
        Shell::Bash => ClapShell::Bash,
        Shell::Zsh => ClapShell::Zsh,
        Shell::Fish => ClapShell::Fish,
        Shell::Powershell => ClapShell::PowerShell,
    };
    let mut cmd = crate::cli::command(None);
    let mut buf = Vec::new();
    clap_complete::generate(generator, &mut cmd, "banger", &mut buf);
    let generated = String::from_utf8_lossy(&buf).into_owned();
    match shell {
        Shell::Bash => bash(&generated),
        Shell::Zsh => zsh(&generated),
        Shell::Fish => format!("{generated}{FISH_HOOK}"),
        Shell::Powershell => powershell(&generated),
    }
}

/// Bash: `_banger_live` asks for names and otherwise calls clap's `_banger`; it is what
/// `complete -F` registers. The name list is read line by line so the static completion
/// keeps the caller's `IFS`.
const BASH_HOOK: &str = r#"
# Live names (VMs, images, kernels, catalog) from a daemon that already runs; never starts one.
_banger_live() {
    local bin="${COMP_WORDS[0]}"
    command -v -- "$bin" >/dev/null 2>&1 || bin=banger
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local -a names=()
    local name
    while IFS= read -r name; do
        [[ -n "$name" ]] && names+=("$name")
    done < <("$bin" __complete line "--cur=${cur}" -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)
    if (( ${#names[@]} > 0 )); then
        COMPREPLY=("${names[@]}")
        return 0
    fi
    _banger "$@"
}
"#;

fn bash(generated: &str) -> String {
    let registered = generated.replace("complete -F _banger ", "complete -F _banger_live ");
    // The hook goes before the registration at the end of clap's script.
    match registered.rfind("\nif [[ \"${BASH_VERSINFO[0]}\"") {
        Some(at) => format!(
            "{}{BASH_HOOK}{}",
            &registered[..at + 1],
            &registered[at + 1..]
        ),
        None => format!("{registered}{BASH_HOOK}complete -F _banger_live banger\n"),
    }
}

/// Zsh: the same hook with `compadd`; clap's trailer (which runs `_banger` when autoloaded
/// from `fpath`, or registers it with `compdef`) is pointed at the hook instead.
const ZSH_HOOK: &str = r#"
# Live names (VMs, images, kernels, catalog) from a daemon that already runs; never starts one.
_banger_live() {
    local bin="${words[1]}"
    (( $+commands[$bin] )) || [[ -x "$bin" ]] || bin=banger
    local -a names
    names=(${(f)"$("$bin" __complete line "--cur=${words[CURRENT]}" -- "${(@)words[2,CURRENT-1]}" 2>/dev/null)"})
    if (( ${#names} > 0 )); then
        compadd -a names
        return 0
    fi
    _banger "$@"
}

"#;

const ZSH_TRAILER: &str = "if [ \"$funcstack[1]\" = \"_banger\" ]; then\n    _banger \"$@\"\nelse\n    compdef _banger banger\nfi";

/// Autoloaded from `fpath`, this file is the body of `_banger` and redefines it as clap's
/// function, so the hook is registered on the first run too.
const ZSH_LIVE_TRAILER: &str = "if [ \"$funcstack[1]\" = \"_banger\" ]; then\n    compdef _banger_live banger\n    _banger_live \"$@\"\nelse\n    compdef _banger_live banger\nfi";

fn zsh(generated: &str) -> String {
    match generated.rfind(ZSH_TRAILER) {
        Some(at) => format!(
            "{}{ZSH_HOOK}{ZSH_LIVE_TRAILER}{}",
            &generated[..at],
            &generated[at + ZSH_TRAILER.len()..]
        ),
        None => format!("{generated}{ZSH_HOOK}compdef _banger_live banger\n"),
    }
}

/// Fish merges every matching `complete` rule, so one more rule whose candidates come from
/// `__complete` adds live names where there are any and nothing elsewhere.
const FISH_HOOK: &str = r#"
# Live names (VMs, images, kernels, catalog) from a daemon that already runs; never starts one.
function __fish_banger_live
    set -l words (commandline -opc)
    set -l bin $words[1]
    command -q -- $bin; or set bin banger
    set -e words[1]
    $bin __complete line --cur=(commandline -ct) -- $words 2>/dev/null
end
complete -c banger -a '(__fish_banger_live)'
"#;

/// PowerShell allows one completer per command: clap's script block is kept as
/// `$global:__bangerStatic` and a new completer tries the live names first. The current word
/// travels as `--cur=WORD` because older PowerShell drops empty arguments to native commands.
const POWERSHELL_HOOK: &str = r#"
# Live names (VMs, images, kernels, catalog) from a daemon that already runs; never starts one.
Register-ArgumentCompleter -Native -CommandName 'banger' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements |
        Where-Object { $_.Extent.EndOffset -lt $cursorPosition } |
        Select-Object -Skip 1 |
        ForEach-Object { $_.ToString() })
    $live = @(& banger __complete line "--cur=$wordToComplete" -- @words 2>$null)
    if ($live.Count -gt 0) {
        $live | ForEach-Object {
            [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
        }
        return
    }
    & $global:__bangerStatic $wordToComplete $commandAst $cursorPosition
}
"#;

const POWERSHELL_CLAP: &str =
    "Register-ArgumentCompleter -Native -CommandName 'banger' -ScriptBlock {";

fn powershell(generated: &str) -> String {
    if generated.contains(POWERSHELL_CLAP) {
        let kept = generated.replacen(POWERSHELL_CLAP, "$global:__bangerStatic = {", 1);
        format!("{kept}{POWERSHELL_HOOK}")
    } else {
        // clap changed its script: keep it as it is rather than break it.
        generated.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Shell; 4] = [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Powershell];

    #[test]
    fn scripts_know_the_groups() {
        for shell in ALL {
            let text = script(shell);
            assert!(text.contains("banger"), "{shell:?}");
            assert!(text.contains("workspace"), "{shell:?}");
        }
    }

    #[test]
    fn every_script_asks_for_live_names() {
        for shell in ALL {
            let text = script(shell);
            assert!(
                text.contains("__complete line \"--cur=")
                    || text.contains("__complete line --cur="),
                "{shell:?}: {text}"
            );
        }
    }

    #[test]
    fn the_hook_replaces_clap_registration() {
        let bash = script(Shell::Bash);
        assert!(!bash.contains("complete -F _banger "), "{bash}");
        assert_eq!(bash.matches("complete -F _banger_live ").count(), 2);
        assert!(bash.find("_banger_live() {") < bash.find("complete -F _banger_live"));

        let zsh = script(Shell::Zsh);
        assert!(zsh.contains(ZSH_LIVE_TRAILER), "{zsh}");
        assert!(!zsh.contains(ZSH_TRAILER), "{zsh}");
        assert!(zsh.find("_banger_live() {") < zsh.find(ZSH_LIVE_TRAILER));

        let ps = script(Shell::Powershell);
        assert!(ps.contains("$global:__bangerStatic = {"), "{ps}");
        assert_eq!(ps.matches("Register-ArgumentCompleter").count(), 1, "{ps}");

        let fish = script(Shell::Fish);
        assert!(fish.ends_with("complete -c banger -a '(__fish_banger_live)'\n"));
    }
}
