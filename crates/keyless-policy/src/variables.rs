//! Policy variables: `${key}` placeholders in resources and in string and ARN
//! condition values, replaced by the request's value for that condition key.
//!
//! Syntax, as in IAM:
//! - `${aws:username}`, `${jwt:sub}`, `${aws:PrincipalTag/team}`: the value of
//!   the condition key, whose name compares case-insensitively.
//! - `${jwt:team, 'shared'}`: the text between the quotes when the key has no
//!   usable value; `''` inside the quotes stands for one `'`. Spaces around the
//!   key and the default are ignored.
//! - `${*}`, `${?}`, `${$}`: a literal `*`, `?` or `$`.
//!
//! Substituted text is always matched literally: a claim value of `*` matches
//! only the character `*`, never any string. Substitution happens once, so a
//! value that itself contains `${…}` is not expanded again.
//!
//! A variable has a usable value only when its key has exactly one value and that
//! value is not empty. IAM does not substitute multivalued keys. A missing or
//! multivalued key with no default makes the whole resource or condition value
//! match nothing, so a missing claim never turns `home/${jwt:sub}/*` into
//! `home//*` or into a match-all. An empty value is treated the same way (a
//! deliberate choice for keyless), so principals with an empty claim do not all
//! share the prefix `home//`.

use std::borrow::Cow;

use crate::context::{Context, check_key, normalize_key};
use crate::pattern::{Token, glob_match, match_tokens};

/// Policy text split into plain text, escaped characters and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text as written in the policy. `*` and `?` in it are wildcards where the
    /// element or operator allows them.
    Text(String),
    /// A character written as `${*}`, `${?}` or `${$}`; always literal.
    Escaped(char),
    /// A condition key, lowercased, and the default text for when it has no
    /// usable value.
    Variable { key: String, default: Option<String> },
}

impl Template {
    /// Parses policy text. Only `${` starts a variable: a `$` followed by any
    /// other character is a literal `$`.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut plain = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            plain.push_str(&rest[..start]);
            let (part, after) = parse_variable(&rest[start + 2..]).map_err(|reason| format!("invalid policy variable in {text:?}: {reason}"))?;
            if !plain.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut plain)));
            }
            parts.push(part);
            rest = after;
        }
        plain.push_str(rest);
        if !plain.is_empty() {
            parts.push(Part::Text(plain));
        }
        Ok(Template { parts })
    }

    /// Resolves the template into a glob. With `wildcards`, `*` and `?` in the
    /// policy text are wildcards; substituted and escaped text never is. Returns
    /// `None` when a variable has no usable value and no default.
    pub(crate) fn tokens(&self, context: &Context, wildcards: bool) -> Option<Vec<Token>> {
        let mut tokens = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(text) if wildcards => tokens.extend(text.chars().map(Token::wildcard)),
                Part::Text(text) => tokens.extend(text.chars().map(Token::Char)),
                Part::Escaped(c) => tokens.push(Token::Char(*c)),
                Part::Variable { key, default } => {
                    tokens.extend(resolve(context, key, default.as_deref())?.chars().map(Token::Char));
                }
            }
        }
        Some(tokens)
    }

    /// Resolves the template into the literal string it stands for, for the
    /// operators without wildcards. Returns `None` when a variable has no usable
    /// value and no default.
    pub(crate) fn literal(&self, context: &Context) -> Option<Cow<'_, str>> {
        // Plain text, the common case, needs no copy.
        match self.parts.as_slice() {
            [] => return Some(Cow::Borrowed("")),
            [Part::Text(text)] => return Some(Cow::Borrowed(text)),
            _ => {}
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Escaped(c) => out.push(*c),
                Part::Variable { key, default } => out.push_str(resolve(context, key, default.as_deref())?),
            }
        }
        Some(Cow::Owned(out))
    }

    /// Splits an ARN template into its six colon-separated components. Only the
    /// first five colons of the policy text separate components: the sixth
    /// component (the resource) may contain colons, and colons inside substituted
    /// values never separate. Returns `None` when the text has fewer than five
    /// colons outside variables.
    pub(crate) fn split_arn(&self) -> Option<Vec<Template>> {
        let mut components = vec![Template { parts: Vec::new() }];
        for part in &self.parts {
            let Part::Text(text) = part else {
                components.last_mut()?.parts.push(part.clone());
                continue;
            };
            let mut pieces = text.split(':').peekable();
            while let Some(piece) = pieces.next() {
                if !piece.is_empty() {
                    components.last_mut()?.parts.push(Part::Text(piece.to_owned()));
                }
                if pieces.peek().is_some() {
                    if components.len() < 6 {
                        components.push(Template { parts: Vec::new() });
                    } else {
                        components.last_mut()?.parts.push(Part::Text(":".to_owned()));
                    }
                }
            }
        }
        (components.len() == 6).then_some(components)
    }
}

