//! Wildcard matching for actions, resources and principals.

/// One element of a compiled glob. Policy text compiles `*` and `?` to
/// wildcards. Text substituted for a policy variable compiles to `Char` only, so
/// a request value can never act as a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// Matches this character exactly.
    Char(char),
    /// `*`: any run of characters, including none and including `/`.
    AnyRun,
    /// `?`: exactly one character.
    AnyOne,
}

impl Token {
    /// Compiles one character of policy text in which `*` and `?` are wildcards.
    pub(crate) fn wildcard(c: char) -> Token {
        match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyOne,
            c => Token::Char(c),
        }
    }
}

/// Matches `value` against an IAM-style glob: `*` matches any run of characters
/// (including none and including `/`), `?` matches exactly one character, and
/// every other character matches itself. This function has no escape syntax.
/// Policy variables such as `${*}` are resolved by the callers that allow them,
/// before matching.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    glob_match_str(pattern, value, false)
}

/// Matches like [`glob_match`], with ASCII letters compared case-insensitively
/// (`S3:getobject` matches `s3:GetObject`), as IAM compares action names.
pub(crate) fn glob_match_ignore_ascii_case(pattern: &str, value: &str) -> bool {
    glob_match_str(pattern, value, true)
}

/// Matches a glob against a string without allocating. Positions are byte
/// offsets that always sit on character boundaries.
fn glob_match_str(pattern: &str, value: &str, ignore_ascii_case: bool) -> bool {
    let char_at = |text: &str, at: usize| text.get(at..).and_then(|rest| rest.chars().next());
    let same = |a: char, b: char| if ignore_ascii_case { a.eq_ignore_ascii_case(&b) } else { a == b };

    // Iterative matcher with one backtrack point: linear in practice and never
    // exponential, whatever the pattern.
    let (mut p, mut v) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(current) = char_at(value, v) {
        match char_at(pattern, p) {
            Some('*') => {
                star = Some((p, v));
                p += 1;
            }
            Some('?') => {
                p += 1;
                v += current.len_utf8();
            }
            Some(expected) if same(expected, current) => {
                p += expected.len_utf8();
                v += current.len_utf8();
            }
            _ => match star {
                Some((star_p, star_v)) => {
                    // Let the last `*` absorb one more character and retry.
                    let skipped = char_at(value, star_v).map_or(1, char::len_utf8);
                    p = star_p + 1;
                    v = star_v + skipped;
                    star = Some((star_p, v));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).is_some_and(|rest| rest.chars().all(|c| c == '*'))
}

/// Matches `value` against a compiled glob.
pub(crate) fn match_tokens(tokens: &[Token], value: &[char]) -> bool {
    // Iterative matcher with one backtrack point: linear in practice and never
    // exponential, whatever the pattern.
    let (mut p, mut v) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match tokens.get(p) {
            Some(Token::AnyRun) => {
                star = Some((p, v));
                p += 1;
            }
            Some(Token::AnyOne) => {
                p += 1;
                v += 1;
            }
            Some(Token::Char(c)) if *c == value[v] => {
                p += 1;
                v += 1;
            }
            _ => match star {
                Some((star_p, star_v)) => {
                    p = star_p + 1;
                    v = star_v + 1;
                    star = Some((star_p, star_v + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|t| *t == Token::AnyRun)
}

/// Matches a principal against a principal pattern.
///
/// `*` matches every principal, including anonymous requests. A pattern ending in
/// `*` matches every principal starting with the text before it; that text should
/// end at a separator (`repo:acme/*`), because `repo:acme*` also matches
/// `repo:acme-evil`. Any other pattern must equal the principal exactly: `?` and
/// inner `*` are literal, since issuer URLs and subjects may contain them.
pub fn principal_match(pattern: &str, principal: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => principal.starts_with(prefix),
        None => pattern == principal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_star_spans_slashes() {
        assert!(glob_match("data/*", "data/a/b/c"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn glob_prefix_boundaries() {
        assert!(!glob_match("bucket", "bucket2"));
        assert!(!glob_match("bucket/*", "bucket2/x"));
        assert!(!glob_match("a/b*", "ab"));
        assert!(glob_match("a/b*", "a/bc"));
    }

    #[test]
    fn glob_question_mark_matches_one_char() {
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("a?c", "abbc"));
    }

    #[test]
    fn glob_matches_multibyte_characters() {
        assert!(glob_match("d\u{e9}j\u{e0}/?", "d\u{e9}j\u{e0}/\u{fc}"));
        assert!(glob_match("*\u{e0}", "voil\u{e0}"));
        assert!(!glob_match("?", "\u{e9}\u{e9}"));
    }

    #[test]
    fn ignore_ascii_case_folds_letters_only() {
        assert!(glob_match_ignore_ascii_case("S3:get*", "s3:GetObject"));
        assert!(!glob_match_ignore_ascii_case("s3:\u{c9}", "s3:\u{e9}"));
        assert!(!glob_match("S3:get*", "s3:GetObject"));
    }

    #[test]
    fn glob_pathological_pattern_is_fast() {
        let value = "a".repeat(5000);
        assert!(!glob_match(&format!("{}b", "*a".repeat(200)), &value));
    }

    #[test]
    fn principal_prefix_needs_separator() {
        assert!(principal_match("role/iss:repo:acme/*", "role/iss:repo:acme/train"));
        assert!(!principal_match("role/iss:repo:acme/*", "role/iss:repo:acme-evil/x"));
        assert!(principal_match("role/iss:repo:acme*", "role/iss:repo:acme-evil"));
    }

    #[test]
    fn principal_inner_wildcards_are_literal() {
        assert!(!principal_match("user/a?c", "user/abc"));
        assert!(principal_match("user/a?c", "user/a?c"));
        assert!(!principal_match("user/*x", "user/ax"));
    }
}
