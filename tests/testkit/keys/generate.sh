#!/usr/bin/env bash
# Regenerates the test provider's fixed signing keys and their public JWKs (jwks.json).
# Run once; the outputs are committed. Needs the openssl CLI and python3.
# rsa-rogue is never published: it signs the forged id_tokens.
set -euo pipefail
cd "$(dirname "$0")"
for k in rsa-1 rsa-2 rsa-rogue; do
    # PKCS#1 ("RSA PRIVATE KEY"): the DER that jsonwebtoken's EncodingKey::from_rsa_der takes.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 | openssl pkey -traditional -out "$k.pem"
done
# PKCS#8 ("PRIVATE KEY"), as from_ec_der and from_ed_der take it.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-1.pem
openssl genpkey -algorithm ED25519 -out ed-1.pem
python3 - <<'PY'
import base64, json, subprocess

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def pub_der(name):
    return subprocess.run(["openssl", "pkey", "-in", f"{name}.pem", "-pubout", "-outform", "DER"],
                          check=True, capture_output=True).stdout

def rsa(name):
    text = subprocess.run(["openssl", "rsa", "-in", f"{name}.pem", "-noout", "-modulus"],
                          check=True, capture_output=True, text=True).stdout
    n = bytes.fromhex(text.strip().split("=", 1)[1])
    return {"kty": "RSA", "kid": name, "alg": "RS256", "use": "sig", "n": b64(n), "e": "AQAB"}

def ec(name):
    point = pub_der(name)[-65:]
    assert point[0] == 4
    return {"kty": "EC", "kid": name, "alg": "ES256", "use": "sig", "crv": "P-256",
            "x": b64(point[1:33]), "y": b64(point[33:])}

def ed(name):
    return {"kty": "OKP", "kid": name, "alg": "EdDSA", "use": "sig", "crv": "Ed25519",
            "x": b64(pub_der(name)[-32:])}

# Every key the provider may publish (rsa-rogue is not among them).
keys = [rsa("rsa-1"), rsa("rsa-2"), ec("ec-1"), ed("ed-1")]
with open("jwks.json", "w") as f:
    json.dump({"keys": keys}, f, indent=2)
    f.write("\n")
PY
