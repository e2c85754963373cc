//! An issuer's JWK set with its keys parsed for signature verification.
//!
//! `KeySet::new` parses each JWK into aws-lc-rs public keys once, when a set
//! is fetched or loaded, so that checking a token's signature costs the
//! signature operation alone. Building an RSA key from its modulus and
//! exponent, or decoding an EC point, for every token is what this saves.
//!
//! A JWK yields one parsed key per JWS algorithm (RFC 7518 §3.1) it may
//! verify:
//! - RSA (`kty` `RSA`): RS256/384/512 (PKCS #1 v1.5) and PS256/384/512 (PSS),
//!   with a modulus of 2048 to 8192 bits, checked when a signature is verified;
//! - EC (`kty` `EC`): ES256 when `crv` is `P-256`, ES384 when it is `P-384`;
//! - OKP (`kty` `OKP`): EdDSA when `crv` is `Ed25519`.
//!
//! A JWK that names an `alg` verifies that algorithm only. Symmetric (`oct`)
//! keys and keys that do not parse verify nothing: they are skipped, not
//! errors, so that one odd key in an issuer's set does not disable the rest.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};

/// The RSA algorithms and the aws-lc-rs parameters that verify them.
const RSA_ALGORITHMS: [(Algorithm, &RsaParameters); 6] = [
    (Algorithm::RS256, &signature::RSA_PKCS1_2048_8192_SHA256),
    (Algorithm::RS384, &signature::RSA_PKCS1_2048_8192_SHA384),
    (Algorithm::RS512, &signature::RSA_PKCS1_2048_8192_SHA512),
    (Algorithm::PS256, &signature::RSA_PSS_2048_8192_SHA256),
    (Algorithm::PS384, &signature::RSA_PSS_2048_8192_SHA384),
    (Algorithm::PS512, &signature::RSA_PSS_2048_8192_SHA512),
];

/// A JWK set and, for each of its keys, the parsed public keys by algorithm.
pub struct KeySet {
    jwks: JwkSet,
    keys: Vec<VerificationKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<(Option<&str>, Vec<&Algorithm>)> =
            self.keys.iter().map(|key| (key.kid.as_deref(), key.parsed.iter().map(|(alg, _)| alg).collect())).collect();
        f.debug_struct("KeySet").field("keys", &keys).finish()
    }
}

