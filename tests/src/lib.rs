//! End-to-end test support for the BTP OData gateway.
//!
//! [`emulator`] emulates the SAP BTP Destination service, the XSUAA token
//! endpoint and the Connectivity proxy on 127.0.0.1, so that tests and the
//! local demo run without a BTP subaccount. [`harness`] starts the CAP test
//! service and the gateway process and sends requests to them. [`pki`]
//! creates the certificates and key stores that mutual-TLS tests need.

pub mod emulator;
pub mod harness;
pub mod pki;
