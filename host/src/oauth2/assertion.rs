//! Signed JWT assertions (RFC 7523): a client that authenticates with one (`private_key_jwt`,
//! `client_secret_jwt`, OpenID Connect Core §9), and the JWT bearer grant made of one.
//!
//! A [`SigningKey`] is read from a private key file: PEM (PKCS#8, PKCS#1 `RSA PRIVATE KEY` or
//! SEC1 `EC PRIVATE KEY`) or JSON (a JWK, or a JWKS from which `private_key_id` picks one);
//! RSA, EC P-256 and P-384, and Ed25519. The file must be the user's own and owner-only. Its
//! bytes never appear in an error, a log or `Debug`: messages name the setting and the file,
//! and say what is wrong with it. The formats are read with the RustCrypto crates (`pkcs8`,
//! `pkcs1`, `sec1`); the key is checked, and its public half derived, by `ring`; tokens are
//! signed by `jsonwebtoken`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pkcs8::der::{Decode as _, Encode as _};
use ring::signature::{self, KeyPair as _};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::flow::FlowError;
use crate::util::secret::SecretString;

/// The client assertion type of RFC 7523 §2.2.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: at most five minutes, as providers ask.
pub const ASSERTION_LIFETIME: i64 = 300;

/// The largest key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A key that signs assertions: the algorithm, the `kid` put in the header, the key. `Debug`
/// shows the algorithm and the `kid` only.
pub struct SigningKey {
    alg: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a signing key cannot be had. Names the setting and the file, never the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("{setting} ({}): cannot read the key file", .path.display())]
    Io {
        /// The setting that names it.
        setting: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error("{setting} ({}): the key file is open to other users; make it owner-only (chmod 600)", .path.display())]
    Exposed {
        /// The setting that names it.
        setting: String,
        /// The file.
        path: PathBuf,
    },
    /// Another user owns it.
    #[error("{setting} ({}): the key file belongs to user {owner}, not to this user", .path.display())]
    NotOurs {
        /// The setting that names it.
        setting: String,
        /// The file.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// It holds no usable private key.
    #[error("{setting}{}: {reason}", .path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Malformed {
        /// The setting that names it.
        setting: String,
        /// The file, when the key came from one.
        path: Option<PathBuf>,
        /// What is wrong (never a piece of the key).
        reason: String,
    },
}

impl From<KeyFileError> for FlowError {
    fn from(e: KeyFileError) -> Self {
        FlowError::InvalidConfig {
            message: "unusable signing key".into(),
            source: Some(Box::new(e)),
        }
    }
}

/// Reads a secret file of the user's own, owner-only: a key, a service-account file.
pub(crate) fn read_private_file(
    setting: &str,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    use crate::util::private_fs::{SecretFileError, read_secret};
    let (setting, path_buf) = (setting.to_owned(), path.to_owned());
    read_secret(path, MAX_KEY_FILE).map_err(|e| match e {
        SecretFileError::Io(source) => KeyFileError::Io {
            setting,
            path: path_buf,
            source,
        },
        SecretFileError::Exposed => KeyFileError::Exposed {
            setting,
            path: path_buf,
        },
        SecretFileError::NotOurs(owner) => KeyFileError::NotOurs {
            setting,
            path: path_buf,
            owner,
        },
    })
}

/// A private key, in the form `ring` (and so `jsonwebtoken`) reads it.
enum Parsed {
    /// PKCS#1 `RSAPrivateKey` DER.
    Rsa(Zeroizing<Vec<u8>>),
    /// PKCS#8 DER of a P-256 (`false`) or P-384 (`true`) key.
    Ec(bool, Zeroizing<Vec<u8>>),
    /// PKCS#8 DER of an Ed25519 key.
    Ed(Zeroizing<Vec<u8>>),
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

impl SigningKey {
    /// Reads the private key in `path` (named by `setting` in messages). `kid` is the key id
    /// to put in assertions (and to pick a key from a JWKS); without one, the JWK's own or the
    /// key's RFC 7638 thumbprint. `alg` is the signing algorithm; without one, the key type's
    /// (RS256, ES256, ES384, EdDSA).
    pub fn from_file(
        setting: &str,
        path: &Path,
        kid: Option<&str>,
        alg: Option<&str>,
    ) -> Result<Self, KeyFileError> {
        let bytes = read_private_file(setting, path)?;
        Self::from_bytes(&bytes, kid, alg).map_err(|reason| KeyFileError::Malformed {
            setting: setting.to_owned(),
            path: Some(path.to_owned()),
            reason,
        })
    }

