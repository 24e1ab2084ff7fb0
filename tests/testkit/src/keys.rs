//! Fresh key pairs for tests ([`test_key`]), in every form a client may be given its key: PKCS#8
//! and traditional PEM, a private JWK and a JWKS holding it, the public key (SPKI PEM and JWK)
//! and its RFC 7638 thumbprint. The `openssl` CLI makes the keys; the JWK members are read
//! from the DER it writes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::der::{self, BIT_STRING, INTEGER, OCTET_STRING, OID, Reader, SEQUENCE};

/// The type of a [`TestKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, 2048 bits (JWS `RS256`).
    Rsa,
    /// ECDSA on P-256 (JWS `ES256`).
    P256,
    /// ECDSA on P-384 (JWS `ES384`).
    P384,
    /// Ed25519 (JWS `EdDSA`).
    Ed25519,
}

impl KeyKind {
    /// The JWS algorithm such a key signs with by default.
    pub fn alg(self) -> Algorithm {
        match self {
            KeyKind::Rsa => Algorithm::RS256,
            KeyKind::P256 => Algorithm::ES256,
            KeyKind::P384 => Algorithm::ES384,
            KeyKind::Ed25519 => Algorithm::EdDSA,
        }
    }

    /// A short name: `rsa`, `p256`, `p384`, `ed25519` (the start of the `kid`).
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "rsa",
            KeyKind::P256 => "p256",
            KeyKind::P384 => "p384",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

/// A key pair made for one test, its files in the folder given to [`test_key`] (all `0600`,
/// named after the `kid`).
#[derive(Debug, Clone)]
pub struct TestKey {
    /// Its type.
    pub kind: KeyKind,
    /// Its `kid`: the kind's name, a dash and the thumbprint's first 8 characters
    /// (`rsa-Xy3_…`).
    pub kid: String,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`): `KID.pem`.
    pub private_pem: PathBuf,
    /// The private key in its traditional PEM: PKCS#1 (`RSA PRIVATE KEY`) for RSA, SEC1
    /// (`EC PRIVATE KEY`) for EC, none for Ed25519: `KID.traditional.pem`.
    pub traditional_pem: Option<PathBuf>,
    /// The private JWK (`kty`, `kid`, `alg`, `use` and the type's members, `d` included):
    /// `KID.jwk.json`.
    pub private_jwk: PathBuf,
    /// A JWKS whose one key is the private JWK: `KID.jwks.json`.
    pub private_jwks: PathBuf,
    /// The public key, SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`):
    /// `KID.pub.pem`.
    pub public_pem: PathBuf,
    /// The public JWK (`kty`, `kid`, `alg`, `use` and the public members).
    pub public_jwk: Value,
    /// The RFC 7638 thumbprint of the public key: base64url (no padding) SHA-256 of its
    /// canonical JWK.
    pub thumbprint: String,
    pkcs8_pem: String,
    public_pem_text: String,
    /// The DER `EncodingKey` takes: PKCS#1 for RSA, PKCS#8 for the others.
    signing_der: Vec<u8>,
    pub(crate) public: PublicKey,
}

impl TestKey {
    /// The private key's PKCS#8 PEM text.
    pub fn private_pem_text(&self) -> &str {
        &self.pkcs8_pem
    }

    /// The public key's SPKI PEM text.
    pub fn public_pem_text(&self) -> &str {
        &self.public_pem_text
    }

    /// The JWS algorithm it signs with by default ([`KeyKind::alg`]).
    pub fn alg(&self) -> Algorithm {
        self.kind.alg()
    }

    /// A `jsonwebtoken` key that signs with it.
    pub fn encoding_key(&self) -> EncodingKey {
        match self.kind {
            KeyKind::Rsa => EncodingKey::from_rsa_der(&self.signing_der),
            KeyKind::P256 | KeyKind::P384 => EncodingKey::from_ec_der(&self.signing_der),
            KeyKind::Ed25519 => EncodingKey::from_ed_der(&self.signing_der),
        }
    }

