//! Human and JSON output.

use serde::Serialize;
use serde_json::Value;

use crate::client::Reply;

/// Reads a value a person must not see echoed (an API key, a secret): from a hidden
/// prompt showing `prompt` when standard input is a terminal, else all of standard
/// input less one trailing newline (`\n` or `\r\n`). `what` names it in errors.
pub fn read_hidden(prompt: &str, what: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    use std::io::{IsTerminal, Read};
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .with_context(|| format!("reading {what} from the terminal"));
    }
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .with_context(|| format!("reading {what} from standard input"))?;
    let trimmed = value.strip_suffix('\n').unwrap_or(&value);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string())
}

/// Prints `value` as JSON with `--json`, else through `human`.
pub fn print(json: bool, value: &Value, human: impl FnOnce(&Value)) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        human(value);
    }
}

/// Prints a server's answer: its JSON as sent with `--json`, else through `human`
/// from the answer read into its API type.
pub fn show<T>(json: bool, reply: &Reply<T>, human: impl FnOnce(&T)) {
    print(json, &reply.json, |_| human(&reply.body));
}

/// Prints rows of columns aligned, with a header.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for r in rows {
        line(r);
    }
}

/// A string field, or "-".
pub fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A value as a table cell or field: what [`s`] shows for its JSON (a string as
/// is, `null` as "-", anything else as JSON), so typed values print exactly as the
/// server's JSON for them.
pub fn cell(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(Value::Null) => "-".into(),
        Ok(other) => other.to_string(),
        Err(_) => "-".into(),
    }
}

/// A time as the API writes it (RFC 3339), for a table cell or field.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "-".into())
}

/// An optional time ([`rfc3339`]), or "-".
pub fn rfc3339_opt(t: Option<time::OffsetDateTime>) -> String {
    t.map(rfc3339).unwrap_or_else(|| "-".into())
}

/// A value as compact JSON (how a JSON object or list is shown inline).
pub fn compact(v: &impl Serialize) -> String {
    serde_json::to_value(v).unwrap_or(Value::Null).to_string()
}

/// Items, each shown as [`cell`], comma-separated.
pub fn joined<T: Serialize>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|x| cell(&x))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints `key: value` lines, the keys right-aligned, for values already shown
/// (see [`cell`]).
pub fn pairs(items: &[(&str, String)]) {
    let w = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in items {
        println!("{k:>w$}: {v}");
    }
}

/// Whether to colour what goes to `stream`: only on a terminal, and never when
/// `NO_COLOR` is set (to anything but the empty string, as no-color.org says).
pub fn colour(stream: &impl std::io::IsTerminal) -> bool {
    colour_for(
        stream.is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour_for(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour_for;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour_for(true, None));
        assert!(!colour_for(false, None));
        assert!(!colour_for(true, Some("1".as_ref())));
        assert!(colour_for(true, Some("".as_ref())));
    }
}