    /// A key from its bytes (PEM or JSON), as [`SigningKey::from_file`] reads them; the error
    /// says what is wrong, never quoting the key.
    pub fn from_bytes(bytes: &[u8], kid: Option<&str>, alg: Option<&str>) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "is neither PEM nor JSON text".to_owned())?
            .trim_start();
        let (parsed, own_kid) = if text.starts_with('{') {
            let value: Zeroizing<String> = Zeroizing::new(text.to_owned());
            let value: Value = serde_json::from_str(&value).map_err(|e| {
                format!(
                    "is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })?;
            let jwk = pick_jwk(&value, kid)?;
            let own = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
            (from_jwk(jwk)?, own)
        } else {
            (from_pem(text.as_bytes())?, None)
        };
        let (family, thumbprint) = check(&parsed)?;
        let alg = match alg {
            Some(name) => {
                let alg: Algorithm = name.parse().map_err(|_| {
                    format!(
                        "signing_alg `{}` is not a JWS algorithm",
                        crate::util::text::sanitize(name, 20)
                    )
                })?;
                if !family.allows(alg) {
                    return Err(format!(
                        "signing_alg `{name}` does not fit {} (use {})",
                        family.name(),
                        family.algorithms()
                    ));
                }
                alg
            }
            None => family.default_alg(),
        };
        let key = match &parsed {
            Parsed::Rsa(der) => EncodingKey::from_rsa_der(der),
            Parsed::Ec(_, der) => EncodingKey::from_ec_der(der),
            Parsed::Ed(der) => EncodingKey::from_ed_der(der),
        };
        let kid = kid.map(str::to_owned).or(own_kid).or(Some(thumbprint));
        Ok(Self { alg, kid, key })
    }

    /// A key for `client_secret_jwt`: HMAC over the client secret (HS256 unless `alg` says
    /// HS384 or HS512).
    pub fn hmac(secret: &SecretString, alg: Option<&str>) -> Result<Self, String> {
        let alg = match alg {
            None => Algorithm::HS256,
            Some(name) => match name.parse() {
                Ok(alg @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => alg,
                _ => {
                    return Err(format!(
                        "signing_alg `{}` does not fit client_secret_jwt (use HS256, HS384 or HS512)",
                        crate::util::text::sanitize(name, 20)
                    ));
                }
            },
        };
        Ok(Self {
            alg,
            kid: None,
            key: EncodingKey::from_secret(secret.expose().as_bytes()),
        })
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The `kid` put in assertions' headers.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Signs `claims` as a JWT (`typ: JWT`, this key's `alg` and `kid`).
    pub fn sign(&self, claims: &Value) -> Result<String, FlowError> {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| FlowError::internal("cannot sign the assertion", e))
    }

    /// A client assertion (RFC 7523 §2.2): `iss` = `sub` = the client id, `aud` the token
    /// endpoint, a fresh `jti`, `iat` now and `exp` five minutes on.
    pub fn client_assertion(&self, client_id: &str, audience: &str) -> Result<String, FlowError> {
        let now = chrono::Utc::now().timestamp();
        self.sign(&json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": new_jti()?,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }))
    }
}

/// A fresh, unguessable `jti`: 128 random bits, base64url.
pub(crate) fn new_jti() -> Result<String, FlowError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(|_| {
        FlowError::Internal {
            message: "no randomness for the assertion's jti",
            source: None,
        }
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The key type, for the algorithms it allows.
#[derive(Clone, Copy)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Rsa => "an RSA key",
            Family::P256 => "a P-256 key",
            Family::P384 => "a P-384 key",
            Family::Ed25519 => "an Ed25519 key",
        }
    }

    fn algorithms(self) -> &'static str {
        match self {
            Family::Rsa => "RS256, RS384, RS512, PS256, PS384 or PS512",
            Family::P256 => "ES256",
            Family::P384 => "ES384",
            Family::Ed25519 => "EdDSA",
        }
    }

    fn default_alg(self) -> Algorithm {
        match self {
            Family::Rsa => Algorithm::RS256,
            Family::P256 => Algorithm::ES256,
            Family::P384 => Algorithm::ES384,
            Family::Ed25519 => Algorithm::EdDSA,
        }
    }

    fn allows(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Family::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Family::P256 => alg == ES256,
            Family::P384 => alg == ES384,
            Family::Ed25519 => alg == EdDSA,
        }
    }
}

