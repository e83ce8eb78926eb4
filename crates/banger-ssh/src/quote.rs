//! POSIX shell quoting for remote command arguments: the model's one implementation
//! ([`banger_model::shell`]), re-exported where the ssh command line is built.

pub use banger_model::shell::{join, quote};
