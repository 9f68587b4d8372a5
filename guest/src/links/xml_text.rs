//! Decoding and escaping of XML character data and attribute values.

use std::borrow::Cow;

/// Decodes the predefined entity references (`&amp;`, `&lt;`, `&gt;`,
/// `&quot;`, `&apos;`) and character references (`&#38;`, `&#x26;`) in
/// `raw`. Returns `None` for invalid UTF-8, an unterminated reference or an
/// entity that a DTD would have to define, so that such a value is never
/// rewritten.
pub fn decode_entities(raw: &[u8]) -> Option<Cow<'_, str>> {
    let text = std::str::from_utf8(raw).ok()?;
    if !text.contains('&') {
        return Some(Cow::Borrowed(text));
    }

    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(ampersand) = rest.find('&') {
        decoded.push_str(&rest[..ampersand]);
        let (name, after) = rest[ampersand + 1..].split_once(';')?;
        decoded.push(decode_reference(name)?);
        rest = after;
    }
    decoded.push_str(rest);
    Some(Cow::Owned(decoded))
}

/// Appends `value` with `&`, `<` and `"` written as entity references, and
/// `'` too when the value is delimited by `'`.
pub fn escape_value(value: &str, quote: u8, out: &mut Vec<u8>) {
    for character in value.chars() {
        match character {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\'' if quote == b'\'' => out.extend_from_slice(b"&apos;"),
            // A control character came from a character reference. Written
            // raw, a line end would change the value (XML normalises it to
            // a space) or end a multipart part early, so it stays a
            // reference.
            control if control.is_ascii_control() => {
                out.extend_from_slice(format!("&#{};", u32::from(control)).as_bytes());
            }
            other => {
                let mut buffer = [0; 4];
                out.extend_from_slice(other.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
}

fn decode_reference(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code_point = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code_point)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(raw: &str) -> Option<String> {
        decode_entities(raw.as_bytes()).map(Cow::into_owned)
    }

    #[test]
    fn decode_predefined_entities() {
        assert_eq!(
            decoded("a&amp;b&lt;c&gt;d&quot;e&apos;f").as_deref(),
            Some("a&b<c>d\"e'f")
        );
    }

    #[test]
    fn decode_character_references() {
        assert_eq!(decoded("&#36;top&#x3D;2&#xE9;").as_deref(), Some("$top=2é"));
    }

    #[test]
    fn decode_rejects_unknown_references() {
        for raw in ["&nbsp;", "a&b", "&#xZZ;", "&#;", "&#x110000;"] {
            assert_eq!(decoded(raw), None, "{raw:?} decoded");
        }
        assert_eq!(decode_entities(&[0xff]), None);
    }

    #[test]
    fn escape_for_double_quotes() {
        let mut out = Vec::new();
        escape_value("a&b<c>d\"e'f", b'"', &mut out);
        assert_eq!(out, b"a&amp;b&lt;c>d&quot;e'f");
    }

    #[test]
    fn escape_for_single_quotes() {
        let mut out = Vec::new();
        escape_value("Items('1')", b'\'', &mut out);
        assert_eq!(out, b"Items(&apos;1&apos;)");
    }

    #[test]
    fn escape_keeps_control_characters_as_references() {
        let mut out = Vec::new();
        escape_value("x\n--b--\r\t", b'"', &mut out);
        assert_eq!(out, b"x&#10;--b--&#13;&#9;");
    }
}
