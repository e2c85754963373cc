//! SAML 2.0 metadata (saml-metadata-2.0-os): importing an IdP's entity id
//! and signing certificates, and writing keyless's SP metadata.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

use crate::certificate::Certificate;
use crate::error::{SamlError, quote};
use crate::xml::{Limits, NS_DSIG, NS_METADATA, children, describe, is, parse_hardened};

/// Largest metadata document accepted, in bytes. Aggregated federation
/// metadata is far larger, but keyless takes one IdP's own document.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

const METADATA_LIMITS: Limits = Limits {
    max_depth: 64,
    max_nodes: 100_000,
};

/// Reads the entity id and every signing certificate (KeyDescriptor with
/// `use="signing"` or without `use`) of the IdP described by `xml`.
///
/// The root must be an md:EntityDescriptor, or an md:EntitiesDescriptor with
/// exactly one entity that has an md:IDPSSODescriptor. Duplicate certificates
/// are listed once. A document without a usable signing certificate is
/// rejected, as is one with a certificate whose key the policy of
/// [`Certificate::from_pem`] forbids.
pub fn parse_idp_metadata(xml: &str) -> Result<(String, Vec<Certificate>), SamlError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(SamlError::TooLarge {
            input: "IdP metadata",
            size: xml.len(),
            limit: MAX_METADATA_BYTES,
        });
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let document = parse_hardened(xml, METADATA_LIMITS)?;
    let entity = find_idp_entity(document.root_element())?;
    let entity_id = entity
        .attribute("entityID")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            SamlError::InvalidMetadata("md:EntityDescriptor has no entityID".to_owned())
        })?;

    let mut certificates: Vec<Certificate> = Vec::new();
    for descriptor in children(entity, NS_METADATA, "IDPSSODescriptor") {
        for key_descriptor in children(descriptor, NS_METADATA, "KeyDescriptor") {
            let usage = key_descriptor.attribute("use").unwrap_or("signing");
            if usage != "signing" {
                continue;
            }
            for certificate in key_descriptor_certificates(key_descriptor)? {
                if !certificates.contains(&certificate) {
                    certificates.push(certificate);
                }
            }
        }
    }
    if certificates.is_empty() {
        return Err(SamlError::InvalidMetadata(format!(
            "IdP {} has no signing certificate (md:KeyDescriptor with use=\"signing\" or no use)",
            quote(entity_id)
        )));
    }
    Ok((entity_id.to_owned(), certificates))
}

fn find_idp_entity<'a, 'input>(root: Node<'a, 'input>) -> Result<Node<'a, 'input>, SamlError> {
    let has_idp = |entity: &Node<'_, '_>| {
        children(*entity, NS_METADATA, "IDPSSODescriptor")
            .next()
            .is_some()
    };
    if is(root, NS_METADATA, "EntityDescriptor") {
        if !has_idp(&root) {
            return Err(SamlError::InvalidMetadata(
                "md:EntityDescriptor has no md:IDPSSODescriptor".to_owned(),
            ));
        }
        return Ok(root);
    }
    if is(root, NS_METADATA, "EntitiesDescriptor") {
        let idps: Vec<_> = root
            .descendants()
            .filter(|node| is(*node, NS_METADATA, "EntityDescriptor"))
            .filter(has_idp)
            .collect();
        return match idps[..] {
            [entity] => Ok(entity),
            _ => Err(SamlError::InvalidMetadata(format!(
                "md:EntitiesDescriptor describes {} IdPs; import the metadata of exactly one",
                idps.len()
            ))),
        };
    }
    Err(SamlError::InvalidMetadata(format!(
        "the root element is {}, expected md:EntityDescriptor",
        describe(root)
    )))
}

fn key_descriptor_certificates(
    key_descriptor: Node<'_, '_>,
) -> Result<Vec<Certificate>, SamlError> {
    let mut certificates = Vec::new();
    for key_info in children(key_descriptor, NS_DSIG, "KeyInfo") {
        for x509_data in children(key_info, NS_DSIG, "X509Data") {
            for element in children(x509_data, NS_DSIG, "X509Certificate") {
                let text: String = element
                    .text()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                let der = STANDARD.decode(text.as_bytes()).map_err(|error| {
                    SamlError::InvalidMetadata(format!("ds:X509Certificate is not base64: {error}"))
                })?;
                certificates.push(Certificate::from_der(&der)?);
            }
        }
    }
    Ok(certificates)
}

/// Returns keyless's SP metadata: an md:EntityDescriptor with an
/// md:SPSSODescriptor that wants signed assertions and one HTTP-POST
/// md:AssertionConsumerService per ACS URL, the first being the default.
pub fn sp_metadata(sp_entity_id: &str, acs_urls: &[String]) -> String {
    let mut xml = String::new();
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<md:EntityDescriptor xmlns:md=\"{NS_METADATA}\" entityID=\"{}\">\n",
        escape_attribute(sp_entity_id)
    ));
    xml.push_str(
        "  <md:SPSSODescriptor AuthnRequestsSigned=\"false\" WantAssertionsSigned=\"true\" \
         protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n",
    );
    for (index, url) in acs_urls.iter().enumerate() {
        xml.push_str(&format!(
            "    <md:AssertionConsumerService \
             Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" \
             Location=\"{}\" index=\"{index}\"{}/>\n",
            escape_attribute(url),
            if index == 0 {
                " isDefault=\"true\""
            } else {
                ""
            }
        ));
    }
    xml.push_str("  </md:SPSSODescriptor>\n");
    xml.push_str("</md:EntityDescriptor>\n");
    xml
}

fn escape_attribute(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            '\t' => escaped.push_str("&#9;"),
            _ => escaped.push(c),
        }
    }
    escaped
}
