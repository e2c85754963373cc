//! Responses keyless must reject, one test per attack class, each with its
//! variants. Every case asserts the exact `SamlError::reason`.

mod common;

use common::*;
use keyless_saml::{SamlSettings, verify};

/// Returns the reason keyless gives for `xml`, or "accepted".
fn reason_at(xml: &str, settings: &SamlSettings, now: i64) -> &'static str {
    match verify(&encode(xml), settings, now) {
        Ok(_) => "accepted",
        Err(error) => error.reason(),
    }
}

fn reason(xml: &str) -> &'static str {
    reason_at(xml, &settings(), NOW)
}

/// Returns the first ds:Signature element of `xml` as text.
fn first_signature(xml: &str) -> &str {
    let start = xml.find("<ds:Signature").expect("has a signature");
    let end = xml[start..]
        .find("</ds:Signature>")
        .expect("signature ends")
        + start;
    &xml[start..end + "</ds:Signature>".len()]
}

/// `xml` with its first ds:Signature element removed.
fn without_signature(xml: &str) -> String {
    xml.replacen(first_signature(xml), "", 1)
}

/// Returns the saml:Assertion element of `xml` as text.
fn assertion_of(xml: &str) -> &str {
    let start = xml.find("<saml:Assertion").expect("has an assertion");
    let end = xml.rfind("</saml:Assertion>").expect("assertion ends");
    &xml[start..end + "</saml:Assertion>".len()]
}

/// Returns `signature` with `content` inside a ds:Object after KeyInfo.
fn with_object(signature: &str, content: &str) -> String {
    signature.replacen(
        "</ds:Signature>",
        &format!("<ds:Object>{content}</ds:Object></ds:Signature>"),
        1,
    )
}

fn evil_spec() -> ResponseSpec {
    ResponseSpec {
        response_id: "_evil-response".to_owned(),
        assertion_id: "_evil-assertion".to_owned(),
        name_id_xml: "admin@example.test".to_owned(),
        ..ResponseSpec::default()
    }
}

fn unsigned_evil_assertion(id: &str) -> String {
    ResponseSpec {
        assertion_id: id.to_owned(),
        ..evil_spec()
    }
    .assertion_xml("")
}

