//! Builds and signs SAML responses for the tests and the benchmark.
//!
//! A [`ResponseSpec`] contains every field a test may set wrong; its defaults
//! make a response that keyless accepts at [`NOW`]. Signing goes through
//! libxmlsec1 (samael's `sign_xml`) with the keys in `tests/fixtures`.
#![allow(dead_code)]

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyless_saml::{Certificate, SamlSettings};
use samael::crypto::{CryptoProvider, XmlSec};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The fixed "current time" of the tests, in unix seconds (2027-01-15).
pub const NOW: i64 = 1_800_000_000;
pub const LEEWAY: u64 = 60;
pub const IDP: &str = "https://idp.example.test/saml2/idp/metadata.php";
pub const SP: &str = "https://keyless.example.test/saml/sp";
pub const ACS: &str = "https://keyless.example.test/v1/cwobject/temporary-credentials/saml";
pub const ACS_STS: &str = "https://keyless.example.test/";

pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const DSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#dsa-sha1";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

pub fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

pub fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name)).expect("fixture is UTF-8")
}

/// A signing key from the fixtures and the certificate that goes with it.
#[derive(Clone)]
pub struct Key {
    pub private_der: Vec<u8>,
    pub certificate_pem: String,
}

impl Key {
    pub fn load(stem: &str) -> Key {
        Key {
            private_der: fixture(&format!("{stem}.der")),
            certificate_pem: fixture_text(&format!("{stem}.crt")),
        }
    }

    /// Returns the certificate's base64 DER, as it appears in ds:X509Certificate.
    pub fn certificate_base64(&self) -> String {
        self.certificate_pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect()
    }

    pub fn certificate(&self) -> Certificate {
        Certificate::from_pem(&self.certificate_pem).expect("fixture certificate is allowed")
    }
}

pub fn idp_key() -> Key {
    Key::load("idp-rsa")
}

pub fn settings() -> SamlSettings {
    settings_with(vec![idp_key().certificate()])
}

pub fn settings_with(certificates: Vec<Certificate>) -> SamlSettings {
    SamlSettings {
        idp_entity_id: IDP.to_owned(),
        certificates,
        sp_entity_id: SP.to_owned(),
        acs_urls: vec![ACS.to_owned(), ACS_STS.to_owned()],
        leeway_seconds: LEEWAY,
    }
}

pub fn instant(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .expect("valid instant")
        .format(&Rfc3339)
        .expect("formats")
}

/// The algorithms a signature template names.
#[derive(Clone, Copy)]
pub struct Algorithms {
    pub signature: &'static str,
    pub digest: &'static str,
}

pub const DEFAULT_ALGORITHMS: Algorithms = Algorithms {
    signature: RSA_SHA256,
    digest: SHA256,
};

/// Returns an empty ds:Signature template for xmlsec to fill, with the
/// signer's certificate in KeyInfo as IdPs send it.
pub fn signature_template(reference_id: &str, algorithms: Algorithms, key: &Key) -> String {
    format!(
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>\
         <ds:SignatureMethod Algorithm=\"{}\"/>\
         <ds:Reference URI=\"#{reference_id}\"><ds:Transforms>\
         <ds:Transform Algorithm=\"{ENVELOPED}\"/>\
         <ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"{}\"/><ds:DigestValue></ds:DigestValue></ds:Reference>\
         </ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>\
         <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
         </ds:Signature>",
        algorithms.signature,
        algorithms.digest,
        key.certificate_base64()
    )
}

/// Signs the first empty ds:Signature template in document order.
pub fn sign_first_template(xml: &str, key: &Key) -> String {
    XmlSec::sign_xml(xml, &key.private_der).expect("xmlsec signs the template")
}

/// Every field of a response that a test may set.
#[derive(Clone)]
pub struct ResponseSpec {
    pub response_id: String,
    pub assertion_id: String,
    pub response_issuer: Option<String>,
    pub assertion_issuer: String,
    pub destination: Option<String>,
    pub response_in_response_to: Option<String>,
    pub confirmation_in_response_to: Option<String>,
    pub status: String,
    pub audiences: Vec<String>,
    pub recipient: String,
    pub not_before: i64,
    pub not_on_or_after: i64,
    pub confirmation_not_on_or_after: i64,
    /// Raw XML content of the NameID, so that tests can put markup in it.
    pub name_id_xml: String,
    /// Attribute names with raw XML contents of their values.
    pub attributes: Vec<(String, Vec<String>)>,
    /// Raw XML placed inside samlp:Response before the Assertion.
    pub response_extra_xml: String,
}

