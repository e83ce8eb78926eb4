//! Guest configuration files rendered from the boot parameters.
//!
//! Rendering is pure (tested on strings); [`write_atomic`] replaces a file via a temporary file
//! and `rename`, so a crash or power cut never leaves a half-written `/etc/hosts` behind.

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `/etc/hostname`.
pub fn render_hostname(name: &str) -> String {
    format!("{name}\n")
}

/// `/etc/hosts` for a guest called `name` (Debian's layout: the own name on 127.0.1.1).
pub fn render_hosts(name: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n\
         127.0.1.1\t{name}\n\
         \n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n"
    )
}

/// `/etc/resolv.conf` pointing at `dns`.
pub fn render_resolv(dns: Ipv4Addr) -> String {
    format!("# written by banger-agent from banger.dns\nnameserver {dns}\n")
}

/// Replaces `path` with `contents` (mode 0644) atomically.
pub fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".banger-agent.tmp");
    let tmp = dir.join(tmp_name);
    let res = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_maps_localhost_and_own_name() {
        let h = render_hosts("box");
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert_eq!(lines[1], "127.0.1.1\tbox");
        assert!(h.contains("::1\tlocalhost"));
        assert!(h.ends_with('\n'));
    }

    #[test]
    fn resolv_and_hostname() {
        assert_eq!(
            render_resolv(Ipv4Addr::new(10, 0, 0, 1)),
            "# written by banger-agent from banger.dns\nnameserver 10.0.0.1\n"
        );
        assert_eq!(render_hostname("box"), "box\n");
    }

    #[test]
    fn atomic_write_replaces_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("hosts");
        fs::write(&p, "old").expect("seed");
        write_atomic(&p, "new\n").expect("write");
        assert_eq!(fs::read_to_string(&p).expect("read"), "new\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }
}
