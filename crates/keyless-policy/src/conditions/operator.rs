//! Condition operator names, parsed into their parts: an optional set qualifier
//! (`ForAnyValue:` or `ForAllValues:`), the comparison, whether the comparison is
//! negated, and the `IfExists` suffix.

use std::fmt;

/// Set qualifier: the rule for a key with several values in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier {
    /// `ForAnyValue:`: at least one request value must satisfy the comparison.
    ForAnyValue,
    /// `ForAllValues:`: every request value must satisfy the comparison.
    ForAllValues,
}

/// The positive comparison behind an operator. `StringNotEquals` is
/// `StringEquals` negated, `NotIpAddress` is `IpAddress` negated, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Relation),
    Date(Relation),
    Bool,
    IpAddress,
    ArnEquals,
    ArnLike,
    Null,
}

/// Required relation of a request value to a policy value, for numbers and
/// dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Equal,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

impl Relation {
    /// Returns whether `request.cmp(policy)` satisfies the relation.
    pub(crate) fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Relation::Equal => ordering == Equal,
            Relation::LessThan => ordering == Less,
            Relation::LessThanEquals => ordering != Greater,
            Relation::GreaterThan => ordering == Greater,
            Relation::GreaterThanEquals => ordering != Less,
        }
    }
}

/// A parsed condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub(crate) qualifier: Option<Qualifier>,
    pub(crate) comparison: Comparison,
    pub(crate) negated: bool,
    pub(crate) if_exists: bool,
}

/// Every operator name without qualifier or suffix, as IAM spells it, with its
/// comparison and whether it is negated.
const NAMES: &[(&str, Comparison, bool)] = {
    use Comparison::*;
    use Relation::*;
    &[
        ("StringEquals", StringEquals, false),
        ("StringNotEquals", StringEquals, true),
        ("StringEqualsIgnoreCase", StringEqualsIgnoreCase, false),
        ("StringNotEqualsIgnoreCase", StringEqualsIgnoreCase, true),
        ("StringLike", StringLike, false),
        ("StringNotLike", StringLike, true),
        ("NumericEquals", Numeric(Equal), false),
        ("NumericNotEquals", Numeric(Equal), true),
        ("NumericLessThan", Numeric(LessThan), false),
        ("NumericLessThanEquals", Numeric(LessThanEquals), false),
        ("NumericGreaterThan", Numeric(GreaterThan), false),
        ("NumericGreaterThanEquals", Numeric(GreaterThanEquals), false),
        ("DateEquals", Date(Equal), false),
        ("DateNotEquals", Date(Equal), true),
        ("DateLessThan", Date(LessThan), false),
        ("DateLessThanEquals", Date(LessThanEquals), false),
        ("DateGreaterThan", Date(GreaterThan), false),
        ("DateGreaterThanEquals", Date(GreaterThanEquals), false),
        ("Bool", Bool, false),
        ("IpAddress", IpAddress, false),
        ("NotIpAddress", IpAddress, true),
        ("ArnEquals", ArnEquals, false),
        ("ArnNotEquals", ArnEquals, true),
        ("ArnLike", ArnLike, false),
        ("ArnNotLike", ArnLike, true),
        ("Null", Null, false),
    ]
};

const FOR_ANY_VALUE: &str = "ForAnyValue:";
const FOR_ALL_VALUES: &str = "ForAllValues:";
const IF_EXISTS: &str = "IfExists";

