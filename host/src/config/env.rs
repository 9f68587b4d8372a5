//! Environment variables, read through a small interface so that tests pass
//! a map instead of changing the process environment.

use std::collections::HashMap;

/// A source of environment variables.
pub trait Env {
    /// Returns the value of `name`, or `None` when it is unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
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
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
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
    pub fn var_with_source(&self, name: &str) -> Option<(String, &str)> {
        if let Some(value) = self.primary.var(name) {
            return Some((value, "the environment"));
        }
        self.layers.iter().find_map(|layer| {
            layer
                .vars
                .get(name)
                .map(|value| (value.clone(), layer.source.as_str()))
        })
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
    fn var(&self, name: &str) -> Option<String> {
        self.var_with_source(name).map(|(value, _)| value)
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

        assert_eq!(env.var("PORT").as_deref(), Some("8080"));
        assert_eq!(
            env.var_with_source("CLIENT_ID"),
            Some(("from-dotenv".to_owned(), ".env"))
        );
        assert_eq!(env.var("destinations").as_deref(), Some("[]"));
        assert_eq!(env.var("MISSING"), None);
    }
}
