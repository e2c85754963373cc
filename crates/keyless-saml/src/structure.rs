//! Structural rules checked on the hardened parse tree before any signature
//! is verified: where the Assertion and the signatures may be, which IDs they
//! carry, and which XML-DSig algorithms a signature may name.
//!
//! These rules close the XML signature wrapping (XSW) family. A document that
//! passes has one Response root, one Assertion directly inside it and unique
//! IDs. It has at most one ds:Signature per signed element, each a direct
//! child of the element it signs, with a single Reference to that element's ID.

use std::collections::HashSet;

use roxmltree::{Document, Node, NodeType};

use crate::error::{SamlError, quote};
use crate::xml::{NS_ASSERTION, NS_DSIG, NS_PROTOCOL, NS_XML, describe, is};

const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const NS_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// SignatureMethod URIs keyless accepts. SHA-1 and DSA are absent on purpose.
pub(crate) const SIGNATURE_ALGORITHMS: [&str; 6] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const SIGNATURE_ALLOWED: &str =
    "rsa-sha256, rsa-sha384, rsa-sha512, ecdsa-sha256, ecdsa-sha384, ecdsa-sha512";

/// DigestMethod URIs keyless accepts.
const DIGEST_ALGORITHMS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
const DIGEST_ALLOWED: &str = "sha256, sha384, sha512";

/// Attribute names that libxml2, xmlsec or other XML-DSig engines may treat
/// as element IDs. Every value of any of them must be unique, so that a
/// Reference URI can resolve to one element only.
const ID_ATTRIBUTE_NAMES: [&str; 4] = ["ID", "Id", "id", "AssertionID"];

/// The signed elements of the response and their IDs.
#[derive(Debug)]
pub(crate) struct Layout {
    pub response_id: Option<String>,
    pub assertion_id: Option<String>,
    pub response_signed: bool,
    pub assertion_signed: bool,
}

/// Checks the layout of a SAML response and the form of its signatures.
pub(crate) fn check_layout(document: &Document<'_>) -> Result<Layout, SamlError> {
    let root = document.root_element();
    if !is(root, NS_PROTOCOL, "Response") {
        return Err(SamlError::NotAResponse {
            found: describe(root),
            expected: NS_PROTOCOL,
        });
    }

    let mut assertions = Vec::new();
    let mut signatures = Vec::new();
    let mut ids = HashSet::new();
    for node in root.descendants() {
        if node.node_type() != NodeType::Element {
            continue;
        }
        check_unique_ids(node, &mut ids)?;
        if is(node, NS_ASSERTION, "EncryptedAssertion") {
            return Err(SamlError::EncryptedAssertion);
        }
        if is(node, NS_ASSERTION, "Assertion") {
            assertions.push(node);
        }
        if is(node, NS_DSIG, "Signature") {
            signatures.push(node);
        }
        check_no_comment_in_value(node)?;
    }

    // Exactly one Assertion in the whole document, wherever the others
    // would hide (Extensions, Advice, ds:Object, inside another Assertion).
    let [assertion] = assertions[..] else {
        return Err(SamlError::NotOneAssertion {
            count: assertions.len(),
        });
    };
    let parent = assertion.parent_element().unwrap_or(root);
    if parent != root {
        return Err(SamlError::AssertionMisplaced {
            parent: describe(parent),
        });
    }

    let mut layout = Layout {
        response_id: root.attribute("ID").map(str::to_owned),
        assertion_id: assertion.attribute("ID").map(str::to_owned),
        response_signed: false,
        assertion_signed: false,
    };
    for signature in signatures {
        let parent = signature.parent_element().unwrap_or(root);
        let (label, id, already_signed) = if parent == root {
            (
                "samlp:Response",
                &layout.response_id,
                &mut layout.response_signed,
            )
        } else if parent == assertion {
            (
                "saml:Assertion",
                &layout.assertion_id,
                &mut layout.assertion_signed,
            )
        } else {
            return Err(SamlError::SignatureMisplaced {
                parent: describe(parent),
            });
        };
        if *already_signed {
            return Err(SamlError::SignatureMalformed {
                element: label,
                rule: "it has more than one ds:Signature child".to_owned(),
            });
        }
        let Some(id) = id else {
            return Err(SamlError::SignatureMalformed {
                element: label,
                rule: "the signed element has no ID attribute".to_owned(),
            });
        };
        check_signature(signature, label, id)?;
        *already_signed = true;
    }
    if !layout.response_signed && !layout.assertion_signed {
        return Err(SamlError::SignatureMissing);
    }
    Ok(layout)
}