#[test]
fn signature_wrapping_layouts_are_rejected() {
    let spec = ResponseSpec::default();
    let evil = evil_spec();
    let signed_response = response_xml(&spec, &Signing::response_only());
    let response_signature = first_signature(&signed_response);
    let signed_assertion_doc = response_xml(&spec, &Signing::assertion_only());
    let signed_assertion = assertion_of(&signed_assertion_doc);
    let assertion_signature = first_signature(signed_assertion);
    let evil_assertion = unsigned_evil_assertion("_evil-assertion");
    let evil_assertion_same_id = unsigned_evil_assertion("_assertion-1");
    let evil_assertion_no_id = evil_assertion.replacen(" ID=\"_evil-assertion\"", "", 1);

    let cases: Vec<(&str, String, &str)> = vec![
        // XSW1: evil Response carries the copied signature, the original
        // signed Response sits in ds:Object.
        (
            "xsw1 response in signature object",
            evil.response_xml(
                &with_object(response_signature, &signed_response),
                &evil_assertion,
            ),
            "not-one-assertion",
        ),
        // XSW1 with the evil Response taking the original ID.
        (
            "xsw1 same response id",
            ResponseSpec {
                response_id: "_response-1".to_owned(),
                ..evil.clone()
            }
            .response_xml(
                &with_object(response_signature, &signed_response),
                &evil_assertion,
            ),
            "duplicate-id",
        ),
        // XSW2: the original signed Response is a child of the evil one.
        (
            "xsw2 response nested before signature",
            evil.response_xml(
                &format!("{response_signature}{signed_response}"),
                &evil_assertion,
            ),
            "not-one-assertion",
        ),
        // XSW2 without the original assertion: only the response signature is
        // copied, pointing at an ID the evil response does not have.
        (
            "xsw2 copied response signature only",
            evil.response_xml(response_signature, &evil_assertion),
            "reference-mismatch",
        ),
        // XSW3: an evil assertion before the signed one.
        (
            "xsw3 evil assertion before signed",
            spec.response_xml("", &format!("{evil_assertion}{signed_assertion}")),
            "not-one-assertion",
        ),
        // XSW3 duplicated with the same ID.
        (
            "xsw3 evil assertion same id",
            spec.response_xml("", &format!("{evil_assertion_same_id}{signed_assertion}")),
            "duplicate-id",
        ),
        // XSW3 duplicated without an ID.
        (
            "xsw3 evil assertion without id",
            spec.response_xml("", &format!("{evil_assertion_no_id}{signed_assertion}")),
            "not-one-assertion",
        ),
        // XSW4: the signed assertion is wrapped inside the evil one.
        (
            "xsw4 signed assertion inside evil",
            spec.response_xml(
                "",
                &evil_assertion.replacen(
                    "</saml:Assertion>",
                    &format!("{signed_assertion}</saml:Assertion>"),
                    1,
                ),
            ),
            "not-one-assertion",
        ),
        // XSW5: the evil assertion carries the copied signature, the signed
        // one is appended after it.
        (
            "xsw5 copied signature, original appended",
            spec.response_xml(
                "",
                &format!(
                    "{}{}",
                    ResponseSpec {
                        assertion_id: "_evil-assertion".to_owned(),
                        ..evil.clone()
                    }
                    .assertion_xml(assertion_signature),
                    without_signature(signed_assertion)
                ),
            ),
            "not-one-assertion",
        ),
        // XSW5 without the original: the copied signature names another ID.
        (
            "xsw5 copied signature, original removed",
            spec.response_xml(
                "",
                &ResponseSpec {
                    assertion_id: "_evil-assertion".to_owned(),
                    ..evil.clone()
                }
                .assertion_xml(assertion_signature),
            ),
            "reference-mismatch",
        ),
        // XSW5 with the evil assertion taking the signed ID: digests differ.
        (
            "xsw5 copied signature, same id",
            spec.response_xml(
                "",
                &evil
                    .clone()
                    .assertion_xml_with_id("_assertion-1", assertion_signature),
            ),
            "signature-invalid",
        ),
        // XSW6: the signed assertion sits in the copied signature's ds:Object.
        (
            "xsw6 signed assertion in object",
            spec.response_xml(
                "",
                &evil.assertion_xml(&with_object(
                    assertion_signature,
                    &without_signature(signed_assertion),
                )),
            ),
            "not-one-assertion",
        ),
        // XSW7: the signed assertion hides in samlp:Extensions.
        (
            "xsw7 signed assertion in extensions",
            ResponseSpec {
                response_extra_xml: format!(
                    "<samlp:Extensions>{signed_assertion}</samlp:Extensions>"
                ),
                ..spec.clone()
            }
            .response_xml("", &evil_assertion),
            "not-one-assertion",
        ),
        // XSW7 moved: the only assertion is in Extensions.
        (
            "xsw7 only assertion in extensions",
            ResponseSpec {
                response_extra_xml: format!(
                    "<samlp:Extensions>{signed_assertion}</samlp:Extensions>"
                ),
                ..spec.clone()
            }
            .response_xml("", ""),
            "assertion-misplaced",
        ),
        // XSW8: the evil assertion keeps a signature whose ds:Object contains
        // the original assertion.
        (
            "xsw8 original assertion in object of evil signature",
            spec.response_xml(
                "",
                &evil.clone().assertion_xml_with_id(
                    "_assertion-1",
                    &with_object(
                        assertion_signature,
                        &without_signature(signed_assertion).replacen(
                            "_assertion-1",
                            "_original",
                            1,
                        ),
                    ),
                ),
            ),
            "not-one-assertion",
        ),
        // The signature moved to the Response, still naming the assertion.
        (
            "assertion signature moved to response",
            spec.response_xml(assertion_signature, &without_signature(signed_assertion)),
            "reference-mismatch",
        ),
        // The signature moved into Extensions.
        (
            "signature moved to extensions",
            ResponseSpec {
                response_extra_xml: format!(
                    "<samlp:Extensions>{assertion_signature}</samlp:Extensions>"
                ),
                ..spec.clone()
            }
            .response_xml("", &without_signature(signed_assertion)),
            "signature-misplaced",
        ),
        // ds:Object with harmless content is rejected on its own.
        (
            "object in otherwise valid signature",
            spec.response_xml(
                "",
                &signed_assertion.replacen("</ds:Signature>", "<ds:Object/></ds:Signature>", 1),
            ),
            "signature-malformed",
        ),
    ];

    for (name, xml, expected) in cases {
        assert_eq!(reason(&xml), expected, "case: {name}");
    }
}

