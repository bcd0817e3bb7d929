//! What every area stands on and no area owns: the node's state and configuration, start-up preparation, the
//! clock, signing keys, TLS material, secrets, the failure and flood limiters, connection caps and lingering
//! close, the client's address behind proxies, and the metrics recorder. Nothing here knows a product area.

pub(crate) mod bootstrap;
pub mod clock;
pub mod config;
pub(crate) mod connections;
pub(crate) mod flood;
pub(crate) mod forwarded;
pub(crate) mod keyring;
pub(crate) mod linger;
pub(crate) mod metrics;
pub(crate) mod ratelimit;
pub(crate) mod secrets;
pub mod state;
pub(crate) mod tls;
