//! Tencent Cloud: TC3 signing, credentials, the GAAP client, retries, the `api` command.
//!
//! - [`signer`]: TC3-HMAC-SHA256 as pure functions (also used by the sandbox to verify).
//! - [`request`]: endpoint validation and building one signed request (pure).
//! - [`credentials`]: the SDK credential chain; secrets redacted everywhere.
//! - [`error`]: API errors as values, with their retry class.
//! - [`types`]: serde types of the five GAAP actions.
//! - [`client`]: the reqwest transport, the shared budget, retries, [`client::GaapApi`].
pub mod client;
pub mod cmd;
pub mod credentials;
pub mod error;
pub mod request;
pub mod signer;
pub mod types;

pub use client::{
    ClientConfig, GaapApi, GaapClient, ModifyFailure, ModifyOutcome, ModifyRequest, ProxyQuery,
    RetryPolicy,
};
pub use credentials::Credentials;
pub use error::{ApiError, CallError, RetryClass};
pub use request::Endpoint;