#[test]
fn signed_part_must_be_what_is_read() {
    let spec = ResponseSpec::default();

    // Response signed only; the unsigned-by-itself assertion is edited
    // afterwards, so the response digest no longer matches.
    let signed_response = response_xml(&spec, &Signing::response_only());
    let edited = signed_response.replacen("alice@example.test", "admin@example.test", 1);
    assert_eq!(
        reason(&edited),
        "signature-invalid",
        "assertion edited inside signed response"
    );

    // Assertion signed only; editing it breaks its signature.
    let signed_assertion = response_xml(&spec, &Signing::assertion_only());
    let edited = signed_assertion.replacen("alice@example.test", "admin@example.test", 1);
    assert_eq!(
        reason(&edited),
        "signature-invalid",
        "signed assertion edited"
    );

    // A response-level signature that references the assertion.
    let misdirected = {
        let template = signature_template(&spec.assertion_id, DEFAULT_ALGORITHMS, &idp_key());
        let unsigned = spec.response_xml(&template, &spec.assertion_xml(""));
        strip_declaration(&sign_first_template(&unsigned, &idp_key()))
    };
    assert_eq!(
        reason(&misdirected),
        "reference-mismatch",
        "response signature names the assertion"
    );

    // An assertion-level signature that references the response.
    let misdirected = {
        let template = signature_template(&spec.response_id, DEFAULT_ALGORITHMS, &idp_key());
        let unsigned = spec.response_xml("", &spec.assertion_xml(&template));
        strip_declaration(&sign_first_template(&unsigned, &idp_key()))
    };
    assert_eq!(
        reason(&misdirected),
        "reference-mismatch",
        "assertion signature names the response"
    );

    // A valid signed assertion of another response wrapped in a fresh,
    // unsigned response is fine only if the assertion itself checks out:
    // swapping in an unsigned assertion is not.
    let unsigned_everywhere = spec.response_xml("", &spec.assertion_xml(""));
    assert_eq!(
        reason(&unsigned_everywhere),
        "signature-missing",
        "nothing signed"
    );

    // A signed response whose signature covers a different response ID
    // cannot be re-pointed: changing the Reference URI breaks SignedInfo.
    let repointed = signed_response
        .replacen("ID=\"_response-1\"", "ID=\"_response-2\"", 1)
        .replacen("URI=\"#_response-1\"", "URI=\"#_response-2\"", 1);
    assert_eq!(
        reason(&repointed),
        "signature-invalid",
        "reference re-pointed"
    );
}

#[test]
fn comment_injection_is_rejected() {
    for signing in [
        Signing::both(),
        Signing::response_only(),
        Signing::assertion_only(),
    ] {
        let in_name_id = ResponseSpec {
            name_id_xml: "admin<!---->@evil.example".to_owned(),
            ..ResponseSpec::default()
        };
        let xml = response_xml(&in_name_id, &signing);
        assert_eq!(reason(&xml), "value-not-text", "comment in NameID");

        let in_attribute = ResponseSpec {
            attributes: vec![(
                "groups".to_owned(),
                vec!["admins<!-- x -->.evil".to_owned()],
            )],
            ..ResponseSpec::default()
        };
        let xml = response_xml(&in_attribute, &signing);
        assert_eq!(reason(&xml), "value-not-text", "comment in AttributeValue");

        let in_issuer = ResponseSpec {
            assertion_issuer: format!("{IDP}<!---->"),
            ..ResponseSpec::default()
        };
        let xml = response_xml(&in_issuer, &signing);
        assert_eq!(reason(&xml), "value-not-text", "comment in Issuer");
    }
}

