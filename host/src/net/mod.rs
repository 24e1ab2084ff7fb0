//! Networking: address classes, the hardened HTTP client, TLS, the loopback redirect listener.

pub(crate) mod address;
pub(crate) mod http;
pub(crate) mod loopback;
pub(crate) mod tls;
