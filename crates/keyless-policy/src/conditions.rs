//! The IAM condition language: the `Condition` block of a statement.
//!
//! A block maps operators to keys and keys to policy values:
//! `{"StringLike": {"s3:prefix": ["home/${aws:username}/*", ""]}}`. Every
//! operator and every key must hold for the statement to apply (AND), and the
//! several values of one key are alternatives (OR).
//!
//! Terms: a *condition key* names a fact about the request (see [`Context`]). A
//! *policy value* is the value the policy compares it with, and a *request
//! value* is the value the request carries.
//!
//! The block is parsed completely when the policy is loaded: unknown operators,
//! malformed keys and values that do not fit the operator's type are errors that
//! name the operator, the key and the value, never silently ignored.
//!
//! Supported operators: `String[Not]Equals[IgnoreCase]`, `String[Not]Like`,
//! `Numeric*`, `Date*`, `Bool`, `[Not]IpAddress`, `Arn[Not]Equals`,
//! `Arn[Not]Like` and `Null`, each (except `Null`) with an optional `IfExists`
//! suffix and an optional `ForAnyValue:` or `ForAllValues:` prefix. `Binary*`
//! operators are not supported, because no keyless condition key has binary
//! data.

mod evaluate;
mod operator;
mod typed;

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::context::{Context, check_key, normalize_key};
use crate::document::Effect;
use crate::variables::Template;
use operator::{Comparison, Operator};
use typed::{Decimal, IpNetwork, parse_bool, parse_date};

pub use evaluate::ConditionTrace;

/// Maximum length of a policy value, in characters.
const MAX_VALUE_CHARS: usize = 2048;

/// A parsed `Condition` block. It can only be built by parsing, so every
/// instance contains valid operators, keys and values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    conditions: Vec<Condition>,
}

/// One operator applied to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    operator: Operator,
    /// The operator as IAM spells it, for traces.
    operator_name: String,
    /// The key lowercased, for lookup in the request context.
    key: String,
    /// The key as the policy spells it, to write the policy back unchanged.
    key_as_written: String,
    /// The policy values as written, to write the policy back unchanged.
    written: Vec<String>,
    values: Values,
}

/// Policy values parsed into the type of their operator.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Values {
    /// String operators. Values may contain policy variables.
    Strings(Vec<Template>),
    Numbers(Vec<Decimal>),
    Dates(Vec<OffsetDateTime>),
    Bools(Vec<bool>),
    Networks(Vec<IpNetwork>),
    /// ARN operators: each value split into its six components.
    Arns(Vec<Vec<Template>>),
    /// `Null`: `true` means the condition holds when the key is absent.
    Null(bool),
}

/// Error for a rejected `Condition` block. The message names the operator, the
/// key and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConditionError(String);

impl Conditions {
    /// Parses a `Condition` block from a JSON value.
    pub fn from_json(value: &serde_json::Value) -> Result<Conditions, ConditionError> {
        Conditions::deserialize(value).map_err(|err| ConditionError(err.to_string()))
    }

    /// Returns whether the block has no conditions, so that it always holds.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Evaluates every condition against the request context and traces each
    /// one. A statement applies only if every returned trace has `matched`.
    ///
    /// `effect` decides how a request value that does not fit the operator's
    /// type counts (a `jwt:` claim `"abc"` under `NumericLessThan`, for example).
    /// The request is then not trusted either way: the condition counts as
    /// holding in a Deny statement and as failing in an Allow statement, so such
    /// a value can only remove access. This choice is keyless's own; the IAM
    /// documentation does not say what happens.
    pub(crate) fn evaluate(&self, context: &Context, effect: Effect) -> Vec<ConditionTrace> {
        self.conditions.iter().map(|condition| condition.evaluate(context, effect)).collect()
    }

    /// Evaluates the conditions as an Allow statement's would be evaluated: a
    /// request value that does not fit an operator's type fails. Used for the
    /// claim conditions of WIF configurations, which grant.
    pub fn evaluate_granting(&self, context: &Context) -> Vec<ConditionTrace> {
        self.evaluate(context, Effect::Allow)
    }

