//! The error type of every function in this crate.

use thiserror::Error;

/// Maximum length, in characters, of a message-supplied value quoted in an
/// error message. Longer values are cut and marked with "…", so that a
/// hostile response cannot flood logs through an error message.
const MAX_QUOTED_CHARS: usize = 120;

/// Quotes a value taken from a SAML message or a configuration for an error
/// message: Debug-escaped and cut to [`MAX_QUOTED_CHARS`].
pub(crate) fn quote(value: &str) -> String {
    if value.chars().count() <= MAX_QUOTED_CHARS {
        return format!("{value:?}");
    }
    let cut: String = value.chars().take(MAX_QUOTED_CHARS).collect();
    format!("{cut:?}…")
}

/// A SAML response, certificate or metadata document that keyless rejects.
///
/// [`SamlError::reason`] gives a short, stable class for audit records and
/// metrics. The Display message names the offending value and the rule, but
/// never contains the assertion, a signature or certificate bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SamlError {
    /// The configuration passed to `verify` cannot verify anything.
    #[error("invalid SAML settings: {0}")]
    InvalidSettings(String),

    /// An input is larger than the limit for its kind.
    #[error("{input} is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        input: &'static str,
        size: usize,
        limit: usize,
    },

    /// The SAMLResponse is not standard base64.
    #[error("SAMLResponse is not valid base64: {0}")]
    InvalidBase64(String),

    /// The decoded document is not UTF-8, or declares another encoding.
    #[error("invalid document encoding: {0}")]
    InvalidEncoding(String),

    /// The document is not well-formed XML.
    #[error("malformed XML: {0}")]
    MalformedXml(String),

    /// The document contains a document type declaration.
    #[error("a DOCTYPE or DTD is not allowed in a SAML message")]
    DtdForbidden,

    /// The document declares or references an entity other than the five
    /// predefined ones and character references.
    #[error(
        "entity {0} is not allowed: only &lt; &gt; &amp; &apos; &quot; and character references are"
    )]
    EntityForbidden(String),

    /// The document contains a processing instruction other than the XML declaration.
    #[error("processing instruction {0} is not allowed")]
    ProcessingInstructionForbidden(String),

    /// The element tree is deeper than the limit.
    #[error("element nesting is deeper than the limit of {limit}")]
    TooDeep { limit: usize },

    /// The document has more nodes than the limit.
    #[error("the document has more than {limit} nodes")]
    TooManyNodes { limit: usize },

    /// The root element is not a SAML 2.0 protocol Response.
    #[error("the root element is {found}, expected samlp:Response in namespace {expected:?}")]
    NotAResponse {
        found: String,
        expected: &'static str,
    },

    /// The document does not contain exactly one saml:Assertion element.
    #[error("the document contains {count} saml:Assertion elements; exactly one is required")]
    NotOneAssertion { count: usize },

    /// The assertion is not a direct child of the Response.
    #[error("the saml:Assertion is inside {parent}; it must be a direct child of samlp:Response")]
    AssertionMisplaced { parent: String },

    /// The response carries an encrypted assertion, which keyless does not accept.
    #[error(
        "saml:EncryptedAssertion is not supported: configure the IdP to send a signed, unencrypted assertion"
    )]
    EncryptedAssertion,

    /// Two elements carry the same ID value.
    #[error("ID {0} appears more than once; every ID in the document must be unique")]
    DuplicateId(String),

    /// Neither the Response nor the Assertion carries a signature.
    #[error("neither the samlp:Response nor the saml:Assertion is signed")]
    SignatureMissing,

    /// A ds:Signature is somewhere other than directly inside the Response or the Assertion.
    #[error(
        "a ds:Signature inside {parent} is not allowed; signatures must be direct children of samlp:Response or saml:Assertion"
    )]
    SignatureMisplaced { parent: String },

    /// A ds:Signature does not have the structure keyless accepts.
    #[error("malformed ds:Signature on {element}: {rule}")]
    SignatureMalformed { element: &'static str, rule: String },

    /// The Reference URI of a signature does not name the element that contains it.
    #[error(
        "the ds:Signature on {element} references {found}, expected {expected}: a signature must sign its parent element"
    )]
    ReferenceMismatch {
        element: &'static str,
        found: String,
        expected: String,
    },

    /// A canonicalization, transform, signature or digest algorithm is not on the allow-list.
    #[error("{role} algorithm {algorithm} is not allowed; allowed: {allowed}")]
    AlgorithmForbidden {
        role: &'static str,
        algorithm: String,
        allowed: &'static str,
    },

    /// The signature does not verify with any configured certificate.
    #[error(
        "the signature does not verify with any of the {certificates} configured IdP certificate(s): {detail}"
    )]
    SignatureInvalid { certificates: usize, detail: String },

    /// The signed content does not contain the elements the structure check located.
    #[error("the signed content does not match the document: {0}")]
    SignedContentMismatch(String),

    /// A text value keyless reads contains a comment, an element or other markup.
    #[error("{element} must contain only text, but contains {found}")]
    ValueNotText {
        element: &'static str,
        found: &'static str,
    },

    /// A required element or attribute is absent.
    #[error("{0} is missing")]
    Missing(&'static str),

    /// A SAML Version attribute is not 2.0.
    #[error("{element} has Version {found}, expected \"2.0\"")]
    UnsupportedVersion {
        element: &'static str,
        found: String,
    },

    /// An Issuer does not equal the configured IdP entity id.
    #[error("{element} Issuer is {found}, expected the configured IdP entity id {expected}")]
    IssuerMismatch {
        element: &'static str,
        found: String,
        expected: String,
    },

    /// An Issuer has a Format other than the entity format.
    #[error(
        "{element} Issuer has Format {found}, expected none or \"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\""
    )]
    IssuerFormatInvalid {
        element: &'static str,
        found: String,
    },

    /// The top-level StatusCode is not Success.
    #[error("response status is {0}, expected \"urn:oasis:names:tc:SAML:2.0:status:Success\"")]
    StatusNotSuccess(String),

    /// No AudienceRestriction contains the SP entity id.
    #[error("audiences {found} do not include the SP entity id {expected}")]
    AudienceMismatch { found: String, expected: String },

    /// The Response Destination is not one of the ACS URLs.
    #[error("Response Destination {found} is not one of the configured ACS URLs")]
    DestinationMismatch { found: String },

    /// The bearer SubjectConfirmationData Recipient is not one of the ACS URLs.
    #[error("SubjectConfirmationData Recipient {found} is not one of the configured ACS URLs")]
    RecipientMismatch { found: String },

    /// The assertion has no bearer SubjectConfirmation.
    #[error(
        "the assertion has no SubjectConfirmation with Method \"urn:oasis:names:tc:SAML:2.0:cm:bearer\""
    )]
    BearerConfirmationMissing,

    /// The message replies to an AuthnRequest, and keyless accepts only IdP-initiated responses.
    #[error(
        "{element} has InResponseTo {found}: keyless sends no AuthnRequest and accepts only unsolicited (IdP-initiated) responses"
    )]
    InResponseToForbidden {
        element: &'static str,
        found: String,
    },

    /// A Conditions child other than AudienceRestriction, OneTimeUse or ProxyRestriction.
    #[error("condition {0} is not understood, so the assertion's validity is indeterminate")]
    ConditionUnsupported(String),

    /// A time limit of the assertion has passed.
    #[error("the assertion expired: {field} is {at}, now is {now} (leeway {leeway} s)")]
    AssertionExpired {
        field: &'static str,
        at: String,
        now: i64,
        leeway: u64,
    },

    /// A NotBefore lies in the future.
    #[error("the assertion is not yet valid: {field} is {at}, now is {now} (leeway {leeway} s)")]
    AssertionNotYetValid {
        field: &'static str,
        at: String,
        now: i64,
        leeway: u64,
    },

    /// A timestamp is not an xs:dateTime in UTC.
    #[error("{field} {value} is not a UTC date-time such as \"2026-01-02T03:04:05Z\"")]
    InvalidTimestamp { field: &'static str, value: String },

    /// A certificate cannot be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),

    /// A certificate's public key is not an allowed type or size.
    #[error(
        "certificate {subject} has a {found} key; an RSA key of at least 2048 bits or an EC P-256 or P-384 key is required"
    )]
    KeyForbidden { subject: String, found: String },

    /// An IdP metadata document cannot be used.
    #[error("invalid IdP metadata: {0}")]
    InvalidMetadata(String),
}

