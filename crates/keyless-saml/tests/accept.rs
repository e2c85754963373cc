//! Responses keyless must accept: every signing layout and algorithm, with
//! bergshamra as an independent second verifier that must agree.

mod common;

use common::*;
use keyless_saml::verify;

/// Verifies `xml` with keyless and with bergshamra (trusting `key` only).
fn accept_both(
    xml: &str,
    key: &Key,
    settings: &keyless_saml::SamlSettings,
) -> keyless_saml::VerifiedAssertion {
    let verified = verify(&encode(xml), settings, NOW).unwrap_or_else(|error| {
        panic!(
            "keyless rejected a valid response: {error} ({})",
            error.reason()
        )
    });
    let (count, all_valid) = second_verifier(xml, &key.certificate_pem);
    assert!(count >= 1, "bergshamra found no signature");
    assert!(all_valid, "bergshamra rejected a response keyless accepted");
    let (_, valid_with_other_key) =
        second_verifier(xml, &Key::load("attacker-rsa").certificate_pem);
    assert!(
        !valid_with_other_key,
        "bergshamra accepted a key that did not sign"
    );
    verified
}

#[test]
fn response_and_assertion_signed_is_accepted() {
    let signing = Signing::both();
    let xml = response_xml(&ResponseSpec::default(), &signing);
    let verified = accept_both(&xml, &signing.key, &settings());

    assert_eq!(verified.assertion_id, "_assertion-1");
    assert_eq!(verified.issuer, IDP);
    assert_eq!(verified.name_id.as_deref(), Some("alice@example.test"));
    assert_eq!(verified.not_on_or_after, NOW + 240);
    assert_eq!(
        verified.attributes.get("groups"),
        Some(&vec!["ml".to_owned(), "ops".to_owned()])
    );
    assert_eq!(
        verified
            .attributes
            .get("https://aws.amazon.com/SAML/Attributes/Role"),
        Some(&vec![
            "arn:aws:iam::default:role/DataScience,arn:aws:iam::default:saml-provider/idp"
                .to_owned()
        ])
    );
}

#[test]
fn response_signed_only_is_accepted() {
    let signing = Signing::response_only();
    let xml = response_xml(&ResponseSpec::default(), &signing);
    let verified = accept_both(&xml, &signing.key, &settings());
    assert_eq!(verified.name_id.as_deref(), Some("alice@example.test"));
}

#[test]
fn assertion_signed_only_is_accepted() {
    let signing = Signing::assertion_only();
    let xml = response_xml(&ResponseSpec::default(), &signing);
    let verified = accept_both(&xml, &signing.key, &settings());
    assert_eq!(verified.name_id.as_deref(), Some("alice@example.test"));
}

#[test]
fn rsa_sha384_and_sha512_are_accepted() {
    for algorithms in [
        Algorithms {
            signature: RSA_SHA384,
            digest: SHA384,
        },
        Algorithms {
            signature: RSA_SHA512,
            digest: SHA512,
        },
        Algorithms {
            signature: RSA_SHA256,
            digest: SHA512,
        },
    ] {
        let signing = Signing {
            key: idp_key(),
            response: Some(algorithms),
            assertion: Some(algorithms),
        };
        let xml = response_xml(&ResponseSpec::default(), &signing);
        accept_both(&xml, &signing.key, &settings());
    }
}

#[test]
fn ecdsa_p256_is_accepted() {
    let key = Key::load("idp-ec");
    for algorithms in [
        Algorithms {
            signature: ECDSA_SHA256,
            digest: SHA256,
        },
        Algorithms {
            signature: ECDSA_SHA384,
            digest: SHA384,
        },
    ] {
        let signing = Signing {
            key: key.clone(),
            response: Some(algorithms),
            assertion: Some(algorithms),
        };
        let xml = response_xml(&ResponseSpec::default(), &signing);
        accept_both(&xml, &key, &settings_with(vec![key.certificate()]));
    }
}

#[test]
fn rotated_key_is_accepted_with_both_configured() {
    let rotated = Key::load("rotated-rsa");
    let signing = Signing {
        key: rotated.clone(),
        ..Signing::both()
    };
    let xml = response_xml(&ResponseSpec::default(), &signing);
    let settings = settings_with(vec![idp_key().certificate(), rotated.certificate()]);
    accept_both(&xml, &rotated, &settings);
}

#[test]
fn response_without_optional_fields_is_accepted() {
    let spec = ResponseSpec {
        response_issuer: None,
        destination: None,
        ..ResponseSpec::default()
    };
    let signing = Signing::assertion_only();
    let xml = response_xml(&spec, &signing);
    accept_both(&xml, &signing.key, &settings());
}

#[test]
fn line_wrapped_base64_is_accepted() {
    let xml = response_xml(&ResponseSpec::default(), &Signing::both());
    let verified = verify(&encode_wrapped(&xml), &settings(), NOW).expect("accepted");
    assert_eq!(verified.assertion_id, "_assertion-1");
}

#[test]
fn escaped_characters_read_as_text() {
    let spec = ResponseSpec {
        name_id_xml: "o&apos;brien&amp;co&#x40;example.test".to_owned(),
        ..ResponseSpec::default()
    };
    let xml = response_xml(&spec, &Signing::both());
    let verified = accept_both(&xml, &idp_key(), &settings());
    assert_eq!(verified.name_id.as_deref(), Some("o'brien&co@example.test"));
}

#[test]
fn expiry_is_the_earlier_of_conditions_and_confirmation() {
    let spec = ResponseSpec {
        not_on_or_after: NOW + 100,
        confirmation_not_on_or_after: NOW + 200,
        ..ResponseSpec::default()
    };
    let xml = response_xml(&spec, &Signing::both());
    let verified = verify(&encode(&xml), &settings(), NOW).expect("accepted");
    assert_eq!(verified.not_on_or_after, NOW + 100);
}

#[test]
fn comment_between_elements_is_accepted() {
    let spec = ResponseSpec::default();
    let key = idp_key();
    let template = signature_template(&spec.assertion_id, DEFAULT_ALGORITHMS, &key);
    let unsigned = spec.assertion_xml(&template).replacen(
        "</saml:Subject>",
        "</saml:Subject><!-- issued for the test -->",
        1,
    );
    let assertion = strip_declaration(&sign_first_template(&unsigned, &key));
    let xml = wrap_and_sign_response(&spec, &assertion, &Signing::assertion_only());
    assert!(xml.contains("<!-- issued for the test -->"));

    let verified = accept_both(&xml, &key, &settings());
    assert_eq!(verified.name_id.as_deref(), Some("alice@example.test"));
}
