//! The command-line options, and the `BTP_GATEWAY_*` variables that set
//! them when their flag is not given.
//!
//! A flag wins over its variable, and the variable wins over the default.
//! clap parses the flags. The variables are read here instead of by clap,
//! because clap's message for an invalid value names only the flag, which
//! misleads an operator who set the variable. A message from here names the
//! variable and the flag, quotes the value and states what is expected. These
//! options never hold credentials, so quoting the value is safe; it is
//! shortened all the same.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::env::{Env, NotUnicode};
use crate::cache::CacheLimits;
use crate::engine::Limits;
use crate::logging::LogFormat;

/// The default header read timeout. It is above the 90 seconds for which
/// the Cloud Foundry router keeps an idle connection to an app, because the
/// timeout also ends idle keep-alive connections.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 120;

/// The maximum length, in characters, of an invalid value that a message
/// quotes whole.
const QUOTED_VALUE_MAX_CHARS: usize = 64;

/// Runs sandboxed OData gateway components on SAP BTP Cloud Foundry.
#[derive(Debug, Parser)]
#[command(name = "btp-gateway", version)]
pub struct Args {
    /// Test a component file instead of serving
    #[command(subcommand)]
    pub command: Option<crate::cli::Command>,

    /// The component to serve (a .wasm file); the bundled default gateway
    /// component when not set.
    #[arg(long, env = "BTP_GATEWAY_COMPONENT")]
    pub component: Option<PathBuf>,

    /// The folder with the local configuration files `.env` and
    /// `default-env.json`.
    #[arg(long, default_value = ".")]
    pub config_dir: PathBuf,

    /// Log line format [env: BTP_GATEWAY_LOG_FORMAT] [default: auto]
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Threads that serve requests [env: BTP_GATEWAY_WORKER_THREADS]
    /// [default: one per CPU the container may use]
    #[arg(long)]
    pub worker_threads: Option<usize>,

    /// Guest instances that may run at once; further requests get 503
    /// [env: BTP_GATEWAY_MAX_INSTANCES] [default: 64]
    #[arg(long)]
    pub max_instances: Option<u32>,

    /// Seconds one request may take, response body included; longer ones
    /// end with 504 [env: BTP_GATEWAY_REQUEST_TIMEOUT_SECS] [default: 120]
    #[arg(long)]
    pub request_timeout_secs: Option<u64>,

    /// Outgoing requests one guest instance may send
    /// [env: BTP_GATEWAY_MAX_OUTBOUND_REQUESTS] [default: 16]
    #[arg(long)]
    pub max_outbound_requests: Option<u32>,

    /// The largest request body a client may send, in MiB
    /// [env: BTP_GATEWAY_MAX_REQUEST_BODY_MIB] [default: 16]
    #[arg(long)]
    pub max_request_body_mib: Option<u64>,

    /// The largest response body one request may send to its client, in
    /// MiB; a longer body ends with an error
    /// [env: BTP_GATEWAY_MAX_RESPONSE_BODY_MIB] [default: 1024]
    #[arg(long)]
    pub max_response_body_mib: Option<u64>,

    /// Maximum memory of one guest instance, in MiB
    /// [env: BTP_GATEWAY_MAX_MEMORY_MIB] [default: 128]
    #[arg(long)]
    pub max_memory_mib: Option<u32>,

    /// Memory of the cache that components share across requests (CSRF
    /// tokens, `$metadata`), in MiB; the least recently used entries are
    /// evicted beyond it [env: BTP_GATEWAY_CACHE_MAX_MIB] [default: 64]
    #[arg(long)]
    pub cache_max_mib: Option<u32>,

    /// Seconds a client may take to send a request's headers, and the
    /// maximum idle time of a keep-alive connection. Keep it above 90, the
    /// idle time of the Cloud Foundry router's connections
    /// [env: BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS] [default: 120]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: Option<u64>,

