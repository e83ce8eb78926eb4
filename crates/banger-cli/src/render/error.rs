//! How a failed command reads on stderr.
//!
//! `banger: [label: ]message[: cause…] (op-id)`:
//! - the message is the error and its `source` chain joined with `: `;
//! - daemon errors get a short label for their code (`not found: …`), except
//!   `operation_failed` and `unavailable`, whose messages stand on their own;
//! - the daemon's operation id, when there is one, follows dimmed in parentheses so it can be
//!   looked up in the daemon log.

use std::error::Error;

use banger_proto::ErrorCode;

use crate::error::CliError;
use crate::style;

/// The short label shown before a daemon error's message.
pub fn label(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::NotFound => Some("not found"),
        ErrorCode::AlreadyExists => Some("already exists"),
        ErrorCode::BadRequest => Some("bad request"),
        ErrorCode::BadVersion => Some("version mismatch"),
        ErrorCode::Unauthorized => Some("unauthorized"),
        ErrorCode::UnknownMethod => Some("unknown method"),
        ErrorCode::OperationFailed | ErrorCode::Unavailable | ErrorCode::HostProblem => None,
    }
}

/// An error and its causes, joined with `: `; a cause already spelled out by the message
/// before it is not repeated.
pub fn chain(err: &dyn Error) -> String {
    banger_util::chain(err)
}

/// The message part: label and chain, unstyled.
pub fn message(err: &CliError) -> String {
    let text = chain(err);
    match err.daemon_code().and_then(label) {
        Some(label) => format!("{label}: {text}"),
        None => text,
    }
}

/// The whole line, styled (styles vanish on plain streams).
pub fn line(err: &CliError) -> String {
    let mut out = format!("{} {}", style::paint(style::ERROR, "banger:"), message(err));
    if let Some(op) = err.op_id() {
        out.push(' ');
        out.push_str(&style::paint(style::DIM, &format!("({op})")));
    }
    out
}

/// Prints the error to stderr.
pub fn print(err: &CliError) {
    crate::output::info(&line(err));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ApiError;
    use banger_proto::ErrorBody;

    fn daemon(code: ErrorCode, op_id: &str) -> CliError {
        CliError::from(ErrorBody {
            code,
            message: "no vm named \"web\"".into(),
            op_id: op_id.into(),
        })
    }

    fn plain(text: &str) -> String {
        let mut out = Vec::new();
        let mut stream = anstream::StripStream::new(&mut out);
        std::io::Write::write_all(&mut stream, text.as_bytes()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn daemon_errors_carry_label_and_op_id() {
        let err = daemon(ErrorCode::NotFound, "op-42");
        assert_eq!(
            plain(&line(&err)),
            "banger: not found: no vm named \"web\" (op-42)"
        );
    }

    #[test]
    fn operation_failed_shows_just_the_message() {
        let err = daemon(ErrorCode::OperationFailed, "");
        assert_eq!(plain(&line(&err)), "banger: no vm named \"web\"");
    }

    #[test]
    fn local_errors_have_no_label() {
        let err = CliError::Usage("vm name \"A\" contains 'A'".into());
        assert_eq!(plain(&line(&err)), "banger: vm name \"A\" contains 'A'");
    }

    #[test]
    fn causes_are_chained_once() {
        let err = CliError::Api(ApiError::Connect {
            socket: "/s".into(),
            source: std::io::Error::other("boom"),
        });
        assert_eq!(message(&err), "cannot connect to bangerd at /s: boom");
        let err = CliError::Config {
            path: "/c.toml".into(),
            message: "vcpus: unknown field".into(),
        };
        assert_eq!(
            message(&err),
            "invalid config: /c.toml: vcpus: unknown field"
        );
    }

    #[test]
    fn every_code_but_failures_has_a_label() {
        for code in ErrorCode::ALL {
            let expect_none = matches!(
                code,
                ErrorCode::OperationFailed | ErrorCode::Unavailable | ErrorCode::HostProblem
            );
            assert_eq!(label(code).is_none(), expect_none, "{code}");
        }
    }
}
