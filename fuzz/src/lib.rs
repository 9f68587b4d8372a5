//! Helpers shared by the fuzz targets: planting a marker string in the
//! secret fields of a configuration and checking that no message or debug
//! output repeats it.

use serde_json::Value;

/// The value planted in secret fields. It is plain ASCII letters and digits,
/// so JSON and `.env` write it without escapes.
pub const SECRET_MARKER: &str = "FuzzSecretMarker7b1e";

/// Credential fields of a `VCAP_SERVICES` binding that hold secrets:
/// `clientsecret`, the X.509 private `key`, and `password`, which some
/// user-provided services use.
const BINDING_SECRET_FIELDS: &[&str] = &["clientsecret", "key", "password"];

/// Fields of a `destinations` entry that hold secrets, in both the
/// approuter's and the Destination service's spelling.
const DESTINATION_SECRET_FIELDS: &[&str] =
    &["password", "Password", "clientSecret", "KeyStorePassword"];

/// Returns whether `input` could produce [`SECRET_MARKER`] anywhere once
/// decoded, outside the fields the target plants it in.
///
/// The marker has no characters that JSON or `.env` escape, so it can only
/// arise from text that contains it once backslashes are removed (a `.env`
/// double-quoted value drops the backslash of `\X`), or from a JSON `\u`
/// escape. Inputs with either are still parsed, but the targets skip the
/// marker check for them.
pub fn may_contain_marker(input: &str) -> bool {
    input.contains("\\u") || input.replace('\\', "").contains(SECRET_MARKER)
}

/// Replaces every string in a secret field of the bindings in a
/// `VCAP_SERVICES` value with [`SECRET_MARKER`]. Values of other shapes are
/// left alone, so the parser still reads them.
pub fn plant_in_vcap_services(vcap: &mut Value) {
    let Value::Object(services) = vcap else {
        return;
    };
    for bindings in services.values_mut() {
        let Value::Array(bindings) = bindings else {
            continue;
        };
        for binding in bindings {
            if let Some(credentials) = binding.get_mut("credentials") {
                plant_in_fields(credentials, BINDING_SECRET_FIELDS);
            }
        }
    }
}

/// Replaces every string in a secret field of the entries of a
/// `destinations` value with [`SECRET_MARKER`].
pub fn plant_in_destinations(destinations: &mut Value) {
    let Value::Array(entries) = destinations else {
        return;
    };
    for entry in entries {
        plant_in_fields(entry, DESTINATION_SECRET_FIELDS);
    }
}

/// Plants [`SECRET_MARKER`] in a `default-env.json` object: in
/// `CLIENT_SECRET`, and in the secrets inside `VCAP_SERVICES` and
/// `destinations`, whether those are JSON values or JSON text in a string.
pub fn plant_in_default_env(default_env: &mut Value) {
    plant_in_fields(default_env, &["CLIENT_SECRET"]);
    let Value::Object(variables) = default_env else {
        return;
    };
    if let Some(vcap) = variables.get_mut("VCAP_SERVICES") {
        plant_in_json_or_text(vcap, plant_in_vcap_services);
    }
    if let Some(destinations) = variables.get_mut("destinations") {
        plant_in_json_or_text(destinations, plant_in_destinations);
    }
}

/// Applies `plant` to `value`, or to the JSON text that `value` contains as
/// a string, writing that text back.
fn plant_in_json_or_text(value: &mut Value, plant: fn(&mut Value)) {
    if let Value::String(text) = value {
        if let Ok(mut inner) = serde_json::from_str::<Value>(text) {
            plant(&mut inner);
            *text = inner.to_string();
        }
    } else {
        plant(value);
    }
}

fn plant_in_fields(object: &mut Value, fields: &[&str]) {
    let Value::Object(object) = object else {
        return;
    };
    for field in fields {
        if let Some(value @ Value::String(_)) = object.get_mut(*field) {
            *value = Value::String(SECRET_MARKER.to_owned());
        }
    }
}

/// Panics when `output` contains [`SECRET_MARKER`]. `output_name` names the
/// output in the panic message.
pub fn assert_no_marker(output: &str, output_name: &str) {
    assert!(
        !output.contains(SECRET_MARKER),
        "{output_name} contains the value of a secret field: {output}"
    );
}
