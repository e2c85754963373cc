//! `verify`: the SAML response checks in order, from base64 to a verified
//! assertion. The checks follow the SAML 2.0 Web Browser SSO profile for
//! unsolicited responses with the bearer confirmation method.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::certificate::Certificate;
use crate::error::{SamlError, quote};
use crate::signature::verify_and_reduce;
use crate::structure::check_layout;
use crate::xml::{
    Limits, NS_ASSERTION, NS_PROTOCOL, children, describe, is, optional_child, parse_hardened,
    required_child, text_of,
};

/// Largest decoded response accepted, in bytes. Real responses with a
/// certificate and a dozen attributes are 5–15 KiB.
pub const MAX_RESPONSE_XML_BYTES: usize = 256 * 1024;

/// Largest posted SAMLResponse accepted, in bytes: the base64 of
/// [`MAX_RESPONSE_XML_BYTES`] plus room for line breaks.
pub const MAX_RESPONSE_BASE64_BYTES: usize = MAX_RESPONSE_XML_BYTES / 3 * 4 + 16 * 1024;

/// Parse limits for responses. SAML responses nest about 8 levels deep.
/// samael's reduction to the signed content walks the whole tree once per
/// signed node, so its cost grows with the square of the node count. A
/// validly signed response with 700 attribute values took 1.5 s and 400 MB. 2,000 nodes, about 300 attribute values, keep
/// that to a fraction of a second. The responses of the test IdPs have
/// under 300 nodes.
const RESPONSE_LIMITS: Limits = Limits {
    max_depth: 64,
    max_nodes: MAX_RESPONSE_NODES,
};

/// Most XML nodes (elements, text runs, comments) a response may have.
pub const MAX_RESPONSE_NODES: u32 = 2_000;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const ENTITY_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";

/// The settings of one SAML WIF configuration that verification uses.
#[derive(Debug, Clone)]
pub struct SamlSettings {
    /// The IdP entity id; the Assertion's Issuer (and the Response's, if
    /// present) must equal it exactly.
    pub idp_entity_id: String,
    /// The IdP signing certificates. Any of them may sign, which allows key
    /// rotation. An empty list fails every response.
    pub certificates: Vec<Certificate>,
    /// keyless's SP entity id; every AudienceRestriction must contain it.
    pub sp_entity_id: String,
    /// The assertion consumer service URLs; the bearer Recipient and the
    /// Response Destination (when present) must be one of them.
    pub acs_urls: Vec<String>,
    /// Allowed clock skew for NotBefore and NotOnOrAfter, in seconds.
    pub leeway_seconds: u64,
}

