//! Evaluation of one condition against the request context, following the IAM
//! rules for missing keys, negated operators and set qualifiers.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;

use super::operator::{Comparison, Qualifier, Relation};
use super::typed::{Decimal, IpNetwork, parse_bool, parse_date};
use super::{Condition, Values};
use crate::context::Context;
use crate::document::Effect;
use crate::pattern::{Token, match_tokens};

/// Result of comparing one condition with the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionTrace {
    /// The operator as IAM spells it (`ForAnyValue:StringLike`).
    pub operator: String,
    /// The condition key, lowercased.
    pub key: String,
    /// Whether the condition counted as holding for this statement.
    pub matched: bool,
    /// The request values compared; empty when the request has no value for
    /// the key.
    pub values: Vec<String>,
    /// A request value that does not fit the operator's type (a claim `"abc"`
    /// under a Numeric operator). `matched` then follows the statement's
    /// effect, as described on [`Conditions::evaluate`](super::Conditions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_value: Option<String>,
}

/// The result of one condition before the statement's effect is applied.
enum Outcome {
    Holds,
    Fails,
    /// A request value does not fit the operator's type.
    InvalidValue(String),
}

impl Condition {
    pub(super) fn evaluate(&self, context: &Context, effect: Effect) -> ConditionTrace {
        let request_values = context.get(&self.key);
        let outcome = self.outcome(request_values, context);
        let (matched, invalid_value) = match outcome {
            Outcome::Holds => (true, None),
            Outcome::Fails => (false, None),
            Outcome::InvalidValue(value) => (effect == Effect::Deny, Some(value)),
        };
        ConditionTrace {
            operator: self.operator_name.clone(),
            key: self.key.clone(),
            matched,
            values: request_values.map(<[String]>::to_vec).unwrap_or_default(),
            invalid_value,
        }
    }

    fn outcome(&self, request_values: Option<&[String]>, context: &Context) -> Outcome {
        let operator = &self.operator;

        // Null tests only whether the key exists: `true` holds when the request
        // has no value for the key, `false` when it has one.
        if let Values::Null(expect_absent) = self.values {
            return holds(request_values.is_none() == expect_absent);
        }

        let Some(request_values) = request_values else {
            // The key is absent from the request.
            // - `...IfExists` holds: the comparison applies only when the key
            //   exists.
            // - `ForAllValues:` holds: every one of zero values satisfies it.
            // - `ForAnyValue:` fails: no value satisfies it.
            // - Otherwise a positive operator fails, since nothing matches, and
            //   a negated operator (`StringNotEquals`, `NotIpAddress`, …) holds,
            //   since nothing matches what it excludes.
            if operator.if_exists {
                return Outcome::Holds;
            }
            return match operator.qualifier {
                Some(Qualifier::ForAllValues) => Outcome::Holds,
                Some(Qualifier::ForAnyValue) => Outcome::Fails,
                None => holds(operator.negated),
            };
        };

        // A request value "hits" when it matches at least one policy value (the
        // policy values of one key are OR'ed). A negated operator is satisfied
        // by a value that hits none of them (NOR).
        let matcher = Matcher::new(operator.comparison, &self.values, context);
        let (mut any_hit, mut all_hit) = (false, true);
        for value in request_values {
            let Some(hit) = matcher.hit(value) else {
                return Outcome::InvalidValue(value.clone());
            };
            any_hit |= hit;
            all_hit &= hit;
        }
        let (any_satisfied, all_satisfied) = if operator.negated { (!all_hit, !any_hit) } else { (any_hit, all_hit) };

        match operator.qualifier {
            // At least one request value satisfies the operator.
            Some(Qualifier::ForAnyValue) => holds(any_satisfied),
            // Every request value satisfies the operator.
            Some(Qualifier::ForAllValues) => holds(all_satisfied),
            // Without a qualifier the condition is meant for a single-valued key.
            // keyless defines it for several values as: a positive operator holds
            // when any value hits, and a negated operator is its exact negation,
            // holding only when no value hits.
            None if operator.negated => holds(!any_hit),
            None => holds(any_hit),
        }
    }
}