impl Default for ResponseSpec {
    fn default() -> Self {
        ResponseSpec {
            response_id: "_response-1".to_owned(),
            assertion_id: "_assertion-1".to_owned(),
            response_issuer: Some(IDP.to_owned()),
            assertion_issuer: IDP.to_owned(),
            destination: Some(ACS.to_owned()),
            response_in_response_to: None,
            confirmation_in_response_to: None,
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".to_owned(),
            audiences: vec![SP.to_owned()],
            recipient: ACS.to_owned(),
            not_before: NOW - 30,
            not_on_or_after: NOW + 300,
            confirmation_not_on_or_after: NOW + 240,
            name_id_xml: "alice@example.test".to_owned(),
            attributes: vec![
                (
                    "https://aws.amazon.com/SAML/Attributes/Role".to_owned(),
                    vec!["arn:aws:iam::default:role/DataScience,arn:aws:iam::default:saml-provider/idp".to_owned()],
                ),
                ("groups".to_owned(), vec!["ml".to_owned(), "ops".to_owned()]),
            ],
            response_extra_xml: String::new(),
        }
    }
}

impl ResponseSpec {
    /// Returns the saml:Assertion element, with `signature` placed after its Issuer.
    pub fn assertion_xml(&self, signature: &str) -> String {
        let in_response_to = self
            .confirmation_in_response_to
            .as_ref()
            .map(|value| format!(" InResponseTo=\"{value}\""))
            .unwrap_or_default();
        let audiences: String = self
            .audiences
            .iter()
            .map(|audience| format!("<saml:Audience>{audience}</saml:Audience>"))
            .collect();
        let attributes: String = self
            .attributes
            .iter()
            .map(|(name, values)| {
                let values: String = values
                    .iter()
                    .map(|value| format!("<saml:AttributeValue xsi:type=\"xs:string\">{value}</saml:AttributeValue>"))
                    .collect();
                format!(
                    "<saml:Attribute Name=\"{name}\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\">{values}</saml:Attribute>"
                )
            })
            .collect();
        format!(
            "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
             xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{issued}\">\
             <saml:Issuer>{issuer}</saml:Issuer>{signature}\
             <saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\">{name_id}</saml:NameID>\
             <saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">\
             <saml:SubjectConfirmationData NotOnOrAfter=\"{confirmation_expiry}\" Recipient=\"{recipient}\"{in_response_to}/>\
             </saml:SubjectConfirmation></saml:Subject>\
             <saml:Conditions NotBefore=\"{not_before}\" NotOnOrAfter=\"{not_on_or_after}\">\
             <saml:AudienceRestriction>{audiences}</saml:AudienceRestriction></saml:Conditions>\
             <saml:AuthnStatement AuthnInstant=\"{issued}\" SessionIndex=\"_session-1\">\
             <saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext>\
             </saml:AuthnStatement>\
             <saml:AttributeStatement>{attributes}</saml:AttributeStatement>\
             </saml:Assertion>",
            id = self.assertion_id,
            issued = instant(NOW - 5),
            issuer = self.assertion_issuer,
            name_id = self.name_id_xml,
            confirmation_expiry = instant(self.confirmation_not_on_or_after),
            recipient = self.recipient,
            not_before = instant(self.not_before),
            not_on_or_after = instant(self.not_on_or_after),
        )
    }

    /// Returns the saml:Assertion element with its ID replaced by `id`.
    pub fn assertion_xml_with_id(self, id: &str, signature: &str) -> String {
        ResponseSpec {
            assertion_id: id.to_owned(),
            ..self
        }
        .assertion_xml(signature)
    }

