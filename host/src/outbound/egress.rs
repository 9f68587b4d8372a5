//! The policy for the network addresses that outgoing connections may reach.
//!
//! Policy: after DNS, connections to loopback, unspecified, link-local and
//! cloud metadata addresses are refused, unless local development allows
//! them. A destination URL that names such a host, or a name that resolves
//! only to such addresses, fails before any connection is made. A name that
//! resolves to both kinds connects only to the allowed ones. This keeps a
//! destination, however it is configured, from reaching the container
//! itself or the platform's metadata services.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Cloud metadata services that are not in a link-local range.
const METADATA_V4: [Ipv4Addr; 2] = [
    // Alibaba Cloud.
    Ipv4Addr::new(100, 100, 100, 200),
    // Azure's wire server.
    Ipv4Addr::new(168, 63, 129, 16),
];

/// AWS's IPv6 metadata endpoint.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// The addresses outgoing connections may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Whether loopback, link-local and metadata addresses are allowed, as
    /// in local development where backends run on 127.0.0.1.
    pub allow_local: bool,
}

impl EgressPolicy {
    /// Returns whether a connection to `ip` is refused.
    pub fn refuses(&self, ip: IpAddr) -> bool {
        !self.allow_local && is_local_or_metadata(ip)
    }
}

fn is_local_or_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local()
                || METADATA_V4.contains(&v4)
        }
        IpAddr::V6(v6) => {
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return is_local_or_metadata(IpAddr::V4(mapped));
            }
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            v6.is_loopback() || v6.is_unspecified() || link_local || v6 == METADATA_V6
        }
    }
}

fn refused_error(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{what}: loopback, link-local and metadata addresses are refused"),
    )
}

/// A resolver that drops refused addresses from the DNS result.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    inner: GaiResolver,
    policy: EgressPolicy,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        let resolving = self.inner.call(name);
        Box::pin(async move {
            let allowed: Vec<SocketAddr> = resolving
                .await?
                .filter(|address| !policy.refuses(address.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(refused_error(&format!(
                    "'{host}' resolves only to refused addresses"
                )));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// An HTTP connector that applies the policy to IP literals, which bypass
/// the resolver, and resolves names through [`GuardedResolver`].
#[derive(Debug, Clone)]
pub struct GuardedConnector {
    inner: HttpConnector<GuardedResolver>,
    policy: EgressPolicy,
}

impl GuardedConnector {
    /// Wraps a configured connector's settings around the policy.
    pub fn new(
        policy: EgressPolicy,
        configure: impl FnOnce(&mut HttpConnector<GuardedResolver>),
    ) -> Self {
        let resolver = GuardedResolver {
            inner: GaiResolver::new(),
            policy,
        };
        let mut inner = HttpConnector::new_with_resolver(resolver);
        configure(&mut inner);
        Self { inner, policy }
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, target: Uri) -> Self::Future {
        let literal = target
            .host()
            .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|host| host.parse::<IpAddr>().ok());
        if let Some(ip) = literal.filter(|ip| self.policy.refuses(*ip)) {
            let error: BoxError = Box::new(refused_error(&format!("the address {ip}")));
            return Box::pin(async move { Err(error) });
        }
        let connecting = self.inner.call(target);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_local_and_metadata_addresses() {
        let policy = EgressPolicy { allow_local: false };
        for refused in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "169.254.169.254",
            "100.100.100.200",
            "168.63.129.16",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = refused
                .parse()
                .unwrap_or_else(|error| panic!("{refused}: {error}"));
            assert!(policy.refuses(ip), "{refused} must be refused");
        }
        for allowed in [
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "2001:db8::1",
            "fd00::1",
        ] {
            let ip: IpAddr = allowed
                .parse()
                .unwrap_or_else(|error| panic!("{allowed}: {error}"));
            assert!(!policy.refuses(ip), "{allowed} must be allowed");
        }
    }

    #[test]
    fn local_development_allows_everything() {
        let policy = EgressPolicy { allow_local: true };
        assert!(
            !policy.refuses(
                "127.0.0.1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
            )
        );
    }
}
