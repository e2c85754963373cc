//! The parts of the AWS policy grammar that bucket policies and session
//! policies share: the document envelope, `Sid`, `Effect`,
//! `Action`/`NotAction`, `Resource`/`NotResource` and `Condition`.
//!
//! Documents are read strictly: unknown elements, wrong types and duplicate
//! JSON keys are errors, never ignored.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::conditions::Conditions;
use crate::document::Effect;
use crate::variables::Template;

/// Error for a rejected bucket or session policy. The message names the element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPolicy(pub String);

pub(crate) fn malformed(message: impl Into<String>) -> MalformedPolicy {
    MalformedPolicy(message.into())
}

/// A statement object, with its position for error messages.
pub(crate) struct RawStatement<'a> {
    pub(crate) index: usize,
    pub(crate) fields: &'a Map<String, Value>,
}

/// Parses a policy document and checks its envelope (`Version`, `Id`,
/// `Statement`, nothing else). `max_bytes` is the size limit of this kind of
/// policy.
pub(crate) fn parse_document(text: &str, max_bytes: usize) -> Result<Value, MalformedPolicy> {
    if text.len() > max_bytes {
        return Err(malformed(format!("the policy is {} bytes; the maximum is {max_bytes}", text.len())));
    }
    reject_duplicate_keys(text)?;
    let doc: Value = serde_json::from_str(text).map_err(|err| malformed(format!("the policy is not valid JSON: {err}")))?;
    let Value::Object(fields) = &doc else { return Err(malformed("the policy must be a JSON object")) };
    for key in fields.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            return Err(malformed(format!("unknown top-level element {key:?}")));
        }
    }
    match fields.get("Version").and_then(Value::as_str) {
        Some("2012-10-17") | Some("2008-10-17") => {}
        Some(other) => return Err(malformed(format!("Version {other:?} is invalid: expected \"2012-10-17\""))),
        None if fields.contains_key("Version") => return Err(malformed("Version must be the string \"2012-10-17\"")),
        None => return Err(malformed("Version is missing: expected \"2012-10-17\"")),
    }
    if let Some(id) = fields.get("Id")
        && !id.is_string()
    {
        return Err(malformed("Id must be a string"));
    }
    Ok(doc)
}

/// Returns the statement objects of a document that passed `parse_document`.
pub(crate) fn statements(doc: &Value) -> Result<Vec<RawStatement<'_>>, MalformedPolicy> {
    let list = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err(malformed("Statement is missing: expected an object or a list of objects")),
    };
    if list.is_empty() {
        return Err(malformed("Statement is empty"));
    }
    list.into_iter()
        .enumerate()
        .map(|(index, value)| match value {
            Value::Object(fields) => Ok(RawStatement { index, fields }),
            _ => Err(malformed(format!("statement {index} must be an object"))),
        })
        .collect()
}

