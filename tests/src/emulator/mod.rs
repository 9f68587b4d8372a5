//! Emulator of the SAP BTP Destination service, the XSUAA token endpoint and
//! the Connectivity service's HTTP proxy, for end-to-end tests and the local
//! demo.
//!
//! Every listener is an HTTP/1.1 server on `127.0.0.1`. The main one
//! ([`Emulator::url`]) serves:
//!
//! - `POST /oauth/token`: the XSUAA token endpoint with the grants
//!   `client_credentials`, `password`, `refresh_token`,
//!   `urn:ietf:params:oauth:grant-type:jwt-bearer` and
//!   `urn:ietf:params:oauth:grant-type:saml2-bearer`. Clients authenticate
//!   with HTTP Basic or with `client_id`/`client_secret` form fields; the
//!   `x-zid` header selects the identity zone (a subscriber tenant). Tokens
//!   are RS256 JWTs with XSUAA's claims. Errors are `{"error",
//!   "error_description"}` with UAA's statuses, for example 401
//!   `unauthorized` "Bad credentials" and 400 `unsupported_grant_type`.
//! - `GET /token_keys`: the JSON Web Key Set with the signing key, as
//!   `{"keys": [{"kty", "alg", "use", "kid", "n", "e", "value"}]}`.
//! - `GET /destination-configuration/v1/destinations/{name}`: find
//!   destination. It needs a bearer token of this emulator, else 401
//!   `{"ErrorMessage": ...}`. The token's `zid` selects the tenant. It looks
//!   the percent-decoded, case-sensitive name up among the tenant's instance
//!   destinations first and subaccount destinations second, and returns 404
//!   `{"ErrorMessage": "Configuration with the specified name was not
//!   found"}` or 200 with `owner`, `destinationConfiguration`, `authTokens`
//!   and `certificates`. `X-user-token` and `X-refresh-token` feed the
//!   user-based and refresh-token authentication types.
//! - `GET /destination-configuration/v1/{instance,subaccount}Destinations[/{name}]`
//!   and `.../{instance,subaccount}Certificates[/{name}]`: the v1 read APIs.
//! - `GET /_emulator/stats`: emulator-only request counters, [`EmulatorStats`]
//!   as JSON.
//!
//! The connectivity proxy ([`Emulator::connectivity_proxy_url`]) forwards
//! absolute-form HTTP requests to backends on 127.0.0.1 by virtual host, as
//! the Connectivity service and the Cloud Connector would. With `certurl`
//! configured, a mutual-TLS listener ([`Emulator::certurl`]) serves the token
//! endpoint for clients that authenticate with an X.509 certificate.
//!
//! Supported `Authentication` values: `NoAuthentication`,
//! `BasicAuthentication`, `OAuth2ClientCredentials`, `OAuth2Password`,
//! `OAuth2RefreshToken`, `OAuth2JWTBearer`, `OAuth2UserTokenExchange`,
//! `OAuth2SAMLBearerAssertion`, `OAuth2TechnicalUserPropagation`,
//! `PrincipalPropagation` and `ClientCertificateAuthentication`. For OAuth2
//! types the emulator requests a token from the destination's
//! `tokenServiceURL` on every lookup, and only if that URL is
//! `http://127.0.0.1:...`. When the request fails, the response is still 200
//! and the auth token has an `error` field instead of a value, as with the
//! real service.
//!
//! Not emulated: token caching, revocation and key rotation. Scopes,
//! authorities and per-client grant types are not checked. Subscriptions,
//! the destination management calls, fragments, chains, the SOCKS5, RFC and
//! LDAP proxies and rate limits are missing too. Each module states its own
//! limits.
//!
//! # Configuration
//!
//! [`EmulatorConfig`] is read from JSON. Unknown fields are errors. Every
//! field is optional:
//!
//! | field | default | meaning |
//! | --- | --- | --- |
//! | `clients` | `[]` | OAuth clients: `client_id`, `client_secret`, optional `zone_id` and `certificate_pem` |
//! | `instance_destinations` | `[]` | provider destinations on the service instance |
//! | `subaccount_destinations` | `[]` | provider destinations on the subaccount |
//! | `certificates` | `[]` | provider key stores: `name`, `content_base64` |
//! | `token_lifetime_seconds` | 43199 | `expires_in` and lifetime of issued tokens, at most one year |
//! | `subaccount_id` | a fixed UUID | the provider's zone id and `owner.SubaccountId` |
//! | `instance_id` | a fixed UUID | `owner.InstanceId` of instance destinations |
//! | `identity_zone` (or `provider_subdomain`) | `btp-emulator` | the provider's subdomain, in bindings and `ext_attr.zdn` |
//! | `tenants` | `[]` | subscribers: `zone_id`, `subdomain`, `instance_destinations`, `subaccount_destinations`, `certificates` |
//! | `users` | `[]` | users for the password grant: `user_name`, `password`, optional `zone_id`, `email`, `given_name`, `family_name`, `scopes` |
//! | `connectivity_clients` | `[]` | clients of the Connectivity binding; only their tokens open the proxy (all `clients` when empty) |
//! | `virtual_hosts` | `[]` | Cloud Connector mappings: `virtual_host`, `virtual_port`, `location_id`, `target` (`http://127.0.0.1:PORT`) |
//! | `certurl` | none | `server_certificate_pem`, `server_private_key_pem`, `client_ca_pem` of the mutual-TLS listener |
//!
//! A destination is an object of string properties, as in the real service.
//! Each needs `Name`, `Type`, `URL` and `Authentication`, plus the properties
//! of its type: `User` and `Password` (Basic); `tokenServiceURL`, `clientId`
//! and `clientSecret` (OAuth2 types, `OAuth2Password` also `User` and
//! `Password`); `tokenServiceURL`, `audience` and `clientKey`
//! (`OAuth2SAMLBearerAssertion`); `KeyStoreLocation` naming a certificate of
//! the same tenant (`ClientCertificateAuthentication`); and `ProxyType`
//! `OnPremise` (`PrincipalPropagation`, `OAuth2TechnicalUserPropagation`).
//! Names are unique per level. Other properties, such as
//! `CloudConnectorLocationId`, are returned unchanged, except two kinds that
//! only the emulator reads:
//!
//! - `Emulator.HttpHeaderKey` sets `http_header.key` of the auth tokens in
//!   place of the default. The emulator removes every `Emulator.*` property
//!   from the returned configuration and rejects unknown ones.
//! - `${EMULATOR_URL}` in any property value (and in `virtual_hosts[].target`)
//!   is replaced by the emulator's base URL at start, because a config file
//!   cannot know a port picked at bind time.
//!
//! ```json
//! {
//!   "clients": [{ "client_id": "sb-gateway!b1", "client_secret": "s3cret" }],
//!   "connectivity_clients": [{ "client_id": "sb-connectivity!b2", "client_secret": "c0nn" }],
//!   "users": [{ "user_name": "alice", "password": "pw" }],
//!   "instance_destinations": [{
//!     "Name": "northwind", "Type": "HTTP", "URL": "http://127.0.0.1:4004/odata",
//!     "Authentication": "BasicAuthentication", "User": "alice", "Password": "pw"
//!   }],
//!   "subaccount_destinations": [{
//!     "Name": "s4", "Type": "HTTP", "URL": "http://s4.onprem:44300",
//!     "Authentication": "PrincipalPropagation", "ProxyType": "OnPremise",
//!     "CloudConnectorLocationId": "LOC1"
//!   }],
//!   "tenants": [{
//!     "zone_id": "7c1e7f0e-1111-4000-8000-000000000001", "subdomain": "customer-a",
//!     "subaccount_destinations": [{
//!       "Name": "orders", "Type": "HTTP", "URL": "http://127.0.0.1:4005/odata",
//!       "Authentication": "OAuth2JWTBearer",
//!       "tokenServiceURL": "${EMULATOR_URL}/oauth/token",
//!       "clientId": "sb-gateway!b1", "clientSecret": "s3cret"
//!     }]
//!   }],
//!   "virtual_hosts": [{
//!     "virtual_host": "s4.onprem", "virtual_port": 44300, "location_id": "LOC1",
//!     "target": "http://127.0.0.1:4004"
//!   }]
//! }
//! ```
//!
//! # Use
//!
//! Tests call [`Emulator::start`] and read [`Emulator::url`],
//! [`Emulator::stats`] and [`Emulator::vcap_services`], create user tokens
//! with [`Emulator::user_token`], and compose bindings with
//! [`Emulator::vcap_services_with`]. The `btp-emulator` binary serves the
//! same emulator from a config file for the demo.

