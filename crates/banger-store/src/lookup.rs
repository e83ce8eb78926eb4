//! User-facing lookups shared by every record kind: exact id, then exact name, then a unique
//! prefix of either.
//!
//! Invariants: an exact id beats an exact name, which beats any prefix match; matching is
//! case-sensitive and literal (prefixes are compared with `substr`, never `LIKE`, so `%` and `_`
//! match only themselves); an empty reference matches nothing; ambiguity lists every candidate as
//! `name (id-prefix)`, sorted, so the user can pick one.

use rusqlite::Connection;

use crate::error::StoreError;
use crate::record::Record;
use crate::repo::{select, select_one};

/// How many characters of an id candidates show.
const ID_PREFIX_LEN: usize = 8;

/// Why a user-facing reference did not name exactly one record.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No id, name or prefix matches.
    #[error("{kind} {reference:?} not found: no id or name is or starts with it")]
    NotFound {
        /// `vm`, `image` or `kernel`.
        kind: &'static str,
        /// What the user typed.
        reference: String,
    },
    /// The reference is a prefix of several ids or names.
    #[error(
        "{kind} {reference:?} is ambiguous: matches {}; use more characters or the full id",
        candidates.join(", ")
    )]
    Ambiguous {
        /// `vm`, `image` or `kernel`.
        kind: &'static str,
        /// What the user typed.
        reference: String,
        /// `name (id-prefix)` of every match, sorted.
        candidates: Vec<String>,
    },
    /// The store could not be read.
    #[error("cannot look up {kind} {reference:?}")]
    Store {
        /// `vm`, `image` or `kernel`.
        kind: &'static str,
        /// What the user typed.
        reference: String,
        /// The store's error (boxed to keep lookups' `Result` small).
        #[source]
        source: Box<StoreError>,
    },
}

/// Resolves `reference` to one record of `R`.
pub(crate) fn resolve<R: Record>(conn: &Connection, reference: &str) -> Result<R, LookupError> {
    let store_error = |source| LookupError::Store {
        kind: R::KIND,
        reference: reference.to_owned(),
        source: Box::new(source),
    };
    if reference.is_empty() {
        return pick(reference, Vec::<R>::new());
    }
    let op = format!("look up {}", R::KIND);
    if let Some(r) = select_one(conn, "WHERE id = ?1", [reference], &op).map_err(store_error)? {
        return Ok(r);
    }
    if let Some(r) = select_one(conn, "WHERE name = ?1", [reference], &op).map_err(store_error)? {
        return Ok(r);
    }
    let matches = select(
        conn,
        "WHERE substr(id, 1, length(?1)) = ?1 OR substr(name, 1, length(?1)) = ?1",
        [reference],
        &op,
    )
    .map_err(store_error)?;
    pick(reference, matches)
}

/// The only match, or why there is not exactly one.
fn pick<R: Record>(reference: &str, mut matches: Vec<R>) -> Result<R, LookupError> {
    match matches.len() {
        0 => Err(LookupError::NotFound {
            kind: R::KIND,
            reference: reference.to_owned(),
        }),
        1 => Ok(matches.remove(0)),
        _ => {
            let mut candidates: Vec<String> = matches
                .iter()
                .map(|r| candidate_label(r.name(), r.id()))
                .collect();
            candidates.sort();
            Err(LookupError::Ambiguous {
                kind: R::KIND,
                reference: reference.to_owned(),
                candidates,
            })
        }
    }
}

/// `name (first 8 characters of the id)`.
fn candidate_label(name: &str, id: &str) -> String {
    let short: String = id.chars().take(ID_PREFIX_LEN).collect();
    format!("{name} ({short})")
}

#[cfg(test)]
mod tests {
    use banger_model::KernelRecord;

    use super::*;

    fn kernel(id: &str, name: &str) -> KernelRecord {
        KernelRecord {
            id: id.into(),
            name: name.into(),
            version: None,
            source: "test".into(),
            vmlinux_path: "/k".into(),
            initrd_path: None,
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn pick_reports_none_one_or_sorted_candidates() {
        let err = pick::<KernelRecord>("zz", vec![]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kernel \"zz\" not found: no id or name is or starts with it"
        );
        let one = pick("a", vec![kernel("1", "a1")]).unwrap();
        assert_eq!(one.name, "a1");
        let err = pick(
            "ab",
            vec![kernel("2b3c4d5e6f", "ab2"), kernel("1a2b3c4d5e6f", "ab1")],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "kernel \"ab\" is ambiguous: matches ab1 (1a2b3c4d), ab2 (2b3c4d5e); \
             use more characters or the full id"
        );
        match err {
            LookupError::Ambiguous { candidates, .. } => {
                assert_eq!(candidates, ["ab1 (1a2b3c4d)", "ab2 (2b3c4d5e)"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_ids_are_shown_whole() {
        assert_eq!(candidate_label("x", "abc"), "x (abc)");
        assert_eq!(candidate_label("x", "0123456789"), "x (01234567)");
    }
}