impl RawStatement<'_> {
    /// Rejects every element not in `known`. `NotPrincipal` gets its own message
    /// because it is valid AWS grammar that keyless does not support.
    pub(crate) fn check_elements(&self, known: &[&str]) -> Result<(), MalformedPolicy> {
        let index = self.index;
        for key in self.fields.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            return Err(match key.as_str() {
                "NotPrincipal" => malformed(format!("statement {index}: NotPrincipal is not supported")),
                other => malformed(format!("statement {index}: unknown element {other:?}")),
            });
        }
        Ok(())
    }

    pub(crate) fn sid(&self) -> Result<String, MalformedPolicy> {
        match self.fields.get("Sid") {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(malformed(format!("statement {}: Sid must be a string", self.index))),
        }
    }

    pub(crate) fn effect(&self) -> Result<Effect, MalformedPolicy> {
        match self.fields.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Ok(Effect::Allow),
            Some("Deny") => Ok(Effect::Deny),
            other => Err(malformed(format!("statement {}: Effect {other:?} is invalid: expected \"Allow\" or \"Deny\"", self.index))),
        }
    }

    /// Reads exactly one of two inverse elements (`Action`/`NotAction`,
    /// `Resource`/`NotResource`). Returns the strings and whether the inverse
    /// element was used.
    pub(crate) fn one_of(&self, element: &str, inverse: &str) -> Result<(Vec<String>, bool), MalformedPolicy> {
        match (self.fields.get(element), self.fields.get(inverse)) {
            (Some(v), None) => Ok((self.strings(v, element)?, false)),
            (None, Some(v)) => Ok((self.strings(v, inverse)?, true)),
            _ => Err(malformed(format!("statement {}: exactly one of {element} and {inverse} is required", self.index))),
        }
    }

    /// Reads a string or a non-empty list of non-empty strings.
    pub(crate) fn strings(&self, value: &Value, element: &str) -> Result<Vec<String>, MalformedPolicy> {
        let index = self.index;
        let list = match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| malformed(format!("statement {index}: {element} entries must be strings"))))
                .collect::<Result<_, _>>()?,
            _ => return Err(malformed(format!("statement {index}: {element} must be a string or a list of strings"))),
        };
        if list.is_empty() || list.iter().any(String::is_empty) {
            return Err(malformed(format!("statement {index}: {element} must not be empty")));
        }
        Ok(list)
    }

    /// Checks each action's form: `*` or `<service>:<name>` with a service from
    /// `services`, compared case-insensitively.
    pub(crate) fn check_actions(&self, actions: &[String], services: &[&str], rule: &str) -> Result<(), MalformedPolicy> {
        for action in actions {
            let valid = action == "*"
                || action.split_once(':').is_some_and(|(service, name)| {
                    !name.is_empty() && services.iter().any(|s| s.eq_ignore_ascii_case(service))
                });
            if !valid {
                return Err(malformed(format!("statement {}: action {action:?} is invalid: {rule}", self.index)));
            }
        }
        Ok(())
    }

    /// Converts an S3 ARN to keyless's resource form: `arn:aws:s3:::<bucket>`
    /// becomes `<bucket>` and `arn:aws:s3:::<bucket>/<key>` becomes
    /// `<bucket>/<key>`. Policy variables are checked for syntax.
    pub(crate) fn s3_resource(&self, arn: &str) -> Result<String, MalformedPolicy> {
        let index = self.index;
        let Some(rest) = arn.strip_prefix("arn:aws:s3:::") else {
            return Err(malformed(format!("statement {index}: resource {arn:?} is invalid: expected arn:aws:s3:::<bucket>[/<key>]")));
        };
        if rest.is_empty() {
            return Err(malformed(format!("statement {index}: resource {arn:?} is invalid: the bucket name is missing")));
        }
        Template::parse(rest).map_err(|err| malformed(format!("statement {index}: resource {arn:?} is invalid: {err}")))?;
        Ok(rest.to_owned())
    }

    /// Reads the optional `Condition` block.
    pub(crate) fn conditions(&self) -> Result<Option<Conditions>, MalformedPolicy> {
        let Some(value) = self.fields.get("Condition") else { return Ok(None) };
        let conditions = Conditions::from_json(value).map_err(|err| malformed(format!("statement {}: Condition: {err}", self.index)))?;
        Ok(Some(conditions))
    }
}

/// Rejects a JSON text in which an object has the same key twice. serde_json
/// keeps only the last value of a repeated key, which would silently drop a
/// statement element or a condition.
fn reject_duplicate_keys(text: &str) -> Result<(), MalformedPolicy> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    UniqueKeys.deserialize(&mut deserializer).map_err(|err| malformed(format!("the policy is not valid JSON: {err}")))
}

/// Walks any JSON value and fails on a repeated object key.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        for text in [
            r#"{"Version":"2012-10-17","Version":"2012-10-17"}"#,
            r#"{"Statement":[{"Effect":"Allow","Effect":"Deny"}]}"#,
            r#"{"Statement":{"Condition":{"StringEquals":{"a:b":"1","a:b":"2"}}}}"#,
        ] {
            let err = reject_duplicate_keys(text).unwrap_err();
            assert!(err.0.contains("duplicate key"), "{text}: {err}");
        }
    }

    #[test]
    fn distinct_keys_are_accepted() {
        assert_eq!(reject_duplicate_keys(r#"{"a":[{"b":1},{"b":2}],"c":{"b":null}}"#), Ok(()));
    }
}