/// One JWK's parsed public keys.
struct VerificationKey {
    kid: Option<String>,
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl KeySet {
    /// Parses every key of `jwks`.
    pub fn new(jwks: JwkSet) -> Self {
        let keys = jwks.keys.iter().map(|jwk| VerificationKey { kid: jwk.common.key_id.clone(), parsed: parse_jwk(jwk) }).collect();
        KeySet { jwks, keys }
    }

    /// Returns the JWK set as fetched or loaded.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Returns whether the set has a key with this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// Returns whether `signature` over `message` verifies with `alg` and a
    /// key of the set: the keys whose `kid` equals `kid`, or every key when
    /// the token names none (RFC 7515 §4.1.4 makes `kid` optional).
    pub fn verify(&self, kid: Option<&str>, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.keys
            .iter()
            .filter(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)))
            .flat_map(|key| &key.parsed)
            .filter(|(key_alg, _)| *key_alg == alg)
            .any(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

/// Returns the algorithms `jwk` may verify, each with its parsed key.
fn parse_jwk(jwk: &Jwk) -> Vec<(Algorithm, ParsedPublicKey)> {
    let candidates: Vec<(Algorithm, Option<ParsedPublicKey>)> = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(&rsa.n), URL_SAFE_NO_PAD.decode(&rsa.e)) else { return Vec::new() };
            let components = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
            RSA_ALGORITHMS.iter().map(|(alg, params)| (*alg, components.to_parsed_public_key(params).ok())).collect()
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let (alg, verification): (Algorithm, &'static dyn VerificationAlgorithm) = match ec.curve {
                EllipticCurve::P256 => (Algorithm::ES256, &signature::ECDSA_P256_SHA256_FIXED),
                EllipticCurve::P384 => (Algorithm::ES384, &signature::ECDSA_P384_SHA384_FIXED),
                _ => return Vec::new(),
            };
            let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(&ec.x), URL_SAFE_NO_PAD.decode(&ec.y)) else { return Vec::new() };
            // The uncompressed point encoding of SEC 1 §2.3.3: 0x04, x, y.
            let point = [&[0x04][..], &x, &y].concat();
            vec![(alg, ParsedPublicKey::new(verification, point).ok())]
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            let Ok(x) = URL_SAFE_NO_PAD.decode(&okp.x) else { return Vec::new() };
            vec![(Algorithm::EdDSA, ParsedPublicKey::new(&signature::ED25519, x).ok())]
        }
        _ => return Vec::new(),
    };
    candidates
        .into_iter()
        // A JWK that names an `alg` must only verify that algorithm.
        .filter(|(alg, _)| jwk.common.key_algorithm.as_ref().is_none_or(|key_alg| key_alg.to_string() == format!("{alg:?}")))
        .filter_map(|(alg, parsed)| Some((alg, parsed?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _};
    use serde_json::json;

    const MESSAGE: &[u8] = b"header.payload";

    fn rsa_jwk_and_signatures() -> (serde_json::Value, Vec<u8>, Vec<u8>) {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let mut pkcs1 = vec![0; pair.public_modulus_len()];
        pair.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), MESSAGE, &mut pkcs1).unwrap();
        let mut pss = vec![0; pair.public_modulus_len()];
        pair.sign(&signature::RSA_PSS_SHA256, &SystemRandom::new(), MESSAGE, &mut pss).unwrap();
        let components: RsaPublicKeyComponents<Vec<u8>> = pair.public_key().into();
        let jwk = json!({"kty": "RSA", "kid": "rsa", "n": URL_SAFE_NO_PAD.encode(&components.n), "e": URL_SAFE_NO_PAD.encode(&components.e)});
        (jwk, pkcs1, pss)
    }

    fn ec_jwk_and_signature(crv: &str) -> (serde_json::Value, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "kid": "ec", "crv": crv, "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
        (jwk, pair.sign(&rng, MESSAGE).unwrap().as_ref().to_vec())
    }

    fn key_set(keys: Vec<serde_json::Value>) -> KeySet {
        KeySet::new(serde_json::from_value(json!({ "keys": keys })).unwrap())
    }

    #[test]
    fn rsa_key_verifies_rs256_and_ps256() {
        let (jwk, pkcs1, pss) = rsa_jwk_and_signatures();
        let set = key_set(vec![jwk]);
        assert!(set.verify(Some("rsa"), Algorithm::RS256, MESSAGE, &pkcs1));
        assert!(set.verify(None, Algorithm::RS256, MESSAGE, &pkcs1));
        assert!(set.verify(Some("rsa"), Algorithm::PS256, MESSAGE, &pss));
    }

    #[test]
    fn rsa_signature_fails_on_other_input() {
        let (jwk, pkcs1, _) = rsa_jwk_and_signatures();
        let set = key_set(vec![jwk]);
        assert!(!set.verify(Some("rsa"), Algorithm::RS256, b"header.other", &pkcs1));
        assert!(!set.verify(Some("rsa"), Algorithm::RS384, MESSAGE, &pkcs1));
        assert!(!set.verify(Some("other"), Algorithm::RS256, MESSAGE, &pkcs1));
        assert!(!set.verify(Some("rsa"), Algorithm::ES256, MESSAGE, &pkcs1));
    }

    #[test]
    fn jwk_alg_restricts_the_key() {
        let (mut jwk, pkcs1, pss) = rsa_jwk_and_signatures();
        jwk["alg"] = json!("PS256");
        let set = key_set(vec![jwk]);
        assert!(!set.verify(Some("rsa"), Algorithm::RS256, MESSAGE, &pkcs1));
        assert!(set.verify(Some("rsa"), Algorithm::PS256, MESSAGE, &pss));
    }

    #[test]
    fn ec_key_verifies_es256_only() {
        let (jwk, sig) = ec_jwk_and_signature("P-256");
        let set = key_set(vec![jwk]);
        assert!(set.verify(Some("ec"), Algorithm::ES256, MESSAGE, &sig));
        assert!(!set.verify(Some("ec"), Algorithm::ES384, MESSAGE, &sig));
        assert!(!set.verify(Some("ec"), Algorithm::RS256, MESSAGE, &sig));
    }

    #[test]
    fn ec_key_with_wrong_curve_verifies_nothing() {
        let (jwk, sig) = ec_jwk_and_signature("P-384");
        let set = key_set(vec![jwk]);
        assert!(!set.verify(Some("ec"), Algorithm::ES256, MESSAGE, &sig));
        assert!(!set.verify(Some("ec"), Algorithm::ES384, MESSAGE, &sig));
    }

    #[test]
    fn symmetric_key_verifies_nothing() {
        let set = key_set(vec![json!({"kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(b"secret")})]);
        assert!(set.has_kid("hmac"));
        assert!(!set.verify(Some("hmac"), Algorithm::RS256, MESSAGE, b"signature"));
    }

    #[test]
    fn malformed_key_is_skipped() {
        let (jwk, pkcs1, _) = rsa_jwk_and_signatures();
        let broken = json!({"kty": "RSA", "kid": "rsa", "n": "!!", "e": "AQAB"});
        let set = key_set(vec![broken, jwk]);
        assert!(set.verify(Some("rsa"), Algorithm::RS256, MESSAGE, &pkcs1));
    }
}