    /// The largest component file accepted from any source, in MiB
    /// [env: BTP_GATEWAY_COMPONENT_MAX_MIB] [default: 32]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub component_max_mib: Option<u64>,

    /// Seconds between two checks of a followed OCI tag
    /// [env: BTP_GATEWAY_REGISTRY_POLL_SECS] [default: 30]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub registry_poll_secs: Option<u64>,

    /// The folder for compiled component code, or `off`
    /// [env: BTP_GATEWAY_COMPILED_CACHE_DIR]
    /// [default: $HOME/.cache/btp-gateway/compiled]
    #[arg(long)]
    pub compiled_cache_dir: Option<PathBuf>,
}

/// The default of `--component-max-mib`.
pub const DEFAULT_COMPONENT_MAX_MIB: u64 = 32;

/// The default of `--registry-poll-secs`.
pub const DEFAULT_REGISTRY_POLL_SECS: u64 = 30;

/// The options after flags, variables and defaults are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub component: Option<PathBuf>,
    pub config_dir: PathBuf,
    pub log_format: LogFormat,
    /// `None` when neither the flag nor the variable is set.
    pub worker_threads: Option<usize>,
    pub max_instances: u32,
    pub request_timeout_secs: u64,
    pub max_outbound_requests: u32,
    pub max_request_body_mib: u64,
    pub max_response_body_mib: u64,
    pub max_memory_mib: u32,
    pub cache_max_mib: u32,
    /// At least 1.
    pub header_read_timeout_secs: u64,
    /// At least 1.
    pub component_max_mib: u64,
    /// At least 1.
    pub registry_poll_secs: u64,
    /// `None` when the cache is off or `HOME` is not set.
    pub compiled_cache_dir: Option<PathBuf>,
}

/// An option variable whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error(
        "{variable}: invalid value '{value}': expected {expected}; correct or unset \
         {variable}, or pass {flag}, which overrides it"
    )]
    Invalid {
        variable: &'static str,
        flag: &'static str,
        /// The value, escaped and shortened for the message.
        value: String,
        expected: &'static str,
    },
    #[error(transparent)]
    NotUnicode(#[from] NotUnicode),
}

/// An option's flag and variable, what a valid value looks like, and how
/// the variable's text is parsed.
struct OptionSpec<T> {
    flag: &'static str,
    variable: &'static str,
    expected: &'static str,
    parse: fn(&str) -> Option<T>,
}

const LOG_FORMAT: OptionSpec<LogFormat> = OptionSpec {
    flag: "--log-format",
    variable: "BTP_GATEWAY_LOG_FORMAT",
    expected: "one of auto, json, text",
    parse: |text| LogFormat::from_str(text, false).ok(),
};

const WORKER_THREADS: OptionSpec<usize> = OptionSpec {
    flag: "--worker-threads",
    variable: "BTP_GATEWAY_WORKER_THREADS",
    expected: "a whole number of threads",
    parse: parse_number,
};

const MAX_INSTANCES: OptionSpec<u32> = OptionSpec {
    flag: "--max-instances",
    variable: "BTP_GATEWAY_MAX_INSTANCES",
    expected: "a whole number of instances",
    parse: parse_number,
};

const REQUEST_TIMEOUT_SECS: OptionSpec<u64> = OptionSpec {
    flag: "--request-timeout-secs",
    variable: "BTP_GATEWAY_REQUEST_TIMEOUT_SECS",
    expected: "a whole number of seconds",
    parse: parse_number,
};

const MAX_OUTBOUND_REQUESTS: OptionSpec<u32> = OptionSpec {
    flag: "--max-outbound-requests",
    variable: "BTP_GATEWAY_MAX_OUTBOUND_REQUESTS",
    expected: "a whole number of requests",
    parse: parse_number,
};

const MAX_REQUEST_BODY_MIB: OptionSpec<u64> = OptionSpec {
    flag: "--max-request-body-mib",
    variable: "BTP_GATEWAY_MAX_REQUEST_BODY_MIB",
    expected: "a whole number of MiB",
    parse: parse_number,
};

