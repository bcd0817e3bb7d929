//! `tessera admin …`: the admin API of a running server, through the client SDK's `AdminClient`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use tessera_client::wire::admin::{AccountListQuery, AuditFilter, CheckpointQuery};
use tessera_client::wire::error::{ErrorBody, ErrorDetail};
use tessera_client::{AdminClient, ClientError, Endpoint};

/// Connection to the server.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Base URL of the server.
    #[arg(long, env = "TESSERA_URL", default_value = "https://127.0.0.1:8443")]
    url: String,
    /// The admin key.
    #[arg(long, env = "TESSERA_ADMIN_KEY", hide_env_values = true)]
    admin_key: String,
    /// CA certificate to trust [default: ./tessera-data/tls/ca.pem when it exists].
    #[arg(long, env = "TESSERA_CA_CERT")]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// ISV standing.
    Isv {
        #[command(subcommand)]
        command: IsvCommand,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Export the signed checkpoints of the audit chain's head, to keep where the database's owner cannot
    /// reach them (`tessera audit verify --anchor FILE` checks the chain against them).
    AuditCheckpoints {
        /// Checkpoints after this sequence number.
        #[arg(long)]
        after: Option<i64>,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Read the audit log.
    Audit {
        /// Only this actor (e.g. `admin`, `account:/subscriptions/…`).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action (e.g. `sts.issueLimitedAccessToken`).
        #[arg(long)]
        action: Option<String>,
        /// Only this subject.
        #[arg(long)]
        subject: Option<String>,
        /// `success` or `denied`.
        #[arg(long)]
        outcome: Option<String>,
        /// Only events about this ISV's tokens.
        #[arg(long)]
        isv: Option<String>,
        /// Events after this sequence number.
        #[arg(long)]
        after: Option<i64>,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create an account (prints its two keys, shown only this once).
    Create {
        /// ARM resource id.
        resource_id: String,
        /// Limited Access flags to approve at once.
        #[arg(long = "approve")]
        approve: Vec<String>,
    },
    /// Show an account.
    Show {
        /// ARM resource id.
        resource_id: String,
    },
    /// List accounts.
    List {
        /// Start after this resource id.
        #[arg(long)]
        after: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// List key slots.
    Keys {
        /// ARM resource id.
        resource_id: String,
    },
    /// Regenerate key1 or key2 (prints the new key).
    RegenerateKey {
        /// ARM resource id.
        resource_id: String,
        /// `key1` or `key2`.
        key_name: String,
    },
    /// Replace the approved Limited Access flags (none given: remove all).
    Approve {
        /// ARM resource id.
        resource_id: String,
        /// Flags, e.g. Face.Identification.
        flags: Vec<String>,
    },
    /// Disable the account.
    Disable {
        /// ARM resource id.
        resource_id: String,
    },
    /// Re-enable the account.
    Enable {
        /// ARM resource id.
        resource_id: String,
    },
    /// Revoke every user token of the account's identities issued so far, and with them every device session.
    RevokeUserTokens {
        /// ARM resource id.
        resource_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum IsvCommand {
    /// Make the account an ISV for flags it holds.
    Grant {
        /// ARM resource id.
        resource_id: String,
        /// Flags it may grant.
        #[arg(required = true)]
        flags: Vec<String>,
    },
    /// Cut the ISV off: its tokens stop working at once.
    CutOff {
        /// ARM resource id.
        resource_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List signing keys.
    List,
    /// Rotate: the published next key starts signing; a new next key is published.
    Rotate,
}

/// Runs an admin command and prints the server's answer as JSON; a refusal prints the server's error and fails.
pub async fn run(args: AdminArgs) -> Result<()> {
    let endpoint = Endpoint::with_client(&args.url, client(args.ca_cert.as_ref())?);
    let admin = AdminClient::new(endpoint, &args.admin_key);
    let answer = match args.command {
        AdminCommand::Account { command } => match command {
            AccountCommand::Create { resource_id, approve } => {
                to_json(admin.create_account(&resource_id, &approve).await)
            }
            AccountCommand::Show { resource_id } => to_json(admin.account(&resource_id).await),
            AccountCommand::List { after, limit } => to_json(
                admin
                    .list_accounts(&AccountListQuery {
                        after,
                        limit: Some(limit),
                    })
                    .await,
            ),
            AccountCommand::Keys { resource_id } => to_json(admin.key_slots(&resource_id).await),
            AccountCommand::RegenerateKey {
                resource_id,
                key_name,
            } => to_json(admin.regenerate_key(&resource_id, &key_name).await),
            AccountCommand::Approve { resource_id, flags } => {
                to_json(admin.approve(&resource_id, &flags).await)
            }
            AccountCommand::Disable { resource_id } => to_json(admin.disable(&resource_id).await),
            AccountCommand::Enable { resource_id } => to_json(admin.enable(&resource_id).await),
            AccountCommand::RevokeUserTokens { resource_id } => {
                to_json(admin.revoke_user_tokens(&resource_id).await)
            }
        },
        AdminCommand::Isv { command } => match command {
            IsvCommand::Grant { resource_id, flags } => to_json(admin.grant_isv(&resource_id, &flags).await),
            IsvCommand::CutOff { resource_id } => to_json(admin.cut_off_isv(&resource_id).await),
        },
        AdminCommand::Keys {
            command: KeysCommand::List,
        } => to_json(admin.signing_keys().await),
        AdminCommand::Keys {
            command: KeysCommand::Rotate,
        } => to_json(admin.rotate_keys().await),
        AdminCommand::AuditCheckpoints { after, limit } => to_json(
            admin
                .audit_checkpoints(&CheckpointQuery {
                    after,
                    limit: Some(limit),
                })
                .await,
        ),
        AdminCommand::Audit {
            actor,
            action,
            subject,
            outcome,
            isv,
            after,
            limit,
        } => to_json(
            admin
                .audit(&AuditFilter {
                    actor,
                    action,
                    subject,
                    outcome,
                    isv,
                    after,
                    limit: Some(limit),
                    ..AuditFilter::default()
                })
                .await,
        ),
    };
    match answer {
        Ok(json) => {
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(())
        }
        Err(ClientError::Refused {
            status,
            code,
            message,
        }) => {
            let body = ErrorBody {
                error: ErrorDetail { code, message },
            };
            println!("{}", serde_json::to_string_pretty(&body)?);
            bail!("the server answered {status}")
        }
        Err(e @ ClientError::Transport(_)) => Err(e).with_context(|| format!("cannot reach {}", args.url)),
        Err(e) => Err(e.into()),
    }
}

/// An answer as JSON, to print.
fn to_json<T: Serialize>(answer: Result<T, ClientError>) -> Result<Value, ClientError> {
    answer.and_then(|a| serde_json::to_value(a).map_err(|e| ClientError::UnexpectedResponse(e.to_string())))
}

fn client(ca_cert: Option<&PathBuf>) -> Result<reqwest::Client> {
    let default_ca = PathBuf::from("./tessera-data/tls/ca.pem");
    let ca = ca_cert
        .cloned()
        .or_else(|| default_ca.exists().then_some(default_ca));
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca {
        let pem =
            std::fs::read(&path).with_context(|| format!("cannot read CA certificate {}", path.display()))?;
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem)?]);
    }
    Ok(builder.build()?)
}