    /// A `jsonwebtoken` key that verifies its signatures.
    pub fn decoding_key(&self) -> DecodingKey {
        self.public.decoding_key()
    }

    /// A JWT of these claims signed with its default algorithm, the header naming its `kid`
    /// (and `typ: JWT`).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).expect("sign with a test key")
    }
}

/// A public key the provider verifies signatures with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// The uncompressed point (`04 || x || y`).
    P256(Vec<u8>),
    /// The uncompressed point (`04 || x || y`).
    P384(Vec<u8>),
    /// The 32 bytes.
    Ed25519(Vec<u8>),
}

const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

impl PublicKey {
    /// A public key from PEM: SubjectPublicKeyInfo (`PUBLIC KEY`) of an RSA, P-256, P-384 or
    /// Ed25519 key, or PKCS#1 (`RSA PUBLIC KEY`).
    pub(crate) fn from_pem(text: &str) -> Result<Self, String> {
        match der::pem(text) {
            Some((label, der)) if label == "PUBLIC KEY" => Self::from_spki(&der),
            Some((label, der)) if label == "RSA PUBLIC KEY" => {
                rsa_public(&der).ok_or("not a PKCS#1 RSA public key")?;
                Ok(PublicKey::Rsa(der))
            }
            Some((label, _)) => Err(format!("a {label} PEM is not a public key")),
            None => Err("not PEM".into()),
        }
    }

    /// A public key from SubjectPublicKeyInfo DER.
    pub(crate) fn from_spki(spki: &[u8]) -> Result<Self, String> {
        let bad = || "not a SubjectPublicKeyInfo".to_owned();
        let mut spki = Reader::new(der::single(spki, SEQUENCE).ok_or_else(bad)?);
        let mut algorithm = Reader::new(spki.next(SEQUENCE).ok_or_else(bad)?);
        let bits = spki.next(BIT_STRING).ok_or_else(bad)?;
        let Some((0, key)) = bits.split_first().map(|(u, k)| (*u, k)) else {
            return Err(bad());
        };
        let oid = algorithm.next(OID).ok_or_else(bad)?;
        let key = key.to_vec();
        let point = |len: usize, key: Vec<u8>| {
            (key.len() == 1 + 2 * len && key[0] == 4)
                .then_some(key)
                .ok_or("not an uncompressed EC point")
        };
        match oid {
            RSA_ENCRYPTION => {
                rsa_public(&key).ok_or("not an RSA public key")?;
                Ok(PublicKey::Rsa(key))
            }
            EC_PUBLIC_KEY => match algorithm.next(OID) {
                Some(PRIME256V1) => Ok(PublicKey::P256(point(32, key)?)),
                Some(SECP384R1) => Ok(PublicKey::P384(point(48, key)?)),
                _ => Err("an EC key on another curve than P-256 or P-384".into()),
            },
            ED25519 if key.len() == 32 => Ok(PublicKey::Ed25519(key)),
            _ => Err("a key of a type the provider does not take".into()),
        }
    }