/// An assertion whose signature, issuer, audience, recipient and time limits
/// have been verified. Only [`verify`] creates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The Assertion's ID attribute, the key of the replay cache.
    pub assertion_id: String,
    /// The Assertion's Issuer, equal to the configured IdP entity id.
    pub issuer: String,
    /// The Subject's NameID text, if the assertion has one.
    pub name_id: Option<String>,
    /// The NameID's Format attribute, such as
    /// `urn:oasis:names:tc:SAML:2.0:nameid-format:persistent`.
    pub name_id_format: Option<String>,
    /// Latest instant the assertion is usable, in unix seconds:
    /// min(Conditions NotOnOrAfter, bearer SubjectConfirmationData
    /// NotOnOrAfter). The replay cache keeps the ID until then.
    pub not_on_or_after: i64,
    /// Attribute values by attribute Name, in document order. Values that
    /// are elements rather than text (such as a NameID inside an
    /// AttributeValue) are left out.
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// Verifies a SAML 2.0 response posted to keyless and returns its assertion.
///
/// `response` is the base64 SAMLResponse as posted (whitespace is ignored);
/// `now` is the current time in unix seconds. Only unsolicited (IdP-initiated)
/// responses are accepted: any InResponseTo is rejected, because keyless
/// sends no AuthnRequest and so has no request to match it against.
pub fn verify(
    response: &str,
    settings: &SamlSettings,
    now: i64,
) -> Result<VerifiedAssertion, SamlError> {
    check_settings(settings)?;

    // Step 1: size caps, base64, one hardened parse.
    let xml = decode_response(response)?;
    let document = parse_hardened(&xml, RESPONSE_LIMITS)?;

    // Step 2: one Assertion directly in the Response, unique IDs, and only
    // well-formed signatures in allowed places.
    let layout = check_layout(&document)?;

    // Step 3: libxmlsec1 verifies every signature with the configured
    // certificates, and everything unsigned is dropped.
    let signed_xml = verify_and_reduce(&xml, &settings.certificates)?;
    let signed_document = parse_hardened(&signed_xml, RESPONSE_LIMITS)?;
    let signed_root = signed_document.root_element();

    // Locate the Assertion in the signed content by the ID that the
    // structure check bound to a verified Reference, never by a search of
    // the original document.
    let assertion_id = layout
        .assertion_id
        .clone()
        .ok_or(SamlError::Missing("saml:Assertion ID attribute"))?;
    let assertion = if layout.response_signed {
        expect_id(
            signed_root,
            NS_PROTOCOL,
            "Response",
            layout.response_id.as_deref(),
        )?;
        let mut signed_assertions = children(signed_root, NS_ASSERTION, "Assertion");
        let assertion = signed_assertions.next().ok_or_else(|| {
            SamlError::SignedContentMismatch(
                "the signed Response contains no saml:Assertion".to_owned(),
            )
        })?;
        if signed_assertions.next().is_some() {
            return Err(SamlError::NotOneAssertion { count: 2 });
        }
        assertion
    } else {
        signed_root
    };
    expect_id(assertion, NS_ASSERTION, "Assertion", Some(&assertion_id))?;

    // Response-level fields come from the signed Response when it is signed,
    // otherwise from the (unique) root of the original document.
    let response = if layout.response_signed {
        signed_root
    } else {
        document.root_element()
    };

    // Step 4: Response and Assertion checks.
    check_response(response, settings)?;
    check_assertion(assertion, settings, now, assertion_id)
}

/// The Issuer and Assertion ID of a response, read without verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedResponse {
    /// The Response's Issuer, else the Assertion's.
    pub issuer: String,
    /// The ID of the first Assertion directly inside the Response, if any.
    pub assertion_id: Option<String>,
}

/// Reads the issuer and assertion id of a response without verifying
/// anything, so that the caller can choose the configuration to verify it
/// against and reject a replayed assertion before the costly signature work.
/// The same size caps and hardened parse as [`verify`] apply. [`verify`]
/// checks both values again on the signed content, so a forged value here
/// can only select a configuration whose certificates then fail, or get a
/// response rejected early.
pub fn peek(response: &str) -> Result<UnverifiedResponse, SamlError> {
    let xml = decode_response(response)?;
    let document = parse_hardened(&xml, RESPONSE_LIMITS)?;
    let root = document.root_element();
    if !is(root, NS_PROTOCOL, "Response") {
        return Err(SamlError::NotAResponse { found: describe(root), expected: NS_PROTOCOL });
    }
    let issuer_of = |node| -> Result<Option<String>, SamlError> {
        optional_child(node, NS_ASSERTION, "Issuer", "saml:Issuer")?
            .map(|issuer| text_of(issuer, "saml:Issuer"))
            .transpose()
    };
    let assertion = children(root, NS_ASSERTION, "Assertion").next();
    let issuer = match issuer_of(root)? {
        Some(issuer) => issuer,
        None => assertion.map(issuer_of).transpose()?.flatten().ok_or(SamlError::Missing("saml:Issuer"))?,
    };
    let assertion_id = assertion.and_then(|node| node.attribute("ID")).map(str::to_owned);
    Ok(UnverifiedResponse { issuer, assertion_id })
}