    /// Builds the block from `(operator, [(key, [value])])` as read from JSON.
    fn build(blocks: Vec<(String, Vec<(String, Vec<String>)>)>) -> Result<Conditions, String> {
        let mut conditions = Vec::new();
        for (name, keys) in blocks {
            let operator = Operator::parse(&name)?;
            if keys.is_empty() {
                return Err(format!("{name}: the operator names no condition key: expected {{\"{name}\": {{\"<key>\": \"<value>\"}}}}"));
            }
            let mut seen = HashSet::new();
            for (key_as_written, written) in keys {
                check_key(&key_as_written).map_err(|err| format!("{name}: {err}"))?;
                let key = normalize_key(&key_as_written).into_owned();
                if !seen.insert(key.clone()) {
                    return Err(format!("{name}: condition key {key_as_written:?} appears twice: keys compare case-insensitively"));
                }
                let values = parse_values(&operator, &name, &key_as_written, &written)?;
                conditions.push(Condition { operator, operator_name: operator.to_string(), key, key_as_written, written, values });
            }
        }
        Ok(Conditions { conditions })
    }
}

/// Parses the policy values of one key into the type its operator compares.
fn parse_values(operator: &Operator, name: &str, key: &str, written: &[String]) -> Result<Values, String> {
    if written.is_empty() {
        return Err(format!("{name}: condition key {key:?} has no values: expected a string or a non-empty list"));
    }
    for value in written {
        if value.chars().count() > MAX_VALUE_CHARS || value.chars().any(char::is_control) {
            return Err(format!(
                "{name}: value {value:?} for key {key:?} is invalid: values are at most {MAX_VALUE_CHARS} characters without control characters"
            ));
        }
    }
    let invalid = |value: &str, expected: &str| format!("{name}: value {value:?} for key {key:?} is invalid: expected {expected}");
    let each = |parse: &dyn Fn(&str) -> Option<()>, expected: &str| -> Result<(), String> {
        for value in written {
            parse(value).ok_or_else(|| invalid(value, expected))?;
        }
        Ok(())
    };

    let values = match operator.comparison {
        Comparison::StringEquals | Comparison::StringEqualsIgnoreCase | Comparison::StringLike => {
            let templates = written.iter().map(|value| Template::parse(value).map_err(|err| format!("{name}: key {key:?}: {err}")));
            Values::Strings(templates.collect::<Result<_, _>>()?)
        }
        Comparison::Numeric(_) => {
            let expected = "a decimal number such as \"10\" or \"-2.5\" (policy variables are not allowed)";
            each(&|v| Decimal::parse(v).map(drop), expected)?;
            Values::Numbers(written.iter().filter_map(|v| Decimal::parse(v)).collect())
        }
        Comparison::Date(_) => {
            let expected = "an RFC 3339 date such as \"2026-01-31T00:00:00Z\" or whole seconds since the Unix epoch";
            each(&|v| parse_date(v).map(drop), expected)?;
            Values::Dates(written.iter().filter_map(|v| parse_date(v)).collect())
        }
        Comparison::Bool => {
            each(&|v| parse_bool(v).map(drop), "\"true\" or \"false\"")?;
            let bools: Vec<bool> = written.iter().filter_map(|v| parse_bool(v)).collect();
            if bools.contains(&true) && bools.contains(&false) {
                return Err(format!("{name}: key {key:?} lists both true and false, so the condition tests only that the key exists: use Null"));
            }
            Values::Bools(bools)
        }
        Comparison::IpAddress => {
            let expected = "an IPv4 or IPv6 address or CIDR block such as \"192.0.2.0/24\" or \"2001:db8::/32\"";
            each(&|v| IpNetwork::parse(v).map(drop), expected)?;
            Values::Networks(written.iter().filter_map(|v| IpNetwork::parse(v)).collect())
        }
        Comparison::ArnEquals | Comparison::ArnLike => {
            let expected = "an ARN of six colon-separated parts such as \"arn:aws:iam::123456789012:role/*\"";
            let mut arns = Vec::new();
            for value in written {
                let template = Template::parse(value).map_err(|err| format!("{name}: key {key:?}: {err}"))?;
                let components = template.split_arn().filter(|_| value.starts_with("arn:")).ok_or_else(|| invalid(value, expected))?;
                arns.push(components);
            }
            Values::Arns(arns)
        }
        Comparison::Null => {
            let [value] = written else {
                return Err(format!("{name}: key {key:?} has {} values: Null takes exactly one, \"true\" or \"false\"", written.len()));
            };
            Values::Null(parse_bool(value).ok_or_else(|| invalid(value, "\"true\" (the key is absent) or \"false\" (the key is present)"))?)
        }
    };
    Ok(values)
}

