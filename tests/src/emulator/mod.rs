//! Emulator of the SAP BTP Destination service and the XSUAA token endpoint,
//! for end-to-end tests and the local demo.
//!
//! One HTTP/1.1 server on `127.0.0.1` serves:
//!
//! - `POST /oauth/token`: XSUAA client-credentials grant. Clients authenticate
//!   with HTTP Basic or with `client_id`/`client_secret` form fields. Success
//!   returns `access_token` (JWT-shaped), `token_type`, `expires_in`, `scope`
//!   and `jti`. Bad credentials return 401 `{"error": "unauthorized",
//!   "error_description": "Bad credentials"}`, and other grant types return
//!   400 `unsupported_grant_type`.
//! - `GET /destination-configuration/v1/destinations/{name}`: the find-destination
//!   call. It needs a bearer token that this emulator issued and that has not
//!   expired, else it returns 401 `{"ErrorMessage": ...}`. It looks the
//!   percent-decoded, case-sensitive name up among instance destinations
//!   first and subaccount destinations second. It returns 404 `{"ErrorMessage":
//!   "Configuration with the specified name was not found"}`, or 200 with
//!   `owner`, `destinationConfiguration` and `authTokens`.
//! - `GET /_emulator/stats`: emulator-only request counters,
//!   `{"token_requests": n, "destination_lookups": n}`.
//!
//! Supported `Authentication` values are `NoAuthentication` (no `authTokens`),
//! `BasicAuthentication` and `OAuth2ClientCredentials`. For the latter the
//! emulator requests a token from the destination's `tokenServiceURL` on every
//! lookup, and only if that URL is `http://127.0.0.1:...`. When the request
//! fails, the response is still 200 and the auth token has an `error` field
//! instead of a value, as with the real service.
//!
//! Not emulated: token signatures (tokens are random-signed and only this
//! emulator accepts them), token caching, other grant types and
//! authentication types, user token exchange, certificates, the
//! destination listing and management calls, TLS, and rate limits.
//!
//! # Configuration
//!
//! [`EmulatorConfig`] is read from JSON. Unknown top-level or client fields
//! are errors. Every field is optional:
//!
//! | field | default | meaning |
//! | --- | --- | --- |
//! | `clients` | `[]` | OAuth clients: `client_id`, `client_secret`, optional `zone_id` |
//! | `instance_destinations` | `[]` | destinations on the service instance |
//! | `subaccount_destinations` | `[]` | destinations on the subaccount |
//! | `token_lifetime_seconds` | 43199 | `expires_in` and lifetime of issued tokens, at most one year |
//! | `subaccount_id` | a fixed UUID | `owner.SubaccountId`, default token zone id |
//! | `instance_id` | a fixed UUID | `owner.InstanceId` of instance destinations |
//! | `identity_zone` | `btp-emulator` | subdomain in the binding and the tokens |
//!
//! A destination is an object of string properties, as in the real service.
//! Each needs `Name`, `Type`, `URL` and `Authentication`.
//! `BasicAuthentication` also needs `User` and `Password`, and
//! `OAuth2ClientCredentials` needs `tokenServiceURL`, `clientId` and
//! `clientSecret` (optional `scope`). Names are unique per level. Other
//! properties are returned unchanged, except two kinds that only the emulator
//! reads:
//!
//! - `Emulator.HttpHeaderKey` sets `http_header.key` of the auth tokens in
//!   place of `Authorization`. The emulator removes every `Emulator.*` property
//!   from the returned configuration and rejects unknown ones.
//! - `${EMULATOR_URL}` in any property value is replaced by the emulator's base
//!   URL at start, because a config file cannot know a port picked at bind time.
//!
//! ```json
//! {
//!   "clients": [{ "client_id": "sb-gateway!b1", "client_secret": "s3cret" }],
//!   "instance_destinations": [{
//!     "Name": "northwind", "Type": "HTTP", "URL": "http://127.0.0.1:4004/odata",
//!     "Authentication": "BasicAuthentication", "User": "alice", "Password": "pw"
//!   }],
//!   "subaccount_destinations": [{
//!     "Name": "orders", "Type": "HTTP", "URL": "http://127.0.0.1:4005/odata",
//!     "Authentication": "OAuth2ClientCredentials",
//!     "tokenServiceURL": "${EMULATOR_URL}/oauth/token",
//!     "clientId": "sb-gateway!b1", "clientSecret": "s3cret",
//!     "Emulator.HttpHeaderKey": "X-Backend-Authorization"
//!   }]
//! }
//! ```
//!
//! # Use
//!
//! Tests call [`Emulator::start`] and read [`Emulator::url`],
//! [`Emulator::stats`] and [`Emulator::vcap_services`]. The `btp-emulator`
//! binary serves the same emulator from a config file for the demo.

mod access_token;
mod auth_tokens;
mod config;
mod destination;
mod find_destination;
mod http_util;
mod router;
mod server;
mod stats;
mod token_client;
mod token_endpoint;
mod vcap;

pub use config::{
    ClientConfig, ConfigError, DEFAULT_IDENTITY_ZONE, DEFAULT_INSTANCE_ID, DEFAULT_SUBACCOUNT_ID,
    DEFAULT_TOKEN_LIFETIME_SECONDS, EmulatorConfig, MAX_TOKEN_LIFETIME_SECONDS,
};
pub use destination::{
    Authentication, Destination, DestinationLevel, EMULATOR_PROPERTY_PREFIX,
    EMULATOR_URL_PLACEHOLDER, HTTP_HEADER_KEY_PROPERTY,
};
pub use server::{Emulator, EmulatorError};
pub use stats::EmulatorStats;
pub use vcap::{DESTINATION_INSTANCE_NAME, vcap_services};
