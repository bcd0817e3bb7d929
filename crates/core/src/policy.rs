//! The Limited Access rules: who may issue which token, and whether a request may use a gated feature.
//!
//! Both rules are evaluated twice over a token's life, at issuance and at every use, against the accounts as
//! they are *now*: an ISV that is cut off, or that loses a flag, stops its live tokens from working.

use crate::account::{Account, AccountKind};
use crate::arm::ResourceId;
use crate::claims::LimitedAccessClaims;
use crate::error::DomainError;
use crate::flags::{FeatureFlag, FlagSet};

/// Default lifetime of a limited access token, seconds.
pub const LAT_DEFAULT_LIFETIME_SECS: i64 = 3600;
/// Shortest lifetime an ISV may ask for, seconds.
pub const LAT_MIN_LIFETIME_SECS: i64 = 60;
/// Longest lifetime an ISV may ask for, seconds.
pub const LAT_MAX_LIFETIME_SECS: i64 = 86_400;

/// Parses the `expiredTime` query value: absent → the default; otherwise an integer in range.
pub fn lat_lifetime(expired_time: Option<&str>) -> Result<i64, DomainError> {
    let bad = DomainError::InvalidLifetime {
        min: LAT_MIN_LIFETIME_SECS,
        max: LAT_MAX_LIFETIME_SECS,
    };
    let Some(raw) = expired_time else {
        return Ok(LAT_DEFAULT_LIFETIME_SECS);
    };
    let secs: i64 = raw.trim().parse().map_err(|_| bad.clone())?;
    if (LAT_MIN_LIFETIME_SECS..=LAT_MAX_LIFETIME_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(bad)
    }
}

/// May `isv` issue a token granting `requested` to `target`?
pub fn authorize_issuance(isv: &Account, target: &Account, requested: FlagSet) -> Result<(), DomainError> {
    if !isv.is_active_isv() {
        return Err(DomainError::NotAnIsv);
    }
    if requested.is_empty() {
        return Err(DomainError::NoFeatureFlags);
    }
    if let Some(flag) = requested.difference(isv.grantable_flags()).iter().next() {
        return Err(DomainError::FlagNotGrantable(flag.name().to_owned()));
    }
    if target.kind() != AccountKind::Face {
        return Err(DomainError::InvalidTarget(
            "limited access tokens are for Face accounts".into(),
        ));
    }
    if target.disabled {
        return Err(DomainError::InvalidTarget("the account is disabled".into()));
    }
    Ok(())
}

/// May `account` be made an ISV for `flags`? Only flags it holds itself.
pub fn authorize_isv_grant(account: &Account, flags: FlagSet) -> Result<(), DomainError> {
    if flags.is_empty() {
        return Err(DomainError::NoFeatureFlags);
    }
    match flags.difference(account.approved_flags).iter().next() {
        Some(flag) => Err(DomainError::FlagNotHeld(flag.name().to_owned())),
        None => Ok(()),
    }
}

/// Why the gate allowed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// The account holds the flag itself.
    OwnApproval,
    /// A limited access token from an ISV.
    Token {
        /// The token's `jti`.
        jti: String,
        /// The issuing ISV.
        isv: ResourceId,
    },
}

/// Why the gate refused a request. `code()` is stable and documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// The calling account is disabled.
    AccountDisabled,
    /// No approval and no token.
    NotApproved,
    /// The token failed verification (signature, type, issuer, audience, time or key); the code says which.
    InvalidToken(&'static str),
    /// The token names another account.
    TokenForOtherAccount,
    /// The token does not carry the flag.
    FlagNotInToken,
    /// The issuing ISV is unknown, disabled or cut off.
    IsvNotActive,
    /// The token was issued before the latest disable of its account or of its ISV, or before the ISV's latest
    /// cut-off: re-enabling or re-granting does not revive it.
    TokenRevoked,
    /// The ISV may no longer grant this flag.
    IsvMayNotGrant,
}

impl DenyReason {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AccountDisabled => "AccountDisabled",
            Self::NotApproved => "NotApproved",
            Self::InvalidToken(code) => code,
            Self::TokenForOtherAccount => "TokenForOtherAccount",
            Self::FlagNotInToken => "FlagNotInToken",
            Self::IsvNotActive => "IsvNotActive",
            Self::TokenRevoked => "TokenRevoked",
            Self::IsvMayNotGrant => "IsvMayNotGrant",
        }
    }

    /// A sentence for the caller.
    pub fn message(&self, flag: FeatureFlag) -> String {
        match self {
            Self::AccountDisabled => "the account is disabled".into(),
            Self::NotApproved => format!(
                "this operation requires Limited Access approval for {flag}; the account is not approved and no LimitedAccessToken was sent"
            ),
            Self::InvalidToken(code) => format!("the LimitedAccessToken is not valid ({code})"),
            Self::TokenForOtherAccount => "the LimitedAccessToken was issued for another account".into(),
            Self::FlagNotInToken => format!("the LimitedAccessToken does not grant {flag}"),
            Self::IsvNotActive => "the ISV that issued the LimitedAccessToken is no longer active".into(),
            Self::TokenRevoked => {
                "the LimitedAccessToken was issued before its account or its ISV was last disabled or cut off"
                    .into()
            }
            Self::IsvMayNotGrant => {
                format!("the ISV that issued the LimitedAccessToken may no longer grant {flag}")
            }
        }
    }
}