/// Checks the key with `ring` and derives its RFC 7638 thumbprint from its public half.
fn check(parsed: &Parsed) -> Result<(Family, String), String> {
    let bad = |_| "holds a private key that does not check out".to_owned();
    let (family, canonical) = match parsed {
        Parsed::Rsa(der) => {
            signature::RsaKeyPair::from_der(der)
                .map_err(|e| format!("holds an RSA key that cannot sign ({e})"))?;
            let key = pkcs1::RsaPrivateKey::from_der(der)
                .map_err(|_| "holds a malformed RSA key".to_owned())?;
            let b = |u: pkcs1::UintRef<'_>| URL_SAFE_NO_PAD.encode(u.as_bytes());
            (
                Family::Rsa,
                format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    b(key.public_exponent),
                    b(key.modulus)
                ),
            )
        }
        Parsed::Ec(p384, der) => {
            let (alg, family, crv) = if *p384 {
                (
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    Family::P384,
                    "P-384",
                )
            } else {
                (
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    Family::P256,
                    "P-256",
                )
            };
            let pair =
                signature::EcdsaKeyPair::from_pkcs8(alg, der, &ring::rand::SystemRandom::new())
                    .map_err(bad)?;
            let point = pair.public_key().as_ref();
            let half = (point.len() - 1) / 2;
            (
                family,
                format!(
                    r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(&point[1..1 + half]),
                    URL_SAFE_NO_PAD.encode(&point[1 + half..])
                ),
            )
        }
        Parsed::Ed(der) => {
            let pair = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(bad)?;
            (
                Family::Ed25519,
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())
                ),
            )
        }
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    Ok((family, URL_SAFE_NO_PAD.encode(digest.as_ref())))
}

/// The private key of a PEM document.
fn from_pem(bytes: &[u8]) -> Result<Parsed, String> {
    let (label, der) = pkcs8::der::pem::decode_vec(bytes).map_err(|_| {
        "is neither a PEM private key (PKCS#8, PKCS#1 or SEC1) nor a JWK".to_owned()
    })?;
    let der = Zeroizing::new(der);
    match label {
        "PRIVATE KEY" => from_pkcs8(&der),
        "RSA PRIVATE KEY" => Ok(Parsed::Rsa(der)),
        "EC PRIVATE KEY" => {
            let key = sec1::EcPrivateKey::from_der(&der).map_err(|_| "holds a malformed EC key".to_owned())?;
            let curve = key
                .parameters
                .and_then(|p| p.named_curve())
                .ok_or("holds an EC key that does not name its curve")?;
            wrap_ec(&curve, &der)
        }
        "ENCRYPTED PRIVATE KEY" => Err(
            "holds an encrypted key; write it unencrypted to an owner-only file (openssl pkcs8 -topk8 -nocrypt)".into(),
        ),
        "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => {
            Err("holds a public key or a certificate, not a private key".into())
        }
        other => Err(format!(
            "holds a PEM `{}`, not a private key",
            crate::util::text::sanitize(other, 40)
        )),
    }
}

