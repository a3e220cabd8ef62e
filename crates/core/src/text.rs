//! The one rule for text arriving at the edge: **no NUL (U+0000) anywhere** in a
//! request's path, query or JSON body (and in a published manifest).
//!
//! PostgreSQL cannot store NUL in `text` or `jsonb`, SQLite can: refusing it where a
//! request enters makes both stores behave the same (every other character
//! round-trips identically), and turns what was a storage failure into a clear `400`.
//! Names and identifiers have their own stricter validators (`manifest::validate_*`).

/// What the refusal says.
pub const NUL_REFUSED: &str =
    "text may not contain the NUL character (U+0000, `\\u0000` or `%00`); remove it";

/// Whether JSON text holds a NUL inside a string (`\u0000`; a raw NUL byte is not
/// valid JSON and fails parsing anyway). Linear, no allocation: escapes are only
/// legal inside strings, so each `\` starts an escape whose next byte is its kind.
pub fn json_has_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            0 => return true,
            b'\\' => {
                if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000") {
                    return true;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    false
}

/// Whether a raw (still percent-encoded) URI path or query holds a NUL.
pub fn uri_has_nul(raw: &str) -> bool {
    raw.contains("%00") || raw.contains('\0')
}

/// Checks a one-line free text (a name, a ticket, a reason): 1 to `max` characters,
/// not only spaces, no control characters. `what` names it in the refusal.
pub fn check_line(what: &str, s: &str, max: usize) -> crate::Result<()> {
    if s.trim().is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(crate::Error::invalid(format!(
            "{what} must be 1-{max} characters without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_nul_anywhere_in_json_is_found() {
        assert!(json_has_nul(br#"{"a":"x\u0000y"}"#));
        assert!(json_has_nul(br#"{"k\u0000":1}"#));
        assert!(json_has_nul(br#"["\\\u0000"]"#));
        assert!(json_has_nul(b"\"\0\""));
    }

    #[test]
    fn text_that_only_looks_like_a_nul_escape_is_kept() {
        // An escaped backslash followed by the letters u0000.
        assert!(!json_has_nul(br#"{"a":"\\u0000"}"#));
        assert!(!json_has_nul(br#"{"a":"\u0001 \u00e9"}"#));
        assert!(!json_has_nul(br#"{"a":"trailing\"#));
        assert!(!uri_has_nul("/v1/plugins?q=%2500"));
        assert!(uri_has_nul("/v1/installs/x/secrets/%00"));
    }
}
