//! A token endpoint over HTTPS on `127.0.0.1`, its certificate signed by a throwaway CA: for
//! checking that the host verifies servers against the platform's roots (and that
//! `SSL_CERT_FILE` adds one).
//!
//! Or ([`TlsTokenServer::start_mtls`]) an RFC 8705 `tls_client_auth` token endpoint: it asks
//! for a client certificate, and issues client credentials tokens only to a client whose
//! certificate chains to the test client CA and names [`CLIENT_ID`] as its subject CN.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use crate::{CLIENT_CREDENTIALS_GRANT, CLIENT_ID};

/// The server, answering until dropped.
pub struct TlsTokenServer {
    port: u16,
    dir: tempfile::TempDir,
    answered: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    /// What the mutual-TLS variant saw, in order (empty for the plain one).
    mtls_requests: Arc<Mutex<Vec<MtlsRequest>>>,
}

/// One request to the mutual-TLS token endpoint ([`TlsTokenServer::start_mtls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsRequest {
    /// The subject CN of the client certificate presented (`None`: no certificate, or one
    /// without a CN).
    pub cn: Option<String>,
    /// Whether a certificate was presented and chains to the client CA (CN not considered).
    pub chain_verified: bool,
    /// The form parameters.
    pub form: HashMap<String, String>,
    /// The status answered.
    pub status: u16,
    /// The `error_description` of a refusal.
    pub refusal: Option<String>,
}

impl Drop for TlsTokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsTokenServer {
    /// Starts it on `127.0.0.1:0`. Every request that completes a TLS handshake gets a bearer
    /// token (`tls-token-N`, one hour, refresh token `tls-refresh`) and the connection closed.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        crate::pg::PgCluster::make_certificates(dir.path());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs = CertificateDer::pem_file_iter(dir.path().join("server.pem"))
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(dir.path().join("server.key")).expect("a key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let answered = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&answered);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !complete(&request) {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    let body = format!(
                        "{{\"access_token\":\"tls-token-{n}\",\"token_type\":\"bearer\",\
                         \"expires_in\":3600,\"refresh_token\":\"tls-refresh\"}}"
                    );
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            port,
            dir,
            answered,
            task,
            mtls_requests: Arc::default(),
        }
    }

    /// `https://localhost:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Requests answered so far (each after a completed handshake).
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