fn check_settings(settings: &SamlSettings) -> Result<(), SamlError> {
    if settings.certificates.is_empty() {
        return Err(SamlError::InvalidSettings(
            "no IdP signing certificate is configured".to_owned(),
        ));
    }
    if settings.idp_entity_id.is_empty() {
        return Err(SamlError::InvalidSettings(
            "the IdP entity id is empty".to_owned(),
        ));
    }
    if settings.sp_entity_id.is_empty() {
        return Err(SamlError::InvalidSettings(
            "the SP entity id is empty".to_owned(),
        ));
    }
    if settings.acs_urls.is_empty() {
        return Err(SamlError::InvalidSettings(
            "no ACS URL is configured".to_owned(),
        ));
    }
    Ok(())
}

/// Decodes the posted SAMLResponse into UTF-8 XML within the size caps.
fn decode_response(response: &str) -> Result<String, SamlError> {
    if response.len() > MAX_RESPONSE_BASE64_BYTES {
        return Err(SamlError::TooLarge {
            input: "SAMLResponse",
            size: response.len(),
            limit: MAX_RESPONSE_BASE64_BYTES,
        });
    }
    let compact: Vec<u8> = response
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(SamlError::Missing("SAMLResponse"));
    }
    let bytes = STANDARD
        .decode(&compact)
        .map_err(|error| SamlError::InvalidBase64(error.to_string()))?;
    if bytes.len() > MAX_RESPONSE_XML_BYTES {
        return Err(SamlError::TooLarge {
            input: "decoded SAML response",
            size: bytes.len(),
            limit: MAX_RESPONSE_XML_BYTES,
        });
    }
    let mut text = String::from_utf8(bytes).map_err(|error| {
        SamlError::InvalidEncoding(format!(
            "the decoded response is not UTF-8 (invalid byte at offset {})",
            error.utf8_error().valid_up_to()
        ))
    })?;
    if text.starts_with('\u{feff}') {
        text.remove(0);
    }
    Ok(text)
}

fn expect_id(
    node: Node<'_, '_>,
    namespace: &str,
    name: &'static str,
    id: Option<&str>,
) -> Result<(), SamlError> {
    if !is(node, namespace, name) || node.attribute("ID") != id {
        return Err(SamlError::SignedContentMismatch(format!(
            "the signed content is not the {name} with ID {}",
            quote(id.unwrap_or_default())
        )));
    }
    Ok(())
}

/// Checks the Response: Version, InResponseTo, Destination, Issuer and Status.
fn check_response(response: Node<'_, '_>, settings: &SamlSettings) -> Result<(), SamlError> {
    check_version(response, "samlp:Response")?;
    if let Some(in_response_to) = response.attribute("InResponseTo") {
        return Err(SamlError::InResponseToForbidden {
            element: "samlp:Response",
            found: quote(in_response_to),
        });
    }
    if let Some(destination) = response.attribute("Destination")
        && !settings.acs_urls.iter().any(|url| url == destination)
    {
        return Err(SamlError::DestinationMismatch {
            found: quote(destination),
        });
    }
    if let Some(issuer) = optional_child(response, NS_ASSERTION, "Issuer", "samlp:Response Issuer")?
    {
        check_issuer(issuer, "samlp:Response", settings)?;
    }

    let status = required_child(response, NS_PROTOCOL, "Status", "samlp:Status")?;
    let status_code = required_child(status, NS_PROTOCOL, "StatusCode", "samlp:StatusCode")?;
    let value = status_code.attribute("Value").unwrap_or_default();
    if value != STATUS_SUCCESS {
        return Err(SamlError::StatusNotSuccess(quote(value)));
    }
    Ok(())
}

fn check_version(node: Node<'_, '_>, element: &'static str) -> Result<(), SamlError> {
    match node.attribute("Version") {
        Some("2.0") => Ok(()),
        found => Err(SamlError::UnsupportedVersion {
            element,
            found: quote(found.unwrap_or("(none)")),
        }),
    }
}

fn check_issuer(
    issuer: Node<'_, '_>,
    element: &'static str,
    settings: &SamlSettings,
) -> Result<String, SamlError> {
    if let Some(format) = issuer.attribute("Format")
        && format != ENTITY_FORMAT
    {
        return Err(SamlError::IssuerFormatInvalid {
            element,
            found: quote(format),
        });
    }
    let value = text_of(issuer, "saml:Issuer")?;
    if value != settings.idp_entity_id {
        return Err(SamlError::IssuerMismatch {
            element,
            found: quote(&value),
            expected: quote(&settings.idp_entity_id),
        });
    }
    Ok(value)
}

