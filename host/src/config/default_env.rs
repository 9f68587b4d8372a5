//! `default-env.json`: environment variables as one JSON object, the
//! convention of `@sap/xsenv` for running Cloud Foundry apps locally.
//!
//! String values are taken as they are. Objects and arrays, such as
//! `VCAP_SERVICES` and `destinations`, are turned back into JSON text, which
//! is how the same variables look in a real environment.

use std::collections::HashMap;

/// Parses the file's text into variables, or returns a message that names
/// the problem and its position.
pub fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| super::describe_json_error(&error))?;
    let serde_json::Value::Object(object) = value else {
        return Err("expected a JSON object of variable names to values".to_owned());
    };

    let mut vars = HashMap::with_capacity(object.len());
    for (name, value) in object {
        let text = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        vars.insert(name, text);
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_become_json_text() {
        let vars = parse(r#"{"PORT": 4004, "VCAP_SERVICES": {"destination": []}, "A": "b"}"#)
            .unwrap_or_default();
        assert_eq!(vars["PORT"], "4004");
        assert_eq!(vars["VCAP_SERVICES"], r#"{"destination":[]}"#);
        assert_eq!(vars["A"], "b");
    }

    #[test]
    fn errors_give_position() {
        let error = parse("{\n  \"PORT\": ,\n}").err().unwrap_or_default();
        assert!(error.contains("line 2"), "{error}");
        assert_eq!(
            parse("[]").err().unwrap_or_default(),
            "expected a JSON object of variable names to values"
        );
    }
}
