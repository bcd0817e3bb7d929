//! The seed's device side, as far as tokens go: the trusted service gives Bob's device a user access token with a
//! refresh session, and the device keeps it fresh on its own, printing `token_will_expire` and refresh events.
//!
//! ```text
//! TESSERA_URL=https://127.0.0.1:8443 TESSERA_CA=tessera-data/tls/ca.pem TESSERA_KEY=<Communication account key> \
//!     cargo run -p tessera-client --example device_token
//! ```

use std::time::Duration;
use tessera_client::{
    CommunicationTokenCredential, CredentialEvent, DeviceRefresher, Endpoint, IdentityClient, IdentityKind,
    RefreshOptions, TokenRequest,
};

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut http = reqwest::Client::builder();
    if let Ok(ca) = std::env::var("TESSERA_CA") {
        http = http.tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(ca)?)?]);
    }
    let endpoint = Endpoint::with_client(env("TESSERA_URL")?, http.build()?);

    // The trusted service: Bob's token, with a two-hour session his device may refresh within.
    let trusted = IdentityClient::new(endpoint.clone(), env("TESSERA_KEY")?);
    let request = TokenRequest {
        expires_in_minutes: Some(60),
        session_minutes: Some(120),
        ..TokenRequest::scopes(&["chat"])
    };
    let (bob, issued) = trusted
        .issue_token_by_name("bob@contoso.com", IdentityKind::Human, &request)
        .await?;
    println!(
        "{} has a token until {}",
        bob.id,
        issued.token.expires_on.to_rfc3339()
    );

    // The device: refreshes through its session, ten minutes ahead, in the background.
    let refresher = DeviceRefresher::new(endpoint, issued.refresh_token.ok_or("no session was opened")?);
    let options = RefreshOptions {
        proactive: true,
        ..RefreshOptions::default()
    };
    let credential = CommunicationTokenCredential::new(Some(issued.token), refresher, options);
    let mut events = credential.subscribe();
    let token = credential.token().await?;
    println!("using a token that expires at {}", token.expires_on.to_rfc3339());
    // A real device runs for hours; the example watches the events for a moment.
    while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        match event {
            CredentialEvent::WillExpire(at) => println!("token_will_expire: {}", at.to_rfc3339()),
            CredentialEvent::Refreshed(until) => println!("refreshed until {}", until.to_rfc3339()),
            CredentialEvent::RefreshFailed(why, retry) => {
                println!("refresh failed ({why}); retry at {}", retry.to_rfc3339())
            }
        }
    }
    Ok(())
}