fn holds(value: bool) -> Outcome {
    if value { Outcome::Holds } else { Outcome::Fails }
}

/// The policy values of one condition, with policy variables resolved once for
/// the request.
enum Matcher<'p> {
    Exact(Vec<Cow<'p, str>>),
    /// Lowercased policy values.
    IgnoreCase(Vec<String>),
    Like(Vec<Vec<Token>>),
    Numeric(Relation, &'p [Decimal]),
    Date(Relation, &'p [OffsetDateTime]),
    Bool(&'p [bool]),
    Ip(&'p [IpNetwork]),
    /// Per policy value, one glob for each of the six ARN components.
    Arn(Vec<Vec<Vec<Token>>>),
}

impl<'p> Matcher<'p> {
    /// Resolves the policy values. A value whose policy variable has no usable
    /// value is dropped, so it matches no request value.
    fn new(comparison: Comparison, values: &'p Values, context: &Context) -> Matcher<'p> {
        match (comparison, values) {
            (Comparison::StringEquals, Values::Strings(templates)) => {
                Matcher::Exact(templates.iter().filter_map(|t| t.literal(context)).collect())
            }
            (Comparison::StringEqualsIgnoreCase, Values::Strings(templates)) => {
                Matcher::IgnoreCase(templates.iter().filter_map(|t| t.literal(context)).map(|text| text.to_lowercase()).collect())
            }
            (Comparison::StringLike, Values::Strings(templates)) => {
                Matcher::Like(templates.iter().filter_map(|t| t.tokens(context, true)).collect())
            }
            (Comparison::Numeric(relation), Values::Numbers(numbers)) => Matcher::Numeric(relation, numbers),
            (Comparison::Date(relation), Values::Dates(dates)) => Matcher::Date(relation, dates),
            (Comparison::Bool, Values::Bools(bools)) => Matcher::Bool(bools),
            (Comparison::IpAddress, Values::Networks(networks)) => Matcher::Ip(networks),
            (Comparison::ArnEquals | Comparison::ArnLike, Values::Arns(arns)) => Matcher::Arn(
                arns.iter()
                    .filter_map(|components| components.iter().map(|c| c.tokens(context, true)).collect::<Option<Vec<_>>>())
                    .collect(),
            ),
            // Parsing pairs each comparison with its value type, so no other
            // combination exists. Matching nothing is the safe reading anyway.
            _ => Matcher::Exact(Vec::new()),
        }
    }

    /// Returns whether `value` matches at least one policy value, or `None` when
    /// `value` does not fit the operator's type.
    fn hit(&self, value: &str) -> Option<bool> {
        let hit = match self {
            Matcher::Exact(policy) => policy.iter().any(|p| p.as_ref() == value),
            Matcher::IgnoreCase(policy) => {
                let value = value.to_lowercase();
                policy.iter().any(|p| *p == value)
            }
            Matcher::Like(globs) => {
                let value: Vec<char> = value.chars().collect();
                globs.iter().any(|glob| match_tokens(glob, &value))
            }
            Matcher::Numeric(relation, policy) => {
                let value = Decimal::parse(value)?;
                policy.iter().any(|p| relation.holds(value.cmp(p)))
            }
            Matcher::Date(relation, policy) => {
                let value = parse_date(value)?;
                policy.iter().any(|p| relation.holds(value.cmp(p)))
            }
            Matcher::Bool(policy) => policy.contains(&parse_bool(value)?),
            Matcher::Ip(networks) => {
                let address: IpAddr = value.parse().ok()?;
                networks.iter().any(|network| network.contains(address))
            }
            Matcher::Arn(patterns) => arn_hit(patterns, value),
        };
        Some(hit)
    }
}

/// Matches an ARN component by component, so a wildcard never spans a colon
/// between components. A request value that is not a six-part ARN hits nothing.
fn arn_hit(patterns: &[Vec<Vec<Token>>], value: &str) -> bool {
    let components: Vec<Vec<char>> = value.splitn(6, ':').map(|c| c.chars().collect()).collect();
    if components.len() != 6 {
        return false;
    }
    patterns.iter().any(|pattern| pattern.iter().zip(&components).all(|(glob, component)| match_tokens(glob, component)))
}
