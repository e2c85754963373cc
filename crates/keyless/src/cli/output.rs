//! Printing results: aligned text tables for people, the server's JSON for scripts.

use serde_json::Value;

/// Output format of the admin subcommands.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned, human-readable text.
    Text,
    /// The JSON body returned by the server, pretty-printed.
    Json,
}

/// Prints a JSON value, pretty-printed, on stdout.
pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // A `Value` always serializes; print it compactly if it ever does not.
        Err(_) => println!("{value}"),
    }
}

/// Returns a string field of a JSON object, or `""` when it is absent or not a
/// string.
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Formats an optional RFC 3339 expiry, where `null` means the key never expires.
pub fn expiry(value: &Value) -> String {
    match value.get("expiry").and_then(Value::as_str) {
        Some(expiry) => expiry.to_owned(),
        None => "never".into(),
    }
}

/// Renders rows under a header as columns separated by two spaces. The last
/// column is not padded, so lines carry no trailing spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }

    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < row.len() {
                let width = widths.get(index).copied().unwrap_or(0);
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count())));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints `label: value` lines with the values aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(label, _)| label.len() + 1).max().unwrap_or(0);
    for (label, value) in fields {
        println!("{:<width$} {value}", format!("{label}:"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let rendered = table(&["ID", "NAME"], &[vec!["a".into(), "first".into()], vec!["long-id".into(), "b".into()]]);
        assert_eq!(rendered, "ID       NAME\na        first\nlong-id  b\n");
    }

    #[test]
    fn table_has_no_trailing_spaces() {
        let rendered = table(&["A", "B"], &[vec!["x".into(), String::new()]]);
        assert!(rendered.lines().all(|line| !line.ends_with(' ')), "{rendered:?}");
    }

    #[test]
    fn null_expiry_reads_never() {
        assert_eq!(expiry(&serde_json::json!({"expiry": null})), "never");
        assert_eq!(expiry(&serde_json::json!({"expiry": "2030-01-01T00:00:00Z"})), "2030-01-01T00:00:00Z");
    }
}
