//! Build stamp (version, commit, build time): see `banger-proto/stamp.rs`.

include!("../banger-proto/stamp.rs");