    /// Returns the samlp:Response element around `assertion`, with `signature`
    /// placed after its Issuer (or first, without an Issuer).
    pub fn response_xml(&self, signature: &str, assertion: &str) -> String {
        let destination = self
            .destination
            .as_ref()
            .map(|value| format!(" Destination=\"{value}\""))
            .unwrap_or_default();
        let in_response_to = self
            .response_in_response_to
            .as_ref()
            .map(|value| format!(" InResponseTo=\"{value}\""))
            .unwrap_or_default();
        let issuer = self
            .response_issuer
            .as_ref()
            .map(|value| format!("<saml:Issuer>{value}</saml:Issuer>"))
            .unwrap_or_default();
        format!(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
             xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
             ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{issued}\"{destination}{in_response_to}>\
             {issuer}{signature}{extra}\
             <samlp:Status><samlp:StatusCode Value=\"{status}\"/></samlp:Status>\
             {assertion}</samlp:Response>",
            id = self.response_id,
            issued = instant(NOW - 5),
            extra = self.response_extra_xml,
            status = self.status,
        )
    }
}

/// Which parts of a response to sign, with which key and algorithms.
#[derive(Clone)]
pub struct Signing {
    pub key: Key,
    pub response: Option<Algorithms>,
    pub assertion: Option<Algorithms>,
}

impl Signing {
    pub fn both() -> Signing {
        Signing {
            key: idp_key(),
            response: Some(DEFAULT_ALGORITHMS),
            assertion: Some(DEFAULT_ALGORITHMS),
        }
    }

    pub fn response_only() -> Signing {
        Signing {
            assertion: None,
            ..Signing::both()
        }
    }

    pub fn assertion_only() -> Signing {
        Signing {
            response: None,
            ..Signing::both()
        }
    }
}

/// Signs the assertion first (if asked), then the response around it.
pub fn signed_assertion(spec: &ResponseSpec, signing: &Signing) -> String {
    match signing.assertion {
        Some(algorithms) => {
            let template = signature_template(&spec.assertion_id, algorithms, &signing.key);
            let unsigned = spec.assertion_xml(&template);
            strip_declaration(&sign_first_template(&unsigned, &signing.key))
        }
        None => spec.assertion_xml(""),
    }
}

/// Builds the response XML for `spec`, signed as `signing` specifies.
pub fn response_xml(spec: &ResponseSpec, signing: &Signing) -> String {
    let assertion = signed_assertion(spec, signing);
    wrap_and_sign_response(spec, &assertion, signing)
}

/// Puts `assertion` (already signed or not) into a response for `spec` and
/// signs the response if `signing.response` is set.
pub fn wrap_and_sign_response(spec: &ResponseSpec, assertion: &str, signing: &Signing) -> String {
    match signing.response {
        Some(algorithms) => {
            let template = signature_template(&spec.response_id, algorithms, &signing.key);
            let unsigned = spec.response_xml(&template, assertion);
            strip_declaration(&sign_first_template(&unsigned, &signing.key))
        }
        None => spec.response_xml("", assertion),
    }
}

/// Removes the XML declaration libxml2 adds when it serializes.
pub fn strip_declaration(xml: &str) -> String {
    let trimmed = xml.trim();
    match trimmed.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, body)| body.trim().to_owned())
            .unwrap_or_else(|| trimmed.to_owned()),
        None => trimmed.to_owned(),
    }
}

pub fn encode(xml: &str) -> String {
    STANDARD.encode(xml.as_bytes())
}

/// Encodes with line breaks every 76 characters, as some IdPs post it.
pub fn encode_wrapped(xml: &str) -> String {
    let encoded = encode(xml);
    encoded
        .as_bytes()
        .chunks(76)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Verifies every signature in `xml` with bergshamra, a pure-Rust XML-DSig
/// implementation that shares no code with libxmlsec1, trusting only
/// `certificate_pem` and ignoring KeyInfo. Returns how many signatures it
/// found and whether all of them verified.
pub fn second_verifier(xml: &str, certificate_pem: &str) -> (usize, bool) {
    let key = bergshamra::keys::loader::load_x509_cert_pem(certificate_pem.as_bytes())
        .expect("bergshamra loads the certificate");
    let mut keys = bergshamra::KeysManager::new();
    keys.add_key(key);
    let context = bergshamra::DsigContext::new(keys);
    let results = bergshamra::verify_all(&context, xml).expect("bergshamra parses the response");
    let all_valid = results.iter().all(|result| result.is_valid());
    (results.len(), all_valid)
}