#[test]
fn embedded_unconfigured_certificate_is_rejected() {
    let attacker = Key::load("attacker-rsa");
    for layout in [
        Signing::both(),
        Signing::response_only(),
        Signing::assertion_only(),
    ] {
        let signing = Signing {
            key: attacker.clone(),
            ..layout
        };
        let xml = response_xml(&ResponseSpec::default(), &signing);
        assert!(
            xml.contains(&attacker.certificate_base64()),
            "KeyInfo carries the attacker certificate"
        );
        assert_eq!(reason(&xml), "signature-invalid");
        // The signature itself is sound: it verifies with the embedded key.
        assert!(
            second_verifier(&xml, &attacker.certificate_pem).1,
            "bergshamra accepts it with the embedded key"
        );
    }

    // One good and one attacker signature: every signature must verify.
    let mixed = {
        let spec = ResponseSpec::default();
        let assertion = signed_assertion(&spec, &Signing::assertion_only());
        let attacker_signing = Signing {
            key: attacker.clone(),
            ..Signing::response_only()
        };
        wrap_and_sign_response(&spec, &assertion, &attacker_signing)
    };
    assert_eq!(reason(&mixed), "signature-invalid");
}

#[test]
fn sha1_and_dsa_are_rejected() {
    let rsa_sha1 = Signing {
        key: idp_key(),
        response: Some(Algorithms {
            signature: RSA_SHA1,
            digest: SHA256,
        }),
        assertion: None,
    };
    assert_eq!(
        reason(&response_xml(&ResponseSpec::default(), &rsa_sha1)),
        "algorithm-forbidden",
        "rsa-sha1"
    );

    let sha1_digest = Signing {
        key: idp_key(),
        response: None,
        assertion: Some(Algorithms {
            signature: RSA_SHA256,
            digest: SHA1,
        }),
    };
    assert_eq!(
        reason(&response_xml(&ResponseSpec::default(), &sha1_digest)),
        "algorithm-forbidden",
        "sha1 digest"
    );

    let dsa = Signing {
        key: Key::load("idp-dsa"),
        response: Some(Algorithms {
            signature: DSA_SHA1,
            digest: SHA1,
        }),
        assertion: None,
    };
    let xml = response_xml(&ResponseSpec::default(), &dsa);
    assert_eq!(reason(&xml), "algorithm-forbidden", "dsa-sha1");

    // The error names the algorithm.
    let error = verify(&encode(&xml), &settings(), NOW).expect_err("rejected");
    assert!(error.to_string().contains("dsa-sha1"), "message: {error}");

    // A DSA certificate cannot even be configured.
    let error = keyless_saml::Certificate::from_pem(&fixture_text("idp-dsa.crt")).expect_err("DSA");
    assert_eq!(error.reason(), "key-forbidden");
}

#[test]
fn other_canonicalization_and_transforms_are_rejected() {
    let valid = response_xml(&ResponseSpec::default(), &Signing::assertion_only());
    let cases = [
        (
            "c14n with comments",
            valid.replacen(
                &format!("<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\""),
                "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#WithComments\"",
                1,
            ),
            "algorithm-forbidden",
        ),
        (
            "inclusive c14n",
            valid.replacen(
                &format!("<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\""),
                "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"",
                1,
            ),
            "algorithm-forbidden",
        ),
        (
            "xpath transform",
            valid.replacen(
                &format!("<ds:Transform Algorithm=\"{EXC_C14N}\"/>"),
                "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>not(ancestor-or-self::saml:NameID)</ds:XPath></ds:Transform>",
                1,
            ),
            "algorithm-forbidden",
        ),
        (
            "two references",
            valid.replacen("</ds:SignedInfo>", "<ds:Reference URI=\"#_response-1\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>", 1),
            "signature-malformed",
        ),
        (
            "empty reference uri",
            valid.replacen("URI=\"#_assertion-1\"", "URI=\"\"", 1),
            "reference-mismatch",
        ),
        (
            "xpointer reference",
            valid.replacen("URI=\"#_assertion-1\"", "URI=\"#xpointer(id('_assertion-1'))\"", 1),
            "reference-mismatch",
        ),
    ];
    for (name, xml, expected) in cases {
        assert_eq!(reason(&xml), expected, "case: {name}");
    }
}

