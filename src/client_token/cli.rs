//! What `vidgate token mint` and `vidgate token inspect` do, kept out of the binary so that it
//! is tested like the rest of the library.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{rfc3339, ClientTokens, Format, Refused, Verified};
use crate::clock::Timestamp;
use crate::policy::{self, Credential, DenyReason};
use crate::token::TokenId;

/// What to mint: the claims of a JSON object, then each flag given on top of it.
#[derive(Debug, Clone)]
pub struct MintOptions {
    /// The token format.
    pub format: Format,
    /// JWT: the key to sign with (default: the only key that can sign).
    pub kid: Option<String>,
    /// Claims to start from (`--claims`).
    pub claims: Map<String, Value>,
    /// `grants`, replacing the one in `claims`.
    pub grants: Option<Value>,
    /// The expiry, from now; defaults to an hour when `claims` sets none.
    pub expires_in: Option<Duration>,
    /// `session_limit`.
    pub session_limit: Option<u32>,
    /// `usage_expiration_time`, in seconds.
    pub usage_expiration_time: Option<u32>,
    /// The JWT's `jti` or the Ziggeo token's `nonce`; a random one by default.
    pub nonce: Option<String>,
}

/// The expiry a minted token gets when neither the claims nor a flag set one.
pub const DEFAULT_MINT_LIFETIME: Duration = Duration::from_secs(3600);

/// Mint a token, then verify it as the gateway would, so that a token the gateway would refuse
/// is an error here rather than a puzzle later.
pub fn mint(tokens: &ClientTokens, options: MintOptions, now: Timestamp) -> Result<String, String> {
    let MintOptions {
        format,
        kid,
        mut claims,
        grants,
        expires_in,
        session_limit,
        usage_expiration_time,
        nonce,
    } = options;
    if let Some(grants) = grants {
        claims.insert("grants".into(), grants);
    }
    if !claims.contains_key("grants") {
        return Err("give the token's grants (--grants '{\"read\": \"all\"}')".into());
    }
    let (expiry, nonce_claim) = match format {
        Format::Jwt => ("exp", "jti"),
        Format::Ziggeo => ("expiration_date", "nonce"),
    };
    if expires_in.is_some() || !claims.contains_key(expiry) {
        let lifetime = expires_in.unwrap_or(DEFAULT_MINT_LIFETIME);
        let at = now.saturating_add(lifetime);
        claims.insert(expiry.into(), at.as_secs().into());
    }
    if let Some(limit) = session_limit {
        claims.insert("session_limit".into(), limit.into());
    }
    if let Some(secs) = usage_expiration_time {
        claims.insert("usage_expiration_time".into(), secs.into());
    }
    if let Some(nonce) = nonce {
        claims.insert(nonce_claim.into(), nonce.into());
    } else if !claims.contains_key(nonce_claim) {
        claims.insert(
            nonce_claim.into(),
            TokenId::generate().as_str().to_owned().into(),
        );
    }
    let claims = Value::Object(claims);
    let token = match format {
        Format::Jwt => {
            let kid = tokens
                .jwt()
                .signing_kid(kid.as_deref())
                .map_err(|e| e.to_string())?;
            tokens.jwt().sign(kid, &claims).map_err(|e| e.to_string())?
        }
        Format::Ziggeo => tokens
            .ziggeo()
            .ok_or("Ziggeo-format tokens are not configured ([client_tokens.ziggeo])")?
            .seal(&claims)?,
    };
    let inspection = inspect(tokens, &token, now);
    if !inspection.accepted {
        return Err(format!(
            "the token would be {}",
            inspection.line.trim_end_matches('.')
        ));
    }
    Ok(token)
}

/// The verdict of `vidgate token inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Whether the gateway would accept the token now (grants aside).
    pub accepted: bool,
    /// One line for a person: the verdict, why, and what the token holds.
    pub line: String,
}

/// Decode and verify a client token as the gateway would at `now`, and explain the verdict in
/// one line.
pub fn inspect(tokens: &ClientTokens, value: &str, now: Timestamp) -> Inspection {
    let value = value.trim();
    let format = Format::of(value);
    match tokens.verify(value, now) {
        Err(refused) => Inspection {
            accepted: false,
            line: format!(
                "refused: {}: {refused}{}",
                DenyReason::InvalidToken.as_str(),
                hint(&refused, value)
            ),
        },
        Ok(verified) => {
            let credential = Credential {
                token: &verified.token,
                owner: &verified.owner,
            };
            let summary = describe(&verified, tokens.leeway(), now);
            match policy::check_token(Some(credential), now) {
                Ok(_) => Inspection {
                    accepted: true,
                    line: format!("accepted: {} {summary}", format.name()),
                },
                Err(reason) => Inspection {
                    accepted: false,
                    line: format!("refused: {}: {} {summary}", reason.as_str(), format.name()),
                },
            }
        }
    }
}

/// A hint for the commonest mix-up: a server token given to `inspect`.
fn hint(refused: &Refused, value: &str) -> &'static str {
    let looks_like_server_token = TokenId::is_valid(value) && value.len() <= 64;
    match refused {
        Refused::ZiggeoNotConfigured | Refused::Ziggeo(_) if looks_like_server_token => {
            " (if this is a server-side token, it lives in the store: GET /v1/authtokens/{token} on the admin API)"
        }
        _ => "",
    }
}

