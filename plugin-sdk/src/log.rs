//! Logging into the host's log. Never log secrets: the host cannot tell them apart.

use crate::__private::bindings::integrations::auth::log::{self as wit, Level};

/// Logs at debug level.
pub fn debug(message: &str) {
    wit::log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    wit::log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    wit::log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    wit::log(Level::Error, message);
}
