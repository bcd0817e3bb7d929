//! `tessera audit verify`: walks the whole chain of a live or stopped database and names the first broken link,
//! then checks the chain against the latest signed checkpoint of its head (the database's own, or the latest of
//! an exported file given with `--anchor`): a chain shorter than a checkpoint, or whose event at the checkpoint's
//! `seq` hashes differently, was truncated or rewritten; it says how many events follow the checkpoint.

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
        /// Checkpoints exported with `tessera admin audit-checkpoints`, kept elsewhere: the latest is checked
        /// instead of the database's own (which whoever can rewrite the database can also delete).
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
}

/// Runs an audit command.
pub async fn run(command: AuditCommand) -> Result<()> {
    let AuditCommand::Verify {
        database_url,
        data_dir,
        anchor,
    } = command;
    let url = database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tessera.db").display()));
    if url.starts_with("sqlite:") && !std::path::Path::new(url.trim_start_matches("sqlite://")).exists() {
        bail!("no database at {url}");
    }
    let store = tessera_store::open_read_only(&url).await?;
    let checkpoint = match &anchor {
        Some(file) => Some(anchored(file)?),
        None => store
            .latest_audit_checkpoint()
            .await?
            .map(|c| (c.seq, c.head, c.token)),
    };
    let mut at_checkpoint = None;
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
            if checkpoint.as_ref().is_some_and(|(seq, _, _)| *seq == event.seq) {
                at_checkpoint = Some(hex_string(&event.hash));
            }
        }
        match page.last() {
            Some(last) if page.len() == query.limit as usize => query.after_seq = last.seq,
            _ => break,
        }
    }
    let head = verifier.head();
    let Some((seq, hash, token)) = checkpoint else {
        println!(
            "audit chain intact: {} events, head {}; no checkpoint to check it against",
            head.seq,
            hex_string(&head.hash)
        );
        return Ok(());
    };
    let signed = signature_holds(store.as_ref(), &token, seq, &hash).await?;
    if head.seq < seq {
        println!(
            "audit chain TRUNCATED: the checkpoint vouches for {seq} events, the log has {}",
            head.seq
        );
        std::process::exit(1);
    }
    if at_checkpoint.as_deref() != Some(hash.as_str()) {
        println!("audit chain REWRITTEN: event {seq} does not hash to its checkpoint's {hash}");
        std::process::exit(1);
    }
    println!(
        "audit chain intact: {} events, head {}; checkpoint at {seq} ({signed}), {} events after it",
        head.seq,
        hex_string(&head.hash),
        head.seq - seq
    );
    Ok(())
}

/// The latest checkpoint (seq, head, token) of a file of `tessera admin audit-checkpoints` answers (one JSON
/// document, or several one after another).
fn anchored(file: &std::path::Path) -> Result<(i64, String, String)> {
    let text = std::fs::read_to_string(file)?;
    let mut latest: Option<(i64, String, String)> = None;
    for page in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        let page = page?;
        for c in page["value"].as_array().into_iter().flatten() {
            let (Some(seq), Some(head), Some(token)) =
                (c["seq"].as_i64(), c["head"].as_str(), c["token"].as_str())
            else {
                bail!("{}: not a checkpoint: {c}", file.display());
            };
            if latest.as_ref().is_none_or(|(s, _, _)| seq > *s) {
                latest = Some((seq, head.to_owned(), token.to_owned()));
            }
        }
    }
    latest.ok_or_else(|| anyhow::anyhow!("{}: no checkpoints", file.display()))
}

/// Checks the checkpoint's signature with the keys the database publishes, and that it signs `seq` and `hash`;
/// says how it was checked.
async fn signature_holds(
    store: &dyn tessera_store::Store,
    token: &str,
    seq: i64,
    hash: &str,
) -> Result<&'static str> {
    use base64::Engine;
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
        .ok_or_else(|| anyhow::anyhow!("the checkpoint is not a token"))?;
    let issuer = payload["iss"].as_str().unwrap_or_default();
    let ring = tessera_token::KeyRing::public(issuer, &store.signing_keys().await?)?;
    #[expect(
        clippy::disallowed_methods,
        reason = "verification judges checkpoints against the wall clock"
    )]
    let now = tessera_core::Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX),
    );
    match ring.verify::<tessera_core::claims::CheckpointClaims>(token, now) {
        Ok(claims) if claims.seq == seq && claims.head == hash => Ok("signature valid"),
        Ok(_) => bail!("the checkpoint's token does not sign its seq and head"),
        Err(tessera_token::TokenError::UnknownKey) => Ok("signed by a key no longer published: not checked"),
        Err(e) => bail!("the checkpoint's signature does not hold: {e}"),
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
