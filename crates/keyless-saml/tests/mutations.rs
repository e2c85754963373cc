//! Random edits of a valid signed response: verification must never panic,
//! and any edited response it still accepts must read exactly what the
//! original read, because everything in `VerifiedAssertion` is signed.

mod common;

use common::*;
use keyless_saml::{VerifiedAssertion, verify};
use proptest::prelude::*;
use std::sync::OnceLock;

/// Returns the response signed as `signing` and what keyless reads from it.
fn original(signing: &str) -> &'static (String, VerifiedAssertion) {
    static BOTH: OnceLock<(String, VerifiedAssertion)> = OnceLock::new();
    static ASSERTION: OnceLock<(String, VerifiedAssertion)> = OnceLock::new();
    static RESPONSE: OnceLock<(String, VerifiedAssertion)> = OnceLock::new();
    let (cell, layout) = match signing {
        "both" => (&BOTH, Signing::both()),
        "assertion" => (&ASSERTION, Signing::assertion_only()),
        _ => (&RESPONSE, Signing::response_only()),
    };
    cell.get_or_init(|| {
        let xml = response_xml(&ResponseSpec::default(), &layout);
        let verified = verify(&encode(&xml), &settings(), NOW).expect("the original is valid");
        (xml, verified)
    })
}

/// One edit of the document text.
#[derive(Debug, Clone)]
enum Edit {
    /// Replaces the byte at a position (scaled to the length) with markup.
    Replace(f64, &'static str),
    /// Deletes a range.
    Delete(f64, usize),
    /// Copies a range to another position, the raw material of signature wrapping.
    Copy(f64, usize, f64),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let markup = prop::sample::select(vec![
        "<",
        ">",
        "\"",
        "'",
        "&",
        "/",
        " ",
        "x",
        "<!---->",
        "&amp;",
        "<!DOCTYPE a>",
        "ID=\"_assertion-1\" ",
    ]);
    prop_oneof![
        (0.0..1.0, markup).prop_map(|(at, text)| Edit::Replace(at, text)),
        (0.0..1.0, 1usize..200).prop_map(|(at, length)| Edit::Delete(at, length)),
        (0.0..1.0, 1usize..3000, 0.0..1.0)
            .prop_map(|(from, length, to)| Edit::Copy(from, length, to)),
    ]
}

/// Applies `edit` at character boundaries so the result stays UTF-8.
fn apply(xml: &str, edit: &Edit) -> String {
    let boundary = |fraction: f64| {
        let mut index = ((xml.len() as f64) * fraction) as usize;
        while !xml.is_char_boundary(index) {
            index -= 1;
        }
        index
    };
    let end_of = |start: usize, length: usize| {
        let mut end = (start + length).min(xml.len());
        while !xml.is_char_boundary(end) {
            end -= 1;
        }
        end
    };
    match edit {
        Edit::Replace(at, text) => {
            let start = boundary(*at);
            let end = end_of(start, 1);
            format!("{}{}{}", &xml[..start], text, &xml[end..])
        }
        Edit::Delete(at, length) => {
            let start = boundary(*at);
            let end = end_of(start, *length);
            format!("{}{}", &xml[..start], &xml[end..])
        }
        Edit::Copy(from, length, to) => {
            let start = boundary(*from);
            let end = end_of(start, *length);
            let insert_at = boundary(*to);
            format!(
                "{}{}{}",
                &xml[..insert_at],
                &xml[start..end],
                &xml[insert_at..]
            )
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn edited_response_reads_only_signed_content(
        signing in prop::sample::select(vec!["both", "assertion", "response"]),
        edits in prop::collection::vec(edit_strategy(), 1..3),
    ) {
        let (xml, expected) = original(signing);
        let mut edited = xml.clone();
        for edit in &edits {
            edited = apply(&edited, edit);
        }
        if let Ok(verified) = verify(&encode(&edited), &settings(), NOW) {
            prop_assert_eq!(&verified, expected);
        }
    }
}
