//! The native OAuth2 flow: authorization code with PKCE and state, token exchange, refresh.
//!
//! Built on the [`oauth2`](https://docs.rs/oauth2) crate, which builds every request (client
//! authentication, PKCE, the refresh grant), and on this crate's hardened
//! [`HttpClient`](crate::http::HttpClient), which sends it. Responses are classified here
//! before `oauth2` sees them: providers put errors inside HTTP 200, send `expires_in` as a
//! string or scopes comma-separated, and a redirect must never be followed.

mod app;
mod device;
mod error;
mod flow;
mod response;
mod token;

pub use app::{ClientAuth, OAuth2AppCredentials};
pub use device::DeviceFlow;
pub use error::{ErrorKind, OAuthError, TokenError, sanitize};
pub use flow::OAuth2Flow;
pub(crate) use flow::basic_auth;
pub use response::{MAX_TOKEN_LEN, lifetime};
pub use token::{OAuth2Token, StandardToken, TokenClass, TokenExtras};