/// Checks the signed Assertion and reads it.
fn check_assertion(
    assertion: Node<'_, '_>,
    settings: &SamlSettings,
    now: i64,
    assertion_id: String,
) -> Result<VerifiedAssertion, SamlError> {
    check_version(assertion, "saml:Assertion")?;
    let issuer_node = required_child(assertion, NS_ASSERTION, "Issuer", "saml:Assertion Issuer")?;
    let issuer = check_issuer(issuer_node, "saml:Assertion", settings)?;

    let conditions = required_child(assertion, NS_ASSERTION, "Conditions", "saml:Conditions")?;
    let conditions_expiry = check_conditions(conditions, settings, now)?;

    let subject = required_child(assertion, NS_ASSERTION, "Subject", "saml:Subject")?;
    let confirmation_expiry = check_bearer_confirmation(subject, settings, now)?;
    let name_id_node = optional_child(subject, NS_ASSERTION, "NameID", "saml:NameID")?;
    let name_id = name_id_node.map(|node| text_of(node, "saml:NameID")).transpose()?;
    let name_id_format = name_id_node.and_then(|node| node.attribute("Format")).map(str::to_owned);

    let not_on_or_after = match conditions_expiry {
        Some(conditions_expiry) => conditions_expiry.min(confirmation_expiry),
        None => confirmation_expiry,
    };
    Ok(VerifiedAssertion {
        assertion_id,
        issuer,
        name_id,
        name_id_format,
        not_on_or_after,
        attributes: read_attributes(assertion)?,
    })
}

/// Checks the Conditions time window and audiences, and returns NotOnOrAfter
/// if present. Every AudienceRestriction must name keyless, because an
/// assertion with several restrictions is meant only for audiences in all
/// of them, and keyless requires at least one. A condition keyless does not
/// understand makes the assertion's validity indeterminate, so it is rejected.
fn check_conditions(
    conditions: Node<'_, '_>,
    settings: &SamlSettings,
    now: i64,
) -> Result<Option<i64>, SamlError> {
    let leeway = settings.leeway_seconds;
    if let Some(value) = conditions.attribute("NotBefore") {
        check_not_before(value, "Conditions NotBefore", now, leeway)?;
    }
    let expiry = match conditions.attribute("NotOnOrAfter") {
        Some(value) => Some(check_not_on_or_after(
            value,
            "Conditions NotOnOrAfter",
            now,
            leeway,
        )?),
        None => None,
    };

    let mut restrictions = 0;
    for condition in conditions.children().filter(|child| child.is_element()) {
        if is(condition, NS_ASSERTION, "OneTimeUse")
            || is(condition, NS_ASSERTION, "ProxyRestriction")
        {
            // OneTimeUse is enforced by the replay cache; ProxyRestriction limits
            // only relying parties that issue assertions, which keyless does not.
            continue;
        }
        if !is(condition, NS_ASSERTION, "AudienceRestriction") {
            return Err(SamlError::ConditionUnsupported(crate::xml::describe(
                condition,
            )));
        }
        restrictions += 1;
        let mut audiences = Vec::new();
        for audience in children(condition, NS_ASSERTION, "Audience") {
            audiences.push(text_of(audience, "saml:Audience")?);
        }
        if !audiences.contains(&settings.sp_entity_id) {
            return Err(SamlError::AudienceMismatch {
                found: quote(&audiences.join(", ")),
                expected: quote(&settings.sp_entity_id),
            });
        }
    }
    if restrictions == 0 {
        return Err(SamlError::Missing("saml:AudienceRestriction"));
    }
    Ok(expiry)
}

