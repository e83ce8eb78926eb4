//! Kernel module dependencies, as `modprobe` would resolve them.
//!
//! The initramfs must `insmod` the virtio drivers in dependency order, and busybox's `insmod`
//! does not resolve dependencies. Installed kernels have `modules.dep` (written by `depmod`),
//! but Debian's kernel *package* does not ship it (postinst runs depmod) and the host may lack
//! `kmod`. So [`load`] uses `modules.dep` when present and otherwise derives the same data from
//! `modules.order` plus the `depends=` field of each module's `.modinfo` section. The result can
//! be written back as a `modules.dep` ([`ModuleDeps::to_modules_dep`]) so the guest's own
//! `modprobe` works on the modules tree we ship.
//!
//! Invariant of a `modules.dep` line `a.ko: b.ko c.ko`: the list is the *transitive* closure,
//! ordered so that loading it back to front then `a.ko` succeeds. [`ModuleDeps::resolve`] does
//! its own depth-first ordering, so it does not depend on that order being right.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::elf::{Elf, ElfError};

/// Module dependency data for one kernel release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleDeps {
    /// name → (path relative to the modules dir, transitive dependency paths).
    modules: BTreeMap<String, (String, Vec<String>)>,
    /// Names of modules built into the kernel.
    builtin: BTreeSet<String>,
    /// path → name, for dependency lookups.
    by_path: HashMap<String, String>,
}

/// Modules resolved for loading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Module paths (relative to the modules dir) in the order to load them.
    pub load_order: Vec<String>,
    /// Requested names that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
}

/// Module data is missing, malformed or inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    /// A requested module is neither a module nor built in.
    #[error("kernel has no module `{0}`")]
    Unknown(String),
    /// A module depends on one that is not in the tree.
    #[error("module `{module}` depends on `{dependency}`, which is missing")]
    MissingDependency {
        /// Module.
        module: String,
        /// Missing dependency.
        dependency: String,
    },
    /// Dependencies form a cycle.
    #[error("module dependency cycle through `{0}`")]
    Cycle(String),
    /// A `modules.dep` line has no `:`.
    #[error("malformed modules.dep line `{0}`")]
    Malformed(String),
    /// A compressed module where an uncompressed one is required.
    #[error("module `{0}` is compressed; only uncompressed modules are supported")]
    Compressed(String),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// Path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A module is not a valid ELF object.
    #[error("module {path} is not a valid ELF object")]
    Elf {
        /// Path.
        path: String,
        /// Underlying error.
        #[source]
        source: ElfError,
    },
}

/// The module name of a path: basename without `.ko[.xz|.zst|.gz]`, `-` mapped to `_`.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

/// Whether `path` names a compressed module.
pub fn is_compressed(path: &str) -> bool {
    !path.ends_with(".ko")
}

/// The `depends=` list in a module's `.modinfo` section (names, possibly empty).
pub fn modinfo_depends(ko: &[u8]) -> Result<Vec<String>, ElfError> {
    let elf = Elf::parse(ko)?;
    let Some(info) = elf.section(".modinfo")? else {
        return Ok(Vec::new());
    };
    Ok(info
        .split(|&b| b == 0)
        .filter_map(|field| field.strip_prefix(b"depends="))
        .flat_map(|list| list.split(|&b| b == b','))
        .filter(|d| !d.is_empty())
        .map(|d| String::from_utf8_lossy(d).replace('-', "_"))
        .collect())
}

fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(module_name)
        .collect()
}

impl ModuleDeps {
    fn from_entries(entries: Vec<(String, Vec<String>)>, builtin: BTreeSet<String>) -> Self {
        let mut modules = BTreeMap::new();
        let mut by_path = HashMap::new();
        for (path, deps) in entries {
            let name = module_name(&path);
            by_path.insert(path.clone(), name.clone());
            modules.insert(name, (path, deps));
        }
        ModuleDeps {
            modules,
            builtin,
            by_path,
        }
    }

