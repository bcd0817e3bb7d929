//! The HTTP layer the areas share: the one error type and its rendering (`error`), request bodies and their limits
//! (`body`), JSON and query extractors that answer in that shape (`extract`), the `api-version` check
//! (`api_version`), authentication (`auth`: accounts and the operator; `user_token`: user access tokens), the Limited
//! Access gate (`gate`), and the audit page (`audit_page`) that the operator and ISVs both read.

pub(crate) mod api_version;
pub(crate) mod audit_page;
pub mod auth;
pub(crate) mod body;
pub mod error;
pub(crate) mod extract;
pub(crate) mod gate;
pub(crate) mod user_token;