impl SamlError {
    /// Returns a short kebab-case class of the error, stable across releases,
    /// for audit records and metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            SamlError::InvalidSettings(_) => "settings-invalid",
            SamlError::TooLarge { .. } => "too-large",
            SamlError::InvalidBase64(_) => "invalid-base64",
            SamlError::InvalidEncoding(_) => "invalid-encoding",
            SamlError::MalformedXml(_) => "malformed-xml",
            SamlError::DtdForbidden => "dtd-forbidden",
            SamlError::EntityForbidden(_) => "entity-forbidden",
            SamlError::ProcessingInstructionForbidden(_) => "processing-instruction-forbidden",
            SamlError::TooDeep { .. } => "too-deep",
            SamlError::TooManyNodes { .. } => "too-many-nodes",
            SamlError::NotAResponse { .. } => "not-a-response",
            SamlError::NotOneAssertion { .. } => "not-one-assertion",
            SamlError::AssertionMisplaced { .. } => "assertion-misplaced",
            SamlError::EncryptedAssertion => "encrypted-assertion",
            SamlError::DuplicateId(_) => "duplicate-id",
            SamlError::SignatureMissing => "signature-missing",
            SamlError::SignatureMisplaced { .. } => "signature-misplaced",
            SamlError::SignatureMalformed { .. } => "signature-malformed",
            SamlError::ReferenceMismatch { .. } => "reference-mismatch",
            SamlError::AlgorithmForbidden { .. } => "algorithm-forbidden",
            SamlError::SignatureInvalid { .. } => "signature-invalid",
            SamlError::SignedContentMismatch(_) => "signed-content-mismatch",
            SamlError::ValueNotText { .. } => "value-not-text",
            SamlError::Missing(_) => "missing-element",
            SamlError::UnsupportedVersion { .. } => "unsupported-version",
            SamlError::IssuerMismatch { .. } => "issuer-mismatch",
            SamlError::IssuerFormatInvalid { .. } => "issuer-format-invalid",
            SamlError::StatusNotSuccess(_) => "status-not-success",
            SamlError::AudienceMismatch { .. } => "audience-mismatch",
            SamlError::DestinationMismatch { .. } => "destination-mismatch",
            SamlError::RecipientMismatch { .. } => "recipient-mismatch",
            SamlError::BearerConfirmationMissing => "bearer-confirmation-missing",
            SamlError::InResponseToForbidden { .. } => "in-response-to-forbidden",
            SamlError::ConditionUnsupported(_) => "condition-unsupported",
            SamlError::AssertionExpired { .. } => "assertion-expired",
            SamlError::AssertionNotYetValid { .. } => "assertion-not-yet-valid",
            SamlError::InvalidTimestamp { .. } => "invalid-timestamp",
            SamlError::InvalidCertificate(_) => "certificate-invalid",
            SamlError::KeyForbidden { .. } => "key-forbidden",
            SamlError::InvalidMetadata(_) => "metadata-invalid",
        }
    }
}