const MAX_RESPONSE_BODY_MIB: OptionSpec<u64> = OptionSpec {
    flag: "--max-response-body-mib",
    variable: "BTP_GATEWAY_MAX_RESPONSE_BODY_MIB",
    expected: "a whole number of MiB",
    parse: parse_number,
};

const MAX_MEMORY_MIB: OptionSpec<u32> = OptionSpec {
    flag: "--max-memory-mib",
    variable: "BTP_GATEWAY_MAX_MEMORY_MIB",
    expected: "a whole number of MiB",
    parse: parse_number,
};

const CACHE_MAX_MIB: OptionSpec<u32> = OptionSpec {
    flag: "--cache-max-mib",
    variable: "BTP_GATEWAY_CACHE_MAX_MIB",
    expected: "a whole number of MiB",
    parse: parse_number,
};

const HEADER_READ_TIMEOUT_SECS: OptionSpec<u64> = OptionSpec {
    flag: "--header-read-timeout-secs",
    variable: "BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS",
    expected: "a whole number of seconds, 1 or more",
    parse: |text| parse_number(text).filter(|seconds| *seconds >= 1),
};

const COMPONENT_MAX_MIB: OptionSpec<u64> = OptionSpec {
    flag: "--component-max-mib",
    variable: "BTP_GATEWAY_COMPONENT_MAX_MIB",
    expected: "a whole number of MiB, 1 or more",
    parse: |text| parse_number(text).filter(|mib| *mib >= 1),
};

const REGISTRY_POLL_SECS: OptionSpec<u64> = OptionSpec {
    flag: "--registry-poll-secs",
    variable: "BTP_GATEWAY_REGISTRY_POLL_SECS",
    expected: "a whole number of seconds, 1 or more",
    parse: |text| parse_number(text).filter(|seconds| *seconds >= 1),
};

const COMPILED_CACHE_DIR: OptionSpec<PathBuf> = OptionSpec {
    flag: "--compiled-cache-dir",
    variable: "BTP_GATEWAY_COMPILED_CACHE_DIR",
    expected: "a folder path, or off",
    parse: |text| (!text.is_empty()).then(|| PathBuf::from(text)),
};

impl Args {
    /// Combines the flags with their variables from `env` and the
    /// defaults.
    ///
    /// # Errors
    ///
    /// [`OptionError`] for the first variable, of those whose flag is not
    /// given, that is set to an invalid value.
    pub fn resolve(self, env: &dyn Env) -> Result<Options, OptionError> {
        let limits = Limits::default();
        let cache_max_mib = (CacheLimits::default().max_bytes >> 20) as u32;
        Ok(Options {
            component: self.component,
            config_dir: self.config_dir,
            log_format: LOG_FORMAT
                .resolve(self.log_format, env)?
                .unwrap_or(LogFormat::Auto),
            worker_threads: WORKER_THREADS.resolve(self.worker_threads, env)?,
            max_instances: MAX_INSTANCES
                .resolve(self.max_instances, env)?
                .unwrap_or(limits.max_instances),
            request_timeout_secs: REQUEST_TIMEOUT_SECS
                .resolve(self.request_timeout_secs, env)?
                .unwrap_or(limits.request_timeout.as_secs()),
            max_outbound_requests: MAX_OUTBOUND_REQUESTS
                .resolve(self.max_outbound_requests, env)?
                .unwrap_or(limits.max_outbound_requests),
            max_request_body_mib: MAX_REQUEST_BODY_MIB
                .resolve(self.max_request_body_mib, env)?
                .unwrap_or(limits.max_request_body_bytes >> 20),
            max_response_body_mib: MAX_RESPONSE_BODY_MIB
                .resolve(self.max_response_body_mib, env)?
                .unwrap_or(limits.max_response_body_bytes >> 20),
            max_memory_mib: MAX_MEMORY_MIB
                .resolve(self.max_memory_mib, env)?
                .unwrap_or((limits.max_memory_bytes >> 20) as u32),
            cache_max_mib: CACHE_MAX_MIB
                .resolve(self.cache_max_mib, env)?
                .unwrap_or(cache_max_mib),
            header_read_timeout_secs: HEADER_READ_TIMEOUT_SECS
                .resolve(self.header_read_timeout_secs, env)?
                .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_SECS),
            component_max_mib: COMPONENT_MAX_MIB
                .resolve(self.component_max_mib, env)?
                .unwrap_or(DEFAULT_COMPONENT_MAX_MIB),
            registry_poll_secs: REGISTRY_POLL_SECS
                .resolve(self.registry_poll_secs, env)?
                .unwrap_or(DEFAULT_REGISTRY_POLL_SECS),
            compiled_cache_dir: compiled_cache_dir(
                COMPILED_CACHE_DIR.resolve(self.compiled_cache_dir, env)?,
                env,
            )?,
        })
    }
}