/// The private key of a PKCS#8 `PrivateKeyInfo`.
fn from_pkcs8(der: &Zeroizing<Vec<u8>>) -> Result<Parsed, String> {
    let info = pkcs8::PrivateKeyInfo::from_der(der)
        .map_err(|_| "holds a malformed PKCS#8 key".to_owned())?;
    match info.algorithm.oid.to_string().as_str() {
        OID_RSA => Ok(Parsed::Rsa(Zeroizing::new(info.private_key.to_vec()))),
        OID_EC => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| "holds an EC key that does not name its curve".to_owned())?;
            match curve.to_string().as_str() {
                OID_P256 => Ok(Parsed::Ec(false, der.clone())),
                OID_P384 => Ok(Parsed::Ec(true, der.clone())),
                _ => Err("holds an EC key on a curve other than P-256 or P-384".into()),
            }
        }
        OID_ED25519 => Ok(Parsed::Ed(der.clone())),
        _ => Err("holds a key of a type other than RSA, EC or Ed25519".into()),
    }
}

/// A SEC1 `ECPrivateKey` (DER) on `curve`, wrapped in PKCS#8.
fn wrap_ec(curve: &pkcs8::ObjectIdentifier, sec1_der: &[u8]) -> Result<Parsed, String> {
    let p384 = match curve.to_string().as_str() {
        OID_P256 => false,
        OID_P384 => true,
        _ => return Err("holds an EC key on a curve other than P-256 or P-384".into()),
    };
    let ec: pkcs8::ObjectIdentifier = OID_EC.parse().expect("a valid OID");
    let info = pkcs8::PrivateKeyInfo::new(
        pkcs8::AlgorithmIdentifierRef {
            oid: ec,
            parameters: Some(curve.into()),
        },
        sec1_der,
    );
    let der = info
        .to_der()
        .map_err(|_| "cannot re-encode the EC key".to_owned())?;
    Ok(Parsed::Ec(p384, Zeroizing::new(der)))
}

/// The JWK to use: the object itself, or the one private key of a JWKS (by `kid` when given).
fn pick_jwk<'a>(value: &'a Value, kid: Option<&str>) -> Result<&'a Map<String, Value>, String> {
    let object = value.as_object().ok_or("is JSON but not a JWK")?;
    let Some(keys) = object.get("keys") else {
        return Ok(object);
    };
    let keys = keys
        .as_array()
        .ok_or("is a JWKS whose `keys` is not a list")?;
    let private: Vec<&Map<String, Value>> = keys
        .iter()
        .filter_map(Value::as_object)
        .filter(|k| k.contains_key("d"))
        .collect();
    let chosen: Vec<_> = match kid {
        Some(kid) => private
            .into_iter()
            .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            .collect(),
        None => private,
    };
    match chosen.as_slice() {
        [one] => Ok(one),
        [] if kid.is_some() => Err("is a JWKS with no private key of that private_key_id".into()),
        [] => Err("is a JWKS with no private key (no member holds `d`)".into()),
        _ => Err("is a JWKS with several private keys; set private_key_id to pick one".into()),
    }
}

