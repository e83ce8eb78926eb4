//! POSIX shell quoting, shared by everything that builds command lines for a guest's shell
//! (ssh remote commands in banger-ssh, the workspace scripts of the CLI).
//!
//! `ssh` joins its remote arguments with spaces and hands the resulting string to the remote
//! user's login shell (`$SHELL -c STRING`), so arguments are re-split there. To make each argument
//! arrive intact, banger quotes every one of them: the whole argument goes inside single quotes
//! and each embedded `'` becomes `'\''` (close, escaped quote, reopen). Inside single quotes a
//! POSIX shell interprets nothing — not `$`, backquotes, backslashes, globs or newlines — so any
//! string without NUL survives. Arguments are quoted even when they would not need it, which keeps
//! the rule simple and the output predictable (`sh` → `'sh'`).
//!
//! The guest's root shell is assumed to be POSIX (`sh`, `bash`, `dash`, `zsh` all qualify).

/// Quotes one argument for a POSIX shell: `it's` → `'it'\''s'`, empty → `''`.
pub fn quote(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes each argument and joins them with single spaces, ready to be a shell command line.
pub fn join<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    args.into_iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    #[test]
    fn quotes_plain_words() {
        assert_eq!(quote("sh"), "'sh'");
        assert_eq!(join(["sh", "-c", "exit 42"]), "'sh' '-c' 'exit 42'");
    }

    #[test]
    fn quotes_the_awkward_cases() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("'"), r"''\'''");
        assert_eq!(quote("$HOME `id` \\n"), "'$HOME `id` \\n'");
        assert_eq!(quote("a\nb"), "'a\nb'");
    }

    #[test]
    fn join_of_nothing_is_empty() {
        assert_eq!(join(Vec::<String>::new()), "");
    }

    /// What a remote login shell does with the command line: `sh -c LINE`.
    fn run_sh(line: &str) -> std::process::Output {
        Command::new("sh")
            .arg("-c")
            .arg(line)
            .output()
            .expect("run sh")
    }

    #[test]
    fn exit_codes_survive_the_shell() {
        let out = run_sh(&join(["sh", "-c", "exit 42"]));
        assert_eq!(out.status.code(), Some(42));
    }

    fn round_trip(args: &[String]) -> Result<(), TestCaseError> {
        let line = format!("printf '%s\\0' {}", join(args));
        let out = run_sh(&line);
        prop_assert!(out.status.success(), "sh failed: {:?}", out);
        let expected: Vec<u8> = args
            .iter()
            .flat_map(|a| a.bytes().chain(std::iter::once(0)))
            .collect();
        prop_assert_eq!(out.stdout, expected);
        Ok(())
    }

    #[test]
    fn fixed_awkward_arguments_round_trip() {
        let args: Vec<String> = [
            "",
            " ",
            "a b",
            "it's",
            "''",
            "\"",
            "$HOME",
            "${x:-y}",
            "`id`",
            "$(id)",
            "\\",
            "back\\slash\\",
            "new\nline\n",
            "tab\there",
            "*",
            "~",
            "#comment",
            ";&|<>(){}!",
            "-n",
            "ünïcødé 😀",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        round_trip(&args).expect("round trip");
    }

    fn awkward_string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ '\"$`\\\\\n\t*?!#;&|<>(){}~=%a-zé😀-]{0,12}",
            any::<String>().prop_map(|s| s.replace('\0', "")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        // At least one argument: `printf FORMAT` alone still prints the format once.
        #[test]
        fn arbitrary_arguments_round_trip(args in prop::collection::vec(awkward_string(), 1..6)) {
            round_trip(&args)?;
        }
    }
}
