//! TLS for every HTTP client of the crate: rustls on ring, servers checked against the
//! platform's root certificates (`rustls-native-certs`: the system bundle, `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` honoured) — loaded on the first TLS handshake, not when a client is built.
//!
//! Reading the roots means reading and parsing every certificate of the system store (about
//! 150 files on Debian): several milliseconds that a command talking only to loopback over
//! plain http, or not talking at all, should not pay. Verification itself is rustls's
//! [`WebPkiServerVerifier`]; this module only defers building it.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The client configuration every `reqwest` client of the crate uses (HTTP/2 and HTTP/1.1
/// offered by ALPN, as `reqwest` would). One per process, handed out as clones: however many
/// clients a process builds (token endpoints, plugins, API sessions), the roots are read once.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, rustls::Error>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()?
                .dangerous() // a verifier of our own: it is rustls's WebPKI verifier, built later
                .with_custom_certificate_verifier(Arc::new(PlatformRoots::new(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok(config)
        })
        .clone()
}

/// The same configuration, presenting a client certificate (RFC 8705 `tls_client_auth`): a
/// configuration of its own, for the one client that presents it.
pub(crate) fn client_config_with_identity(
    certs: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PlatformRoots::new(provider)))
        .with_client_auth_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Verifies server certificates with WebPKI against the platform's roots, read on first use.
#[derive(Debug)]
struct PlatformRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

impl PlatformRoots {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            verifier: OnceLock::new(),
        }
    }

    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                let loaded = rustls_native_certs::load_native_certs();
                for error in &loaded.errors {
                    tracing::debug!("reading the system's root certificates: {error}");
                }
                let mut roots = rustls::RootCertStore::empty();
                // Stores often hold a few certificates webpki cannot parse; skip those.
                let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
                tracing::debug!("{added} root certificates loaded, {ignored} ignored");
                if roots.is_empty() {
                    return Err(rustls::Error::General(
                        "no root certificates found on this system (install the CA \
                         certificates package, or point SSL_CERT_FILE at a bundle)"
                            .into(),
                    ));
                }
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&self.provider),
                )
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for PlatformRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_the_config_reads_no_roots() {
        let config = client_config().unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = PlatformRoots::new(provider);
        assert!(roots.verifier.get().is_none(), "nothing read before use");
        assert!(!roots.supported_verify_schemes().is_empty());
    }
}
