//! Leaf helpers every layer uses: text that came from outside, secrets, names, owner-only
//! files.

pub(crate) mod names;
pub(crate) mod private_fs;
pub(crate) mod secret;
pub(crate) mod text;
