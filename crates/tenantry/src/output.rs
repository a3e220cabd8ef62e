//! Human and JSON output.

use serde_json::Value;

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

/// The items of a JSON array, comma-separated.
pub fn list_of(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            x.as_str()
                .map(String::from)
                .unwrap_or_else(|| x.to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints `key: value` lines for the given fields.
pub fn fields(v: &Value, keys: &[&str]) {
    let w = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    for k in keys {
        println!("{k:>w$}: {}", s(v, k));
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
