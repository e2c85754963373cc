//! The hardened XML parse every SAML message and metadata document goes through
//! before any other code (libxml2 included) reads it, and small DOM helpers.
//!
//! The parser is roxmltree with DTDs disabled. On top of it this module rejects
//! what roxmltree tolerates or libxml2 could read differently: an empty
//! DOCTYPE, entity declarations, processing instructions, encodings other
//! than UTF-8, XML versions other than 1.0, and trees that are too deep or too
//! large.

use roxmltree::{Document, Node, NodeType, ParsingOptions};

use crate::error::{SamlError, quote};

pub(crate) const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub(crate) const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub(crate) const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub(crate) const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Limits of one hardened parse.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Maximum element nesting, counting the root as 1. libxml2 refuses
    /// more than 256 levels by default, so any limit below that keeps both
    /// parsers in agreement.
    pub max_depth: usize,
    /// Maximum number of nodes (elements, text runs, comments) in the tree.
    pub max_nodes: u32,
}

/// Parses `text` under the hardened rules and returns the tree.
pub(crate) fn parse_hardened(text: &str, limits: Limits) -> Result<Document<'_>, SamlError> {
    // roxmltree accepts a DOCTYPE without an internal subset even when DTDs
    // are disabled, and libxml2 would then try to load an external subset.
    // Neither construct has any use in SAML, so their markup is rejected
    // wherever it appears, comments and CDATA sections included.
    if text.contains("<!DOCTYPE") {
        return Err(SamlError::DtdForbidden);
    }
    if text.contains("<!ENTITY") {
        return Err(SamlError::EntityForbidden(
            "declaration <!ENTITY".to_owned(),
        ));
    }
    check_xml_declaration(text)?;
    check_depth(text, limits.max_depth)?;

    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
    };
    let document = Document::parse_with_options(text, options)
        .map_err(|error| map_parse_error(error, limits))?;
    check_tree(&document, limits)?;
    Ok(document)
}

fn map_parse_error(error: roxmltree::Error, limits: Limits) -> SamlError {
    match error {
        roxmltree::Error::DtdDetected => SamlError::DtdForbidden,
        roxmltree::Error::UnknownEntityReference(name, _) => {
            SamlError::EntityForbidden(format!("reference &{};", quote(&name)))
        }
        roxmltree::Error::EntityReferenceLoop(_) => {
            SamlError::EntityForbidden("reference loop".to_owned())
        }
        roxmltree::Error::NodesLimitReached => SamlError::TooManyNodes {
            limit: limits.max_nodes as usize,
        },
        other => SamlError::MalformedXml(other.to_string()),
    }
}

/// Checks the XML declaration, if any: version 1.0 and, when an encoding is
/// declared, UTF-8. libxml2 honours a declared encoding, so a document whose
/// bytes are UTF-8 but which declares Latin-1 would be read differently by
/// the two parsers.
fn check_xml_declaration(text: &str) -> Result<(), SamlError> {
    let Some(rest) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        // "<?xml-stylesheet" and the like: a processing instruction, which
        // the tree check reports by name.
        return Ok(());
    }
    let Some(end) = rest.find("?>") else {
        return Err(SamlError::MalformedXml(
            "unterminated XML declaration".to_owned(),
        ));
    };
    let declaration = &rest[..end];
    if let Some(version) = pseudo_attribute(declaration, "version")
        && version != "1.0"
    {
        return Err(SamlError::MalformedXml(format!(
            "XML version {} is not supported, expected \"1.0\"",
            quote(version)
        )));
    }
    if let Some(encoding) = pseudo_attribute(declaration, "encoding")
        && !encoding.eq_ignore_ascii_case("UTF-8")
    {
        return Err(SamlError::InvalidEncoding(format!(
            "declared encoding {} is not allowed, expected \"UTF-8\"",
            quote(encoding)
        )));
    }
    Ok(())
}

/// Scans the markup for element nesting deeper than `max_depth` before the
/// tree is built. roxmltree 0.20 parses nested elements by recursion, so a
/// 256 KiB document of `<a>` tags would overflow the stack. The scan skips
/// comments, CDATA sections, processing instructions and quoted attribute
/// values as XML does, so it never counts less nesting than a parser finds.
fn check_depth(text: &str, max_depth: usize) -> Result<(), SamlError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut position = 0;
    let skip_past = |from: usize, terminator: &[u8]| -> Result<usize, SamlError> {
        bytes[from..]
            .windows(terminator.len())
            .position(|window| window == terminator)
            .map(|offset| from + offset + terminator.len())
            .ok_or_else(|| SamlError::MalformedXml("unterminated markup".to_owned()))
    };
    while let Some(offset) = bytes[position..].iter().position(|&byte| byte == b'<') {
        let start = position + offset;
        let rest = &bytes[start..];
        if rest.starts_with(b"<!--") {
            position = skip_past(start + 4, b"-->")?;
        } else if rest.starts_with(b"<![CDATA[") {
            position = skip_past(start + 9, b"]]>")?;
        } else if rest.starts_with(b"<?") {
            position = skip_past(start + 2, b"?>")?;
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            position = skip_past(start + 2, b">")?;
        } else {
            let (end, self_closing) = scan_start_tag(bytes, start + 1)?;
            if !self_closing {
                depth += 1;
                if depth > max_depth {
                    return Err(SamlError::TooDeep { limit: max_depth });
                }
            }
            position = end;
        }
    }
    Ok(())
}