#[test]
fn dtd_and_entities_are_rejected() {
    let valid = response_xml(&ResponseSpec::default(), &Signing::both());
    let billion_laughs = "<!DOCTYPE samlp:Response [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>";
    let cases = [
        (
            "xxe file",
            format!(
                "<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
                valid.replacen("alice@example.test", "&xxe;", 1)
            ),
            "dtd-forbidden",
        ),
        (
            "billion laughs",
            format!(
                "{billion_laughs}{}",
                valid.replacen("alice@example.test", "&lol3;", 1)
            ),
            "dtd-forbidden",
        ),
        (
            "external dtd",
            format!("<!DOCTYPE samlp:Response SYSTEM \"http://127.0.0.1:9/evil.dtd\">{valid}"),
            "dtd-forbidden",
        ),
        (
            "parameter entity",
            format!(
                "<!DOCTYPE samlp:Response [<!ENTITY % remote SYSTEM \"http://127.0.0.1:9/x\"> %remote;]>{valid}"
            ),
            "dtd-forbidden",
        ),
        (
            "doctype after declaration",
            format!("<?xml version=\"1.0\"?>\n<!DOCTYPE samlp:Response>{valid}"),
            "dtd-forbidden",
        ),
        (
            "undeclared entity",
            valid.replacen("alice@example.test", "&xxe;", 1),
            "entity-forbidden",
        ),
        (
            "processing instruction",
            valid.replacen(
                "<samlp:Status>",
                "<?xml-stylesheet href=\"http://127.0.0.1:9/x\"?><samlp:Status>",
                1,
            ),
            "processing-instruction-forbidden",
        ),
        (
            "latin-1 declaration",
            format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{valid}"),
            "invalid-encoding",
        ),
    ];
    for (name, xml, expected) in cases {
        assert_eq!(reason(&xml), expected, "case: {name}");
    }
}

#[test]
fn duplicate_ids_are_rejected() {
    let valid = response_xml(&ResponseSpec::default(), &Signing::both());
    let with_extension = |extension: &str| {
        valid.replacen(
            "<samlp:Status>",
            &format!("<samlp:Extensions>{extension}</samlp:Extensions><samlp:Status>"),
            1,
        )
    };
    let cases = [
        (
            "ID copy of assertion id",
            with_extension("<x:Evil xmlns:x=\"urn:x\" ID=\"_assertion-1\"/>"),
        ),
        (
            "xml:id copy of response id",
            with_extension("<x:Evil xmlns:x=\"urn:x\" xml:id=\"_response-1\"/>"),
        ),
        (
            "Id copy",
            with_extension("<x:Evil xmlns:x=\"urn:x\" Id=\"_assertion-1\"/>"),
        ),
        (
            "response id equals assertion id",
            valid.replacen("ID=\"_response-1\"", "ID=\"_assertion-1\"", 1),
        ),
    ];
    for (name, xml) in cases {
        assert_eq!(reason(&xml), "duplicate-id", "case: {name}");
    }
}

#[test]
fn second_assertion_is_rejected() {
    let spec = ResponseSpec::default();
    let first = signed_assertion(&spec, &Signing::assertion_only());
    let second = signed_assertion(
        &ResponseSpec {
            assertion_id: "_assertion-2".to_owned(),
            ..spec.clone()
        },
        &Signing::assertion_only(),
    );
    let two_signed = spec.response_xml("", &format!("{first}{second}"));
    assert_eq!(
        reason(&two_signed),
        "not-one-assertion",
        "two signed assertions"
    );

    let advice = format!("<saml:Advice>{second}</saml:Advice>");
    let in_advice = {
        let spec_with_advice = spec.clone();
        let unsigned = spec_with_advice.assertion_xml("").replacen(
            "<saml:AttributeStatement>",
            &format!("{advice}<saml:AttributeStatement>"),
            1,
        );
        spec.response_xml("", &unsigned)
    };
    assert_eq!(
        reason(&in_advice),
        "not-one-assertion",
        "assertion in Advice"
    );

    let none = spec.response_xml("", "");
    assert_eq!(reason(&none), "not-one-assertion", "no assertion");
}