    /// Whether it can verify signatures of `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (
                PublicKey::Rsa(_),
                RS256 | RS384 | RS512 | PS256 | PS384 | PS512
            ) | (PublicKey::P256(_), ES256)
                | (PublicKey::P384(_), ES384)
                | (PublicKey::Ed25519(_), EdDSA)
        )
    }

    /// Its type, as the refusals name it.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            PublicKey::Rsa(_) => "an RSA key",
            PublicKey::P256(_) => "a P-256 key",
            PublicKey::P384(_) => "a P-384 key",
            PublicKey::Ed25519(_) => "an Ed25519 key",
        }
    }

    pub(crate) fn decoding_key(&self) -> DecodingKey {
        match self {
            PublicKey::Rsa(der) => DecodingKey::from_rsa_der(der),
            PublicKey::P256(point) | PublicKey::P384(point) => DecodingKey::from_ec_der(point),
            PublicKey::Ed25519(raw) => DecodingKey::from_ed_der(raw),
        }
    }

    /// The RFC 7638 canonical JWK: the required members only, in lexicographic order, no
    /// whitespace.
    fn canonical_jwk(&self) -> String {
        let (members, kty, crv) = self.members();
        let get = |name: &str| {
            members
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .expect("member")
        };
        match kty {
            "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, get("e"), get("n")),
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                crv.expect("crv"),
                get("x"),
                get("y")
            ),
            _ => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                crv.expect("crv"),
                get("x")
            ),
        }
    }

    /// The public JWK members (base64url), `kty` and `crv`.
    fn members(
        &self,
    ) -> (
        Vec<(&'static str, String)>,
        &'static str,
        Option<&'static str>,
    ) {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            PublicKey::Rsa(der) => {
                let (n, e) = rsa_public(der).expect("checked when made");
                (vec![("n", b64(n)), ("e", b64(e))], "RSA", None)
            }
            PublicKey::P256(point) | PublicKey::P384(point) => {
                let len = (point.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-384" };
                let members = vec![("x", b64(&point[1..=len])), ("y", b64(&point[1 + len..]))];
                (members, "EC", Some(crv))
            }
            PublicKey::Ed25519(raw) => (vec![("x", b64(raw))], "OKP", Some("Ed25519")),
        }
    }

    /// The RFC 7638 thumbprint.
    pub(crate) fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.canonical_jwk().as_bytes()))
    }

    /// The public JWK, with `kid`, `alg` and `use`.
    fn jwk(&self, kid: &str, alg: Algorithm) -> Value {
        let (members, kty, crv) = self.members();
        let mut jwk = json!({"kty": kty, "kid": kid, "alg": format!("{alg:?}"), "use": "sig"});
        if let Some(crv) = crv {
            jwk["crv"] = json!(crv);
        }
        for (name, value) in members {
            jwk[name] = json!(value);
        }
        jwk
    }
}

/// The modulus and the exponent of a PKCS#1 `RSAPublicKey`, without sign padding.
fn rsa_public(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut key = Reader::new(der::single(der, SEQUENCE)?);
    let n = der::unsigned(key.next(INTEGER)?);
    let e = der::unsigned(key.next(INTEGER)?);
    key.is_empty().then_some((n, e))
}

/// Runs openssl with `input` on its standard input; its standard output.
fn openssl(args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.unwrap_or_default().as_bytes())
        .expect("openssl's input");
    drop(stdin);
    let out = child.wait_with_output().expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("PEM is text")
}

/// Writes a file only its owner may read or write (`0600`, also when it existed).
pub(crate) fn write_private(path: &Path, contents: &[u8]) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path).expect("create a key file");
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .expect("chmod 600");
        file.write_all(contents).expect("write a key file");
    }
    #[cfg(not(unix))]
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents))
        .expect("write a key file");
}

