//! Tencent Cloud: TC3 signing, credentials, the GAAP client.
pub mod cmd;