/// Returns the usable value of `key` (exactly one non-empty value), else the
/// default.
fn resolve<'a>(context: &'a Context, key: &str, default: Option<&'a str>) -> Option<&'a str> {
    match context.get(key) {
        Some([only]) if !only.is_empty() => Some(only.as_str()),
        _ => default,
    }
}

/// Parses the inside of `${…}` (the text after `${`). Returns the part and the
/// text after the closing `}`.
fn parse_variable(text: &str) -> Result<(Part, &str), String> {
    for (escape, c) in [("*}", '*'), ("?}", '?'), ("$}", '$')] {
        if let Some(after) = text.strip_prefix(escape) {
            return Ok((Part::Escaped(c), after));
        }
    }

    let text = text.trim_start_matches(' ');
    let key_len = text.find([' ', ',', '}']).ok_or("missing closing \"}\"")?;
    let key = &text[..key_len];
    check_key(key)?;
    let mut rest = text[key_len..].trim_start_matches(' ');

    let mut default = None;
    if let Some(after_comma) = rest.strip_prefix(',') {
        let quoted = after_comma.trim_start_matches(' ');
        let Some(mut body) = quoted.strip_prefix('\'') else {
            return Err("the default value must be in single quotes: ${key, 'default'}".into());
        };
        let mut value = String::new();
        loop {
            let end = body.find('\'').ok_or("the default value has no closing quote")?;
            value.push_str(&body[..end]);
            body = &body[end + 1..];
            // A doubled quote inside the default stands for one quote.
            match body.strip_prefix('\'') {
                Some(after) => {
                    value.push('\'');
                    body = after;
                }
                None => break,
            }
        }
        default = Some(value);
        rest = body.trim_start_matches(' ');
    }

    let after = rest.strip_prefix('}').ok_or_else(|| format!("expected \"}}\" or \", 'default'}}\" after the key {key:?}"))?;
    Ok((Part::Variable { key: normalize_key(key).into_owned(), default }, after))
}

