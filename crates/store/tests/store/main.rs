//! The store's suites, one test binary: the behaviour suite run on SQLite and PostgreSQL alike, and SQLite at
//! a million identities.

mod sqlite_scale;
mod suite;
