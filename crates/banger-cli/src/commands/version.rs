//! `banger version`: the build's fields on separate lines, or as JSON.

use banger_proto::BuildInfo;

use crate::args::version::VersionArgs;
use crate::error::CliError;
use crate::output::Stdout;

/// Prints the version, commit and build time.
pub fn run(args: &VersionArgs) -> Result<(), CliError> {
    let info = banger_proto::build_info!();
    let mut out = Stdout::lock();
    if args.json {
        out.json(&info)?;
    } else {
        out.text(&lines(&info))?;
    }
    out.finish()
}

fn lines(info: &BuildInfo) -> String {
    format!(
        "version: {}\ncommit: {}\nbuilt: {}\n",
        info.version, info.commit, info.built_at
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_field_per_line() {
        let info = BuildInfo {
            version: "0.1.0".into(),
            commit: "abc".into(),
            built_at: "2026-01-01T00:00:00Z".into(),
        };
        assert_eq!(
            lines(&info),
            "version: 0.1.0\ncommit: abc\nbuilt: 2026-01-01T00:00:00Z\n"
        );
    }
}