/// Makes a fresh key pair of this kind with openssl and writes its files into `dir` (which
/// must exist), every one `0600` and named after the `kid` (see [`TestKey`]).
pub fn test_key(kind: KeyKind, dir: &Path) -> TestKey {
    let algorithm: &[&str] = match kind {
        KeyKind::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        KeyKind::P256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeyKind::P384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        KeyKind::Ed25519 => &["-algorithm", "ED25519"],
    };
    let pkcs8_pem = openssl(&[&["genpkey"], algorithm].concat(), None);
    let (label, pkcs8) = der::pem(&pkcs8_pem).expect("PKCS#8 PEM");
    assert_eq!(label, "PRIVATE KEY");
    let traditional =
        (kind != KeyKind::Ed25519).then(|| openssl(&["pkey", "-traditional"], Some(&pkcs8_pem)));
    let public_pem_text = openssl(&["pkey", "-pubout"], Some(&pkcs8_pem));
    let public = PublicKey::from_pem(&public_pem_text).expect("openssl's public key");
    let thumbprint = public.thumbprint();
    let kid = format!("{}-{}", kind.name(), &thumbprint[..8]);

    let b64 = |b: &[u8]| json!(URL_SAFE_NO_PAD.encode(b));
    let mut private_jwk = public.jwk(&kid, kind.alg());
    let traditional_der = traditional.as_deref().map(|t| {
        let (label, der) = der::pem(t).expect("traditional PEM");
        let want = if kind == KeyKind::Rsa {
            "RSA PRIVATE KEY"
        } else {
            "EC PRIVATE KEY"
        };
        assert_eq!(label, want);
        der
    });
    match kind {
        KeyKind::Rsa => {
            // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qi }
            let der = traditional_der.as_deref().expect("PKCS#1");
            let mut key = Reader::new(der::single(der, SEQUENCE).expect("RSAPrivateKey"));
            let mut ints: Vec<&[u8]> = Vec::new();
            while let Some(int) = key.next(INTEGER) {
                ints.push(der::unsigned(int));
            }
            assert_eq!(ints.len(), 9, "RSAPrivateKey has 9 integers");
            assert_eq!(b64(ints[1]), private_jwk["n"], "n");
            assert_eq!(b64(ints[2]), private_jwk["e"], "e");
            for (name, int) in ["d", "p", "q", "dp", "dq", "qi"]
                .into_iter()
                .zip(&ints[3..])
            {
                private_jwk[name] = b64(int);
            }
        }
        KeyKind::P256 | KeyKind::P384 => {
            // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0], [1] }
            let der = traditional_der.as_deref().expect("SEC1");
            let mut key = Reader::new(der::single(der, SEQUENCE).expect("ECPrivateKey"));
            assert_eq!(key.next(INTEGER), Some(&[1u8][..]));
            let d = key.next(OCTET_STRING).expect("privateKey");
            let len = if kind == KeyKind::P256 { 32 } else { 48 };
            assert_eq!(d.len(), len, "d is the curve's size");
            private_jwk["d"] = b64(d);
        }
        KeyKind::Ed25519 => {
            // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING
            // holding CurvePrivateKey ::= OCTET STRING (the 32-byte seed) }
            let mut info = Reader::new(der::single(&pkcs8, SEQUENCE).expect("PrivateKeyInfo"));
            info.next(INTEGER).expect("version");
            info.next(SEQUENCE).expect("algorithm");
            let inner = info.next(OCTET_STRING).expect("privateKey");
            let seed = der::single(inner, OCTET_STRING).expect("CurvePrivateKey");
            assert_eq!(seed.len(), 32);
            private_jwk["d"] = b64(seed);
        }
    }
    let signing_der = match kind {
        KeyKind::Rsa => traditional_der.clone().expect("PKCS#1"),
        _ => pkcs8,
    };

    let file = |suffix: &str| dir.join(format!("{kid}{suffix}"));
    let private_pem = file(".pem");
    write_private(&private_pem, pkcs8_pem.as_bytes());
    let traditional_pem = traditional.map(|t| {
        let path = file(".traditional.pem");
        write_private(&path, t.as_bytes());
        path
    });
    let jwk_path = file(".jwk.json");
    write_private(&jwk_path, private_jwk.to_string().as_bytes());
    let jwks_path = file(".jwks.json");
    write_private(
        &jwks_path,
        json!({"keys": [private_jwk]}).to_string().as_bytes(),
    );
    let public_pem = file(".pub.pem");
    write_private(&public_pem, public_pem_text.as_bytes());
    TestKey {
        kind,
        public_jwk: public.jwk(&kid, kind.alg()),
        kid,
        private_pem,
        traditional_pem,
        private_jwk: jwk_path,
        private_jwks: jwks_path,
        public_pem,
        thumbprint,
        pkcs8_pem,
        public_pem_text,
        signing_der,
        public,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Validation, decode};
    use ring::signature;

    fn read_json(path: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn bytes(jwk: &Value, name: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().unwrap_or_else(|| panic!("no {name}")))
            .unwrap()
    }

    /// Every file is there and `0600`; the private JWK rebuilds (with ring, which checks the
    /// members against each other) a key whose signatures the public PEM verifies; the
    /// thumbprint is the canonical JWK's hash.
    #[test]
    fn every_kind_is_consistent_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let rng = ring::rand::SystemRandom::new();
        for kind in [KeyKind::Rsa, KeyKind::P256, KeyKind::P384, KeyKind::Ed25519] {
            let key = test_key(kind, dir.path());
            assert!(key.kid.starts_with(&format!("{}-", kind.name())));
            let mut files = vec![
                &key.private_pem,
                &key.private_jwk,
                &key.private_jwks,
                &key.public_pem,
            ];
            files.extend(&key.traditional_pem);
            assert_eq!(key.traditional_pem.is_some(), kind != KeyKind::Ed25519);
            #[cfg(unix)]
            for file in &files {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(file).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", file.display());
            }
            let pkcs8 = std::fs::read_to_string(&key.private_pem).unwrap();
            assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----"));
            if let Some(t) = &key.traditional_pem {
                let want = match kind {
                    KeyKind::Rsa => "-----BEGIN RSA PRIVATE KEY-----",
                    _ => "-----BEGIN EC PRIVATE KEY-----",
                };
                assert!(std::fs::read_to_string(t).unwrap().starts_with(want));
            }
            assert!(
                std::fs::read_to_string(&key.public_pem)
                    .unwrap()
                    .starts_with("-----BEGIN PUBLIC KEY-----")
            );

            let jwk = read_json(&key.private_jwk);
            assert_eq!(read_json(&key.private_jwks), json!({"keys": [jwk.clone()]}));
            assert_eq!(jwk["kid"], key.kid);
            let mut public = jwk.clone();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                public.as_object_mut().unwrap().remove(private);
            }
            assert_eq!(public, key.public_jwk);

            // The private members make a key pair whose public half is the PEM's.
            let message = b"test message";
            let (alg, sig): (&'static dyn signature::VerificationAlgorithm, Vec<u8>) = match kind {
                KeyKind::Rsa => {
                    let components = ring::rsa::KeyPairComponents {
                        public_key: ring::rsa::PublicKeyComponents {
                            n: bytes(&jwk, "n"),
                            e: bytes(&jwk, "e"),
                        },
                        d: bytes(&jwk, "d"),
                        p: bytes(&jwk, "p"),
                        q: bytes(&jwk, "q"),
                        dP: bytes(&jwk, "dp"),
                        dQ: bytes(&jwk, "dq"),
                        qInv: bytes(&jwk, "qi"),
                    };
                    let pair = signature::RsaKeyPair::from_components(&components).unwrap();
                    let mut sig = vec![0; pair.public().modulus_len()];
                    pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                        .unwrap();
                    (&signature::RSA_PKCS1_2048_8192_SHA256, sig)
                }
                KeyKind::P256 | KeyKind::P384 => {
                    let (signing, verifying): (
                        &'static signature::EcdsaSigningAlgorithm,
                        &'static signature::EcdsaVerificationAlgorithm,
                    ) = if kind == KeyKind::P256 {
                        (
                            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                            &signature::ECDSA_P256_SHA256_FIXED,
                        )
                    } else {
                        (
                            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                            &signature::ECDSA_P384_SHA384_FIXED,
                        )
                    };
                    let mut point = vec![4u8];
                    point.extend(bytes(&jwk, "x"));
                    point.extend(bytes(&jwk, "y"));
                    let pair = signature::EcdsaKeyPair::from_private_key_and_public_key(
                        signing,
                        &bytes(&jwk, "d"),
                        &point,
                        &rng,
                    )
                    .unwrap();
                    let sig = pair.sign(&rng, message).unwrap().as_ref().to_vec();
                    (verifying, sig)
                }
                KeyKind::Ed25519 => {
                    let pair = signature::Ed25519KeyPair::from_seed_and_public_key(
                        &bytes(&jwk, "d"),
                        &bytes(&jwk, "x"),
                    )
                    .unwrap();
                    (&signature::ED25519, pair.sign(message).as_ref().to_vec())
                }
            };
            let spki = der::pem(&std::fs::read_to_string(&key.public_pem).unwrap())
                .unwrap()
                .1;
            let (PublicKey::Rsa(raw)
            | PublicKey::P256(raw)
            | PublicKey::P384(raw)
            | PublicKey::Ed25519(raw)) = PublicKey::from_spki(&spki).unwrap();
            signature::UnparsedPublicKey::new(alg, &raw)
                .verify(message, &sig)
                .unwrap_or_else(|_| panic!("{kind:?}: the JWK's key is not the PEM's"));

            // The thumbprint is the hash of the canonical JWK, written out by hand here.
            let canonical = match kind {
                KeyKind::Rsa => format!(
                    "{{\"e\":\"{}\",\"kty\":\"RSA\",\"n\":\"{}\"}}",
                    jwk["e"].as_str().unwrap(),
                    jwk["n"].as_str().unwrap()
                ),
                KeyKind::P256 | KeyKind::P384 => format!(
                    "{{\"crv\":\"{}\",\"kty\":\"EC\",\"x\":\"{}\",\"y\":\"{}\"}}",
                    jwk["crv"].as_str().unwrap(),
                    jwk["x"].as_str().unwrap(),
                    jwk["y"].as_str().unwrap()
                ),
                KeyKind::Ed25519 => format!(
                    "{{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"{}\"}}",
                    jwk["x"].as_str().unwrap()
                ),
            };
            assert_eq!(
                key.thumbprint,
                URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
            );
            assert!(key.kid.ends_with(&key.thumbprint[..8]));

            // And a JWT it signs verifies with the public key, not with another key's.
            let token = key.sign(&json!({"sub": "x"}));
            let mut validation = Validation::new(key.alg());
            validation.required_spec_claims.clear();
            decode::<Value>(&token, &key.decoding_key(), &validation)
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let other = test_key(kind, dir.path());
            assert_ne!(other.kid, key.kid);
            assert!(decode::<Value>(&token, &other.decoding_key(), &validation).is_err());
        }
    }

    /// The RFC 7638 §3.1 example: its JWK's thumbprint.
    #[test]
    fn thumbprint_matches_the_rfc_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let modulus = URL_SAFE_NO_PAD.decode(n).unwrap();
        // RSAPublicKey ::= SEQUENCE { n INTEGER (sign-padded), e INTEGER 65537 }
        let mut n_int = vec![0u8];
        n_int.extend(&modulus);
        let mut body = vec![INTEGER, 0x82, 0x01, 0x01];
        body.extend(&n_int);
        body.extend([INTEGER, 3, 1, 0, 1]);
        let mut der = vec![SEQUENCE, 0x82];
        der.extend((body.len() as u16).to_be_bytes());
        der.extend(body);
        assert_eq!(
            PublicKey::Rsa(der).thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn public_pems_of_other_types_are_refused() {
        assert!(PublicKey::from_pem("not pem").is_err());
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(KeyKind::P256, dir.path());
        let private = std::fs::read_to_string(&key.private_pem).unwrap();
        assert_eq!(
            PublicKey::from_pem(&private).unwrap_err(),
            "a PRIVATE KEY PEM is not a public key"
        );
        let secp256k1 = openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:secp256k1",
            ],
            None,
        );
        let public = openssl(&["pkey", "-pubout"], Some(&secp256k1));
        assert!(PublicKey::from_pem(&public).unwrap_err().contains("curve"));
    }
}
