//! End-to-end test support for the BTP OData gateway.
//!
//! [`emulator`] emulates the SAP BTP Destination service and the XSUAA token
//! endpoint on 127.0.0.1, so that tests and the local demo run without a BTP
//! subaccount. [`harness`] starts the CAP test service and the gateway
//! process and sends requests to them.

pub mod emulator;
pub mod harness;
