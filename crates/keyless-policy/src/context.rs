//! The request context: the condition keys of one request and their values.
//!
//! A condition key names a fact about the request (`aws:SourceIp`,
//! `aws:SecureTransport`, `jwt:sub`, `saml:<attribute>`, …). Key names compare
//! case-insensitively, as in IAM, so the context stores them lowercased. Every key
//! has a list of values: most keys have one value, and multivalued keys (a
//! `jwt:groups` claim, for example) have several. A key with no values is absent.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The condition keys of one request, with their values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// Creates a context with no keys.
    pub const fn new() -> Self {
        Context { values: BTreeMap::new() }
    }

    /// Starts building a context.
    pub fn builder() -> ContextBuilder {
        ContextBuilder::default()
    }

    /// Appends `value` to the values of `key`, so a key inserted twice becomes
    /// multivalued.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values.entry(normalize_key(key).into_owned()).or_default().push(value.into());
    }

    /// Returns the values of `key`, compared case-insensitively, or `None` when
    /// the request has no value for it.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(normalize_key(key).as_ref()).map(Vec::as_slice)
    }

    /// Returns whether the context has no keys.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Iterates over the keys, lowercased, and their values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.values.iter().map(|(key, values)| (key.as_str(), values.as_slice()))
    }
}

/// Builds a [`Context`] one key at a time.
#[derive(Debug, Default)]
pub struct ContextBuilder {
    context: Context,
}

impl ContextBuilder {
    /// Adds one value to `key`.
    pub fn value(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context.insert(key, value);
        self
    }

    /// Adds several values to `key`. An empty list adds nothing, so the key
    /// stays absent.
    pub fn values<I, V>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        for value in values {
            self.context.insert(key, value);
        }
        self
    }

    /// Finishes the context.
    pub fn build(self) -> Context {
        self.context
    }
}

/// Lowercases a condition key, as IAM compares key names case-insensitively.
/// Keys that are already lowercase are returned without a copy.
pub(crate) fn normalize_key(key: &str) -> Cow<'_, str> {
    if key.chars().any(char::is_uppercase) { Cow::Owned(key.to_lowercase()) } else { Cow::Borrowed(key) }
}

/// Maximum length of a condition key in a policy, in characters. It leaves room
/// for a claim named by a URL.
const MAX_KEY_CHARS: usize = 256;

/// Checks that a condition key written in a policy has the form
/// `<prefix>:<name>`, where the prefix is letters, digits or `-` (`aws`, `s3`,
/// `jwt`, `saml`, `cw`) and the name is not empty. The name may contain further
/// colons and slashes (`aws:PrincipalTag/team`, `jwt:https://example.com/groups`),
/// but no whitespace, control characters or the characters `${}',"` that would
/// make a policy variable ambiguous.
pub(crate) fn check_key(key: &str) -> Result<(), String> {
    let rule = "expected a condition key \"<prefix>:<name>\" such as \"aws:SourceIp\" or \"jwt:sub\"";
    let Some((prefix, name)) = key.split_once(':') else {
        return Err(format!("invalid condition key {key:?}: {rule}"));
    };
    let prefix_ok = !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let name_ok = !name.is_empty()
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '$' | '{' | '}' | '\'' | ',' | '"'));
    if !prefix_ok || !name_ok {
        return Err(format!("invalid condition key {key:?}: {rule}"));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(format!("invalid condition key {key:?}: keys are at most {MAX_KEY_CHARS} characters"));
    }
    Ok(())
}

/// Reads a JSON object that maps each key to a string or a list of strings, as
/// the explain endpoint receives it. Two spellings of one key (`jwt:Sub` and
/// `jwt:sub`) are rejected because it is unclear which values were meant.
impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ContextVisitor)
    }
}

struct ContextVisitor;

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Visitor<'de> for ContextVisitor {
    type Value = Context;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an object mapping condition keys to a string or a list of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Context, A::Error> {
        let mut context = Context::new();
        while let Some(key) = map.next_key::<String>()? {
            let values = match map.next_value::<OneOrMany>()? {
                OneOrMany::One(value) => vec![value],
                OneOrMany::Many(values) => values,
            };
            let normalized = normalize_key(&key).into_owned();
            if context.values.contains_key(&normalized) {
                return Err(de::Error::custom(format!("duplicate context key {key:?}: keys compare case-insensitively")));
            }
            if !values.is_empty() {
                context.values.insert(normalized, values);
            }
        }
        Ok(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_case_insensitively() {
        let context = Context::builder().value("aws:SourceIp", "192.0.2.1").build();
        assert_eq!(context.get("aws:sourceip"), Some(&["192.0.2.1".to_owned()][..]));
        assert_eq!(context.get("AWS:SOURCEIP"), Some(&["192.0.2.1".to_owned()][..]));
    }

    #[test]
    fn repeated_key_becomes_multivalued() {
        let context = Context::builder().value("jwt:groups", "a").value("JWT:groups", "b").build();
        assert_eq!(context.get("jwt:groups"), Some(&["a".to_owned(), "b".to_owned()][..]));
    }

    #[test]
    fn empty_value_list_leaves_key_absent() {
        let context = Context::builder().values("jwt:groups", Vec::<String>::new()).build();
        assert_eq!(context.get("jwt:groups"), None);
        assert!(context.is_empty());
    }

    #[test]
    fn json_context_accepts_strings_and_lists() {
        let context: Context = serde_json::from_str(r#"{"aws:username":"alice","jwt:groups":["a","b"]}"#).unwrap();
        assert_eq!(context.get("aws:username"), Some(&["alice".to_owned()][..]));
        assert_eq!(context.get("jwt:groups").map(<[String]>::len), Some(2));
    }

    #[test]
    fn json_context_rejects_case_variant_duplicates() {
        let err = serde_json::from_str::<Context>(r#"{"jwt:sub":"a","JWT:Sub":"b"}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate context key \"JWT:Sub\""), "{err}");
    }
}