/// Reads a `Condition` block. Besides the checks of [`Conditions`], duplicate
/// operators or keys in the JSON object are rejected: most JSON readers keep
/// only the last one, which would silently drop a condition.
impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Conditions, D::Error> {
        let blocks = deserializer.deserialize_map(BlockVisitor)?;
        Conditions::build(blocks).map_err(de::Error::custom)
    }
}

struct BlockVisitor;

impl<'de> Visitor<'de> for BlockVisitor {
    type Value = Vec<(String, Vec<(String, Vec<String>)>)>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a Condition object mapping operators to {\"<key>\": <values>} objects")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut blocks: Self::Value = Vec::new();
        while let Some(operator) = map.next_key::<String>()? {
            if blocks.iter().any(|(seen, _)| *seen == operator) {
                return Err(de::Error::custom(format!("condition operator {operator:?} appears twice")));
            }
            let keys = map.next_value_seed(KeysSeed { operator: &operator })?;
            blocks.push((operator, keys));
        }
        Ok(blocks)
    }
}

/// Reads `{"<key>": <values>}` for one operator.
struct KeysSeed<'a> {
    operator: &'a str,
}

impl<'de> DeserializeSeed<'de> for KeysSeed<'_> {
    type Value = Vec<(String, Vec<String>)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeysSeed<'_> {
    type Value = Vec<(String, Vec<String>)>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "an object mapping condition keys to values under {:?}", self.operator)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys: Self::Value = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.iter().any(|(seen, _)| *seen == key) {
                return Err(de::Error::custom(format!("{}: condition key {key:?} appears twice", self.operator)));
            }
            let values = map.next_value_seed(ValuesSeed { operator: self.operator, key: &key, in_list: false })?;
            keys.push((key, values));
        }
        Ok(keys)
    }
}

/// Reads one policy value or a list of them. JSON booleans and numbers are
/// accepted and kept as their text (`true`, `10`), as IAM accepts
/// `{"Bool": {"aws:SecureTransport": false}}`.
struct ValuesSeed<'a> {
    operator: &'a str,
    key: &'a str,
    in_list: bool,
}

impl ValuesSeed<'_> {
    fn one<E: de::Error>(&self, value: String) -> Result<Vec<String>, E> {
        Ok(vec![value])
    }
}

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_> {
    type Value = Vec<String>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        let what = if self.in_list { "a string, number or boolean" } else { "a string, number, boolean or a list of them" };
        write!(formatter, "{what} as the value of {:?} under {:?}", self.key, self.operator)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        self.one(value.to_owned())
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        self.one(value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        self.one(value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        self.one(value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        self.one(value.to_string())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if self.in_list {
            return Err(de::Error::custom(format!("{}: the values of {:?} must not contain nested lists", self.operator, self.key)));
        }
        let mut values = Vec::new();
        while let Some(mut value) = seq.next_element_seed(ValuesSeed { in_list: true, ..self })? {
            values.append(&mut value);
        }
        Ok(values)
    }
}

/// Writes the block back in the JSON shape it was read from, with the key
/// spellings of the policy. A key with one value is written as a string.
impl Serialize for Conditions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Conditions were parsed operator by operator, so the conditions of one
        // operator are adjacent.
        let groups: Vec<&[Condition]> = self.conditions.chunk_by(|a, b| a.operator == b.operator).collect();
        let mut map = serializer.serialize_map(Some(groups.len()))?;
        for group in groups {
            if let Some(first) = group.first() {
                map.serialize_entry(&first.operator_name, &KeysOf(group))?;
            }
        }
        map.end()
    }
}

struct KeysOf<'a>(&'a [Condition]);

impl Serialize for KeysOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for condition in self.0 {
            match condition.written.as_slice() {
                [one] => map.serialize_entry(&condition.key_as_written, one)?,
                many => map.serialize_entry(&condition.key_as_written, many)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests;