    /// Parses `modules.dep` and `modules.builtin` text.
    pub fn parse(modules_dep: &str, modules_builtin: &str) -> Result<Self, ModulesError> {
        let mut entries = Vec::new();
        for line in modules_dep.lines().filter(|l| !l.trim().is_empty()) {
            let (path, deps) = line
                .split_once(':')
                .ok_or_else(|| ModulesError::Malformed(line.to_owned()))?;
            entries.push((
                path.trim().to_owned(),
                deps.split_whitespace().map(str::to_owned).collect(),
            ));
        }
        Ok(Self::from_entries(entries, parse_builtin(modules_builtin)))
    }

    /// Builds the data from each module's path and *direct* dependency names (as in
    /// `.modinfo`), computing transitive lists in `modules.dep` order.
    pub fn from_direct(
        direct: &[(String, Vec<String>)],
        modules_builtin: &str,
    ) -> Result<Self, ModulesError> {
        let paths: HashMap<String, &str> = direct
            .iter()
            .map(|(p, _)| (module_name(p), p.as_str()))
            .collect();
        let deps_of: HashMap<&str, &[String]> = direct
            .iter()
            .map(|(p, d)| (p.as_str(), d.as_slice()))
            .collect();
        let mut entries = Vec::new();
        for (path, _) in direct {
            // Post-order DFS: dependencies before dependents.
            let mut order = Vec::new();
            let mut state: HashMap<&str, bool> = HashMap::new(); // false = visiting, true = done
            let mut stack: Vec<(&str, usize)> = vec![(path.as_str(), 0)];
            state.insert(path, false);
            while let Some((current, next)) = stack.pop() {
                let deps = deps_of.get(current).copied().unwrap_or_default();
                if let Some(dep_name) = deps.get(next) {
                    stack.push((current, next + 1));
                    let dep_path =
                        *paths
                            .get(dep_name)
                            .ok_or_else(|| ModulesError::MissingDependency {
                                module: module_name(current),
                                dependency: dep_name.clone(),
                            })?;
                    match state.get(dep_path) {
                        Some(false) => return Err(ModulesError::Cycle(dep_name.clone())),
                        Some(true) => {}
                        None => {
                            state.insert(dep_path, false);
                            stack.push((dep_path, 0));
                        }
                    }
                } else {
                    state.insert(current, true);
                    order.push(current.to_owned());
                }
            }
            order.pop(); // the module itself comes last
            order.reverse();
            entries.push((path.clone(), order));
        }
        Ok(Self::from_entries(entries, parse_builtin(modules_builtin)))
    }

    /// Renders `modules.dep` text (sorted by module name).
    pub fn to_modules_dep(&self) -> String {
        let mut out = String::new();
        for (path, deps) in self.modules.values() {
            out.push_str(path);
            out.push(':');
            for d in deps {
                out.push(' ');
                out.push_str(d);
            }
            out.push('\n');
        }
        out
    }

    /// Number of known (loadable) modules.
    pub fn len(&self) -> usize {
        self.modules.len()
    }

    /// Whether no loadable modules are known.
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// Resolves `wanted` names (`-` and `_` equivalent) into a load order.
    pub fn resolve<S: AsRef<str>>(&self, wanted: &[S]) -> Result<Resolution, ModulesError> {
        let mut res = Resolution::default();
        let mut done: BTreeSet<String> = BTreeSet::new();
        for name in wanted {
            let name = name.as_ref().replace('-', "_");
            if !self.modules.contains_key(&name) {
                if self.builtin.contains(&name) {
                    res.builtin.push(name);
                    continue;
                }
                return Err(ModulesError::Unknown(name));
            }
            self.visit(&name, &mut done, &mut Vec::new(), &mut res.load_order)?;
        }
        Ok(res)
    }

    fn visit(
        &self,
        name: &str,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), ModulesError> {
        if done.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            return Err(ModulesError::Cycle(name.to_owned()));
        }
        let (file, deps) = self
            .modules
            .get(name)
            .ok_or_else(|| ModulesError::Unknown(name.to_owned()))?;
        path.push(name.to_owned());
        for dep in deps.iter().rev() {
            let dep_name = self
                .by_path
                .get(dep)
                .cloned()
                .unwrap_or_else(|| module_name(dep));
            if !self.modules.contains_key(&dep_name) {
                return Err(ModulesError::MissingDependency {
                    module: name.to_owned(),
                    dependency: dep_name,
                });
            }
            self.visit(&dep_name, done, path, out)?;
        }
        path.pop();
        done.insert(name.to_owned());
        out.push(file.clone());
        Ok(())
    }
}

