//! A parser for `.env` files as SAP samples and `dotenv` tools write them.
//!
//! Each line is `NAME=VALUE`, optionally prefixed with `export `. Blank lines
//! and lines starting with `#` are ignored. A value may be wrapped in single
//! quotes (taken literally) or double quotes (where `\n`, `\"` and `\\` are
//! escapes). An unquoted value ends at ` #` and is trimmed. Errors name the
//! line but never echo a value, because values are often secrets.

use std::collections::HashMap;

/// The reason a `.env` file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DotenvError {
    #[error("line {line}: expected NAME=VALUE but found no '='")]
    MissingEquals { line: usize },
    #[error(
        "line {line}: the variable name {} contains characters other than letters, digits, '_', \
         '.' and '-', or does not start with a letter or '_'",
        if prefix.is_empty() { String::new() } else { format!("starting with '{prefix}'") }
    )]
    InvalidName {
        line: usize,
        /// The valid leading part of the name; the rest is not shown, because
        /// a line such as `SECRET: value` would put the value there.
        prefix: String,
    },
    #[error("line {line}: the quoted value of '{name}' has no closing {quote}")]
    UnterminatedQuote {
        line: usize,
        name: String,
        quote: char,
    },
    #[error("line {line}: '{name}' is set twice (first on line {first})")]
    Duplicate {
        line: usize,
        name: String,
        first: usize,
    },
}

/// Parses the text of a `.env` file into variables.
pub fn parse(text: &str) -> Result<HashMap<String, String>, DotenvError> {
    let mut vars = HashMap::new();
    let mut first_seen: HashMap<String, usize> = HashMap::new();

    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw_line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);

        let (name, raw_value) = trimmed
            .split_once('=')
            .ok_or(DotenvError::MissingEquals { line })?;
        let name = name.trim();
        if !is_valid_name(name) {
            let prefix: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                .collect();
            return Err(DotenvError::InvalidName { line, prefix });
        }
        let value = parse_value(raw_value.trim(), line, name)?;

        if let Some(first) = first_seen.insert(name.to_owned(), line) {
            return Err(DotenvError::Duplicate {
                line,
                name: name.to_owned(),
                first,
            });
        }
        vars.insert(name.to_owned(), value);
    }
    Ok(vars)
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

fn parse_value(raw: &str, line: usize, name: &str) -> Result<String, DotenvError> {
    let unterminated = |quote| DotenvError::UnterminatedQuote {
        line,
        name: name.to_owned(),
        quote,
    };

    if let Some(rest) = raw.strip_prefix('\'') {
        let end = rest.find('\'').ok_or_else(|| unterminated('\''))?;
        return Ok(rest[..end].to_owned());
    }

    if let Some(rest) = raw.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(value),
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                other => value.push(other),
            }
        }
        return Err(unterminated('"'));
    }

    let without_comment = raw.find(" #").map_or(raw, |end| &raw[..end]);
    Ok(without_comment.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_service_key_values() {
        let text = "# destination service key\n\
                    CLIENT_ID=sb-clone-123!b1|destination-xsappname!b404\n\
                    export CLIENT_SECRET='a$b=c'\n\
                    TOKEN_URL=\"https://sub.authentication.example/oauth/token\"\n\
                    \n\
                    DESTINATION_SERVICE_URI=https://destination.example # comment\n";
        let vars = parse(text).unwrap_or_default();
        assert_eq!(
            vars["CLIENT_ID"],
            "sb-clone-123!b1|destination-xsappname!b404"
        );
        assert_eq!(vars["CLIENT_SECRET"], "a$b=c");
        assert_eq!(
            vars["TOKEN_URL"],
            "https://sub.authentication.example/oauth/token"
        );
        assert_eq!(
            vars["DESTINATION_SERVICE_URI"],
            "https://destination.example"
        );
    }

    #[test]
    fn double_quotes_take_escapes_and_json() {
        let vars =
            parse(r#"destinations="[{\"name\":\"a\",\"url\":\"http://x\"}]""#).unwrap_or_default();
        assert_eq!(vars["destinations"], r#"[{"name":"a","url":"http://x"}]"#);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("A=1\nNOEQUALS\n"),
            Err(DotenvError::MissingEquals { line: 2 })
        );
        assert_eq!(
            parse("A=1\n9X=2"),
            Err(DotenvError::InvalidName {
                line: 2,
                prefix: "9X".to_owned()
            })
        );
        assert_eq!(
            parse("CLIENT_SECRET='abc"),
            Err(DotenvError::UnterminatedQuote {
                line: 1,
                name: "CLIENT_SECRET".to_owned(),
                quote: '\''
            })
        );
        assert_eq!(
            parse("A=1\nA=2"),
            Err(DotenvError::Duplicate {
                line: 2,
                name: "A".to_owned(),
                first: 1
            })
        );
    }

    #[test]
    fn colon_instead_of_equals_hides_value() {
        let error = parse("CLIENT_SECRET: abc123==")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!error.contains("abc123"), "{error}");
        assert!(error.contains("CLIENT_SECRET"), "{error}");
    }

    #[test]
    fn errors_never_contain_values() {
        let error = parse("CLIENT_SECRET=\"s3cr3t")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!error.contains("s3cr3t"), "{error}");
        assert!(error.contains("CLIENT_SECRET"), "{error}");
    }
}
