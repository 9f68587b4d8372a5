//! Decoding and escaping of JSON string contents (RFC 8259, section 7).

use std::borrow::Cow;

/// Decodes the raw bytes between the quotes of a JSON string. Returns
/// `None` for invalid escapes, unpaired surrogates, raw control characters
/// or invalid UTF-8, so that such a string is never rewritten.
pub fn decode_string(raw: &[u8]) -> Option<Cow<'_, str>> {
    if !raw.contains(&b'\\') {
        return decode_unescaped(raw).map(Cow::Borrowed);
    }

    let mut decoded = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(backslash) = rest.iter().position(|&b| b == b'\\') {
        decoded.push_str(decode_unescaped(&rest[..backslash])?);
        let (character, after) = decode_escape(&rest[backslash + 1..])?;
        decoded.push(character);
        rest = after;
    }
    decoded.push_str(decode_unescaped(rest)?);
    Some(Cow::Owned(decoded))
}

/// Appends `value` as the contents of a JSON string. Only `"`, `\` and
/// control characters are escaped, so `/` and non-ASCII characters stay
/// as they are.
pub fn escape_string(value: &str, out: &mut Vec<u8>) {
    for character in value.chars() {
        match character {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            control if u32::from(control) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(control)).as_bytes());
            }
            other => {
                let mut buffer = [0; 4];
                out.extend_from_slice(other.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
}

fn decode_unescaped(raw: &[u8]) -> Option<&str> {
    if raw.iter().any(|&b| b < 0x20) {
        return None;
    }
    std::str::from_utf8(raw).ok()
}

/// Decodes the escape sequence that follows a backslash and returns the
/// character and the bytes after the sequence.
fn decode_escape(after_backslash: &[u8]) -> Option<(char, &[u8])> {
    let (&letter, rest) = after_backslash.split_first()?;
    let character = match letter {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return decode_unicode_escape(rest),
        _ => return None,
    };
    Some((character, rest))
}

/// Decodes the four hex digits after `\u`, and the low surrogate escape
/// that must follow a high surrogate.
fn decode_unicode_escape(digits: &[u8]) -> Option<(char, &[u8])> {
    let (unit, rest) = read_hex4(digits)?;
    match unit {
        0xD800..=0xDBFF => {
            let low_digits = rest.strip_prefix(b"\\u")?;
            let (low, rest) = read_hex4(low_digits)?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return None;
            }
            let code_point = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
            Some((char::from_u32(code_point)?, rest))
        }
        0xDC00..=0xDFFF => None,
        _ => Some((char::from_u32(unit)?, rest)),
    }
}

fn read_hex4(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let digits = bytes.get(..4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let value = u32::from_str_radix(text, 16).ok()?;
    Some((value, &bytes[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(raw: &str) -> Option<String> {
        decode_string(raw.as_bytes()).map(Cow::into_owned)
    }

    #[test]
    fn decode_plain_string_borrows() {
        assert!(matches!(decode_string(b"abc"), Some(Cow::Borrowed("abc"))));
    }

    #[test]
    fn decode_simple_escapes() {
        assert_eq!(
            decoded(r#"a\/b\"c\\d\b\f\n\r\t"#).as_deref(),
            Some("a/b\"c\\d\u{8}\u{c}\n\r\t")
        );
    }

    #[test]
    fn decode_unicode_escapes() {
        assert_eq!(decoded(r"\u0041\u00e9").as_deref(), Some("Aé"));
        assert_eq!(decoded(r"\ud83d\ude00").as_deref(), Some("😀"));
    }

    #[test]
    fn decode_rejects_invalid_input() {
        for raw in [
            r"\x",
            r"\u12",
            r"\u12g4",
            r"\ud83d",
            r"\ude00",
            r"\ud83d\u0041",
            "a\\",
            "a\nb",
        ] {
            assert_eq!(decoded(raw), None, "{raw:?} decoded");
        }
        assert_eq!(decode_string(&[0xff, 0x41]), None);
    }

    #[test]
    fn escape_only_required_characters() {
        let mut out = Vec::new();
        escape_string("a/\"b\\c\n\u{1}é😀", &mut out);
        assert_eq!(out, "a/\\\"b\\\\c\\n\\u0001é😀".as_bytes());
    }

    #[test]
    fn escape_round_trips() {
        let value = "x\u{7f}\u{1f}\"\\/\u{2028}";
        let mut out = Vec::new();
        escape_string(value, &mut out);
        assert_eq!(decode_string(&out).as_deref(), Some(value));
    }
}
