//! OpenID Connect: provider discovery (cached for its HTTP lifetime, bounded; RFC 8414
//! authorization server metadata where a plain OAuth2 server has no OpenID Connect document)
//! and `id_token` validation against the provider's published keys.
//!
//! Signatures are checked by [`jsonwebtoken`] (on `ring`, the crypto the TLS stack already
//! uses); this module decides which key and which claims: the key by `kid` from the JWKS
//! (fetched again once when a `kid` is unknown, as after a key rotation), only asymmetric
//! algorithms, the key's type matching the algorithm; then `iss`, `aud` (and `azp` with several
//! audiences), `exp` and `iat` with a bounded skew, the `nonce` of the login and `at_hash`.
//! Errors say which check failed, never the token.

mod discovery;
mod id_token;

pub use discovery::{
    DEFAULT_CACHE, DiscoveryError, MAX_CACHE, MetadataKind, ProviderMetadata, discover,
};
pub use id_token::{
    IdTokenClaims, IdTokenError, IdTokenRefused, IdTokenVerifier, MAX_SKEW, NonceCheck,
};