/// Returns the compiled-code cache folder: the given one, none for `off`,
/// or `$HOME/.cache/btp-gateway/compiled`.
fn compiled_cache_dir(
    given: Option<PathBuf>,
    env: &dyn Env,
) -> Result<Option<PathBuf>, OptionError> {
    match given {
        Some(path) if path.as_os_str() == "off" => Ok(None),
        Some(path) => Ok(Some(path)),
        None => Ok(env
            .var("HOME")?
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".cache/btp-gateway/compiled"))),
    }
}

impl<T> OptionSpec<T> {
    /// Returns the flag's value when the flag was given, otherwise the
    /// variable's value, otherwise `None`. The variable is not read when
    /// the flag was given, so an invalid variable that a flag overrides
    /// does no harm.
    fn resolve(&self, from_flag: Option<T>, env: &dyn Env) -> Result<Option<T>, OptionError> {
        if from_flag.is_some() {
            return Ok(from_flag);
        }
        let Some(text) = env.var(self.variable)? else {
            return Ok(None);
        };
        match (self.parse)(text.trim()) {
            Some(value) => Ok(Some(value)),
            None => Err(OptionError::Invalid {
                variable: self.variable,
                flag: self.flag,
                value: quote(&text),
                expected: self.expected,
            }),
        }
    }
}

/// Parses a decimal number as clap does for the flags.
fn parse_number<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

