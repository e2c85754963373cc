//! SAML 2.0 response verification for keyless: pure checks, no I/O.
//!
//! [`verify`] takes a base64 SAMLResponse as posted to keyless and the
//! [`SamlSettings`] of one SAML WIF configuration, and returns a
//! [`VerifiedAssertion`] or a [`SamlError`] whose [`SamlError::reason`] names
//! the failed rule. The replay cache, the role attribute and org policies are
//! the caller's. This crate also parses IdP metadata ([`parse_idp_metadata`]),
//! writes keyless's SP metadata ([`sp_metadata`]) and defines the certificate
//! key policy ([`Certificate`]).
//!
//! The checks run in this order, and each failure stops the verification:
//!
//! 1. Size caps ([`MAX_RESPONSE_BASE64_BYTES`], and 256 KiB of decoded XML),
//!    then one hardened parse before libxml2 sees any byte: no DOCTYPE, no entity declarations or
//!    references other than the five predefined ones and character
//!    references, no processing instructions, UTF-8 only, depth and node
//!    caps.
//! 2. The root is samlp:Response; the document contains exactly one
//!    saml:Assertion (counting every element of that name, wherever it is),
//!    directly inside the Response; no saml:EncryptedAssertion; no ID value
//!    twice (`ID`, `Id`, `id`, `AssertionID`, `xml:id`).
//! 3. The Response, the Assertion or both are signed. Each ds:Signature is
//!    a direct child of the element it signs, has exclusive C14N without
//!    comments, one Reference whose URI is `#` + that element's ID, only the
//!    enveloped-signature and exclusive C14N transforms, RSA or ECDSA with
//!    SHA-256/384/512, and no ds:Object. Signatures anywhere else are
//!    rejected. libxmlsec1 (through samael) then verifies every signature
//!    with the configured certificates only (ds:KeyInfo is ignored) and
//!    reduces the document to the signed content. The Assertion is read
//!    from that signed content, located by the ID the Reference names.
//! 4. Issuer equals the IdP entity id (on the Assertion, and on the Response
//!    if present); Status is Success; every AudienceRestriction (at least
//!    one) contains the SP entity id; a bearer SubjectConfirmation has a
//!    Recipient among the ACS URLs and an unexpired NotOnOrAfter; the
//!    Response Destination, if present, is an ACS URL; Conditions NotBefore
//!    is at most now + leeway and NotOnOrAfter later than now - leeway.
//!    keyless accepts only IdP-initiated (unsolicited) responses, because it
//!    sends no AuthnRequest, so any InResponseTo is rejected. Status,
//!    Destination and the Response Issuer come from the signed Response when
//!    it is signed. When only the Assertion is signed they are unsigned, as
//!    the Web Browser SSO profile allows.
//! 5. NameID and attribute values are the text of the signed elements. A
//!    comment inside one (`admin<!---->@evil.com`) is rejected rather than
//!    read either way.
//!
//! Terms: the *IdP entity id* is the identity provider's SAML entity id, the
//! *SP entity id* is keyless's, and an *ACS URL* is a keyless endpoint that
//! accepts posted responses.

mod certificate;
mod error;
mod metadata;
mod signature;
mod structure;
mod verify;
mod xml;

pub use certificate::Certificate;
pub use error::SamlError;
pub use metadata::{MAX_METADATA_BYTES, parse_idp_metadata, sp_metadata};
pub use verify::{
    MAX_RESPONSE_BASE64_BYTES, MAX_RESPONSE_NODES, MAX_RESPONSE_XML_BYTES, SamlSettings, UnverifiedResponse, VerifiedAssertion, peek, verify,
};
