//! The store's error type.

use thiserror::Error;

/// A storage failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint or concurrent change refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row to change does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The write would pass a limit the store keeps (the message says which); nothing was written.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// Stored data does not decode into domain values.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database URL or options are unusable.
    #[error("database configuration: {0}")]
    Config(String),
    /// The batch holding this event could not be appended (the reason is the store's error).
    #[error("audit append failed: {0}")]
    AuditFailed(String),
    /// The audit writer has stopped.
    #[error("the audit writer has stopped")]
    AuditClosed,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`, any other error to `Database`.
    pub(crate) fn unique(err: sqlx::Error, what: &str) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what.to_owned()),
            _ => Self::Database(err),
        }
    }
}