/// What a verified token holds: `with grants {...}; expires ...; ...`.
fn describe(verified: &Verified, leeway: Duration, now: Timestamp) -> String {
    let token = &verified.token;
    let grants = serde_json::to_string(&token.grants).unwrap_or_default();
    let mut line = format!("with grants {grants}");
    match token.expiration_date {
        Some(end) => {
            let when = if end > now {
                format!("in {}", humantime::format_duration(rounded(now.until(end))))
            } else {
                format!(
                    "{} ago",
                    humantime::format_duration(rounded(end.until(now)))
                )
            };
            let verb = if end > now { "expires" } else { "expired" };
            line += &format!(
                "; {verb} {} ({when}, the {} leeway included)",
                rfc3339(end),
                humantime::format_duration(leeway)
            );
        }
        None => line += "; never expires",
    }
    if let Some(limit) = token.session_limit {
        line += &format!("; at most {limit} sessions");
    }
    if let Some(secs) = token.usage_expiration_time {
        line += &format!("; each session lasts {secs}s");
    }
    if token.needs_sessions() {
        let counter = match verified.format {
            Format::Jwt => "jti",
            Format::Ziggeo => "nonce",
        };
        line += &format!("; sessions counted per {counter} {:?}", verified.owner.id());
    }
    line += ".";
    line
}

fn rounded(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_token::{JwtKeys, ZiggeoFormat};
    use crate::config::Config;

    const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

    fn tokens() -> ClientTokens {
        let config = Config::from_toml_str(
            "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"s3cret\"\n\
             [client_tokens.ziggeo]\napplication_token = \"app\"\nencryption_key = \"zk\"\n",
        )
        .unwrap();
        ClientTokens::from_config(&config.client_tokens).unwrap()
    }

    fn options(format: Format) -> MintOptions {
        MintOptions {
            format,
            kid: None,
            claims: Map::new(),
            grants: Some(serde_json::json!({"read": "all"})),
            expires_in: None,
            session_limit: None,
            usage_expiration_time: None,
            nonce: None,
        }
    }

    #[test]
    fn minted_tokens_inspect_as_accepted_with_their_claims() {
        let t = tokens();
        let mut o = options(Format::Jwt);
        o.session_limit = Some(3);
        o.nonce = Some("n-1".into());
        let jwt = mint(&t, o, NOW).unwrap();
        let seen = inspect(&t, &jwt, NOW);
        assert!(seen.accepted, "{}", seen.line);
        assert_eq!(
            seen.line,
            "accepted: JWT with grants {\"read\":{\"resources\":[],\"session_owned\":false,\"all\":true}}; expires 2027-01-15T09:00:05Z \
             (in 1h 5s, the 5s leeway included); at most 3 sessions; sessions counted per jti \"n-1\"."
        );

        let ziggeo = mint(&t, options(Format::Ziggeo), NOW).unwrap();
        let seen = inspect(&t, &ziggeo, NOW);
        assert!(seen.accepted, "{}", seen.line);
        assert!(seen
            .line
            .starts_with("accepted: Ziggeo-format token with grants"));
    }

    #[test]
    fn refusals_say_why() {
        let t = tokens();
        let jwt = mint(&t, options(Format::Jwt), NOW).unwrap();
        let later = NOW.saturating_add(Duration::from_secs(7200));
        let seen = inspect(&t, &jwt, later);
        assert!(!seen.accepted);
        assert!(
            seen.line
                .starts_with("refused: token_expired: JWT with grants"),
            "{}",
            seen.line
        );
        assert!(seen
            .line
            .contains("expired 2027-01-15T09:00:05Z (59m 55s ago"));

        let other = ClientTokens::new(
            JwtKeys::from_config(
                &Config::from_toml_str(
                    "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"other\"\n",
                )
                .unwrap()
                .client_tokens
                .jwt_keys,
            )
            .unwrap(),
            Some(ZiggeoFormat::new("app", "zk")),
            Duration::from_secs(5),
        );
        assert_eq!(
            inspect(&other, &jwt, NOW).line,
            "refused: invalid_token: the JWT's signature does not verify with key \"k1\" (HS256)"
        );
        let server = inspect(
            &ClientTokens::default(),
            "0123456789abcdef0123456789abcdef",
            NOW,
        );
        assert!(server.line.contains("server-side token"), "{}", server.line);
    }

    #[test]
    fn mint_refuses_what_the_gateway_would_refuse() {
        let t = tokens();
        let mut o = options(Format::Jwt);
        o.grants = None;
        assert!(mint(&t, o, NOW).unwrap_err().contains("--grants"));
        let mut o = options(Format::Jwt);
        o.grants = Some(serde_json::json!({"read": {"bogus": 1}}));
        let error = mint(&t, o, NOW).unwrap_err();
        assert!(
            error.starts_with("the token would be refused: invalid_token: claim grants.read"),
            "{error}"
        );
        let mut o = options(Format::Jwt);
        o.kid = Some("k9".into());
        assert!(mint(&t, o, NOW).unwrap_err().contains("k9"));
    }
}