/// A verified limited access token and the current state of the ISV it names (`None` if unknown).
#[derive(Debug, Clone, Copy)]
pub struct TokenEvidence<'a> {
    /// Claims whose signature, type, issuer, audience and time window were already checked.
    pub claims: &'a LimitedAccessClaims,
    /// The issuing ISV as stored now.
    pub isv: Option<&'a Account>,
}

/// The gate: may `caller` use `flag`, given an optional verified token?
///
/// A presented token must name the caller even when the caller holds the flag itself: a request never carries
/// a token for someone else without being refused.
pub fn decide(
    flag: FeatureFlag,
    caller: &Account,
    token: Option<TokenEvidence<'_>>,
) -> Result<Grant, DenyReason> {
    if caller.disabled {
        return Err(DenyReason::AccountDisabled);
    }
    if token.is_some_and(|t| t.claims.sub != caller.resource_id) {
        return Err(DenyReason::TokenForOtherAccount);
    }
    if token.is_some_and(|t| caller.revoked_token(t.claims.iat)) {
        return Err(DenyReason::TokenRevoked);
    }
    if caller.approved_flags.contains(flag) {
        return Ok(Grant::OwnApproval);
    }
    let Some(TokenEvidence { claims, isv }) = token else {
        return Err(DenyReason::NotApproved);
    };
    if !claims.flags.contains(flag) {
        return Err(DenyReason::FlagNotInToken);
    }
    let isv = isv
        .filter(|a| a.resource_id == claims.isv && a.is_active_isv())
        .ok_or(DenyReason::IsvNotActive)?;
    if isv.revoked_isv_token(claims.iat) {
        return Err(DenyReason::TokenRevoked);
    }
    if !isv.grantable_flags().contains(flag) {
        return Err(DenyReason::IsvMayNotGrant);
    }
    Ok(Grant::Token {
        jti: claims.jti.clone(),
        isv: isv.resource_id.clone(),
    })
}

