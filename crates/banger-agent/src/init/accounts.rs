//! The `/etc/passwd` and `/etc/group` entries banger's bundled sshd needs.
//!
//! OpenSSH refuses to start without its privilege-separation user `sshd`, and needs a `root`
//! entry with a usable login shell to run anyone's command. Application images often have
//! neither (a `scratch`-based image may have no `/etc/passwd` at all). These pure functions
//! add only what is missing and keep every existing line byte for byte; the image's own users,
//! root's home and root's shell are left as the image made them, except that a root shell
//! which does not exist in the image is replaced by `/bin/sh` (otherwise no session could
//! start).

/// The privilege-separation user (and group) of OpenSSH.
pub const PRIVSEP_USER: &str = "sshd";
/// The shell used when root has none in the image.
pub const FALLBACK_SHELL: &str = "/bin/sh";

/// Ids tried for a new `sshd` user or group: system ids, below the usual user range.
const SYSTEM_IDS: std::ops::Range<u32> = 100..1000;

/// Fields of a colon-separated line.
fn fields(line: &str) -> Vec<&str> {
    line.split(':').collect()
}

fn has_entry(text: &str, name: &str) -> bool {
    text.lines().any(|l| fields(l).first() == Some(&name))
}

/// The ids in column `col` of every line.
fn used_ids(text: &str, col: usize) -> Vec<u32> {
    text.lines()
        .filter_map(|l| fields(l).get(col).and_then(|v| v.parse().ok()))
        .collect()
}

fn first_free(used: &[u32]) -> Option<u32> {
    SYSTEM_IDS.clone().find(|id| !used.contains(id))
}

fn append(text: &str, line: &str) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    out
}

/// `/etc/group` with an `sshd` group (the new text only when it changed) and that group's id.
pub fn ensure_group(group: &str) -> Result<(Option<String>, u32), String> {
    if let Some(gid) = group
        .lines()
        .map(fields)
        .find(|f| f.first() == Some(&PRIVSEP_USER))
        .and_then(|f| f.get(2).and_then(|g| g.parse().ok()))
    {
        return Ok((None, gid));
    }
    if has_entry(group, PRIVSEP_USER) {
        return Err(format!("/etc/group has a malformed {PRIVSEP_USER} line"));
    }
    let gid = first_free(&used_ids(group, 2)).ok_or("no free system group id in /etc/group")?;
    Ok((
        Some(append(group, &format!("{PRIVSEP_USER}:x:{gid}:"))),
        gid,
    ))
}

/// `/etc/passwd` with a `root` and an `sshd` entry, and root's shell usable (`shell_exists`
/// tells whether a path is an executable in the image); `None` when nothing had to change.
pub fn ensure_passwd(
    passwd: &str,
    sshd_gid: u32,
    shell_exists: &dyn Fn(&str) -> bool,
) -> Result<Option<String>, String> {
    let mut changed = false;
    let mut out = String::new();
    let mut has_root = false;
    for line in passwd.lines() {
        let mut f = fields(line);
        if f.first() == Some(&"root") && f.len() == 7 {
            has_root = true;
            if !shell_exists(f[6]) {
                f[6] = FALLBACK_SHELL;
                changed = true;
            }
            out.push_str(&f.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !passwd.is_empty() && !passwd.ends_with('\n') {
        changed = true;
    }
    if !has_root {
        if has_entry(passwd, "root") {
            return Err("/etc/passwd has a malformed root line".into());
        }
        out = append(&out, &format!("root:x:0:0:root:/root:{FALLBACK_SHELL}"));
        changed = true;
    }
    if !has_entry(&out, PRIVSEP_USER) {
        let uid = first_free(&used_ids(&out, 2)).ok_or("no free system user id in /etc/passwd")?;
        out = append(
            &out,
            &format!("{PRIVSEP_USER}:x:{uid}:{sshd_gid}:sshd privsep:/run/sshd:/bin/false"),
        );
        changed = true;
    }
    if !shell_exists(FALLBACK_SHELL) && root_shell(&out).is_none_or(|s| !shell_exists(s)) {
        return Err(format!(
            "the image has no shell for root (neither its /etc/passwd shell nor {FALLBACK_SHELL}); \
             SSH sessions cannot start"
        ));
    }
    Ok(changed.then_some(out))
}

/// Root's login shell in `passwd`.
pub fn root_shell(passwd: &str) -> Option<&str> {
    passwd.lines().find_map(|l| {
        let f = fields(l);
        (f.first() == Some(&"root") && f.len() == 7).then(|| f[6])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                          _apt:x:100:65534::/nonexistent:/usr/sbin/nologin\n";

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn group_is_added_once_with_a_free_id() {
        let (new, gid) = ensure_group("root:x:0:\nstaff:x:100:\nusers:x:101:alice").unwrap();
        assert_eq!(gid, 102);
        let new = new.unwrap();
        assert_eq!(
            new,
            "root:x:0:\nstaff:x:100:\nusers:x:101:alice\nsshd:x:102:\n"
        );
        assert_eq!(ensure_group(&new).unwrap(), (None, 102));
        assert_eq!(
            ensure_group("").unwrap(),
            (Some("sshd:x:100:\n".into()), 100)
        );
        assert!(ensure_group("sshd:x:oops:\n").is_err());
    }

    #[test]
    fn passwd_keeps_lines_and_adds_sshd() {
        let new = ensure_passwd(DEBIAN, 102, &all).unwrap().unwrap();
        assert_eq!(
            new,
            format!("{DEBIAN}sshd:x:101:102:sshd privsep:/run/sshd:/bin/false\n")
        );
        assert_eq!(ensure_passwd(&new, 102, &all).unwrap(), None, "idempotent");
    }

    #[test]
    fn missing_root_and_missing_file_get_a_root_with_sh() {
        let new = ensure_passwd("", 100, &all).unwrap().unwrap();
        assert_eq!(
            new,
            "root:x:0:0:root:/root:/bin/sh\nsshd:x:100:100:sshd privsep:/run/sshd:/bin/false\n"
        );
        assert!(
            ensure_passwd("root:x:0\n", 100, &all).is_err(),
            "malformed root"
        );
    }

    #[test]
    fn a_root_shell_missing_from_the_image_becomes_sh() {
        let only_sh = |s: &str| s == "/bin/sh";
        let new = ensure_passwd(DEBIAN, 100, &only_sh).unwrap().unwrap();
        assert!(new.starts_with("root:x:0:0:root:/root:/bin/sh\n"), "{new}");
        assert_eq!(root_shell(&new), Some("/bin/sh"));
        let none = |_: &str| false;
        let e = ensure_passwd(DEBIAN, 100, &none).unwrap_err();
        assert!(e.contains("no shell"), "{e}");
    }
}