/// Returns `value` with control characters escaped, shortened to
/// [`QUOTED_VALUE_MAX_CHARS`] characters.
fn quote(value: &str) -> String {
    let escaped: String = value.escape_debug().collect();
    match escaped.char_indices().nth(QUOTED_VALUE_MAX_CHARS) {
        Some((end, _)) => format!("{}...", &escaped[..end]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;
    use crate::config::MapEnv;

    fn parse(flags: &[&str], variables: &[(&str, &str)]) -> Result<Options, OptionError> {
        let argv = std::iter::once("btp-gateway").chain(flags.iter().copied());
        let args = match Args::try_parse_from(argv) {
            Ok(args) => args,
            Err(error) => panic!("the flags {flags:?} were rejected: {error}"),
        };
        args.resolve(&MapEnv::from_pairs(variables.iter().copied()))
    }

    /// Returns the help text of the option `--{long}`.
    fn help_of(long: &str) -> String {
        Args::command()
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long))
            .and_then(|arg| arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn defaults_without_flags_or_variables() {
        let limits = Limits::default();

        let options = parse(&[], &[]);

        assert_eq!(
            options,
            Ok(Options {
                component: None,
                config_dir: PathBuf::from("."),
                log_format: LogFormat::Auto,
                worker_threads: None,
                max_instances: limits.max_instances,
                request_timeout_secs: limits.request_timeout.as_secs(),
                max_outbound_requests: limits.max_outbound_requests,
                max_request_body_mib: limits.max_request_body_bytes >> 20,
                max_response_body_mib: limits.max_response_body_bytes >> 20,
                max_memory_mib: (limits.max_memory_bytes >> 20) as u32,
                cache_max_mib: (CacheLimits::default().max_bytes >> 20) as u32,
                header_read_timeout_secs: DEFAULT_HEADER_READ_TIMEOUT_SECS,
                component_max_mib: DEFAULT_COMPONENT_MAX_MIB,
                registry_poll_secs: DEFAULT_REGISTRY_POLL_SECS,
                compiled_cache_dir: None,
            })
        );
    }

    #[test]
    fn compiled_cache_dir_defaults_under_home() {
        let options = parse(&[], &[("HOME", "/home/vcap")]);
        let folder = options.map(|options| options.compiled_cache_dir);
        assert_eq!(
            folder,
            Ok(Some(PathBuf::from(
                "/home/vcap/.cache/btp-gateway/compiled"
            )))
        );
    }

    #[test]
    fn compiled_cache_off() {
        let options = parse(
            &[],
            &[
                ("HOME", "/home/vcap"),
                ("BTP_GATEWAY_COMPILED_CACHE_DIR", "off"),
            ],
        );
        assert_eq!(options.map(|options| options.compiled_cache_dir), Ok(None));
    }

    #[test]
    fn variable_beats_default() {
        let options = parse(
            &[],
            &[
                ("BTP_GATEWAY_REQUEST_TIMEOUT_SECS", " 7 "),
                ("BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS", "2"),
                ("BTP_GATEWAY_LOG_FORMAT", "json"),
                ("BTP_GATEWAY_WORKER_THREADS", "3"),
            ],
        );

        let Ok(options) = options else {
            panic!("rejected: {options:?}");
        };
        assert_eq!(options.request_timeout_secs, 7);
        assert_eq!(options.header_read_timeout_secs, 2);
        assert_eq!(options.log_format, LogFormat::Json);
        assert_eq!(options.worker_threads, Some(3));
    }

    #[test]
    fn flag_beats_invalid_variable() {
        let options = parse(
            &["--request-timeout-secs", "5", "--log-format", "text"],
            &[
                ("BTP_GATEWAY_REQUEST_TIMEOUT_SECS", "soon"),
                ("BTP_GATEWAY_LOG_FORMAT", "xml"),
            ],
        );

        let Ok(options) = options else {
            panic!("rejected: {options:?}");
        };
        assert_eq!(options.request_timeout_secs, 5);
        assert_eq!(options.log_format, LogFormat::Text);
    }

    #[test]
    fn invalid_variable_message() {
        let error = parse(&[], &[("BTP_GATEWAY_REQUEST_TIMEOUT_SECS", "abc")]);

        let Err(error) = error else {
            panic!("accepted: {error:?}");
        };
        assert_eq!(
            error.to_string(),
            "BTP_GATEWAY_REQUEST_TIMEOUT_SECS: invalid value 'abc': expected a whole number of \
             seconds; correct or unset BTP_GATEWAY_REQUEST_TIMEOUT_SECS, or pass \
             --request-timeout-secs, which overrides it"
        );
    }

    #[test]
    fn invalid_variables_rejected() {
        let cases = [
            ("BTP_GATEWAY_MAX_REQUEST_BODY_MIB", "-1"),
            ("BTP_GATEWAY_MAX_INSTANCES", "4294967296"),
            ("BTP_GATEWAY_MAX_MEMORY_MIB", "1.5"),
            ("BTP_GATEWAY_CACHE_MAX_MIB", ""),
            ("BTP_GATEWAY_MAX_OUTBOUND_REQUESTS", "ten"),
            ("BTP_GATEWAY_WORKER_THREADS", "2 threads"),
            ("BTP_GATEWAY_LOG_FORMAT", "xml"),
            ("BTP_GATEWAY_LOG_FORMAT", "JSON"),
            ("BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS", "0"),
        ];
        for (variable, value) in cases {
            let result = parse(&[], &[(variable, value)]);

            let Err(OptionError::Invalid {
                variable: named, ..
            }) = result
            else {
                panic!("{variable}={value:?} was not rejected: {result:?}");
            };
            assert_eq!(named, variable, "{variable}={value:?}");
        }
    }

    #[test]
    fn header_read_timeout_flag_zero_rejected() {
        let result = Args::try_parse_from(["btp-gateway", "--header-read-timeout-secs", "0"]);

        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn not_unicode_variable_rejected() {
        struct NotUnicodeEnv;
        impl Env for NotUnicodeEnv {
            fn var(&self, name: &str) -> Result<Option<String>, NotUnicode> {
                Err(NotUnicode {
                    variable: name.to_owned(),
                })
            }
        }
        let Ok(args) = Args::try_parse_from(["btp-gateway"]) else {
            panic!("no flags were rejected");
        };

        let result = args.resolve(&NotUnicodeEnv);

        assert_eq!(
            result,
            Err(OptionError::NotUnicode(NotUnicode {
                variable: "BTP_GATEWAY_LOG_FORMAT".to_owned()
            }))
        );
    }

    #[test]
    fn log_format_expected_lists_variants() {
        for variant in LogFormat::value_variants() {
            let Some(name) = variant.to_possible_value() else {
                continue;
            };
            assert!(
                LOG_FORMAT.expected.contains(name.get_name()),
                "{:?} does not list {}",
                LOG_FORMAT.expected,
                name.get_name()
            );
        }
    }

    #[test]
    fn help_names_variables_and_defaults() {
        let limits = Limits::default();
        let cases = [
            ("log-format", LOG_FORMAT.variable, "auto".to_owned()),
            (
                "max-instances",
                MAX_INSTANCES.variable,
                limits.max_instances.to_string(),
            ),
            (
                "request-timeout-secs",
                REQUEST_TIMEOUT_SECS.variable,
                limits.request_timeout.as_secs().to_string(),
            ),
            (
                "max-outbound-requests",
                MAX_OUTBOUND_REQUESTS.variable,
                limits.max_outbound_requests.to_string(),
            ),
            (
                "max-request-body-mib",
                MAX_REQUEST_BODY_MIB.variable,
                (limits.max_request_body_bytes >> 20).to_string(),
            ),
            (
                "max-response-body-mib",
                MAX_RESPONSE_BODY_MIB.variable,
                (limits.max_response_body_bytes >> 20).to_string(),
            ),
            (
                "max-memory-mib",
                MAX_MEMORY_MIB.variable,
                (limits.max_memory_bytes >> 20).to_string(),
            ),
            (
                "cache-max-mib",
                CACHE_MAX_MIB.variable,
                (CacheLimits::default().max_bytes >> 20).to_string(),
            ),
            (
                "header-read-timeout-secs",
                HEADER_READ_TIMEOUT_SECS.variable,
                DEFAULT_HEADER_READ_TIMEOUT_SECS.to_string(),
            ),
        ];
        for (long, variable, default) in cases {
            let help = help_of(long);

            assert!(
                help.contains(&format!("[env: {variable}]")),
                "--{long}: {help}"
            );
            assert!(
                help.contains(&format!("[default: {default}]")),
                "--{long}: {help}"
            );
        }
        assert!(
            help_of("worker-threads").contains("[env: BTP_GATEWAY_WORKER_THREADS]"),
            "{}",
            help_of("worker-threads")
        );
    }

    #[test]
    fn quote_escapes_and_shortens() {
        assert_eq!(quote("a\nb"), "a\\nb");
        let long = "x".repeat(QUOTED_VALUE_MAX_CHARS + 10);
        assert_eq!(
            quote(&long),
            format!("{}...", "x".repeat(QUOTED_VALUE_MAX_CHARS))
        );
    }
}
