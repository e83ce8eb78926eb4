//! Programs init runs: the image's own, or the ones in banger's OpenSSH bundle.
//!
//! Images without OpenSSH get banger's bundle at
//! [`SSH_BUNDLE_DIR`](banger_guest::paths::SSH_BUNDLE_DIR) when they are pulled: glibc-linked
//! host binaries with their libraries and ELF loader. They are started through that loader
//! (`ld.so --library-path lib bin/NAME …`), so they work whatever libc the image has, or none.
//! The image's own program always wins when it exists.

use std::path::Path;
use std::process::Command;

use banger_guest::paths::SSH_BUNDLE_DIR;

/// A program and the arguments that go before the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The executable.
    pub exe: String,
    /// Leading arguments (the loader's options and the bundled binary).
    pub prefix: Vec<String>,
}

impl Program {
    /// The image's own `path`.
    pub fn direct(path: &str) -> Self {
        Self {
            exe: path.to_owned(),
            prefix: Vec::new(),
        }
    }

    /// `bin/NAME` of the bundle under `dir`, through the bundle's loader.
    pub fn bundled(dir: &str, name: &str) -> Self {
        Self {
            exe: format!("{dir}/ld.so"),
            prefix: vec![
                "--library-path".into(),
                format!("{dir}/lib"),
                format!("{dir}/bin/{name}"),
            ],
        }
    }

    /// Whether this runs a bundled binary.
    pub fn is_bundled(&self) -> bool {
        !self.prefix.is_empty()
    }

    /// The full argument vector for `args`.
    pub fn argv(&self, args: &[&str]) -> Vec<String> {
        self.prefix
            .iter()
            .cloned()
            .chain(args.iter().map(|a| (*a).to_owned()))
            .collect()
    }

    /// A command for `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(self.argv(args));
        c
    }
}

/// The first of `image_paths` that exists (per `exists`), else bundled `name` if the bundle in
/// `dir` has it.
pub fn resolve_in(
    image_paths: &[&str],
    dir: &str,
    name: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Option<Program> {
    if let Some(p) = image_paths.iter().find(|p| exists(p)) {
        return Some(Program::direct(p));
    }
    let bundled = Program::bundled(dir, name);
    (exists(&bundled.exe) && exists(&format!("{dir}/bin/{name}"))).then_some(bundled)
}

/// [`resolve_in`] on the real file system and bundle directory.
pub fn resolve(image_paths: &[&str], name: &str) -> Option<Program> {
    resolve_in(image_paths, SSH_BUNDLE_DIR, name, &|p| {
        Path::new(p).exists()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_wins_then_the_bundle_then_nothing() {
        let dir = "/b";
        let both = |p: &str| ["/usr/sbin/sshd", "/b/ld.so", "/b/bin/sshd"].contains(&p);
        assert_eq!(
            resolve_in(&["/usr/sbin/sshd"], dir, "sshd", &both),
            Some(Program::direct("/usr/sbin/sshd"))
        );
        let bundle_only = |p: &str| ["/b/ld.so", "/b/bin/sshd"].contains(&p);
        let p = resolve_in(&["/usr/sbin/sshd"], dir, "sshd", &bundle_only).unwrap();
        assert!(p.is_bundled());
        assert_eq!(p.exe, "/b/ld.so");
        assert_eq!(
            p.argv(&["-D", "-e"]),
            ["--library-path", "/b/lib", "/b/bin/sshd", "-D", "-e"]
        );
        let loader_only = |p: &str| p == "/b/ld.so";
        assert_eq!(
            resolve_in(&["/usr/sbin/sshd"], dir, "sshd", &loader_only),
            None
        );
    }
}
