//! Certificates, IdP metadata import and SP metadata.

mod common;

use common::*;
use keyless_saml::{Certificate, parse_idp_metadata, sp_metadata};

fn idp_metadata(key_descriptors: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\
         <md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
         xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{IDP}\">\
         <md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\
         {key_descriptors}\
         <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" \
         Location=\"https://idp.example.test/sso\"/>\
         </md:IDPSSODescriptor></md:EntityDescriptor>"
    )
}

fn key_descriptor(usage: Option<&str>, key: &Key) -> String {
    let usage = usage
        .map(|value| format!(" use=\"{value}\""))
        .unwrap_or_default();
    // Line breaks inside the base64, as metadata generators write it.
    let wrapped: String = key
        .certificate_base64()
        .as_bytes()
        .chunks(64)
        .map(|chunk| format!("{}\n", String::from_utf8_lossy(chunk)))
        .collect();
    format!(
        "<md:KeyDescriptor{usage}><ds:KeyInfo><ds:X509Data>\
         <ds:X509Certificate>\n{wrapped}</ds:X509Certificate>\
         </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    )
}

#[test]
fn certificate_fingerprint_and_expiry_match_openssl() {
    let certificate = idp_key().certificate();
    let fingerprint = certificate.sha256_fingerprint();
    assert_eq!(fingerprint.len(), 32 * 3 - 1);
    assert!(
        fingerprint
            .chars()
            .all(|c| c == ':' || c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );

    let openssl =
        openssl::x509::X509::from_pem(idp_key().certificate_pem.as_bytes()).expect("parses");
    let expected = openssl
        .digest(openssl::hash::MessageDigest::sha256())
        .expect("digest")
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(fingerprint, expected);
    // The fixtures are valid for 100 years from their creation in 2026.
    assert!(
        certificate.not_after() > 4_000_000_000,
        "not_after {}",
        certificate.not_after()
    );
}

#[test]
fn certificate_pem_round_trips() {
    let certificate = idp_key().certificate();
    let again = Certificate::from_pem(&certificate.to_pem()).expect("own PEM parses");
    assert_eq!(again, certificate);
    assert!(certificate.to_pem().lines().all(|line| line.len() <= 64));
}

#[test]
fn certificate_key_policy_is_enforced() {
    let cases = [
        ("weak-rsa.crt", "key-forbidden"),
        ("p521.crt", "key-forbidden"),
        ("idp-dsa.crt", "key-forbidden"),
    ];
    for (name, expected) in cases {
        let error = Certificate::from_pem(&fixture_text(name)).expect_err(name);
        assert_eq!(error.reason(), expected, "{name}: {error}");
    }
    let weak = Certificate::from_pem(&fixture_text("weak-rsa.crt")).expect_err("weak");
    assert!(weak.to_string().contains("1024-bit RSA"), "{weak}");

    assert!(
        Certificate::from_pem(&fixture_text("idp-ec.crt")).is_ok(),
        "P-256 is allowed"
    );
    assert!(
        Certificate::from_pem(&fixture_text("rotated-rsa.crt")).is_ok(),
        "RSA 2048 is allowed"
    );
}

#[test]
fn malformed_pem_is_rejected() {
    let two = format!(
        "{}{}",
        idp_key().certificate_pem,
        Key::load("rotated-rsa").certificate_pem
    );
    let cases = [
        ("empty", String::new()),
        ("two certificates", two),
        (
            "private key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
        ),
        (
            "garbage body",
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_owned(),
        ),
    ];
    for (name, pem) in cases {
        let error = Certificate::from_pem(&pem).expect_err(name);
        assert_eq!(error.reason(), "certificate-invalid", "{name}: {error}");
    }
}

#[test]
fn metadata_signing_certificates_are_imported() {
    let rotated = Key::load("rotated-rsa");
    let attacker = Key::load("attacker-rsa");
    let xml = idp_metadata(&format!(
        "{}{}{}{}",
        key_descriptor(Some("signing"), &idp_key()),
        key_descriptor(None, &rotated),
        key_descriptor(Some("encryption"), &attacker),
        key_descriptor(Some("signing"), &idp_key()),
    ));
    let (entity_id, certificates) = parse_idp_metadata(&xml).expect("imports");
    assert_eq!(entity_id, IDP);
    assert_eq!(
        certificates,
        vec![idp_key().certificate(), rotated.certificate()]
    );
}

#[test]
fn metadata_in_entities_descriptor_is_imported() {
    let inner = idp_metadata(&key_descriptor(None, &idp_key()));
    let inner = inner.trim_start_matches("<?xml version=\"1.0\"?>");
    let xml = format!(
        "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{inner}</md:EntitiesDescriptor>"
    );
    let (entity_id, certificates) = parse_idp_metadata(&xml).expect("imports");
    assert_eq!(entity_id, IDP);
    assert_eq!(certificates.len(), 1);
}

#[test]
fn metadata_without_signing_certificate_is_rejected() {
    let cases = [
        ("no key descriptor", idp_metadata("")),
        (
            "encryption only",
            idp_metadata(&key_descriptor(Some("encryption"), &idp_key())),
        ),
    ];
    for (name, xml) in cases {
        let error = parse_idp_metadata(&xml).expect_err(name);
        assert_eq!(error.reason(), "metadata-invalid", "{name}: {error}");
    }
}

#[test]
fn metadata_with_forbidden_key_is_rejected() {
    let weak = Key {
        private_der: Vec::new(),
        certificate_pem: fixture_text("weak-rsa.crt"),
    };
    let xml = idp_metadata(&format!(
        "{}{}",
        key_descriptor(None, &idp_key()),
        key_descriptor(None, &weak)
    ));
    let error = parse_idp_metadata(&xml).expect_err("weak key");
    assert_eq!(error.reason(), "key-forbidden");
}

#[test]
fn metadata_is_parsed_hardened() {
    let valid = idp_metadata(&key_descriptor(None, &idp_key()));
    let cases = [
        (
            "dtd",
            valid.replacen(
                "<?xml version=\"1.0\"?>",
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>",
                1,
            ),
            "dtd-forbidden",
        ),
        ("not metadata", "<x/>".to_owned(), "metadata-invalid"),
        (
            "sp metadata",
            sp_metadata(SP, &[ACS.to_owned()]),
            "metadata-invalid",
        ),
        ("not xml", "{\"entityID\": 1}".to_owned(), "malformed-xml"),
    ];
    for (name, xml, expected) in cases {
        let error = parse_idp_metadata(&xml).expect_err(name);
        assert_eq!(error.reason(), expected, "{name}: {error}");
    }
}

#[test]
fn sp_metadata_lists_every_acs_url() {
    let acs_urls = vec![
        ACS.to_owned(),
        "https://keyless.example.test/?a=1&b=\"2\"".to_owned(),
    ];
    let xml = sp_metadata(SP, &acs_urls);
    let document = roxmltree::Document::parse(&xml).expect("well-formed");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "EntityDescriptor");
    assert_eq!(root.attribute("entityID"), Some(SP));

    let descriptor = root
        .children()
        .find(|node| node.has_tag_name("SPSSODescriptor"))
        .expect("SPSSODescriptor");
    assert_eq!(descriptor.attribute("WantAssertionsSigned"), Some("true"));

    let services: Vec<_> = descriptor
        .children()
        .filter(|node| node.has_tag_name("AssertionConsumerService"))
        .collect();
    assert_eq!(services.len(), 2);
    for (service, url) in services.iter().zip(&acs_urls) {
        assert_eq!(service.attribute("Location"), Some(url.as_str()));
        assert_eq!(
            service.attribute("Binding"),
            Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
        );
    }
    assert_eq!(services[0].attribute("isDefault"), Some("true"));
}
