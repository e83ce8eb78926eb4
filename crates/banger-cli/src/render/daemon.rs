//! `daemon status`: who is answering on the socket.

use banger_model::Mode;
use banger_proto::DaemonInfo;

use super::fields::Fields;

fn mode_word(mode: Mode) -> &'static str {
    match mode {
        Mode::User => "user",
        Mode::System => "system",
    }
}

/// The `daemon status` block.
pub fn status(info: &DaemonInfo) -> String {
    let mut f = Fields::new();
    f.add("pid", info.pid.to_string())
        .add("version", info.build.version_line("bangerd"))
        .add("mode", mode_word(info.mode))
        .add("socket", info.socket.display().to_string())
        .add("state dir", info.state_dir.display().to_string())
        .add("started at", info.started_at.clone())
        .opt("dns", info.dns.clone())
        .opt("guest dns", info.guest_dns.clone());
    f.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_proto::BuildInfo;

    #[test]
    fn status_names_every_field() {
        let info = DaemonInfo {
            build: BuildInfo {
                version: "0.1.0".into(),
                commit: "1a2b3c4d5e".into(),
                built_at: "2026-01-01T00:00:00Z".into(),
            },
            pid: 42,
            mode: Mode::User,
            owner_uid: 1000,
            socket: "/run/user/1000/banger/bangerd.sock".into(),
            state_dir: "/home/u/.local/state/banger".into(),
            started_at: "2026-01-01T00:00:01Z".into(),
            dns: Some("serving the vm zone on 127.0.0.1:42069".into()),
            guest_dns: Some("serving guests on 172.30.0.1:53".into()),
        };
        assert_eq!(
            status(&info),
            "pid:        42\n\
             version:    bangerd 0.1.0 (commit 1a2b3c4d, built 2026-01-01T00:00:00Z)\n\
             mode:       user\n\
             socket:     /run/user/1000/banger/bangerd.sock\n\
             state dir:  /home/u/.local/state/banger\n\
             started at: 2026-01-01T00:00:01Z\n\
             dns:        serving the vm zone on 127.0.0.1:42069\n\
             guest dns:  serving guests on 172.30.0.1:53\n"
        );
    }
}
