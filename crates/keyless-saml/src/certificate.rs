//! IdP signing certificates: parsing, the key-type policy, and display forms.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::x509::X509;
use sha2::{Digest, Sha256};

use crate::error::{SamlError, quote};

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: u32 = 2048;

/// An X.509 certificate whose public key may verify IdP signatures.
///
/// Only the public key is used, and nothing in the certificate is checked
/// beyond its key: the IdP's certificate is pinned, so its issuer, chain and
/// validity dates carry no trust. [`Certificate::not_after`] is there for
/// warnings about upcoming rotations.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    not_after: i64,
    fingerprint: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Certificate")
            .field("sha256_fingerprint", &self.fingerprint)
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl Certificate {
    /// Parses one PEM certificate (`-----BEGIN CERTIFICATE-----`). Rejects
    /// several certificates in one string, other PEM types, and any key that
    /// is not RSA of at least 2048 bits or EC on P-256 or P-384.
    pub fn from_pem(pem: &str) -> Result<Certificate, SamlError> {
        let blocks = pem.matches("-----BEGIN ").count();
        if blocks != 1 {
            return Err(SamlError::InvalidCertificate(format!(
                "expected exactly one PEM block, found {blocks}"
            )));
        }
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(SamlError::InvalidCertificate(
                "the PEM block is not a CERTIFICATE".to_owned(),
            ));
        }
        let x509 = X509::from_pem(pem.as_bytes()).map_err(|error| {
            SamlError::InvalidCertificate(format!("cannot parse the PEM certificate: {error}"))
        })?;
        Certificate::from_x509(&x509)
    }

    /// Parses one DER certificate, with the same key policy as [`Certificate::from_pem`].
    pub fn from_der(der: &[u8]) -> Result<Certificate, SamlError> {
        let x509 = X509::from_der(der).map_err(|error| {
            SamlError::InvalidCertificate(format!("cannot parse the DER certificate: {error}"))
        })?;
        Certificate::from_x509(&x509)
    }

    fn from_x509(x509: &X509) -> Result<Certificate, SamlError> {
        check_key_policy(x509)?;
        let der = x509
            .to_der()
            .map_err(|error| SamlError::InvalidCertificate(error.to_string()))?;
        let not_after = unix_seconds(x509.not_after())?;
        let digest = Sha256::digest(&der);
        let fingerprint = digest
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        Ok(Certificate {
            der,
            not_after,
            fingerprint,
        })
    }

    /// Returns the certificate as one PEM block with 64-character lines.
    pub fn to_pem(&self) -> String {
        let encoded = STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// Returns the SHA-256 fingerprint of the DER encoding as upper-case hex
    /// pairs joined by colons, the form `openssl x509 -fingerprint -sha256`
    /// prints and IdP consoles show.
    pub fn sha256_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Returns the end of the certificate's validity period, in unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Returns the DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

fn subject_of(x509: &X509) -> String {
    let subject = x509
        .subject_name()
        .entries()
        .filter_map(|entry| entry.data().to_string().ok())
        .collect::<Vec<_>>()
        .join(", ");
    quote(&subject)
}

fn check_key_policy(x509: &X509) -> Result<(), SamlError> {
    let key = x509.public_key().map_err(|error| {
        SamlError::InvalidCertificate(format!("cannot read the public key: {error}"))
    })?;
    let forbidden = |found: String| SamlError::KeyForbidden {
        subject: subject_of(x509),
        found,
    };
    match key.id() {
        Id::RSA => {
            let bits = key.bits();
            if bits < MIN_RSA_BITS {
                return Err(forbidden(format!("{bits}-bit RSA")));
            }
            Ok(())
        }
        Id::EC => {
            let ec_key = key
                .ec_key()
                .map_err(|error| SamlError::InvalidCertificate(error.to_string()))?;
            match ec_key.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) | Some(Nid::SECP384R1) => Ok(()),
                Some(other) => Err(forbidden(format!(
                    "EC {}",
                    other.short_name().unwrap_or("unnamed-curve")
                ))),
                None => Err(forbidden("EC (explicit curve parameters)".to_owned())),
            }
        }
        Id::DSA => Err(forbidden("DSA".to_owned())),
        other => Err(forbidden(format!("type {}", other.as_raw()))),
    }
}

fn unix_seconds(time: &openssl::asn1::Asn1TimeRef) -> Result<i64, SamlError> {
    let epoch =
        Asn1Time::from_unix(0).map_err(|error| SamlError::InvalidCertificate(error.to_string()))?;
    let difference = epoch
        .diff(time)
        .map_err(|error| SamlError::InvalidCertificate(format!("invalid notAfter: {error}")))?;
    Ok(i64::from(difference.days) * 86_400 + i64::from(difference.secs))
}