impl TlsTokenServer {
    /// Starts an RFC 8705 `tls_client_auth` token endpoint on `127.0.0.1:0` (HTTPS, the server
    /// certificate signed by [`TlsTokenServer::ca_cert`]). It asks every client for a
    /// certificate and answers `POST /token` with `grant_type=client_credentials` and
    /// `client_id` [`CLIENT_ID`] (RFC 8705 §2 requires it) with a token `tls-token-N` (one
    /// hour, no refresh token, the `scope` echoed) when the client's certificate chains to the
    /// test client CA and its subject CN is [`CLIENT_ID`]. Anything else is refused, with the
    /// reason in `error_description` (`test provider: <why>`): 401 `invalid_client` for no,
    /// an untrusted or a foreign certificate, a wrong or missing `client_id`, or a client
    /// secret besides the certificate; 400 `unsupported_grant_type` for another grant; 404
    /// for another path. A certificate whose private key the client does not hold fails the
    /// handshake. Every request is recorded ([`TlsTokenServer::mtls_requests`]).
    ///
    /// Also made, for refusals: a certificate with CN [`CLIENT_ID`] from another CA
    /// ([`TlsTokenServer::rogue_client_cert`]), and one from the client CA for another CN
    /// ([`TlsTokenServer::other_client_cert`]).
    pub async fn start_mtls() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        crate::pg::PgCluster::make_certificates(dir.path());
        make_client_certificates(dir.path());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = CertificateDer::pem_file_iter(dir.path().join("server.pem"))
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(dir.path().join("server.key")).expect("a key");
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(dir.path().join("client-ca.pem")).expect("CA") {
            roots
                .add(ca.expect("the client CA"))
                .expect("a trust anchor");
        }
        let strict = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .expect("client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(Arc::new(Lenient(strict.clone())))
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let answered = Arc::new(AtomicUsize::new(0));
        let issued = Arc::new(AtomicUsize::new(0));
        let mtls_requests: Arc<Mutex<Vec<MtlsRequest>>> = Arc::default();
        let (count, seen) = (Arc::clone(&answered), Arc::clone(&mtls_requests));
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let (count, issued, seen) = (count.clone(), issued.clone(), seen.clone());
                let strict = strict.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let chain: Vec<CertificateDer<'static>> = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default();
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !complete(&request) {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let (record, body) = mtls_answer(&request, &chain, &*strict, &issued);
                    let status = record.status;
                    seen.lock().unwrap().push(record);
                    let reason = match status {
                        200 => "OK",
                        400 => "Bad Request",
                        401 => "Unauthorized",
                        _ => "Not Found",
                    };
                    let response = format!(
                        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            port,
            dir,
            answered,
            task,
            mtls_requests,
        }
    }

    /// The mutual-TLS client's certificate (PEM; subject CN [`CLIENT_ID`], signed by
    /// [`TlsTokenServer::client_ca`]).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// Its private key (PKCS#8 PEM, P-256, `0600`).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// The CA the mutual-TLS server trusts for client certificates (PEM).
    pub fn client_ca(&self) -> PathBuf {
        self.dir.path().join("client-ca.pem")
    }

    /// A certificate with subject CN [`CLIENT_ID`] signed by another CA (PEM).
    pub fn rogue_client_cert(&self) -> PathBuf {
        self.dir.path().join("rogue.pem")
    }

    /// Its private key (PKCS#8 PEM, `0600`).
    pub fn rogue_client_key(&self) -> PathBuf {
        self.dir.path().join("rogue.key")
    }

    /// A certificate signed by the client CA for another subject (CN `someone-else`).
    pub fn other_client_cert(&self) -> PathBuf {
        self.dir.path().join("other.pem")
    }

    /// Its private key (PKCS#8 PEM, `0600`).
    pub fn other_client_key(&self) -> PathBuf {
        self.dir.path().join("other.key")
    }

    /// Every request the mutual-TLS variant answered, in order.
    pub fn mtls_requests(&self) -> Vec<MtlsRequest> {
        self.mtls_requests.lock().unwrap().clone()
    }

    /// The subject CN of the client certificate of each request the mutual-TLS variant
    /// answered (`None`: none presented).
    pub fn presented_cns(&self) -> Vec<Option<String>> {
        self.mtls_requests().into_iter().map(|r| r.cn).collect()
    }
}

/// Accepts any client certificate during the handshake (whose signature, proving the client
/// holds the key, is still checked by the strict verifier), so that the token endpoint can
/// answer a certificate it does not trust with an OAuth2 error instead of a TLS alert: the
/// chain is verified after the handshake, by the strict verifier again.
#[derive(Debug)]
struct Lenient(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for Lenient {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The mutual-TLS token endpoint's answer to a complete request: its record and its body.
fn mtls_answer(
    request: &[u8],
    chain: &[CertificateDer<'static>],
    strict: &dyn ClientCertVerifier,
    issued: &AtomicUsize,
) -> (MtlsRequest, String) {
    let end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete");
    let head = String::from_utf8_lossy(&request[..end]).into_owned();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&request[end + 4..])
        .into_owned()
        .collect();
    let cn = chain.first().and_then(|c| crate::der::certificate_cn(c));
    let verified = chain.split_first().map(|(leaf, intermediates)| {
        strict
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut record = MtlsRequest {
        cn: cn.clone(),
        chain_verified: matches!(verified, Some(Ok(_))),
        form: form.clone(),
        status: 200,
        refusal: None,
    };
    let request_line = head.lines().next().unwrap_or_default();
    let authorization = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("authorization:"));
    let refusal = if !request_line.starts_with("POST /token ") {
        Some((404, "not_found", "only POST /token is served".to_owned()))
    } else if form.get("grant_type").map(String::as_str) != Some(CLIENT_CREDENTIALS_GRANT) {
        Some((
            400,
            "unsupported_grant_type",
            "the mutual-TLS endpoint serves client_credentials only".to_owned(),
        ))
    } else {
        let why = match (&verified, &cn) {
            _ if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) => {
                Some(format!("client_id must be {CLIENT_ID} (RFC 8705 §2)"))
            }
            _ if authorization || form.contains_key("client_secret") => {
                Some("more than one client authentication method".to_owned())
            }
            (None, _) => Some("no client certificate".to_owned()),
            (Some(Err(e)), _) => Some(format!("the client certificate does not verify: {e}")),
            (Some(Ok(())), Some(cn)) if cn == CLIENT_ID => None,
            (Some(Ok(())), cn) => Some(format!(
                "the client certificate's subject CN {cn:?} is not {CLIENT_ID}"
            )),
        };
        why.map(|why| (401, "invalid_client", why))
    };
    if let Some((status, code, why)) = refusal {
        record.status = status;
        record.refusal = Some(why.clone());
        let body = serde_json::json!({
            "error": code,
            "error_description": format!("test provider: {why}"),
        });
        return (record, body.to_string());
    }
    let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
    let mut body = serde_json::json!({
        "access_token": format!("tls-token-{n}"),
        "token_type": "Bearer",
        "expires_in": 3600,
    });
    if let Some(scope) = form.get("scope") {
        body["scope"] = serde_json::json!(scope);
    }
    (record, body.to_string())
}

/// Makes, in `dir`, the client CA and the client certificates of [`TlsTokenServer::start_mtls`]
/// (P-256 keys in PKCS#8 PEM, `0600`): `client-ca.pem`, `client.pem`/`client.key` (CN
/// [`CLIENT_ID`]), `other.pem`/`other.key` (CN `someone-else`), and `rogue.pem`/`rogue.key`
/// (CN [`CLIENT_ID`], signed by another CA).
fn make_client_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for (ca, cn) in [
        ("client-ca", "host test client CA"),
        ("rogue-ca", "host test rogue CA"),
    ] {
        let subject = format!("/CN={cn}");
        let (key, pem) = (format!("{ca}.key"), format!("{ca}.pem"));
        let args = [
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", &subject],
        ]
        .concat();
        openssl(&[&args[..], &["-keyout", &key, "-out", &pem]].concat());
    }
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .expect("client.ext");
    for (name, cn, ca) in [
        ("client", CLIENT_ID, "client-ca"),
        ("other", "someone-else", "client-ca"),
        ("rogue", CLIENT_ID, "rogue-ca"),
    ] {
        let subject = format!("/CN={cn}");
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let args = [
            &["req"][..],
            &ec,
            &["-subj", &subject, "-keyout", &key, "-out", &csr],
        ]
        .concat();
        openssl(&args);
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            &pem,
        ]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(0o600))
                .expect("chmod 600");
        }
    }
}

