//! `OAuth2Flow`'s revocation at the provider's RFC 7009 endpoint (refresh token, then access
//! token), and the wait before asking again after a 503.

use super::class::TokenClass;
use super::error::TokenError;
use super::flow::OAuth2Flow;
use super::response::classify;
use crate::flow::{Credential, FlowError};
use crate::util::secret::SecretString;

impl<C: TokenClass> OAuth2Flow<C> {
    /// Revokes the credential at the RFC 7009 revocation endpoint: the refresh token first
    /// (which ends the whole grant at most providers), then the access token. `Ok(false)` when
    /// no revocation endpoint is configured.
    pub async fn revoke_rfc7009(&self, credential: &Credential) -> Result<bool, FlowError> {
        let Some(url) = &self.app.revocation_url else {
            return Ok(false);
        };
        let token = credential
            .as_oauth2()
            .ok_or_else(|| FlowError::Unsupported("only OAuth2 tokens can be revoked".into()))?;
        let mut tokens = Vec::new();
        if let Some(r) = &token.refresh_token {
            tokens.push((r, "refresh_token"));
        }
        tokens.push((&token.access_token, "access_token"));
        // Each is sent even when one fails (say the refresh token with
        // `unsupported_token_type`): the access token still dies at the provider. The first
        // failure is reported.
        let mut failed = None;
        for (secret, hint) in tokens {
            if let Err(e) = self.revoke_one(url, secret, hint).await {
                failed.get_or_insert(e);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    async fn revoke_one(
        &self,
        url: &url::Url,
        token: &SecretString,
        hint: &str,
    ) -> Result<(), FlowError> {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let request = self
                .endpoint_request(url, &[("token", token.expose()), ("token_type_hint", hint)])?;
            let response = self.http.send(request).await.map_err(TokenError::from)?;
            let status = response.status();
            // RFC 7009 §2.2: 200 means revoked (or already invalid), whatever the body.
            if status.is_success() {
                return Ok(());
            }
            let retry = status == http::StatusCode::SERVICE_UNAVAILABLE && attempt < ATTEMPTS;
            if !retry {
                return Err(classify(&response, &|c| self.class.error_kind(c))
                    .err()
                    .unwrap_or(TokenError::Status {
                        status: status.as_u16(),
                        content_type: None,
                    })
                    .into());
            }
            tokio::time::sleep(revocation_retry_wait(response.headers())).await;
        }
        Ok(())
    }
}

/// How long to wait before asking a revocation endpoint again after a 503: its `Retry-After`
/// in seconds (1 s when absent), at most 5 s.
pub(crate) fn revocation_retry_wait(headers: &http::HeaderMap) -> std::time::Duration {
    let secs = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .min(5);
    std::time::Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_is_asked_again_after_its_retry_after_up_to_5_s() {
        let wait = |value: Option<&str>| {
            let mut h = http::HeaderMap::new();
            if let Some(v) = value {
                h.insert(http::header::RETRY_AFTER, v.parse().unwrap());
            }
            revocation_retry_wait(&h).as_secs()
        };
        assert_eq!(wait(None), 1);
        assert_eq!(wait(Some("0")), 0);
        assert_eq!(wait(Some("3")), 3);
        assert_eq!(wait(Some("3600")), 5);
        assert_eq!(wait(Some("Wed, 21 Oct 2015 07:28:00 GMT")), 1);
    }
}
