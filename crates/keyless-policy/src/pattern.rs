//! Wildcard matching for actions, resources and principals.

/// Matches `value` against an IAM-style glob: `*` matches any run of characters
/// (including none and including `/`), `?` matches exactly one character, and
/// every other character matches itself. There is no escape syntax, as in IAM.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let value: Vec<char> = value.chars().collect();

    // Iterative matcher with one backtrack point: linear in practice and never
    // exponential, whatever the pattern.
    let (mut p, mut v) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, v));
                p += 1;
            }
            Some('?') => {
                p += 1;
                v += 1;
            }
            Some(c) if *c == value[v] => {
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
    pattern[p..].iter().all(|c| *c == '*')
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