/// Finds a bearer SubjectConfirmation whose data names one of our ACS URLs
/// as Recipient and has not expired, and returns its NotOnOrAfter. When
/// several bearer confirmations exist, the first that passes is used. If
/// none passes, the error of the first is returned.
fn check_bearer_confirmation(
    subject: Node<'_, '_>,
    settings: &SamlSettings,
    now: i64,
) -> Result<i64, SamlError> {
    let mut first_error = None;
    for confirmation in children(subject, NS_ASSERTION, "SubjectConfirmation") {
        if confirmation.attribute("Method") != Some(BEARER) {
            continue;
        }
        match check_confirmation_data(confirmation, settings, now) {
            Ok(expiry) => return Ok(expiry),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(SamlError::BearerConfirmationMissing))
}

fn check_confirmation_data(
    confirmation: Node<'_, '_>,
    settings: &SamlSettings,
    now: i64,
) -> Result<i64, SamlError> {
    let data = required_child(
        confirmation,
        NS_ASSERTION,
        "SubjectConfirmationData",
        "bearer saml:SubjectConfirmationData",
    )?;
    if let Some(in_response_to) = data.attribute("InResponseTo") {
        return Err(SamlError::InResponseToForbidden {
            element: "saml:SubjectConfirmationData",
            found: quote(in_response_to),
        });
    }
    let recipient = data
        .attribute("Recipient")
        .ok_or(SamlError::Missing("SubjectConfirmationData Recipient"))?;
    if !settings.acs_urls.iter().any(|url| url == recipient) {
        return Err(SamlError::RecipientMismatch {
            found: quote(recipient),
        });
    }
    let leeway = settings.leeway_seconds;
    if let Some(value) = data.attribute("NotBefore") {
        check_not_before(value, "SubjectConfirmationData NotBefore", now, leeway)?;
    }
    let not_on_or_after = data
        .attribute("NotOnOrAfter")
        .ok_or(SamlError::Missing("SubjectConfirmationData NotOnOrAfter"))?;
    check_not_on_or_after(
        not_on_or_after,
        "SubjectConfirmationData NotOnOrAfter",
        now,
        leeway,
    )
}

/// Reads every saml:Attribute of the assertion's AttributeStatements.
fn read_attributes(assertion: Node<'_, '_>) -> Result<BTreeMap<String, Vec<String>>, SamlError> {
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for statement in children(assertion, NS_ASSERTION, "AttributeStatement") {
        for attribute in children(statement, NS_ASSERTION, "Attribute") {
            let name = attribute
                .attribute("Name")
                .ok_or(SamlError::Missing("saml:Attribute Name"))?;
            let values = attributes.entry(name.to_owned()).or_default();
            for value in children(attribute, NS_ASSERTION, "AttributeValue") {
                if value.children().any(|child| child.is_element()) {
                    continue;
                }
                values.push(text_of(value, "saml:AttributeValue")?);
            }
        }
    }
    Ok(attributes)
}

fn parse_instant(value: &str, field: &'static str) -> Result<i64, SamlError> {
    // SAML times are xs:dateTime values in UTC, which RFC 3339 with "Z" covers.
    // A time without a zone is rejected rather than guessed.
    OffsetDateTime::parse(value, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| SamlError::InvalidTimestamp {
            field,
            value: quote(value),
        })
}

/// Accepts `NotBefore` when it is at most `now + leeway`.
fn check_not_before(
    value: &str,
    field: &'static str,
    now: i64,
    leeway: u64,
) -> Result<(), SamlError> {
    let instant = parse_instant(value, field)?;
    if instant > now.saturating_add_unsigned(leeway) {
        return Err(SamlError::AssertionNotYetValid {
            field,
            at: quote(value),
            now,
            leeway,
        });
    }
    Ok(())
}

/// Accepts `NotOnOrAfter` when it is later than `now - leeway`; returns it.
fn check_not_on_or_after(
    value: &str,
    field: &'static str,
    now: i64,
    leeway: u64,
) -> Result<i64, SamlError> {
    let instant = parse_instant(value, field)?;
    if instant <= now.saturating_sub_unsigned(leeway) {
        return Err(SamlError::AssertionExpired {
            field,
            at: quote(value),
            now,
            leeway,
        });
    }
    Ok(instant)
}