fn check_unique_ids(node: Node<'_, '_>, ids: &mut HashSet<String>) -> Result<(), SamlError> {
    for attribute in node.attributes() {
        let is_id = match attribute.namespace() {
            Some(NS_XML) => attribute.name() == "id",
            _ => ID_ATTRIBUTE_NAMES.contains(&attribute.name()),
        };
        if is_id && !ids.insert(attribute.value().to_owned()) {
            return Err(SamlError::DuplicateId(quote(attribute.value())));
        }
    }
    Ok(())
}

/// Rejects a comment inside an element whose text keyless reads. The check
/// runs before signature verification so that the error names the cause;
/// `xml::text_of` enforces the same rule again on the signed tree.
fn check_no_comment_in_value(node: Node<'_, '_>) -> Result<(), SamlError> {
    let label = match node.tag_name().name() {
        "Issuer" => "saml:Issuer",
        "NameID" => "saml:NameID",
        "AttributeValue" => "saml:AttributeValue",
        "Audience" => "saml:Audience",
        _ => return Ok(()),
    };
    if node.tag_name().namespace() != Some(NS_ASSERTION) {
        return Ok(());
    }
    if node.children().any(|child| child.is_comment()) {
        return Err(SamlError::ValueNotText {
            element: label,
            found: "a comment",
        });
    }
    Ok(())
}

/// Returns the element children of `node`, failing if `node` has text or
/// markup other than whitespace and comments between them.
fn element_children<'a, 'input>(
    node: Node<'a, 'input>,
    element: &'static str,
) -> Result<Vec<Node<'a, 'input>>, SamlError> {
    let mut elements = Vec::new();
    for child in node.children() {
        match child.node_type() {
            NodeType::Element => elements.push(child),
            NodeType::Text if child.text().unwrap_or_default().trim().is_empty() => {}
            NodeType::Comment => {}
            _ => {
                return Err(SamlError::SignatureMalformed {
                    element,
                    rule: format!("{} contains text", describe(node)),
                });
            }
        }
    }
    Ok(elements)
}

fn malformed(element: &'static str, rule: impl Into<String>) -> SamlError {
    SamlError::SignatureMalformed {
        element,
        rule: rule.into(),
    }
}

/// Checks one ds:Signature: SignedInfo with exclusive canonicalization, an
/// allowed SignatureMethod, and exactly one Reference to `#signed_id` with
/// allowed transforms and digest; SignatureValue; optional KeyInfo, which is
/// never used. ds:Object and anything else are rejected.
fn check_signature(
    signature: Node<'_, '_>,
    element: &'static str,
    signed_id: &str,
) -> Result<(), SamlError> {
    let children = element_children(signature, element)?;
    let names: Vec<&str> = children
        .iter()
        .map(|child| {
            if child.tag_name().namespace() == Some(NS_DSIG) {
                child.tag_name().name()
            } else {
                "(foreign element)"
            }
        })
        .collect();
    let [signed_info, _signature_value, rest @ ..] = &children[..] else {
        return Err(malformed(
            element,
            "expected ds:SignedInfo, ds:SignatureValue",
        ));
    };
    if names[0] != "SignedInfo" || names[1] != "SignatureValue" {
        return Err(malformed(
            element,
            format!("expected ds:SignedInfo, ds:SignatureValue, found {names:?}"),
        ));
    }
    match (rest, names.get(2)) {
        ([], _) => {}
        ([_key_info], Some(&"KeyInfo")) => {}
        _ => {
            return Err(malformed(
                element,
                format!(
                    "only ds:KeyInfo may follow ds:SignatureValue (ds:Object is not allowed), found {:?}",
                    &names[2..]
                ),
            ));
        }
    }
    check_signed_info(*signed_info, element, signed_id)
}

fn check_signed_info(
    signed_info: Node<'_, '_>,
    element: &'static str,
    signed_id: &str,
) -> Result<(), SamlError> {
    let children = element_children(signed_info, element)?;
    let [c14n, method, references @ ..] = &children[..] else {
        return Err(malformed(
            element,
            "ds:SignedInfo must hold ds:CanonicalizationMethod, ds:SignatureMethod and one ds:Reference",
        ));
    };
    if !is(*c14n, NS_DSIG, "CanonicalizationMethod") || !is(*method, NS_DSIG, "SignatureMethod") {
        return Err(malformed(
            element,
            "ds:SignedInfo must start with ds:CanonicalizationMethod and ds:SignatureMethod",
        ));
    }

    check_c14n(*c14n, element, "CanonicalizationMethod")?;
    let signature_algorithm = algorithm_of(*method, element)?;
    if !SIGNATURE_ALGORITHMS.contains(&signature_algorithm) {
        return Err(SamlError::AlgorithmForbidden {
            role: "SignatureMethod",
            algorithm: quote(signature_algorithm),
            allowed: SIGNATURE_ALLOWED,
        });
    }
    if !element_children(*method, element)?.is_empty() {
        return Err(malformed(element, "ds:SignatureMethod must be empty"));
    }

    let [reference] = references else {
        return Err(malformed(
            element,
            format!(
                "ds:SignedInfo has {} ds:Reference elements (or other elements after ds:SignatureMethod); exactly one ds:Reference is required",
                references.len()
            ),
        ));
    };
    if !is(*reference, NS_DSIG, "Reference") {
        return Err(malformed(
            element,
            "expected ds:Reference after ds:SignatureMethod",
        ));
    }
    check_reference(*reference, element, signed_id)
}

