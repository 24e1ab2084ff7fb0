//! How a configured provider's client proves itself at the provider's endpoints: the key
//! that signs client assertions, and the HTTP client that presents a TLS client certificate.

use std::sync::Arc;

use super::service_account::ServiceAccount;
use super::settings::ProviderSettings;
use crate::flow::FlowError;
use crate::net::http::{HttpClient, HttpPolicy};
use crate::oauth2::ClientAuth;
use crate::oauth2::assertion::{KeyFileError, SigningKey, read_private_file};

/// The key that signs client assertions, for `client_auth = "private_key_jwt"` (the
/// `private_key_file`, else the service account's key) or `"client_secret_jwt"` (the secret).
pub(super) fn client_key(
    name: &str,
    s: &ProviderSettings,
    account: Option<&ServiceAccount>,
) -> Result<Option<Arc<SigningKey>>, FlowError> {
    match s.client_auth {
        Some(ClientAuth::PrivateKeyJwt) => Ok(Some(Arc::new(private_key(name, s, account)?))),
        Some(ClientAuth::ClientSecretJwt) => {
            let secret = s.client_secret.as_ref().ok_or_else(|| {
                FlowError::config(format!(
                    "providers.{name}: client_auth = \"client_secret_jwt\" needs client_secret"
                ))
            })?;
            let key = SigningKey::hmac(secret, s.signing_alg.as_deref())
                .map_err(|e| FlowError::config(format!("providers.{name}: {e}")))?;
            Ok(Some(Arc::new(key)))
        }
        _ => Ok(None),
    }
}

/// The private key of `private_key_file`, else of the service account.
pub(super) fn private_key(
    name: &str,
    s: &ProviderSettings,
    account: Option<&ServiceAccount>,
) -> Result<SigningKey, FlowError> {
    let kid = s.private_key_id.as_deref();
    let alg = s.signing_alg.as_deref();
    if let Some(path) = &s.private_key_file {
        return Ok(SigningKey::from_file(
            &format!("providers.{name}.private_key_file"),
            path,
            kid,
            alg,
        )?);
    }
    if let Some(account) = account {
        let kid = kid.or(account.private_key_id.as_deref());
        return SigningKey::from_bytes(account.private_key.expose().as_bytes(), kid, alg).map_err(
            |reason| {
                KeyFileError::Malformed {
                    setting: format!("providers.{name}.service_account_file"),
                    path: s.service_account_file.clone(),
                    reason: format!("its `private_key` {reason}"),
                }
                .into()
            },
        );
    }
    Err(FlowError::config(format!(
        "providers.{name}: signing needs private_key_file (or service_account_file)"
    )))
}

/// The HTTP client of a provider's endpoints: with `client_auth = "tls_client_auth"`, one that
/// presents `tls_client_cert_file` and `tls_client_key_file` (the key owner-only, as every key
/// file), and only for this provider's flows.
pub(super) fn endpoint_http(
    name: &str,
    s: &ProviderSettings,
    policy: HttpPolicy,
) -> Result<HttpClient, FlowError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let setup = |e| FlowError::InvalidConfig {
        message: "cannot set up the HTTP client".into(),
        source: Some(Box::new(e)),
    };
    if s.client_auth != Some(ClientAuth::TlsClientAuth) {
        return HttpClient::new(policy).map_err(setup);
    }
    let (Some(cert_file), Some(key_file)) = (&s.tls_client_cert_file, &s.tls_client_key_file)
    else {
        return Err(FlowError::config(format!(
            "providers.{name}: client_auth = \"tls_client_auth\" needs tls_client_cert_file and tls_client_key_file"
        )));
    };
    let bad = |setting: &str, path: &std::path::Path, reason: &str| -> FlowError {
        KeyFileError::Malformed {
            setting: format!("providers.{name}.{setting}"),
            path: Some(path.to_owned()),
            reason: reason.to_owned(),
        }
        .into()
    };
    let pem = std::fs::read(cert_file).map_err(|source| {
        FlowError::from(KeyFileError::Io {
            setting: format!("providers.{name}.tls_client_cert_file"),
            path: cert_file.clone(),
            source,
        })
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("tls_client_cert_file", cert_file, "is not PEM certificates"))?;
    if certs.is_empty() {
        return Err(bad(
            "tls_client_cert_file",
            cert_file,
            "holds no certificate",
        ));
    }
    let key_pem = read_private_file(&format!("providers.{name}.tls_client_key_file"), key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| bad("tls_client_key_file", key_file, "holds no PEM private key"))?;
    HttpClient::with_client_certificate(policy, certs, key).map_err(|e| match e {
        crate::net::http::HttpError::Tls(_) => bad(
            "tls_client_key_file",
            key_file,
            "does not fit the certificate, or is of a type TLS cannot use",
        ),
        e => setup(e),
    })
}
