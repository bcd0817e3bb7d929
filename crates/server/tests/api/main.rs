//! The server's HTTP-level suites, one test binary (one link of the server, one PostgreSQL for the run): each
//! module drives real servers over loopback, most of them on both backends.

#[macro_use]
mod common;

mod acs_conformance;
mod admin_ops;
mod chat;
mod client_sdk;
mod face_conformance;
mod face_groups;
mod face_service;
mod identities;
mod multinode_pg;
mod sts_flow;
