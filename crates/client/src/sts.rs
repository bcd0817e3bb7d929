//! The STS (`/sts/v1.0/…`): a subscription key for a 10-minute bearer token, and an ISV's limited access tokens
//! for its clients' accounts.

use crate::{ClientError, Endpoint, KEY_HEADER, checked};
use reqwest::Method;
use tessera_wire::sts::LimitedAccessTokenRequest;

/// An account's STS client, authenticated by one of its subscription keys.
#[derive(Clone)]
pub struct StsClient {
    endpoint: Endpoint,
    key: String,
}

impl std::fmt::Debug for StsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsClient")
            .field("endpoint", &self.endpoint)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl StsClient {
    /// A client presenting `key`.
    pub fn new(endpoint: Endpoint, key: impl Into<String>) -> Self {
        Self {
            endpoint,
            key: key.into(),
        }
    }

    /// `POST /sts/v1.0/issueToken`: a bearer token for this account, valid 10 minutes.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] when the key is refused; transport errors.
    pub async fn issue_token(&self) -> Result<String, ClientError> {
        let request = self
            .endpoint
            .request(Method::POST, "/sts/v1.0/issueToken")
            .header(KEY_HEADER, &self.key);
        Ok(checked(request).await?.text().await?)
    }

    /// `POST /sts/v1.0/issueLimitedAccessToken?expiredTime=N`: as an approved ISV, a limited access token
    /// granting `flags` (a subset of the ISV's own) to the account `resource_id` (its ARM id), valid
    /// `expired_time_secs` (60 to 86400; the server's default, 3600, when `None`).
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (`NotAnIsv`, `FlagNotGrantable`, `InvalidExpiredTime`, …); transport errors.
    pub async fn issue_limited_access_token(
        &self,
        resource_id: &str,
        flags: &[&str],
        expired_time_secs: Option<u32>,
    ) -> Result<String, ClientError> {
        let path = match expired_time_secs {
            Some(secs) => format!("/sts/v1.0/issueLimitedAccessToken?expiredTime={secs}"),
            None => "/sts/v1.0/issueLimitedAccessToken".to_owned(),
        };
        let request = self
            .endpoint
            .request(Method::POST, &path)
            .header(KEY_HEADER, &self.key)
            .json(&LimitedAccessTokenRequest {
                resource_id: resource_id.to_owned(),
                feature_flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            });
        Ok(checked(request).await?.text().await?)
    }
}