/// Decides a requirement: every clause must be met, each by any one of its flags (tried in order). On success,
/// the flag that met each clause and its grant; on refusal, the first unmet clause's first flag and why.
pub fn decide_requirement(
    requirement: &[FlagSet],
    caller: &Account,
    token: Option<TokenEvidence<'_>>,
) -> Result<Vec<(FeatureFlag, Grant)>, (FeatureFlag, DenyReason)> {
    let mut grants = Vec::with_capacity(requirement.len());
    for clause in requirement {
        let mut refusal = None;
        let granted = clause.iter().find_map(|flag| match decide(flag, caller, token) {
            Ok(grant) => Some((flag, grant)),
            Err(reason) => {
                refusal.get_or_insert((flag, reason));
                None
            }
        });
        match (granted, refusal) {
            (Some(grant), _) => grants.push(grant),
            (None, Some(refusal)) => return Err(refusal),
            (None, None) => {}
        }
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{IsvGrant, KeyGenerations};
    use crate::time::Timestamp;
    use FeatureFlag::*;

    fn account(name: &str, kind: &str, approved: FlagSet) -> Account {
        Account {
            id: uuid::Uuid::new_v4(),
            resource_id: ResourceId::parse(&format!(
                "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/{kind}/{name}"
            ))
            .unwrap(),
            approved_flags: approved,
            isv: None,
            disabled: false,
            tokens_revoked_at: None,
            isv_tokens_revoked_at: None,
            user_tokens_revoked_at: None,
            key_generations: KeyGenerations::default(),
            created_at: Timestamp::from_secs(0),
        }
    }
    fn face(name: &str, approved: FlagSet) -> Account {
        account(name, "Microsoft.CognitiveServices/accounts", approved)
    }
    fn flags(f: &[FeatureFlag]) -> FlagSet {
        f.iter().copied().collect()
    }
    fn isv(grant: FlagSet) -> Account {
        let mut a = face("isv1", flags(&[FaceIdentification, FaceVerification]));
        a.isv = Some(IsvGrant {
            flags: grant,
            cut_off_at: None,
        });
        a
    }
    fn token(client: &Account, isv: &Account, granted: FlagSet) -> LimitedAccessClaims {
        LimitedAccessClaims {
            iss: "https://t".into(),
            aud: "a".into(),
            sub: client.resource_id.clone(),
            flags: granted,
            isv: isv.resource_id.clone(),
            iat: 0,
            nbf: 0,
            exp: 60,
            jti: "j1".into(),
        }
    }

    /// A re-grant or re-enable brings back the standing, not the tokens issued before the revocation.
    #[test]
    fn tokens_issued_before_a_revocation_stay_dead() {
        let (client, isv) = (face("client1", FlagSet::EMPTY), isv(flags(&[FaceIdentification])));
        let at = |iat| LimitedAccessClaims {
            iat,
            ..token(&client, &isv, flags(&[FaceIdentification]))
        };
        let (before, same_second, after) = (at(99), at(100), at(101));
        let revoked = Some(Timestamp::from_millis(100_400));
        let decided = |claims: &LimitedAccessClaims, client: &Account, isv: &Account| {
            decide(
                FaceIdentification,
                client,
                Some(TokenEvidence {
                    claims,
                    isv: Some(isv),
                }),
            )
            .map(|_| ())
        };

        let mut regranted = isv.clone();
        regranted.isv_tokens_revoked_at = revoked;
        let mut reenabled_isv = isv.clone();
        reenabled_isv.tokens_revoked_at = revoked;
        let mut reenabled_client = client.clone();
        reenabled_client.tokens_revoked_at = revoked;
        for (client, isv) in [
            (&client, &regranted),
            (&client, &reenabled_isv),
            (&reenabled_client, &isv),
        ] {
            assert_eq!(decided(&before, client, isv), Err(DenyReason::TokenRevoked));
            assert_eq!(decided(&same_second, client, isv), Err(DenyReason::TokenRevoked));
            assert_eq!(decided(&after, client, isv), Ok(()));
        }
        assert_eq!(regranted.revocations_settle_at(), Some(Timestamp::from_secs(101)));
        assert_eq!(isv.revocations_settle_at(), None);
        // The client's own approval does not excuse a revoked token it presents.
        let mut approved = reenabled_client.clone();
        approved.approved_flags = flags(&[FaceIdentification]);
        assert_eq!(decided(&before, &approved, &isv), Err(DenyReason::TokenRevoked));
    }

    #[test]
    fn lifetime_bounds() {
        assert_eq!(lat_lifetime(None), Ok(3600));
        assert_eq!(lat_lifetime(Some("60")), Ok(60));
        assert_eq!(lat_lifetime(Some("86400")), Ok(86400));
        for bad in ["59", "86401", "-1", "abc", "", "1e3", "3600.0"] {
            assert_eq!(
                lat_lifetime(Some(bad)).unwrap_err().code(),
                "InvalidExpiredTime",
                "{bad}"
            );
        }
    }

    #[test]
    fn issuance_needs_an_active_isv_holding_every_flag() {
        let isv = isv(flags(&[FaceIdentification]));
        let client = face("client1", FlagSet::EMPTY);
        assert_eq!(
            authorize_issuance(&isv, &client, flags(&[FaceIdentification])),
            Ok(())
        );
        assert_eq!(
            authorize_issuance(&isv, &client, flags(&[FaceIdentification, FaceVerification])),
            Err(DomainError::FlagNotGrantable("Face.Verification".into()))
        );
        assert_eq!(
            authorize_issuance(&isv, &client, FlagSet::EMPTY),
            Err(DomainError::NoFeatureFlags)
        );
        assert_eq!(
            authorize_issuance(&client, &client, flags(&[FaceIdentification])),
            Err(DomainError::NotAnIsv)
        );
        let mut cut = isv.clone();
        cut.isv = Some(IsvGrant {
            flags: flags(&[FaceIdentification]),
            cut_off_at: Some(Timestamp::from_secs(1)),
        });
        assert_eq!(
            authorize_issuance(&cut, &client, flags(&[FaceIdentification])),
            Err(DomainError::NotAnIsv)
        );
        let chat = account(
            "chat1",
            "Microsoft.Communication/communicationServices",
            FlagSet::EMPTY,
        );
        assert_eq!(
            authorize_issuance(&isv, &chat, flags(&[FaceIdentification]))
                .unwrap_err()
                .code(),
            "InvalidTarget"
        );
    }

    #[test]
    fn isv_grant_only_of_held_flags_and_loses_what_it_no_longer_holds() {
        let mut a = face("isv1", flags(&[FaceIdentification]));
        assert_eq!(
            authorize_isv_grant(&a, flags(&[FaceVerification]))
                .unwrap_err()
                .code(),
            "FlagNotHeld"
        );
        a.isv = Some(IsvGrant {
            flags: flags(&[FaceIdentification, FaceVerification]),
            cut_off_at: None,
        });
        assert_eq!(a.grantable_flags(), flags(&[FaceIdentification]));
    }

    #[test]
    fn gate_decisions() {
        let isv = isv(flags(&[FaceIdentification]));
        let client = face("client1", FlagSet::EMPTY);
        let other = face("client2", FlagSet::EMPTY);
        let claims = token(&client, &isv, flags(&[FaceIdentification]));
        fn ev<'a>(claims: &'a LimitedAccessClaims, isv: Option<&'a Account>) -> Option<TokenEvidence<'a>> {
            Some(TokenEvidence { claims, isv })
        }

        assert_eq!(
            decide(FaceIdentification, &client, None),
            Err(DenyReason::NotApproved)
        );
        assert_eq!(
            decide(FaceIdentification, &client, ev(&claims, Some(&isv))),
            Ok(Grant::Token {
                jti: "j1".into(),
                isv: isv.resource_id.clone()
            })
        );
        assert_eq!(
            decide(FaceVerification, &client, ev(&claims, Some(&isv))),
            Err(DenyReason::FlagNotInToken)
        );
        assert_eq!(
            decide(FaceIdentification, &other, ev(&claims, Some(&isv))),
            Err(DenyReason::TokenForOtherAccount)
        );
        assert_eq!(
            decide(FaceIdentification, &client, ev(&claims, None)),
            Err(DenyReason::IsvNotActive)
        );

        let mut cut = isv.clone();
        cut.isv.as_mut().unwrap().cut_off_at = Some(Timestamp::from_secs(5));
        assert_eq!(
            decide(FaceIdentification, &client, ev(&claims, Some(&cut))),
            Err(DenyReason::IsvNotActive)
        );

        let mut narrowed = isv.clone();
        narrowed.isv.as_mut().unwrap().flags = flags(&[FaceVerification]);
        assert_eq!(
            decide(FaceIdentification, &client, ev(&claims, Some(&narrowed))),
            Err(DenyReason::IsvMayNotGrant)
        );

        let mut unapproved = isv.clone();
        unapproved.approved_flags = FlagSet::EMPTY;
        assert_eq!(
            decide(FaceIdentification, &client, ev(&claims, Some(&unapproved))),
            Err(DenyReason::IsvMayNotGrant)
        );

        let approved = face("client1", flags(&[FaceVerification]));
        assert_eq!(decide(FaceVerification, &approved, None), Ok(Grant::OwnApproval));
        let mut disabled = approved.clone();
        disabled.disabled = true;
        assert_eq!(
            decide(FaceVerification, &disabled, None),
            Err(DenyReason::AccountDisabled)
        );
    }

    #[test]
    fn a_token_naming_another_isv_than_the_one_looked_up_is_refused() {
        let isv_a = isv(flags(&[FaceIdentification]));
        let mut isv_b = isv_a.clone();
        isv_b.resource_id = face("isv2", FlagSet::EMPTY).resource_id;
        let client = face("client1", FlagSet::EMPTY);
        let claims = token(&client, &isv_a, flags(&[FaceIdentification]));
        let ev = Some(TokenEvidence {
            claims: &claims,
            isv: Some(&isv_b),
        });
        assert_eq!(
            decide(FaceIdentification, &client, ev),
            Err(DenyReason::IsvNotActive)
        );
    }

    #[test]
    fn requirements_need_every_clause_and_any_flag_of_each() {
        let isv = isv(flags(&[FaceIdentification, FaceVerification]));
        let client = face("client1", flags(&[FaceVerification]));
        let either = [flags(&[FaceIdentification, FaceVerification])];
        // The account's own Verification approval meets "either".
        assert_eq!(
            decide_requirement(&either, &client, None),
            Ok(vec![(FaceVerification, Grant::OwnApproval)])
        );
        // Identification and HighRisk: the token grants the first, nothing grants the second.
        let claims = token(&client, &isv, flags(&[FaceIdentification]));
        let ev = Some(TokenEvidence {
            claims: &claims,
            isv: Some(&isv),
        });
        let both = [flags(&[FaceIdentification]), flags(&[LimitedAccessHighRisk])];
        assert_eq!(
            decide_requirement(&both, &client, ev),
            Err((LimitedAccessHighRisk, DenyReason::FlagNotInToken))
        );
        assert_eq!(
            decide_requirement(&both[..1], &client, ev).map(|g| g.len()),
            Ok(1)
        );
        assert_eq!(decide_requirement(&[], &client, None), Ok(vec![]));
    }
}
