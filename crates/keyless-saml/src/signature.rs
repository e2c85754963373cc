//! The cryptographic check: libxmlsec1, through samael, verifies every
//! ds:Signature of the document with the configured certificates only and
//! returns the document reduced to the content those signatures cover.
//!
//! samael parses the XML with libxml2, registers the `ID` attributes and
//! verifies each signature with each configured certificate until one
//! succeeds. The key is set on the xmlsec context, so xmlsec never reads
//! ds:KeyInfo. samael then rebuilds a document from what xmlsec reports as
//! verified pre-digest content. Everything unsigned is dropped, so reading
//! from the reduced document reads only signed content.

use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
};

use crate::certificate::Certificate;
use crate::error::SamlError;

/// The same allow-list as `structure::SIGNATURE_ALGORITHMS`, handed to samael
/// so that libxmlsec1 enforces it a second time. samael derives the allowed
/// digests (SHA-256, SHA-384, SHA-512) from it.
const ALLOWED_ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// Verifies every signature in `xml` with `certificates` and returns the XML
/// of the signed content only. Its root is the Response when the Response is
/// signed, otherwise the Assertion.
pub(crate) fn verify_and_reduce(
    xml: &str,
    certificates: &[Certificate],
) -> Result<String, SamlError> {
    let keys: Vec<CertificateDer> = certificates
        .iter()
        .map(|certificate| CertificateDer::from(certificate.der().to_vec()))
        .collect();
    XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &keys,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&ALLOWED_ALGORITHMS),
    )
    .map_err(|error| SamlError::SignatureInvalid {
        certificates: certificates.len(),
        detail: describe_crypto_error(&error),
    })
}

/// Describes a samael error by its message and its source's message. Neither
/// contains key material or document content beyond an ID value.
fn describe_crypto_error(error: &samael::crypto::CryptoError) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}