#[test]
fn wrong_parties_are_rejected() {
    let cases = [
        (
            "audience",
            ResponseSpec {
                audiences: vec!["https://other-sp.example.test".to_owned()],
                ..ResponseSpec::default()
            },
            "audience-mismatch",
        ),
        (
            "audience restriction empty",
            ResponseSpec {
                audiences: vec![],
                ..ResponseSpec::default()
            },
            "audience-mismatch",
        ),
        (
            "audience prefix",
            ResponseSpec {
                audiences: vec![format!("{SP}/extra")],
                ..ResponseSpec::default()
            },
            "audience-mismatch",
        ),
        (
            "recipient",
            ResponseSpec {
                recipient: "https://evil.example.test/acs".to_owned(),
                ..ResponseSpec::default()
            },
            "recipient-mismatch",
        ),
        (
            "destination",
            ResponseSpec {
                destination: Some("https://evil.example.test/acs".to_owned()),
                ..ResponseSpec::default()
            },
            "destination-mismatch",
        ),
        (
            "assertion issuer",
            ResponseSpec {
                assertion_issuer: "https://other-idp.example.test".to_owned(),
                ..ResponseSpec::default()
            },
            "issuer-mismatch",
        ),
        (
            "response issuer",
            ResponseSpec {
                response_issuer: Some("https://other-idp.example.test".to_owned()),
                ..ResponseSpec::default()
            },
            "issuer-mismatch",
        ),
        (
            "issuer with trailing space",
            ResponseSpec {
                assertion_issuer: format!("{IDP} "),
                ..ResponseSpec::default()
            },
            "issuer-mismatch",
        ),
    ];
    for (name, spec, expected) in cases {
        for signing in [Signing::both(), Signing::assertion_only()] {
            let xml = response_xml(&spec, &signing);
            assert_eq!(reason(&xml), expected, "case: {name}");
        }
    }
}

#[test]
fn in_response_to_is_rejected() {
    let cases = [
        ResponseSpec {
            response_in_response_to: Some("_request-1".to_owned()),
            ..ResponseSpec::default()
        },
        ResponseSpec {
            confirmation_in_response_to: Some("_request-1".to_owned()),
            ..ResponseSpec::default()
        },
    ];
    for spec in cases {
        let xml = response_xml(&spec, &Signing::both());
        assert_eq!(reason(&xml), "in-response-to-forbidden");
    }
}

#[test]
fn time_limits_hold_with_leeway_edges() {
    let leeway = LEEWAY as i64;
    let xml = response_xml(&ResponseSpec::default(), &Signing::both());
    // Defaults: NotBefore NOW-30, Conditions NotOnOrAfter NOW+300,
    // SubjectConfirmationData NotOnOrAfter NOW+240.
    let settings = settings();
    assert_eq!(
        reason_at(&xml, &settings, NOW - 30 - leeway),
        "accepted",
        "NotBefore at now + leeway"
    );
    assert_eq!(
        reason_at(&xml, &settings, NOW - 30 - leeway - 1),
        "assertion-not-yet-valid",
        "NotBefore past leeway"
    );
    assert_eq!(
        reason_at(&xml, &settings, NOW + 240 + leeway - 1),
        "accepted",
        "confirmation expiry within leeway"
    );
    assert_eq!(
        reason_at(&xml, &settings, NOW + 240 + leeway),
        "assertion-expired",
        "confirmation expiry at leeway"
    );

    // Conditions NotOnOrAfter earlier than the confirmation's.
    let spec = ResponseSpec {
        not_on_or_after: NOW + 100,
        ..ResponseSpec::default()
    };
    let xml = response_xml(&spec, &Signing::both());
    assert_eq!(
        reason_at(&xml, &settings, NOW + 100 + leeway - 1),
        "accepted",
        "conditions expiry within leeway"
    );
    assert_eq!(
        reason_at(&xml, &settings, NOW + 100 + leeway),
        "assertion-expired",
        "conditions expiry at leeway"
    );

    // Zero leeway is exact.
    let strict = SamlSettings {
        leeway_seconds: 0,
        ..settings.clone()
    };
    assert_eq!(
        reason_at(&xml, &strict, NOW + 99),
        "accepted",
        "one second before expiry"
    );
    assert_eq!(
        reason_at(&xml, &strict, NOW + 100),
        "assertion-expired",
        "at expiry"
    );
    assert_eq!(
        reason_at(&xml, &strict, NOW - 31),
        "assertion-not-yet-valid",
        "one second before NotBefore"
    );

    // An expired assertion is rejected even when validly signed now.
    let expired = ResponseSpec {
        not_before: NOW - 7200,
        not_on_or_after: NOW - 3600,
        confirmation_not_on_or_after: NOW - 3600,
        ..ResponseSpec::default()
    };
    assert_eq!(
        reason(&response_xml(&expired, &Signing::both())),
        "assertion-expired",
        "expired an hour ago"
    );
}