fn read_text(path: &Path) -> Result<String, ModulesError> {
    std::fs::read_to_string(path).map_err(|source| ModulesError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Loads dependency data for the modules tree at `dir` (`…/lib/modules/<release>`).
///
/// Returns the data and whether it was generated (no `modules.dep` in the tree).
pub fn load(dir: &Path) -> Result<(ModuleDeps, bool), ModulesError> {
    let builtin_path = dir.join("modules.builtin");
    let builtin = if builtin_path.is_file() {
        read_text(&builtin_path)?
    } else {
        String::new()
    };
    let dep_path = dir.join("modules.dep");
    if dep_path.is_file() {
        return Ok((ModuleDeps::parse(&read_text(&dep_path)?, &builtin)?, false));
    }
    let order = read_text(&dir.join("modules.order"))?;
    let mut direct = Vec::new();
    for rel in order.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // modules.order may list modules that were not installed; skip those like depmod.
        let file = dir.join(rel);
        if !file.is_file() {
            continue;
        }
        if is_compressed(rel) {
            return Err(ModulesError::Compressed(rel.to_owned()));
        }
        let bytes = std::fs::read(&file).map_err(|source| ModulesError::Read {
            path: file.display().to_string(),
            source,
        })?;
        let deps = modinfo_depends(&bytes).map_err(|source| ModulesError::Elf {
            path: file.display().to_string(),
            source,
        })?;
        direct.push((rel.to_owned(), deps));
    }
    Ok((ModuleDeps::from_direct(&direct, &builtin)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::tests::build_elf;

    const DEP: &str = "\
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";
    const BUILTIN: &str = "kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n";

    fn direct() -> Vec<(String, Vec<String>)> {
        let d =
            |p: &str, deps: &[&str]| (p.to_owned(), deps.iter().map(|s| s.to_string()).collect());
        vec![
            d("kernel/drivers/virtio/virtio_ring.ko", &[]),
            d("kernel/drivers/virtio/virtio.ko", &["virtio_ring"]),
            d(
                "kernel/drivers/virtio/virtio_mmio.ko",
                &["virtio", "virtio_ring"],
            ),
            d("kernel/net/core/failover.ko", &[]),
            d("kernel/drivers/net/net_failover.ko", &["failover"]),
            d(
                "kernel/drivers/net/virtio_net.ko",
                &["virtio_ring", "virtio", "net_failover"],
            ),
            d(
                "kernel/drivers/char/hw_random/virtio-rng.ko",
                &["virtio", "virtio_ring"],
            ),
        ]
    }

    fn valid_order(order: &[String], deps: &ModuleDeps) {
        for (i, path) in order.iter().enumerate() {
            let name = module_name(path);
            let (_, ds) = &deps.modules[&name];
            for d in ds {
                let at = order.iter().position(|p| p == d).expect("dep loaded");
                assert!(at < i, "{d} must load before {path}");
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            module_name("kernel/drivers/char/hw_random/virtio-rng.ko"),
            "virtio_rng"
        );
        assert_eq!(module_name("kernel/fs/ext4/ext4.ko.xz"), "ext4");
        assert!(is_compressed("a.ko.zst"));
        assert!(!is_compressed("a.ko"));
    }

    #[test]
    fn resolves_in_dependency_order_and_skips_builtin() {
        let deps = ModuleDeps::parse(DEP, BUILTIN).expect("parse");
        let r = deps
            .resolve(&["virtio_net", "ext4", "virtio-rng", "virtio_mmio"])
            .expect("resolve");
        assert_eq!(r.builtin, ["ext4"]);
        assert_eq!(r.load_order.len(), 7);
        valid_order(&r.load_order, &deps);
        assert_eq!(r.load_order[0], "kernel/drivers/virtio/virtio_ring.ko");
    }

    #[test]
    fn unknown_and_malformed() {
        let deps = ModuleDeps::parse(DEP, BUILTIN).expect("parse");
        assert!(matches!(deps.resolve(&["nope"]), Err(ModulesError::Unknown(n)) if n == "nope"));
        assert!(matches!(
            ModuleDeps::parse("no colon here\n", ""),
            Err(ModulesError::Malformed(_))
        ));
        let broken = ModuleDeps::parse("a.ko: missing.ko\n", "").expect("parse");
        assert!(matches!(
            broken.resolve(&["a"]),
            Err(ModulesError::MissingDependency { .. })
        ));
        let cyclic = ModuleDeps::parse("a.ko: b.ko\nb.ko: a.ko\n", "").expect("parse");
        assert!(matches!(
            cyclic.resolve(&["a"]),
            Err(ModulesError::Cycle(_))
        ));
    }

    #[test]
    fn generated_matches_depmod_semantics() {
        let generated = ModuleDeps::from_direct(&direct(), BUILTIN).expect("generate");
        let parsed = ModuleDeps::parse(DEP, BUILTIN).expect("parse");
        // Same transitive sets as depmod's file, and a valid back-to-front load order.
        for (name, (path, deps)) in &generated.modules {
            let (ppath, pdeps) = &parsed.modules[name];
            assert_eq!(path, ppath);
            let a: BTreeSet<_> = deps.iter().collect();
            let b: BTreeSet<_> = pdeps.iter().collect();
            assert_eq!(a, b, "{name}");
            let mut order: Vec<String> = deps.iter().rev().cloned().collect();
            order.push(path.clone());
            valid_order(&order, &generated);
        }
        let reparsed = ModuleDeps::parse(&generated.to_modules_dep(), BUILTIN).expect("reparse");
        assert_eq!(reparsed, generated);
    }

    #[test]
    fn generated_detects_cycles_and_missing() {
        let d =
            |p: &str, deps: &[&str]| (p.to_owned(), deps.iter().map(|s| s.to_string()).collect());
        assert!(matches!(
            ModuleDeps::from_direct(&[d("a.ko", &["b"]), d("b.ko", &["a"])], ""),
            Err(ModulesError::Cycle(_))
        ));
        assert!(matches!(
            ModuleDeps::from_direct(&[d("a.ko", &["zz"])], ""),
            Err(ModulesError::MissingDependency { .. })
        ));
    }

    #[test]
    fn modinfo_depends_from_elf() {
        let info = b"license=GPL\0depends=virtio,virtio_ring,net-failover\0intree=Y\0";
        let elf = build_elf(1, &[(".modinfo", 1, info)]);
        assert_eq!(
            modinfo_depends(&elf).expect("parse"),
            ["virtio", "virtio_ring", "net_failover"]
        );
        let none = build_elf(1, &[(".modinfo", 1, b"depends=\0")]);
        assert!(modinfo_depends(&none).expect("parse").is_empty());
    }

    #[test]
    fn load_generates_from_a_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut order = String::new();
        for (path, deps) in direct() {
            let file = dir.path().join(&path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            let info = format!("depends={}\0", deps.join(","));
            std::fs::write(&file, build_elf(1, &[(".modinfo", 1, info.as_bytes())]))
                .expect("write");
            order.push_str(&path);
            order.push('\n');
        }
        order.push_str("kernel/not/installed.ko\n");
        std::fs::write(dir.path().join("modules.order"), order).expect("write");
        std::fs::write(dir.path().join("modules.builtin"), BUILTIN).expect("write");
        let (deps, generated) = load(dir.path()).expect("load");
        assert!(generated);
        assert_eq!(deps.len(), 7);
        assert!(deps.resolve(&["ext4", "virtio_net"]).is_ok());
        std::fs::write(dir.path().join("modules.dep"), deps.to_modules_dep()).expect("write");
        let (again, generated) = load(dir.path()).expect("load");
        assert!(!generated);
        assert_eq!(again, deps);
    }
}
