//! `tessera admin …`: a thin client of the admin HTTP API of a running server.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

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

/// Runs an admin command and prints the server's JSON answer.
pub async fn run(args: AdminArgs) -> Result<()> {
    let client = client(args.ca_cert.as_ref())?;
    let base = args.url.trim_end_matches('/');
    let account = |rid: &str, action: &str| {
        let rid = rid.trim_end_matches('/');
        if action.is_empty() {
            format!("{base}/admin{rid}")
        } else {
            format!("{base}/admin{rid}/{action}")
        }
    };
    let (method, url, body) = match args.command {
        AdminCommand::Account { command } => match command {
            AccountCommand::Create { resource_id, approve } => (
                Method::PUT,
                account(&resource_id, ""),
                Some(json!({"approvedFeatureFlags": approve})),
            ),
            AccountCommand::Show { resource_id } => (Method::GET, account(&resource_id, ""), None),
            AccountCommand::List { after, limit } => {
                let mut url = reqwest::Url::parse(&format!("{base}/admin/accounts"))?;
                url.query_pairs_mut().append_pair("limit", &limit.to_string());
                if let Some(after) = after {
                    url.query_pairs_mut().append_pair("after", &after);
                }
                (Method::GET, url.to_string(), None)
            }
            AccountCommand::Keys { resource_id } => (Method::POST, account(&resource_id, "listKeys"), None),
            AccountCommand::RegenerateKey {
                resource_id,
                key_name,
            } => (
                Method::POST,
                account(&resource_id, "regenerateKey"),
                Some(json!({"keyName": key_name})),
            ),
            AccountCommand::Approve { resource_id, flags } => (
                Method::PUT,
                account(&resource_id, "limitedAccess"),
                Some(json!({"featureFlags": flags})),
            ),
            AccountCommand::Disable { resource_id } => (Method::POST, account(&resource_id, "disable"), None),
            AccountCommand::Enable { resource_id } => (Method::POST, account(&resource_id, "enable"), None),
            AccountCommand::RevokeUserTokens { resource_id } => {
                (Method::POST, account(&resource_id, "revokeUserTokens"), None)
            }
        },
        AdminCommand::Isv { command } => match command {
            IsvCommand::Grant { resource_id, flags } => (
                Method::PUT,
                account(&resource_id, "isv"),
                Some(json!({"featureFlags": flags})),
            ),
            IsvCommand::CutOff { resource_id } => (Method::POST, account(&resource_id, "isv/cutOff"), None),
        },
        AdminCommand::Keys {
            command: KeysCommand::List,
        } => (Method::GET, format!("{base}/admin/keys"), None),
        AdminCommand::Keys {
            command: KeysCommand::Rotate,
        } => (Method::POST, format!("{base}/admin/keys/rotate"), None),
        AdminCommand::AuditCheckpoints { after, limit } => {
            let mut url = reqwest::Url::parse(&format!("{base}/admin/audit/checkpoints"))?;
            url.query_pairs_mut().append_pair("limit", &limit.to_string());
            if let Some(after) = after {
                url.query_pairs_mut().append_pair("after", &after.to_string());
            }
            (Method::GET, url.to_string(), None)
        }
        AdminCommand::Audit {
            actor,
            action,
            subject,
            outcome,
            isv,
            after,
            limit,
        } => {
            let mut url = reqwest::Url::parse(&format!("{base}/admin/audit"))?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("limit", &limit.to_string());
                for (name, value) in [
                    ("actor", actor),
                    ("action", action),
                    ("subject", subject),
                    ("outcome", outcome),
                    ("isv", isv),
                ] {
                    if let Some(v) = value {
                        q.append_pair(name, &v);
                    }
                }
                if let Some(after) = after {
                    q.append_pair("after", &after.to_string());
                }
            }
            (Method::GET, url.to_string(), None)
        }
    };
    let mut request = client.request(method, &url).bearer_auth(&args.admin_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let status = response.status();
    let text = response.text().await?;
    let pretty = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    println!("{pretty}");
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    Ok(())
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