impl Operator {
    /// Parses an operator name. Names are case-sensitive, as IAM writes them; a
    /// name that differs only in case is rejected with the correct spelling.
    pub(crate) fn parse(name: &str) -> Result<Operator, String> {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix(FOR_ANY_VALUE) {
            (Some(Qualifier::ForAnyValue), rest)
        } else if let Some(rest) = name.strip_prefix(FOR_ALL_VALUES) {
            (Some(Qualifier::ForAllValues), rest)
        } else {
            (None, name)
        };
        let (base, if_exists) = match rest.strip_suffix(IF_EXISTS) {
            Some(base) => (base, true),
            None => (rest, false),
        };

        let Some(&(_, comparison, negated)) = NAMES.iter().find(|(known, _, _)| *known == base) else {
            return Err(unknown_operator(name, base));
        };
        if comparison == Comparison::Null && if_exists {
            return Err(format!("condition operator {name:?} is invalid: Null tests whether a key exists, so it takes no IfExists suffix"));
        }
        if comparison == Comparison::Null && qualifier.is_some() {
            return Err(format!("condition operator {name:?} is invalid: Null tests whether a key exists, so it takes no ForAnyValue: or ForAllValues: prefix"));
        }
        Ok(Operator { qualifier, comparison, negated, if_exists })
    }

    /// Returns the name of the comparison without qualifier or suffix
    /// (`StringNotLike`).
    pub(crate) fn base_name(&self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, comparison, negated)| *comparison == self.comparison && *negated == self.negated)
            .map_or("", |(name, _, _)| name)
    }
}

fn unknown_operator(name: &str, base: &str) -> String {
    let same_but_case = NAMES.iter().find(|(known, _, _)| known.eq_ignore_ascii_case(base));
    match same_but_case {
        Some((known, _, _)) => format!("unknown condition operator {name:?}: operator names are case-sensitive, did you mean {known:?}?"),
        None => format!(
            "unknown condition operator {name:?}: expected a String, Numeric, Date, Bool, IpAddress, Arn or Null operator, optionally with a ForAnyValue: or ForAllValues: prefix and an IfExists suffix"
        ),
    }
}

/// Writes the operator as IAM spells it (`ForAnyValue:StringLikeIfExists`).
impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(Qualifier::ForAnyValue) => f.write_str(FOR_ANY_VALUE)?,
            Some(Qualifier::ForAllValues) => f.write_str(FOR_ALL_VALUES)?,
            None => {}
        }
        f.write_str(self.base_name())?;
        if self.if_exists {
            f.write_str(IF_EXISTS)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for (name, _, _) in NAMES {
            for qualifier in ["", FOR_ANY_VALUE, FOR_ALL_VALUES] {
                for suffix in ["", IF_EXISTS] {
                    let full = format!("{qualifier}{name}{suffix}");
                    if *name == "Null" && (!qualifier.is_empty() || !suffix.is_empty()) {
                        assert!(Operator::parse(&full).is_err(), "{full}");
                        continue;
                    }
                    assert_eq!(Operator::parse(&full).unwrap().to_string(), full);
                }
            }
        }
    }

    #[test]
    fn parts_are_recognized() {
        let op = Operator::parse("ForAllValues:StringNotLikeIfExists").unwrap();
        assert_eq!(op.qualifier, Some(Qualifier::ForAllValues));
        assert_eq!(op.comparison, Comparison::StringLike);
        assert!(op.negated);
        assert!(op.if_exists);
    }

    #[test]
    fn unknown_operator_is_rejected() {
        let err = Operator::parse("StringEqual").unwrap_err();
        assert!(err.starts_with("unknown condition operator \"StringEqual\""), "{err}");
        assert!(Operator::parse("ForSomeValues:StringEquals").is_err());
        assert!(Operator::parse("StringEqualsIfExistsIfExists").is_err());
        assert!(Operator::parse("").is_err());
    }

    #[test]
    fn wrong_case_names_the_spelling() {
        let err = Operator::parse("stringequals").unwrap_err();
        assert!(err.contains("did you mean \"StringEquals\""), "{err}");
    }

    #[test]
    fn null_takes_no_suffix_or_prefix() {
        assert!(Operator::parse("NullIfExists").unwrap_err().contains("no IfExists suffix"));
        assert!(Operator::parse("ForAnyValue:Null").unwrap_err().contains("no ForAnyValue: or ForAllValues: prefix"));
    }
}
