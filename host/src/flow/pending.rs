//! The pending state between `authorize` and `exchange`: sealed to one provider and flow.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{CallbackError, FlowError};

/// The largest pending state a flow may keep (a plugin's included).
pub const MAX_PENDING_BYTES: usize = 64 * 1024;

/// Opaque flow state between `authorize` and `exchange`, tied to the provider and flow that
/// made it: [`Pending::open`] by another provider or flow is refused (SECURITY.md: a pending
/// state belongs to one provider and flow).
///
/// It may hold secrets (a PKCE verifier), so `Debug` shows only its size. The layout is
/// `provider \0 flow \0 state`, bytes throughout: a plugin's state is kept as it gave it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pending(Vec<u8>);

impl Pending {
    /// Seals `state` (at most [`MAX_PENDING_BYTES`]) for `provider`'s flow `flow`.
    pub fn seal(provider: &str, flow: &str, state: &[u8]) -> Result<Self, FlowError> {
        if state.len() > MAX_PENDING_BYTES {
            return Err(FlowError::Unsupported(format!(
                "the pending login state is {} bytes; at most {MAX_PENDING_BYTES} are kept",
                state.len()
            )));
        }
        let mut bytes = Vec::with_capacity(provider.len() + flow.len() + 2 + state.len());
        bytes.extend_from_slice(provider.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(flow.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(state);
        Ok(Self(bytes))
    }

    /// Seals a serializable state as JSON.
    pub fn seal_json<T: Serialize>(
        provider: &str,
        flow: &str,
        state: &T,
    ) -> Result<Self, FlowError> {
        let json = serde_json::to_vec(state)
            .map_err(|e| FlowError::internal("cannot encode the pending state", e))?;
        Self::seal(provider, flow, &json)
    }

    /// The state, when it was sealed for `provider`'s flow `flow`.
    pub fn open(&self, provider: &str, flow: &str) -> Result<&[u8], CallbackError> {
        let mut parts = self.0.splitn(3, |b| *b == 0);
        let (Some(p), Some(f), Some(state)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CallbackError::BadPending("cannot be read".into()));
        };
        if p != provider.as_bytes() || f != flow.as_bytes() {
            return Err(CallbackError::BadPending(format!(
                "belongs to another provider or flow, not `{provider}`'s flow `{flow}`"
            )));
        }
        Ok(state)
    }

    /// The state sealed by [`Pending::seal_json`].
    pub fn open_json<T: DeserializeOwned>(
        &self,
        provider: &str,
        flow: &str,
    ) -> Result<T, CallbackError> {
        serde_json::from_slice(self.open(provider, flow)?)
            .map_err(|_| CallbackError::BadPending("cannot be read".into()))
    }

    /// The sealed bytes, to keep elsewhere (another process may finish the login).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Sealed bytes kept by [`Pending::as_bytes`].
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pending([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_for_its_provider_and_flow() {
        let p = Pending::seal("github", "oauth2", b"state\0with nul").unwrap();
        assert_eq!(p.open("github", "oauth2").unwrap(), b"state\0with nul");
        // The layout plugins and stores keep: provider, flow, state, NUL-separated.
        assert_eq!(p.as_bytes(), b"github\0oauth2\0state\0with nul");
        let again = Pending::from_bytes(p.as_bytes().to_vec());
        assert_eq!(again.open("github", "oauth2").unwrap(), b"state\0with nul");
        assert!(p.open("github", "device").is_err());
        assert!(p.open("gitlab", "oauth2").is_err());
        assert!(
            Pending::from_bytes(b"junk".to_vec())
                .open("a", "b")
                .is_err()
        );
        assert!(format!("{p:?}").contains("redacted"));
        // 64 KiB is kept, a byte more refused.
        assert_eq!(MAX_PENDING_BYTES, 65_536);
        assert!(Pending::seal("a", "b", &vec![0; MAX_PENDING_BYTES]).is_ok());
        assert!(Pending::seal("a", "b", &vec![0; MAX_PENDING_BYTES + 1]).is_err());
        let j = Pending::seal_json("a", "b", &vec![1, 2]).unwrap();
        assert_eq!(j.open_json::<Vec<u8>>("a", "b").unwrap(), vec![1, 2]);
    }
}