fn check_reference(
    reference: Node<'_, '_>,
    element: &'static str,
    signed_id: &str,
) -> Result<(), SamlError> {
    let expected = format!("#{signed_id}");
    let uri = reference.attribute("URI").unwrap_or_default();
    if uri != expected {
        return Err(SamlError::ReferenceMismatch {
            element,
            found: quote(uri),
            expected: quote(&expected),
        });
    }

    let children = element_children(reference, element)?;
    let (transforms, rest) = match &children[..] {
        [first, rest @ ..] if is(*first, NS_DSIG, "Transforms") => (Some(*first), rest),
        all => (None, all),
    };
    let [digest_method, digest_value] = rest else {
        return Err(malformed(
            element,
            "ds:Reference must hold optional ds:Transforms, then ds:DigestMethod and ds:DigestValue",
        ));
    };
    if !is(*digest_method, NS_DSIG, "DigestMethod") || !is(*digest_value, NS_DSIG, "DigestValue") {
        return Err(malformed(
            element,
            "ds:Reference must end with ds:DigestMethod and ds:DigestValue",
        ));
    }
    let digest_algorithm = algorithm_of(*digest_method, element)?;
    if !DIGEST_ALGORITHMS.contains(&digest_algorithm) {
        return Err(SamlError::AlgorithmForbidden {
            role: "DigestMethod",
            algorithm: quote(digest_algorithm),
            allowed: DIGEST_ALLOWED,
        });
    }

    if let Some(transforms) = transforms {
        check_transforms(transforms, element)?;
    }
    Ok(())
}

/// Allows each of enveloped-signature and exclusive canonicalization at most
/// once, and nothing else (no XPath, XSLT or comment-preserving forms).
fn check_transforms(transforms: Node<'_, '_>, element: &'static str) -> Result<(), SamlError> {
    let mut seen = HashSet::new();
    for transform in element_children(transforms, element)? {
        if !is(transform, NS_DSIG, "Transform") {
            return Err(malformed(
                element,
                "ds:Transforms may hold only ds:Transform",
            ));
        }
        let algorithm = algorithm_of(transform, element)?;
        if algorithm == ENVELOPED_SIGNATURE {
            if !element_children(transform, element)?.is_empty() {
                return Err(malformed(
                    element,
                    "the enveloped-signature transform must be empty",
                ));
            }
        } else {
            check_c14n(transform, element, "Transform")?;
        }
        if !seen.insert(algorithm) {
            return Err(malformed(
                element,
                format!("transform {} appears twice", quote(algorithm)),
            ));
        }
    }
    Ok(())
}

/// Checks an exclusive canonicalization (without comments) method; an
/// ec:InclusiveNamespaces child is allowed.
fn check_c14n(
    node: Node<'_, '_>,
    element: &'static str,
    role: &'static str,
) -> Result<(), SamlError> {
    let algorithm = algorithm_of(node, element)?;
    if algorithm != EXC_C14N {
        let allowed = if role == "Transform" {
            "enveloped-signature, exclusive C14N without comments (http://www.w3.org/2001/10/xml-exc-c14n#)"
        } else {
            "exclusive C14N without comments (http://www.w3.org/2001/10/xml-exc-c14n#)"
        };
        return Err(SamlError::AlgorithmForbidden {
            role,
            algorithm: quote(algorithm),
            allowed,
        });
    }
    for child in element_children(node, element)? {
        if !is(child, NS_EXC_C14N, "InclusiveNamespaces") {
            return Err(malformed(
                element,
                format!("{} inside {role} is not allowed", describe(child)),
            ));
        }
    }
    Ok(())
}

fn algorithm_of<'a>(node: Node<'a, '_>, element: &'static str) -> Result<&'a str, SamlError> {
    node.attribute("Algorithm").ok_or_else(|| {
        malformed(
            element,
            format!("{} has no Algorithm attribute", describe(node)),
        )
    })
}
