//! Environment variables, read through a small interface so that tests pass
//! a map instead of changing the process environment.
//!
//! A variable that is set to bytes that are not UTF-8 is an error, never
//! "unset": reading it as unset would start the gateway without the bindings
//! or options that the operator meant to set.

use std::collections::HashMap;
use std::env::VarError;

/// A source of environment variables.
pub trait Env {
    /// Returns the value of `name`, or `None` when it is unset.
    ///
    /// # Errors
    ///
    /// [`NotUnicode`] when the variable is set but its value is not valid
    /// UTF-8.
    fn var(&self, name: &str) -> Result<Option<String>, NotUnicode>;
}

/// A variable whose value is not valid UTF-8. The message names the
/// variable but never quotes the value, which may hold credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} is set but its value is not valid UTF-8: set it to UTF-8 text or unset it")]
pub struct NotUnicode {
    pub variable: String,
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Result<Option<String>, NotUnicode> {
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(NotUnicode {
                variable: name.to_owned(),
            }),
        }
    }
}

/// A fixed set of variables.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Result<Option<String>, NotUnicode> {
        Ok(self.0.get(name).cloned())
    }
}

/// Variables from several layers, where the first layer that sets a name
/// wins: the process environment first, then `.env`, then
/// `default-env.json`. A later layer fills only what is not set yet.
pub struct LayeredEnv<'a> {
    primary: &'a dyn Env,
    layers: Vec<Layer>,
}

/// One file's variables, with the file's name for messages.
struct Layer {
    vars: HashMap<String, String>,
    source: String,
}

impl<'a> LayeredEnv<'a> {
    pub fn new(primary: &'a dyn Env) -> Self {
        Self {
            primary,
            layers: Vec::new(),
        }
    }

    /// Adds a layer below the existing ones.
    pub fn push_layer(&mut self, source: impl Into<String>, vars: HashMap<String, String>) {
        self.layers.push(Layer {
            vars,
            source: source.into(),
        });
    }

    /// Returns the value of `name` and where it came from.
    ///
    /// # Errors
    ///
    /// [`NotUnicode`] when the primary source sets `name` to a value that is
    /// not UTF-8. The files below it are already text.
    pub fn var_with_source(&self, name: &str) -> Result<Option<(String, &str)>, NotUnicode> {
        if let Some(value) = self.primary.var(name)? {
            return Ok(Some((value, "the environment")));
        }
        Ok(self.layers.iter().find_map(|layer| {
            layer
                .vars
                .get(name)
                .map(|value| (value.clone(), layer.source.as_str()))
        }))
    }
}

impl std::fmt::Debug for LayeredEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values are not printed: they include credentials.
        let sources: Vec<&str> = self
            .layers
            .iter()
            .map(|layer| layer.source.as_str())
            .collect();
        f.debug_struct("LayeredEnv")
            .field("layers", &sources)
            .finish_non_exhaustive()
    }
}

impl Env for LayeredEnv<'_> {
    fn var(&self, name: &str) -> Result<Option<String>, NotUnicode> {
        Ok(self.var_with_source(name)?.map(|(value, _)| value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_layers_win() {
        let process = MapEnv::from_pairs([("PORT", "8080")]);
        let mut env = LayeredEnv::new(&process);
        env.push_layer(
            ".env",
            HashMap::from([
                ("PORT".to_owned(), "1".to_owned()),
                ("CLIENT_ID".to_owned(), "from-dotenv".to_owned()),
            ]),
        );
        env.push_layer(
            "default-env.json",
            HashMap::from([
                ("CLIENT_ID".to_owned(), "from-json".to_owned()),
                ("destinations".to_owned(), "[]".to_owned()),
            ]),
        );

        assert_eq!(env.var("PORT"), Ok(Some("8080".to_owned())));
        assert_eq!(
            env.var_with_source("CLIENT_ID"),
            Ok(Some(("from-dotenv".to_owned(), ".env")))
        );
        assert_eq!(env.var("destinations"), Ok(Some("[]".to_owned())));
        assert_eq!(env.var("MISSING"), Ok(None));
    }

    /// An environment in which every variable is set to bytes that are not
    /// UTF-8.
    struct NotUnicodeEnv;

    impl Env for NotUnicodeEnv {
        fn var(&self, name: &str) -> Result<Option<String>, NotUnicode> {
            Err(NotUnicode {
                variable: name.to_owned(),
            })
        }
    }

    #[test]
    fn not_unicode_beats_file_layers() {
        let mut env = LayeredEnv::new(&NotUnicodeEnv);
        env.push_layer(
            ".env",
            HashMap::from([("VCAP_SERVICES".to_owned(), "{}".to_owned())]),
        );

        let error = env.var("VCAP_SERVICES");

        assert_eq!(
            error,
            Err(NotUnicode {
                variable: "VCAP_SERVICES".to_owned()
            })
        );
    }

    #[test]
    fn not_unicode_message_names_variable() {
        let message = NotUnicode {
            variable: "VCAP_SERVICES".to_owned(),
        }
        .to_string();

        assert!(message.starts_with("VCAP_SERVICES "), "{message}");
        assert!(message.contains("not valid UTF-8"), "{message}");
    }
}
