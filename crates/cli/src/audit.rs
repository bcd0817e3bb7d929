//! `tessera audit verify`: walks the whole chain of a live or stopped database and names the first broken link.

use anyhow::{Result, bail};
use clap::Subcommand;
use std::path::PathBuf;
use tessera_core::audit::ChainVerifier;
use tessera_store::AuditQuery;

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain from the first event to the last.
    Verify {
        /// Database URL [default: SQLite in the data directory].
        #[arg(long, env = "TESSERA_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Data directory [default: ./tessera-data].
        #[arg(long, env = "TESSERA_DATA_DIR", default_value = "./tessera-data")]
        data_dir: PathBuf,
    },
}

/// Runs an audit command.
pub async fn run(command: AuditCommand) -> Result<()> {
    let AuditCommand::Verify {
        database_url,
        data_dir,
    } = command;
    let url = database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tessera.db").display()));
    if url.starts_with("sqlite:") && !std::path::Path::new(url.trim_start_matches("sqlite://")).exists() {
        bail!("no database at {url}");
    }
    let store = tessera_store::open_read_only(&url).await?;
    let mut verifier = ChainVerifier::default();
    let mut query = AuditQuery {
        limit: tessera_store::MAX_AUDIT_PAGE,
        ..AuditQuery::default()
    };
    loop {
        let page = store.audit_events(&query).await?;
        for event in &page {
            if let Err(broken) = verifier.push(event) {
                println!("audit chain BROKEN: {broken}");
                std::process::exit(1);
            }
        }
        match page.last() {
            Some(last) if page.len() == query.limit as usize => query.after_seq = last.seq,
            _ => break,
        }
    }
    let head = verifier.head();
    println!(
        "audit chain intact: {} events, head {}",
        head.seq,
        hex_string(&head.hash)
    );
    Ok(())
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