#[test]
fn bad_status_is_rejected() {
    for status in [
        "urn:oasis:names:tc:SAML:2.0:status:Responder",
        "urn:oasis:names:tc:SAML:2.0:status:Requester",
        "urn:oasis:names:tc:SAML:2.0:status:success",
    ] {
        let spec = ResponseSpec {
            status: status.to_owned(),
            ..ResponseSpec::default()
        };
        for signing in [Signing::both(), Signing::assertion_only()] {
            assert_eq!(
                reason(&response_xml(&spec, &signing)),
                "status-not-success",
                "status {status}"
            );
        }
    }
}

#[test]
fn encrypted_assertion_is_rejected() {
    let spec = ResponseSpec::default();
    let encrypted = "<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"/></saml:EncryptedAssertion>";
    let alone = spec.response_xml("", encrypted);
    assert_eq!(reason(&alone), "encrypted-assertion");

    let beside_signed = spec.response_xml(
        "",
        &format!(
            "{encrypted}{}",
            signed_assertion(&spec, &Signing::assertion_only())
        ),
    );
    assert_eq!(reason(&beside_signed), "encrypted-assertion");
}

#[test]
fn oversize_input_is_rejected() {
    // Decoded XML just over the cap, with base64 still under its own cap.
    let spec = ResponseSpec::default();
    let assertion = signed_assertion(&spec, &Signing::assertion_only());
    let base_length = spec.response_xml("", &assertion).len();
    let wrapper_length =
        "<samlp:Extensions><x:Pad xmlns:x=\"urn:x\"></x:Pad></samlp:Extensions>".len();
    let pad_length = keyless_saml::MAX_RESPONSE_XML_BYTES + 1 - base_length - wrapper_length;
    let padding = format!(
        "<samlp:Extensions><x:Pad xmlns:x=\"urn:x\">{}</x:Pad></samlp:Extensions>",
        "a".repeat(pad_length)
    );
    let xml = ResponseSpec {
        response_extra_xml: padding,
        ..spec.clone()
    }
    .response_xml("", &assertion);
    assert_eq!(xml.len(), keyless_saml::MAX_RESPONSE_XML_BYTES + 1);
    assert!(encode(&xml).len() <= keyless_saml::MAX_RESPONSE_BASE64_BYTES);
    assert_eq!(reason(&xml), "too-large", "decoded XML over the cap");

    let base64 = "A".repeat(keyless_saml::MAX_RESPONSE_BASE64_BYTES + 4);
    let error = verify(&base64, &settings(), NOW).expect_err("too large");
    assert_eq!(error.reason(), "too-large", "base64 over the cap");

    let many_nodes = format!(
        "<samlp:Extensions xmlns:x=\"urn:x\">{}</samlp:Extensions>",
        "<x:N/>".repeat(keyless_saml::MAX_RESPONSE_NODES as usize + 1)
    );
    let spec = ResponseSpec {
        response_extra_xml: many_nodes,
        ..ResponseSpec::default()
    };
    let xml = spec.response_xml("", &signed_assertion(&spec, &Signing::assertion_only()));
    assert_eq!(reason(&xml), "too-many-nodes", "node cap");

    let deep = format!(
        "<samlp:Extensions>{}{}</samlp:Extensions>",
        "<x:D xmlns:x=\"urn:x\">".repeat(100),
        "</x:D>".repeat(100)
    );
    let spec = ResponseSpec {
        response_extra_xml: deep,
        ..ResponseSpec::default()
    };
    let xml = spec.response_xml("", &signed_assertion(&spec, &Signing::assertion_only()));
    assert_eq!(reason(&xml), "too-deep", "depth cap");

    // Deep enough to overflow a recursive parser's stack, within the size cap.
    let levels = 20_000;
    let bomb = format!(
        "<samlp:Extensions xmlns:x=\"urn:x\">{}{}</samlp:Extensions>",
        "<x:D>".repeat(levels),
        "</x:D>".repeat(levels)
    );
    let spec = ResponseSpec {
        response_extra_xml: bomb,
        ..ResponseSpec::default()
    };
    let xml = spec.response_xml("", &signed_assertion(&spec, &Signing::assertion_only()));
    assert!(xml.len() < keyless_saml::MAX_RESPONSE_XML_BYTES);
    assert_eq!(reason(&xml), "too-deep", "nesting bomb");
}

