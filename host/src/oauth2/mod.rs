//! The native OAuth2 flows: authorization code with PKCE and state, the device grant, token
//! exchange, refresh and revocation.
//!
//! The [`oauth2`](https://docs.rs/oauth2) crate builds the authorization URL and is the
//! configured client behind [`OAuth2Flow::client`]; this crate's hardened
//! [`HttpClient`](crate::net::http::HttpClient) sends every request. Token responses are read once, by
//! rules that accept what real providers send (errors inside HTTP 200, `expires_in` as a
//! string, comma-separated scopes) and refuse everything unsafe; a redirect is never followed.

mod app;
pub mod assertion;
mod class;
mod code;
mod device;
mod error;
mod flow;
pub mod machine;
mod request;
mod response;
mod revoke;

pub use app::{ClientAuth, OAuth2AppCredentials, TokenRequestFormat};
pub use class::{StandardToken, TokenClass};
pub use code::AuthorizationError;
pub use device::DeviceFlow;
pub(crate) use device::Grant;
pub use error::{ErrorKind, OAuthError, TokenError};
pub use flow::{ID_TOKEN_CLAIMS, OAuth2Client, OAuth2Flow};
pub(crate) use request::basic_auth;
pub(crate) use response::lifetime;
#[cfg(feature = "plugins")]
pub(crate) use response::{MAX_SCOPES, check_token_type, secret_text, token_text};
pub(crate) use revoke::revocation_retry_wait;