/// Returns the position after the `>` of the start tag whose name begins at
/// `from`, and whether the tag ends with `/>`. Attribute values may contain
/// `>` and `/` but never `<`.
fn scan_start_tag(bytes: &[u8], from: usize) -> Result<(usize, bool), SamlError> {
    let unterminated = || SamlError::MalformedXml("unterminated start tag".to_owned());
    let mut position = from;
    let mut quote = None;
    while let Some(&byte) = bytes.get(position) {
        match (quote, byte) {
            (_, b'<') => return Err(unterminated()),
            (Some(open), _) if byte == open => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(byte),
            (None, b'>') => {
                let self_closing = position > from && bytes[position - 1] == b'/';
                return Ok((position + 1, self_closing));
            }
            (None, _) => {}
        }
        position += 1;
    }
    Err(unterminated())
}

/// Returns the value of `name="…"` or `name='…'` in an XML declaration.
fn pseudo_attribute<'a>(declaration: &'a str, name: &str) -> Option<&'a str> {
    let start = declaration.find(name)? + name.len();
    let after_name = declaration[start..].trim_start();
    let after_equals = after_name.strip_prefix('=')?.trim_start();
    let quote_char = after_equals.chars().next()?;
    if quote_char != '"' && quote_char != '\'' {
        return None;
    }
    let value = &after_equals[1..];
    let end = value.find(quote_char)?;
    Some(&value[..end])
}

/// Walks the tree without recursion: rejects processing instructions and
/// enforces the depth limit.
fn check_tree(document: &Document<'_>, limits: Limits) -> Result<(), SamlError> {
    let mut stack = vec![(document.root(), 0usize)];
    while let Some((node, depth)) = stack.pop() {
        if let NodeType::PI = node.node_type() {
            let target = node.pi().map(|pi| pi.target).unwrap_or_default();
            return Err(SamlError::ProcessingInstructionForbidden(quote(target)));
        }
        let depth = if node.is_element() { depth + 1 } else { depth };
        if depth > limits.max_depth {
            return Err(SamlError::TooDeep {
                limit: limits.max_depth,
            });
        }
        for child in node.children() {
            stack.push((child, depth));
        }
    }
    Ok(())
}

/// Returns true when `node` is the element `name` in namespace `namespace`.
pub(crate) fn is(node: Node<'_, '_>, namespace: &str, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace() == Some(namespace)
}

/// Returns the expanded name of an element, such as
/// `{urn:oasis:names:tc:SAML:2.0:protocol}Extensions`, quoted for error messages.
pub(crate) fn describe(node: Node<'_, '_>) -> String {
    match node.tag_name().namespace() {
        Some(namespace) => quote(&format!("{{{namespace}}}{}", node.tag_name().name())),
        None => quote(node.tag_name().name()),
    }
}

/// Returns the element children of `node` named `name` in `namespace`.
pub(crate) fn children<'a, 'input>(
    node: Node<'a, 'input>,
    namespace: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children()
        .filter(move |child| is(*child, namespace, name))
}

/// Returns the single child `name`, `Ok(None)` when there is none, and an
/// error naming `label` when there are several.
pub(crate) fn optional_child<'a, 'input>(
    node: Node<'a, 'input>,
    namespace: &'static str,
    name: &'static str,
    label: &'static str,
) -> Result<Option<Node<'a, 'input>>, SamlError> {
    let mut matches = children(node, namespace, name);
    let first = matches.next();
    if matches.next().is_some() {
        return Err(SamlError::MalformedXml(format!(
            "{label} appears more than once"
        )));
    }
    Ok(first)
}

/// Returns the single child `name`, failing with [`SamlError::Missing`] when
/// absent.
pub(crate) fn required_child<'a, 'input>(
    node: Node<'a, 'input>,
    namespace: &'static str,
    name: &'static str,
    label: &'static str,
) -> Result<Node<'a, 'input>, SamlError> {
    optional_child(node, namespace, name, label)?.ok_or(SamlError::Missing(label))
}