#[test]
fn garbage_input_is_rejected() {
    let settings = settings();
    let cases = [
        (
            "not base64",
            "this is not base64!".to_owned(),
            "invalid-base64",
        ),
        (
            "url-safe alphabet",
            "PHNhbWxwOlJlc3BvbnNlLz4_-_".to_owned(),
            "invalid-base64",
        ),
        ("empty", "  \n ".to_owned(), "missing-element"),
        ("not xml", encode("hello"), "malformed-xml"),
        (
            "truncated xml",
            encode("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">"),
            "malformed-xml",
        ),
        (
            "not utf-8",
            base64_of(&[0x3c, 0x61, 0xff, 0xfe, 0x3e]),
            "invalid-encoding",
        ),
        (
            "assertion as root",
            encode(&ResponseSpec::default().assertion_xml("")),
            "not-a-response",
        ),
        (
            "response in wrong namespace",
            encode("<Response xmlns=\"urn:oasis:names:tc:SAML:1.0:protocol\"/>"),
            "not-a-response",
        ),
    ];
    for (name, input, expected) in cases {
        let got = match verify(&input, &settings, NOW) {
            Ok(_) => "accepted",
            Err(error) => error.reason(),
        };
        assert_eq!(got, expected, "case: {name}");
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn settings_without_certificates_fail_closed() {
    let xml = response_xml(&ResponseSpec::default(), &Signing::both());
    let empty = settings_with(vec![]);
    assert_eq!(reason_at(&xml, &empty, NOW), "settings-invalid");
}

#[test]
fn error_messages_leak_no_document() {
    let spec = ResponseSpec {
        audiences: vec!["https://other-sp.example.test".to_owned()],
        ..ResponseSpec::default()
    };
    let xml = response_xml(&spec, &Signing::both());
    let error = verify(&encode(&xml), &settings(), NOW).expect_err("rejected");
    let message = error.to_string();
    assert!(
        message.contains("https://other-sp.example.test"),
        "names the value: {message}"
    );
    assert!(
        !message.contains("SignatureValue"),
        "no signature: {message}"
    );
    assert!(
        !message.contains(&idp_key().certificate_base64()[..40]),
        "no certificate: {message}"
    );

    let attacker = Signing {
        key: Key::load("attacker-rsa"),
        ..Signing::both()
    };
    let xml = response_xml(&ResponseSpec::default(), &attacker);
    let signature_value = {
        let start =
            xml.find("<ds:SignatureValue>").expect("signature value") + "<ds:SignatureValue>".len();
        xml[start..start + 40].to_owned()
    };
    let message = verify(&encode(&xml), &settings(), NOW)
        .expect_err("rejected")
        .to_string();
    assert!(
        !message.contains(&signature_value),
        "no signature bytes: {message}"
    );
    assert!(
        !message.contains("alice@example.test"),
        "no assertion content: {message}"
    );
}
