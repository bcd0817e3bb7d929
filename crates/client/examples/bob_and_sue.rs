//! The seed's example end to end: the trusted service gives Bob's and Sue's devices user access tokens (with a
//! refresh session each); Bob's device, holding only its token, sends Sue a message by her name; Sue's device,
//! listening for events, hears of it at once, reads the thread and answers in it; Bob's device hears the answer.
//!
//! ```text
//! TESSERA_URL=https://127.0.0.1:8443 TESSERA_CA=tessera-data/tls/ca.pem TESSERA_KEY=<Communication account key> \
//!     cargo run -p tessera-client --example bob_and_sue
//! ```

use tessera_client::{
    ChatClient, ChatEvent, ChatEvents, ChatMessage, CommunicationTokenCredential, DeviceRefresher, Endpoint,
    IdentityClient, IdentityKind, RefreshOptions, TokenRequest,
};

fn env(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    std::env::var(name).map_err(|_| format!("set {name}").into())
}

/// The trusted service's part: a token for `name` with a two-hour device session; the device's part: a chat
/// client whose credential refreshes through that session.
async fn device(
    trusted: &IdentityClient,
    endpoint: &Endpoint,
    name: &str,
) -> Result<(String, ChatClient), Box<dyn std::error::Error>> {
    let request = TokenRequest {
        expires_in_minutes: Some(60),
        session_minutes: Some(120),
        ..TokenRequest::scopes(&["chat"])
    };
    let (identity, issued) = trusted
        .issue_token_by_name(name, IdentityKind::Human, &request)
        .await?;
    let refresher = DeviceRefresher::new(
        endpoint.clone(),
        issued.refresh_token.ok_or("no session was opened")?,
    );
    let credential =
        CommunicationTokenCredential::new(Some(issued.token), refresher, RefreshOptions::default());
    Ok((identity.id, ChatClient::new(endpoint.clone(), credential)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut http = reqwest::Client::builder();
    if let Ok(ca) = std::env::var("TESSERA_CA") {
        http = http.tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(ca)?)?]);
    }
    let endpoint = Endpoint::with_client(env("TESSERA_URL")?, http.build()?);
    let trusted = IdentityClient::new(endpoint.clone(), env("TESSERA_KEY")?);

    let (_, bob) = device(&trusted, &endpoint, "bob@contoso.com").await?;
    let (_, sue) = device(&trusted, &endpoint, "sue@contoso.com").await?;
    let mut bobs_events = bob.events();
    let mut sues_events = sue.events();
    bobs_events.connect().await?;
    sues_events.connect().await?;

    let (thread, _) = bob
        .send_direct("sue@contoso.com", "Hi Sue, lunch at noon?")
        .await?;
    println!("Bob wrote to Sue in {thread}");
    let heard = next_message(&mut sues_events).await?;
    println!("Sue's device hears: {:?} from {:?}", heard.content, heard.sender);
    for message in sue.messages(&thread, 10).await? {
        println!("Sue reads: {:?} from {:?}", message.content, message.sender);
    }
    sue.send(&thread, "Noon works.", Some("Sue")).await?;
    // Bob's device heard his own message first.
    next_message(&mut bobs_events).await?;
    let answer = next_message(&mut bobs_events).await?;
    println!("Bob's device hears: {:?}", answer.content);
    Ok(())
}

/// The next message posted in any of the device's threads.
async fn next_message(events: &mut ChatEvents) -> Result<ChatMessage, Box<dyn std::error::Error>> {
    while let Some(event) = events.next().await {
        if let ChatEvent::MessageReceived { message, .. } = event? {
            return Ok(message);
        }
    }
    Err("the event stream ended".into())
}