/// Whether `request` holds the head and the whole body its `content-length` announces.
fn complete(request: &[u8]) -> bool {
    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    request.len() >= end + 4 + length
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A client trusting the server's CA, with this certificate and key (PEM files).
    fn client(server: &TlsTokenServer, identity: Option<(PathBuf, PathBuf)>) -> reqwest::Client {
        let ca = std::fs::read(server.ca_cert()).unwrap();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .no_proxy();
        if let Some((cert, key)) = identity {
            let mut pem = std::fs::read(key).unwrap();
            pem.extend(std::fs::read(cert).unwrap());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }

    async fn token(
        server: &TlsTokenServer,
        client: &reqwest::Client,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = client
            .post(server.url("/token"))
            .form(form)
            .send()
            .await
            .expect("a TLS exchange");
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_str(&response.text().await.unwrap()).unwrap(),
        )
    }

    #[track_caller]
    fn refused((status, body): (u16, Value), want: u16, code: &str, why: &str) {
        assert_eq!(
            (status, body["error"].as_str()),
            (want, Some(code)),
            "{body}"
        );
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains(why),
            "{description:?} does not say {why:?}"
        );
    }

    #[tokio::test]
    async fn mtls_issues_tokens_to_the_client_certificate_only() {
        let server = TlsTokenServer::start_mtls().await;
        #[cfg(unix)]
        for key in [
            server.client_key(),
            server.rogue_client_key(),
            server.other_client_key(),
        ] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        let good = client(&server, Some((server.client_cert(), server.client_key())));
        let cc = [
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("scope", "read"),
        ];
        let (status, body) = token(&server, &good, &cc).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["access_token"], "tls-token-1");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "read");
        assert!(body.get("refresh_token").is_none());

        refused(
            token(&server, &client(&server, None), &cc).await,
            401,
            "invalid_client",
            "no client certificate",
        );
        let rogue = client(
            &server,
            Some((server.rogue_client_cert(), server.rogue_client_key())),
        );
        refused(
            token(&server, &rogue, &cc).await,
            401,
            "invalid_client",
            "the client certificate does not verify",
        );
        let other = client(
            &server,
            Some((server.other_client_cert(), server.other_client_key())),
        );
        refused(
            token(&server, &other, &cc).await,
            401,
            "invalid_client",
            "subject CN Some(\"someone-else\")",
        );
        refused(
            token(&server, &good, &[cc[0]]).await,
            401,
            "invalid_client",
            "client_id must be",
        );
        refused(
            token(&server, &good, &[cc[0], cc[1], ("client_secret", "s")]).await,
            401,
            "invalid_client",
            "more than one client authentication method",
        );
        refused(
            token(&server, &good, &[("grant_type", "refresh_token"), cc[1]]).await,
            400,
            "unsupported_grant_type",
            "client_credentials only",
        );
        let (status, body) = token(&server, &good, &cc[..2]).await;
        assert_eq!(
            (status, &body["access_token"]),
            (200, &Value::from("tls-token-2"))
        );
        assert!(body.get("scope").is_none());

        // A certificate presented without its key (signing with another) never gets through
        // the handshake: the server answers nothing.
        assert_eq!(impostor(&server).await, "");

        let cn = Some(CLIENT_ID.to_owned());
        let other_cn = Some("someone-else".to_owned());
        assert_eq!(
            server.presented_cns(),
            [
                cn.clone(),
                None,
                cn.clone(),
                other_cn,
                cn.clone(),
                cn.clone(),
                cn.clone(),
                cn
            ]
        );
        let requests = server.mtls_requests();
        let verified: Vec<bool> = requests.iter().map(|r| r.chain_verified).collect();
        assert_eq!(verified, [true, false, false, true, true, true, true, true]);
        assert_eq!(requests[0].form["scope"], "read");
        assert_eq!(requests[0].refusal, None);
        assert!(
            requests[2]
                .refusal
                .as_ref()
                .unwrap()
                .contains("does not verify")
        );
        assert_eq!(server.answered(), 8);
    }

    /// A client that presents the good client certificate but signs the handshake with the
    /// other client's key (a client builder refuses such an identity, so rustls is driven by
    /// hand): what it reads back after sending a token request.
    async fn impostor(server: &TlsTokenServer) -> String {
        #[derive(Debug)]
        struct Mismatched(Arc<rustls::sign::CertifiedKey>);
        impl rustls::client::ResolvesClientCert for Mismatched {
            fn resolve(
                &self,
                _: &[&[u8]],
                _: &[rustls::SignatureScheme],
            ) -> Option<Arc<rustls::sign::CertifiedKey>> {
                Some(self.0.clone())
            }
            fn has_certs(&self) -> bool {
                true
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = CertificateDer::pem_file_iter(server.client_cert())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(server.other_client_key()).unwrap();
        let key = provider.key_provider.load_private_key(key).unwrap();
        let certified = rustls::sign::CertifiedKey::new(cert, key);
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(server.ca_cert()).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_cert_resolver(Arc::new(Mismatched(Arc::new(certified))));
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let Ok(mut tls) = connector.connect(name, tcp).await else {
            return String::new();
        };
        let body = format!("grant_type=client_credentials&client_id={CLIENT_ID}");
        let request = format!(
            "POST /token HTTP/1.1\r\nhost: localhost\r\ncontent-type: \
             application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut answer = Vec::new();
        if tls.write_all(request.as_bytes()).await.is_ok() {
            let _ = tls.read_to_end(&mut answer).await;
        }
        String::from_utf8_lossy(&answer).into_owned()
    }
}