/// Returns the text content of a simple-content element such as NameID or
/// AttributeValue.
///
/// A comment, a child element or a processing instruction inside the element
/// is an error, not something to skip: XML canonicalization without comments
/// signs "admin@evil.com" for `admin<!---->@evil.com`, and a reader that
/// stopped at the comment would see "admin".
pub(crate) fn text_of(node: Node<'_, '_>, label: &'static str) -> Result<String, SamlError> {
    let mut text = String::new();
    for child in node.children() {
        match child.node_type() {
            NodeType::Text => text.push_str(child.text().unwrap_or_default()),
            NodeType::Comment => {
                return Err(SamlError::ValueNotText {
                    element: label,
                    found: "a comment",
                });
            }
            NodeType::Element => {
                return Err(SamlError::ValueNotText {
                    element: label,
                    found: "a child element",
                });
            }
            NodeType::PI | NodeType::Root => {
                return Err(SamlError::ValueNotText {
                    element: label,
                    found: "a processing instruction",
                });
            }
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_depth: 8,
        max_nodes: 100,
    };

    fn reason(text: &str) -> &'static str {
        match parse_hardened(text, LIMITS) {
            Ok(_) => "accepted",
            Err(error) => error.reason(),
        }
    }

    #[test]
    fn plain_document_is_accepted() {
        assert_eq!(
            reason("<?xml version=\"1.0\" encoding=\"utf-8\"?><a><b>x</b></a>"),
            "accepted"
        );
    }

    #[test]
    fn doctype_without_subset_is_rejected() {
        assert_eq!(reason("<!DOCTYPE a><a/>"), "dtd-forbidden");
        assert_eq!(
            reason("<!DOCTYPE a SYSTEM \"http://127.0.0.1:1/x.dtd\"><a/>"),
            "dtd-forbidden"
        );
    }

    #[test]
    fn undeclared_entity_is_rejected() {
        assert_eq!(reason("<a>&xxe;</a>"), "entity-forbidden");
    }

    #[test]
    fn predefined_and_character_references_are_accepted() {
        let document = parse_hardened("<a>&lt;&amp;&#65;&#x42;</a>", LIMITS).expect("parses");
        assert_eq!(document.root_element().text(), Some("<&AB"));
    }

    #[test]
    fn processing_instruction_is_rejected() {
        assert_eq!(
            reason("<a><?php x ?></a>"),
            "processing-instruction-forbidden"
        );
        assert_eq!(
            reason("<?xml-stylesheet href=\"x\"?><a/>"),
            "processing-instruction-forbidden"
        );
    }

    #[test]
    fn declared_latin1_is_rejected() {
        assert_eq!(
            reason("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"),
            "invalid-encoding"
        );
    }

    #[test]
    fn xml_11_is_rejected() {
        assert_eq!(reason("<?xml version=\"1.1\"?><a/>"), "malformed-xml");
    }

    #[test]
    fn depth_limit_is_enforced() {
        let deep = format!("{}{}", "<a>".repeat(9), "</a>".repeat(9));
        assert_eq!(reason(&deep), "too-deep");
        let ok = format!("{}{}", "<a>".repeat(8), "</a>".repeat(8));
        assert_eq!(reason(&ok), "accepted");
    }

    #[test]
    fn node_limit_is_enforced() {
        let wide = format!("<a>{}</a>", "<b/>".repeat(200));
        assert_eq!(reason(&wide), "too-many-nodes");
    }

    #[test]
    fn very_deep_document_fails_without_crashing() {
        let deep = format!("{}{}", "<a>".repeat(60_000), "</a>".repeat(60_000));
        let limits = Limits {
            max_depth: 64,
            max_nodes: 200_000,
        };
        let error = parse_hardened(&deep, limits).expect_err("too deep");
        assert_eq!(error.reason(), "too-deep");
    }

    #[test]
    fn depth_scan_skips_markup_in_quotes_and_comments() {
        // "/>" inside an attribute value or a comment must not close an element.
        let hidden = format!(
            "{}{}",
            "<a x=\"/>\"><!-- /> --><![CDATA[</a>]]>".repeat(9),
            "</a>".repeat(9)
        );
        let error = check_depth(&hidden, 8).expect_err("nine levels");
        assert_eq!(error.reason(), "too-deep");
        let shallow = format!("<a>{}</a>", "<b x='>'/>".repeat(20));
        assert!(check_depth(&shallow, 2).is_ok());
    }

    #[test]
    fn text_with_comment_is_rejected() {
        let document = parse_hardened("<a>admin<!---->@evil.com</a>", LIMITS).expect("parses");
        let error = text_of(document.root_element(), "NameID").expect_err("comment");
        assert_eq!(error.reason(), "value-not-text");
    }
}
