//! Tessera's domain: resource ids, feature flags, accounts, token claims, the limited-access policy, chat rules
//! and the audit chain. Pure rules only: no I/O, no web or database types, and no clock (every rule takes `now`).

pub mod account;
pub mod acs_hmac;
pub mod arm;
pub mod audit;
pub mod chat;
pub mod claims;
pub mod error;
pub mod face;
pub mod flags;
pub mod identity;
pub mod policy;
pub mod scope;
pub mod secret;
pub mod session;
pub mod time;

pub use account::{Account, AccountKind, IsvGrant, KeyGenerations, KeySlot};
pub use arm::ResourceId;
pub use error::DomainError;
pub use flags::{FeatureFlag, FlagSet};
pub use time::Timestamp;
