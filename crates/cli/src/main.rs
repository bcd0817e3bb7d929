//! `tessera`: run the service, administer a running one, verify an audit chain, inspect a token.

mod admin;
mod audit;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tessera_server::config::{FileConfig, Overrides, Secret};

/// mimalloc: the server allocates small, short-lived buffers on many threads, where it is markedly cheaper than
/// the system allocator (measured with `cargo xtask bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tessera, a self-hostable security token service.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (HTTPS on 127.0.0.1:8443 and SQLite in ./tessera-data by default).
    Serve(ServeArgs),
    /// Administer a running server through its admin API.
    Admin(admin::AdminArgs),
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Work with tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8443, or 127.0.0.1:8080 with --http].
    #[arg(long, env = "TESSERA_LISTEN")]
    listen: Option<String>,
    /// Data directory [default: ./tessera-data].
    #[arg(long, env = "TESSERA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` [default: SQLite in the data directory].
    #[arg(long, env = "TESSERA_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// External base URL, used as the token issuer [default: from the listen address].
    #[arg(long, env = "TESSERA_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    /// PEM certificate chain (instead of the generated local CA).
    #[arg(long, env = "TESSERA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TESSERA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "TESSERA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Expose the benchmark baseline routes (for `cargo xtask bench`).
    #[arg(long, hide = true)]
    bench_routes: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a token's header and claims WITHOUT verifying it.
    Inspect {
        /// The JWT.
        token: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Admin(args) => runtime.block_on(admin::run(args)),
        Command::Audit { command } => runtime.block_on(audit::run(command)),
        Command::Token {
            command: TokenCommand::Inspect { token },
        } => inspect(&token),
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_format);
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let env_secret = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    };
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        public_url: args.public_url,
        http: args.http,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        admin_key: env_secret("TESSERA_ADMIN_KEY"),
        master_key: env_secret("TESSERA_MASTER_KEY"),
        bench_routes: args.bench_routes,
    };
    let config = tessera_server::Config::resolve(file, overrides)?;
    tessera_server::serve(config).await?;
    Ok(())
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn inspect(token: &str) -> Result<()> {
    use base64::Engine;
    let decode = |part: &str| -> Result<serde_json::Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('='))?;
        Ok(serde_json::from_slice(&bytes)?)
    };
    let parts: Vec<&str> = token.trim().split('.').collect();
    anyhow::ensure!(
        parts.len() == 3,
        "a JWT has three dot-separated parts; this has {}",
        parts.len()
    );
    println!("NOT VERIFIED: this shows what the token says, not whether it is genuine.");
    println!("header: {}", serde_json::to_string_pretty(&decode(parts[0])?)?);
    println!("claims: {}", serde_json::to_string_pretty(&decode(parts[1])?)?);
    Ok(())
}
