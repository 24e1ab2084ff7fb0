//! Networking: address classes, the hardened HTTP client, TLS, the loopback redirect listener.

pub(crate) mod address;
pub mod http;
pub mod loopback;
pub(crate) mod tls;