mod access_token;
mod auth_tokens;
mod certurl;
mod config;
mod connectivity_proxy;
mod destination;
mod destination_read;
mod find_destination;
mod grants;
mod http_util;
mod listener;
mod refresh_tokens;
mod router;
mod saml_assertion;
mod server;
mod signing_key;
mod stats;
mod tenant;
mod token_client;
mod token_endpoint;
mod user_token;
mod users;
mod vcap;
mod virtual_host;

pub use certurl::CertUrlConfig;
pub use config::{
    CertificateConfig, ClientConfig, ConfigError, DEFAULT_IDENTITY_ZONE, DEFAULT_INSTANCE_ID,
    DEFAULT_SUBACCOUNT_ID, DEFAULT_TOKEN_LIFETIME_SECONDS, EmulatorConfig,
    MAX_TOKEN_LIFETIME_SECONDS,
};
pub use connectivity_proxy::{
    EMULATOR_LOCATION_HEADER, EMULATOR_PRINCIPAL_HEADER, EMULATOR_TECHNICAL_USER_HEADER,
    LOCATION_ID_HEADER, PRINCIPAL_HEADER, TECHNICAL_USER_HEADER,
};
pub use destination::{
    Authentication, Destination, DestinationLevel, EMULATOR_PROPERTY_PREFIX,
    EMULATOR_URL_PLACEHOLDER, HTTP_HEADER_KEY_PROPERTY, KEY_STORE_LOCATION,
};
pub use server::{Emulator, EmulatorError, EmulatorPorts};
pub use signing_key::SigningKeyError;
pub use stats::EmulatorStats;
pub use tenant::TenantConfig;
pub use user_token::UserTokenSpec;
pub use users::UserConfig;
pub use vcap::{
    CONNECTIVITY_INSTANCE_NAME, DESTINATION_INSTANCE_NAME, XSUAA_INSTANCE_NAME, vcap_services,
};
pub use virtual_host::VirtualHostConfig;