/// The private key of a JWK.
fn from_jwk(jwk: &Map<String, Value>) -> Result<Parsed, String> {
    let member = |name: &str| -> Result<Zeroizing<Vec<u8>>, String> {
        let text = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("is a JWK without `{name}`"))?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map(Zeroizing::new)
            .map_err(|_| format!("is a JWK whose `{name}` is not base64url"))
    };
    if !jwk.contains_key("d") {
        return Err("is a public JWK; a private key (with `d`) is needed".into());
    }
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or_default();
    match (kty, crv) {
        ("RSA", _) => {
            let parts = ["n", "e", "d", "p", "q", "dp", "dq", "qi"]
                .map(member)
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            fn uint(b: &[u8]) -> Result<pkcs1::UintRef<'_>, String> {
                pkcs1::UintRef::new(b).map_err(|_| "is a JWK with a malformed number".to_owned())
            }
            let key = pkcs1::RsaPrivateKey {
                modulus: uint(&parts[0])?,
                public_exponent: uint(&parts[1])?,
                private_exponent: uint(&parts[2])?,
                prime1: uint(&parts[3])?,
                prime2: uint(&parts[4])?,
                exponent1: uint(&parts[5])?,
                exponent2: uint(&parts[6])?,
                coefficient: uint(&parts[7])?,
                other_prime_infos: None,
            };
            let der = key
                .to_der()
                .map_err(|_| "cannot re-encode the RSA key".to_owned())?;
            Ok(Parsed::Rsa(Zeroizing::new(der)))
        }
        ("EC", "P-256" | "P-384") => {
            let (d, x, y) = (member("d")?, member("x")?, member("y")?);
            let mut point = Zeroizing::new(vec![4u8]);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let curve: pkcs8::ObjectIdentifier = if crv == "P-256" { OID_P256 } else { OID_P384 }
                .parse()
                .expect("a valid OID");
            let key = sec1::EcPrivateKey {
                private_key: &d,
                parameters: Some(sec1::EcParameters::NamedCurve(curve)),
                public_key: Some(&point),
            };
            let der = Zeroizing::new(
                key.to_der()
                    .map_err(|_| "cannot re-encode the EC key".to_owned())?,
            );
            wrap_ec(&curve, &der)
        }
        ("OKP", "Ed25519") => {
            let d = member("d")?;
            let seed = pkcs8::der::asn1::OctetStringRef::new(&d)
                .and_then(|o| o.to_der())
                .map_err(|_| "is a JWK with a malformed `d`".to_owned())?;
            let seed = Zeroizing::new(seed);
            let info = pkcs8::PrivateKeyInfo::new(
                pkcs8::AlgorithmIdentifierRef {
                    oid: OID_ED25519.parse().expect("a valid OID"),
                    parameters: None,
                },
                &seed,
            );
            let der = info
                .to_der()
                .map_err(|_| "cannot re-encode the Ed25519 key".to_owned())?;
            Ok(Parsed::Ed(Zeroizing::new(der)))
        }
        _ => Err(format!(
            "is a JWK of type `{}`{}; RSA, EC (P-256, P-384) and OKP (Ed25519) are supported",
            crate::util::text::sanitize(kty, 10),
            if crv.is_empty() {
                String::new()
            } else {
                format!(" on `{}`", crate::util::text::sanitize(crv, 10))
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_one_is_described_without_quoting_it() {
        for (bytes, says) in [
            (&b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"[..], "public key"),
            (&b"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"abc\"}"[..], "public JWK"),
            (&b"{\"keys\":[]}"[..], "no private key"),
            (&b"sekrit-garbage"[..], "neither"),
            (&b"{\"kty\":\"oct\",\"k\":\"c2Vrcml0\",\"d\":\"x\"}"[..], "type `oct`"),
        ] {
            let e = SigningKey::from_bytes(bytes, None, None).unwrap_err();
            assert!(e.contains(says), "{e}");
            assert!(!e.contains("sekrit") && !e.contains("c2Vrcml0"), "{e}");
        }
    }

    #[test]
    fn an_ed25519_jwk_signs_with_its_thumbprint_as_kid() {
        // RFC 8037 appendix A.1's key; its thumbprint is given in A.3.
        let jwk = br#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let key = SigningKey::from_bytes(jwk, None, None).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EdDSA);
        assert_eq!(
            key.key_id(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        );
        let jwt = key
            .client_assertion("client", "https://as.example/token")
            .unwrap();
        let public = jsonwebtoken::DecodingKey::from_ed_components(
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["https://as.example/token"]);
        let data = jsonwebtoken::decode::<Value>(&jwt, &public, &validation).unwrap();
        assert_eq!(data.claims["iss"], "client");
        assert_eq!(data.claims["sub"], "client");
        let (iat, exp) = (
            data.claims["iat"].as_i64().unwrap(),
            data.claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, ASSERTION_LIFETIME);
        assert!(format!("{key:?}").contains("EdDSA") && !format!("{key:?}").contains("nWGx"));
        // An algorithm that does not fit the key is refused, named.
        let e = SigningKey::from_bytes(jwk, None, Some("RS256")).unwrap_err();
        assert!(e.contains("does not fit an Ed25519 key"), "{e}");
    }
}
