//! Commands that test a component file without starting the server.
//! `btp-gateway check FILE` validates it as the server does before it
//! serves a component. `btp-gateway call FILE PATH` also runs one request
//! through it with the destinations of the local configuration, and prints
//! the response as `curl -i` does.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt as _;

use crate::components::digest::Digest;
use crate::components::routes::{RouteConfig, Source};
use crate::components::validate::{Validator, Version};
use crate::outbound::RequestContext;

/// A command that tests a component file.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate a component file as the gateway does before it serves one:
    /// size, digest, world, and a smoke request `GET /`
    Check {
        /// The component (.wasm file)
        file: PathBuf,
        /// The digest the file must have (sha256:...)
        #[arg(long)]
        digest: Option<Digest>,
    },
    /// Validate a component file, run one request through it and print the
    /// response with its headers. Destinations come from the local
    /// configuration (`destinations`, `.env`, `default-env.json`)
    Call {
        /// The component (.wasm file)
        file: PathBuf,
        /// The request path with query, for example /odata/NORTHWIND/Products?$top=2
        path: String,
        /// The request method
        #[arg(short = 'X', long, default_value = "GET")]
        method: String,
        /// A request header, `Name: value`; repeat for more
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// The request body; `@FILE` reads it from a file
        #[arg(short = 'd', long)]
        data: Option<String>,
    },
}

/// Runs `command` and returns the process's exit code: 0 when the
/// component is valid (and returned a response), 1 when it is not, 2 for
/// unusable arguments.
pub async fn run(command: Command, validator: &Validator) -> ExitCode {
    match command {
        Command::Check { file, digest } => match validate(&file, digest, validator).await {
            Ok(version) => {
                println!("valid: {}", file.display());
                println!("digest: {}", version.digest);
                println!("size: {} bytes", version.size);
                ExitCode::SUCCESS
            }
            Err(failure) => failure.report(),
        },
        Command::Call {
            file,
            path,
            method,
            headers,
            data,
        } => {
            let request = match build_request(&path, &method, &headers, data.as_deref()) {
                Ok(request) => request,
                Err(error) => return Failure::Usage(format!("{error:#}")).report(),
            };
            let version = match validate(&file, None, validator).await {
                Ok(version) => version,
                Err(failure) => return failure.report(),
            };
            match call(&version, request, validator).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => Failure::Invalid(format!("{error:#}")).report(),
            }
        }
    }
}

/// The failure of a command.
enum Failure {
    /// The arguments or the file cannot be used: exit code 2.
    Usage(String),
    /// The component is invalid or failed: exit code 1.
    Invalid(String),
}

impl Failure {
    fn report(self) -> ExitCode {
        match self {
            Self::Usage(message) => {
                eprintln!("btp-gateway: {message}");
                ExitCode::from(2)
            }
            Self::Invalid(message) => {
                eprintln!("invalid: {message}");
                ExitCode::FAILURE
            }
        }
    }
}

async fn validate(
    file: &std::path::Path,
    digest: Option<Digest>,
    validator: &Validator,
) -> Result<Version, Failure> {
    let bytes = std::fs::read(file)
        .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", file.display())))?;
    let mut route = RouteConfig::root(Source::File(file.to_path_buf()));
    route.digest = digest;
    validator
        .validate(&route, Arc::from(bytes), route.source.to_string())
        .await
        .map_err(|rejection| Failure::Invalid(rejection.to_string()))
}

fn build_request(
    path: &str,
    method: &str,
    headers: &[String],
    data: Option<&str>,
) -> anyhow::Result<http::Request<bytes::Bytes>> {
    if !path.starts_with('/') {
        anyhow::bail!("invalid path '{path}': it must start with '/'");
    }
    let method = http::Method::from_bytes(method.as_bytes())
        .with_context(|| format!("invalid method '{method}'"))?;
    let body = match data {
        Some(file) if file.starts_with('@') => {
            let file = &file[1..];
            std::fs::read(file).with_context(|| format!("cannot read the body file {file}"))?
        }
        Some(text) => text.as_bytes().to_vec(),
        None => Vec::new(),
    };

    let mut request = http::Request::builder().method(method).uri(path);
    let mut has_host = false;
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("invalid header '{header}': expected `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("invalid header name in '{header}'"))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("invalid header value in '{header}'"))?;
        has_host |= name == http::header::HOST;
        request = request.header(name, value);
    }
    if !has_host {
        request = request.header(http::header::HOST, "localhost");
    }
    request
        .body(bytes::Bytes::from(body))
        .with_context(|| format!("invalid request URI '{path}'"))
}

/// Runs the request and writes the response to standard output.
async fn call(
    version: &Version,
    request: http::Request<bytes::Bytes>,
    validator: &Validator,
) -> anyhow::Result<()> {
    let correlation = uuid::Uuid::new_v4().to_string();
    let context = Arc::new(RequestContext {
        correlation_id: HeaderValue::from_str(&correlation)?,
        caller: None,
        refresh_token: None,
    });
    let response = version
        .component
        .handle_buffered(request, context, validator.limits)
        .await
        .map_err(anyhow::Error::from)
        .context("the component returned no response")?;

    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|error| anyhow::anyhow!("the response body failed: {error:?}"))?
        .to_bytes();

    let mut out = std::io::stdout().lock();
    writeln!(out, "HTTP/1.1 {}", parts.status)?;
    for (name, value) in &parts.headers {
        writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
    }
    writeln!(out)?;
    out.write_all(&body)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_defaults_to_localhost() -> anyhow::Result<()> {
        let request = build_request("/x", "GET", &[], None)?;
        let hosts: Vec<_> = request
            .headers()
            .get_all(http::header::HOST)
            .iter()
            .collect();
        assert_eq!(hosts, [HeaderValue::from_static("localhost")]);
        Ok(())
    }

    #[test]
    fn host_header_replaces_default() -> anyhow::Result<()> {
        let headers = ["Host: gateway.example".to_owned()];
        let request = build_request("/x", "GET", &headers, None)?;
        let hosts: Vec<_> = request
            .headers()
            .get_all(http::header::HOST)
            .iter()
            .collect();
        assert_eq!(hosts, [HeaderValue::from_static("gateway.example")]);
        Ok(())
    }

    #[test]
    fn rejects_relative_path() {
        let error = build_request("odata/x", "GET", &[], None).err();
        let message = error.map(|error| error.to_string()).unwrap_or_default();
        assert!(message.contains("must start with '/'"), "{message}");
    }
}