/// Matches a resource against a resource pattern that may contain policy
/// variables. A pattern with a malformed variable matches nothing; validation
/// rejects such patterns before a policy is stored.
pub(crate) fn resource_match(pattern: &str, resource: &str, context: &Context) -> bool {
    let Some((head, _)) = pattern.split_once("${") else {
        return glob_match(pattern, resource);
    };
    // Fast rejection without parsing: text before the first variable that has
    // no wildcards must be a prefix of the resource.
    if !head.contains(['*', '?']) && !resource.starts_with(head) {
        return false;
    }
    let Ok(template) = Template::parse(pattern) else { return false };
    let Some(tokens) = template.tokens(context, true) else { return false };
    let resource: Vec<char> = resource.chars().collect();
    match_tokens(&tokens, &resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(key: &str, value: &str) -> Context {
        Context::builder().value(key, value).build()
    }

    #[test]
    fn variable_is_replaced_by_its_value() {
        let ctx = context("aws:username", "alice");
        assert!(resource_match("home/${aws:username}/*", "home/alice/notes.txt", &ctx));
        assert!(!resource_match("home/${aws:username}/*", "home/bob/notes.txt", &ctx));
    }

    #[test]
    fn variable_key_is_case_insensitive() {
        let ctx = context("jwt:sub", "alice");
        assert!(resource_match("home/${JWT:Sub}/*", "home/alice/x", &ctx));
    }

    #[test]
    fn hostile_values_match_literally() {
        // Each case: the value of jwt:sub, a resource it must reach and one it
        // must not reach.
        let cases = [
            ("*", "home/*/x", "home/bob/x"),
            ("?", "home/?/x", "home/b/x"),
            ("a*", "home/a*/x", "home/abc/x"),
            ("/", "home///x", "home/x"),
            ("..", "home/../x", "home/x"),
            ("../bob", "home/../bob/x", "home/bob/x"),
            ("${aws:username}", "home/${aws:username}/x", "home/alice/x"),
        ];
        for (value, reachable, unreachable) in cases {
            let ctx = Context::builder().value("jwt:sub", value).value("aws:username", "alice").build();
            assert!(resource_match("home/${jwt:sub}/*", reachable, &ctx), "{value:?} should reach {reachable:?}");
            assert!(!resource_match("home/${jwt:sub}/*", unreachable, &ctx), "{value:?} should not reach {unreachable:?}");
        }
    }

    #[test]
    fn missing_key_matches_nothing() {
        let empty = Context::new();
        assert!(!resource_match("home/${aws:username}/*", "home//x", &empty));
        assert!(!resource_match("home/${aws:username}*", "home/x", &empty));
        assert!(!resource_match("${aws:username}*", "", &empty));
    }

    #[test]
    fn empty_or_multivalued_key_matches_nothing() {
        let empty_value = context("jwt:sub", "");
        assert!(!resource_match("home/${jwt:sub}/*", "home//x", &empty_value));
        let multi = Context::builder().value("jwt:sub", "a").value("jwt:sub", "b").build();
        assert!(!resource_match("home/${jwt:sub}/*", "home/a/x", &multi));
        assert!(!resource_match("home/${jwt:sub}/*", "home/b/x", &multi));
    }

    #[test]
    fn default_applies_when_key_is_missing() {
        let empty = Context::new();
        assert!(resource_match("team/${aws:PrincipalTag/team, 'shared'}/*", "team/shared/x", &empty));
        let ctx = context("aws:PrincipalTag/team", "ml");
        assert!(resource_match("team/${aws:PrincipalTag/team, 'shared'}/*", "team/ml/x", &ctx));
        assert!(!resource_match("team/${aws:PrincipalTag/team, 'shared'}/*", "team/shared/x", &ctx));
    }

    #[test]
    fn default_doubled_quote_is_one_quote() {
        let template = Template::parse("${jwt:x, 'it''s'}").unwrap();
        assert_eq!(template.literal(&Context::new()).as_deref(), Some("it's"));
    }

    #[test]
    fn escapes_are_literal() {
        let template = Template::parse("a${*}b${?}c${$}d").unwrap();
        assert_eq!(template.literal(&Context::new()).as_deref(), Some("a*b?c$d"));
        assert!(resource_match("a${*}b", "a*b", &Context::new()));
        assert!(!resource_match("a${*}b", "axxb", &Context::new()));
    }

    #[test]
    fn lone_dollar_is_literal() {
        assert!(resource_match("price$1/*", "price$1/x", &Context::new()));
    }

    #[test]
    fn malformed_variables_are_rejected() {
        for (text, reason) in [
            ("${aws:username", "missing closing"),
            ("${}", "invalid condition key"),
            ("${username}", "invalid condition key"),
            ("${jwt:sub, default}", "single quotes"),
            ("${jwt:sub, 'default}", "no closing quote"),
            ("${jwt:sub 'x'}", "after the key \"jwt:sub\""),
        ] {
            let err = Template::parse(text).unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn text_before_variable_must_match() {
        let ctx = context("aws:username", "alice");
        assert!(!resource_match("home/${aws:username}/*", "homes/alice/x", &ctx));
        assert!(resource_match("*/${aws:username}/*", "any/alice/x", &ctx));
        assert!(!resource_match("*/${aws:username}/*", "any/bob/x", &ctx));
        assert!(resource_match("h?me/${aws:username}", "home/alice", &ctx));
    }

    #[test]
    fn malformed_resource_pattern_matches_nothing() {
        assert!(!resource_match("home/${aws:username", "home/${aws:username", &Context::new()));
    }

    #[test]
    fn arn_splits_at_first_five_colons() {
        let template = Template::parse("arn:aws:s3:::bucket/a:b").unwrap();
        let components = template.split_arn().unwrap();
        let literal: Vec<_> = components.iter().map(|c| c.literal(&Context::new()).unwrap()).collect();
        assert_eq!(literal, ["arn", "aws", "s3", "", "", "bucket/a:b"]);
        assert!(Template::parse("arn:aws:s3").unwrap().split_arn().is_none());
    }

    #[test]
    fn arn_colons_inside_values_do_not_split() {
        let template = Template::parse("arn:aws:iam::${jwt:account}:role/x").unwrap();
        let components = template.split_arn().unwrap();
        let ctx = context("jwt:account", "1:2");
        assert_eq!(components[4].literal(&ctx).as_deref(), Some("1:2"));
    }
}
