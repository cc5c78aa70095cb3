//! Identity: who is calling and what they may touch.
//!
//! vpnaas embeds the part of Keystone v3 that OpenStack clients need
//! (`GET /v3`, password and token authentication with a project scope, token
//! validation and revocation, a service catalog pointing back at this server), so
//! one binary is a complete endpoint for `openstack` and openstacksdk. The same
//! users authenticate to the NSX API with HTTP basic auth.
//!
//! Tokens are 256-bit random strings; only their SHA-256 is stored, so a database
//! dump does not hand out sessions. Passwords are Argon2id hashes; every password
//! check goes through [`guard`] (bounded hashing, a short cache of successful
//! verifications, per-user lock-out, per-address throttling), because a check is
//! the one thing an unauthenticated caller can make expensive.

pub mod admin;
pub mod admin_api;
pub mod error;
pub mod guard;
pub mod keystone;
mod password;
pub mod request;
pub mod roles;
pub mod wire;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::Extensions;
use axum::http::request::Parts;
use base64::Engine;
use model::{Error, Result};
use rand::RngCore;
use store::identity::TokenRow;
use store::{Scope, Store, now_ms};

pub use error::KeystoneError;
pub use guard::AuthLimits;
pub use password::{hash_password, verify_password};

/// The fixed domain every user and project belongs to.
pub const DEFAULT_DOMAIN_ID: &str = "default";
/// That domain's name, as clients send it (`user_domain_name`; any case).
pub const DEFAULT_DOMAIN_NAME: &str = "Default";

/// The caller of a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    /// The user's id.
    pub user_id: String,
    /// The user's name; the actor recorded on the caller's writes.
    pub user_name: String,
    /// The project the token (or the basic-auth login) is scoped to.
    pub project_id: String,
    /// That project's name.
    pub project_name: String,
    /// The user's roles on that project, sorted: those granted and those they
    /// imply ([`roles::effective`]: `admin` brings `member` and `reader`).
    pub roles: Vec<String>,
}

impl AuthContext {
    /// Whether the caller holds `admin`, which sees and changes every project.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// Whether the caller may create/change objects of its own project
    /// (`role:member`, which `admin` implies, as in Keystone's role inference).
    pub fn is_member(&self) -> bool {
        self.is_admin() || self.roles.iter().any(|r| r == "member")
    }

    /// Whether the caller may read its own project's objects (`reader` and up).
    pub fn is_reader(&self) -> bool {
        self.is_member() || self.roles.iter().any(|r| r == "reader")
    }

    /// What the caller can see: an admin every project, anyone else its own.
    pub fn scope(&self) -> Scope {
        if self.is_admin() {
            Scope::All
        } else {
            Scope::Project(self.project_id.clone())
        }
    }
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The token itself, handed to the client once (`X-Subject-Token`); the
    /// store keeps only its hash.
    pub token: String,
    /// Whom it authenticates, scoped to which project.
    pub ctx: AuthContext,
    /// Keystone's `audit_ids` entry for the token.
    pub audit_id: String,
    /// Epoch milliseconds.
    pub issued_at: i64,
    /// Epoch milliseconds; `issued_at` plus the configured token lifetime.
    pub expires_at: i64,
}

/// Configuration of the identity service.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Base URL clients reach this server at (used in the catalog).
    pub public_url: String,
    /// How long an issued token is valid.
    pub token_ttl: Duration,
    /// The region the catalog's endpoints are in.
    pub region: String,
    /// Bounds on password authentication.
    pub limits: AuthLimits,
}

impl Default for IdentityConfig {
    fn default() -> IdentityConfig {
        IdentityConfig {
            public_url: "http://127.0.0.1:9696".into(),
            token_ttl: Duration::from_secs(3600),
            region: "RegionOne".into(),
            limits: AuthLimits::default(),
        }
    }
}

/// Why a password authentication failed. Each API words these in its envelope.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user or password, disabled user, no usable project: one answer, so
    /// callers can't probe which.
    #[error("authentication failed")]
    Unauthenticated,
    /// Too many consecutive failures (Keystone's `AccountLocked`).
    #[error("the account is locked for user: {user_id}")]
    Locked {
        /// The locked user's id.
        user_id: String,
    },
    /// Too many failures from the caller's address; retry after the window.
    #[error("too many failed authentications from this address")]
    Throttled {
        /// Until the address's window ends.
        retry_after: Duration,
    },
    /// Every hashing thread stayed busy for the whole wait.
    #[error("password checks are saturated")]
    Busy {
        /// How long to wait before retrying (the hashing wait, at least 1 s).
        retry_after: Duration,
    },
    /// The store failed while checking.
    #[error(transparent)]
    Other(Error),
}

impl From<Error> for AuthError {
    fn from(e: Error) -> AuthError {
        match e {
            Error::Unauthenticated => AuthError::Unauthenticated,
            e => AuthError::Other(e),
        }
    }
}

impl AuthError {
    /// The `Retry-After` value (whole seconds, at least 1), for 429 and 503.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AuthError::Throttled { retry_after } | AuthError::Busy { retry_after } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            _ => None,
        }
    }
}

/// The caller's source address, when the server recorded it (axum's
/// `ConnectInfo<SocketAddr>` in the request extensions); `None` otherwise, and
/// then nothing is throttled by address. IPv6 callers are grouped by /64 (one
/// host usually has the whole prefix); IPv4-mapped addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peer(pub Option<IpAddr>);

impl Peer {
    /// The throttling key of the connection's address in `ext`.
    pub fn from_extensions(ext: &Extensions) -> Peer {
        Peer(
            ext.get::<ConnectInfo<SocketAddr>>()
                .map(|c| throttle_key(c.0.ip())),
        )
    }
}

fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> std::result::Result<Self, Self::Rejection> {
        Ok(Peer::from_extensions(&parts.extensions))
    }
}

/// The password-check guards of one identity service.
struct Guard {
    hasher: guard::Hasher,
    verified: guard::VerifiedCache,
    lockout: guard::Lockout,
    throttle: guard::Throttle,
    busy_retry: Duration,
}

/// A validated token: its context, expiry (epoch ms) and when it was checked.
type CachedToken = (AuthContext, i64, Instant);

/// Authenticates users and validates tokens.
#[derive(Clone)]
pub struct Identity {
    store: Store,
    cfg: Arc<IdentityConfig>,
    cache: Arc<Mutex<HashMap<String, CachedToken>>>,
    guard: Arc<Guard>,
}

/// How long a validated token is trusted without asking the database again.
/// Bounds how late another replica notices a revocation.
const CACHE_TTL: Duration = Duration::from_secs(5);

impl Identity {
    /// The identity service over `store`; starts the password-hashing threads.
    pub fn new(store: Store, cfg: IdentityConfig) -> Identity {
        let l = &cfg.limits;
        let guard = Guard {
            hasher: guard::Hasher::new(l.hash_permits, l.hash_wait),
            verified: guard::VerifiedCache::new(l.verified_ttl, guard::MAX_ENTRIES),
            lockout: guard::Lockout::new(l.lockout_failure_attempts, l.lockout_duration, guard::MAX_ENTRIES),
            throttle: guard::Throttle::new(l.throttle_failures, l.throttle_window, guard::MAX_ENTRIES),
            busy_retry: l.hash_wait.max(Duration::from_secs(1)),
        };
        Identity {
            store,
            cfg: Arc::new(cfg),
            cache: Arc::new(Mutex::new(HashMap::new())),
            guard: Arc::new(guard),
        }
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &IdentityConfig {
        &self.cfg
    }

    /// Password hashing counters (tests, diagnostics).
    pub fn hash_stats(&self) -> &guard::HashStats {
        self.guard.hasher.stats()
    }

    async fn verify(&self, password: &str, phc: &str) -> std::result::Result<bool, AuthError> {
        self.guard
            .hasher
            .verify(password, phc)
            .await
            .map_err(|guard::Refusal::Busy| AuthError::Busy {
                retry_after: self.guard.busy_retry,
            })
    }

    /// Checks a user's password (by user name or id), from `peer`. Wrong user,
    /// wrong password and disabled user are the same `Unauthenticated`, so
    /// callers can't probe which part was wrong; a locked user, a throttled
    /// address or a saturated hashing pool say so (see [`guard`]).
    pub async fn check_password(
        &self,
        user: &str,
        password: &str,
        peer: Peer,
    ) -> std::result::Result<store::identity::User, AuthError> {
        let g = &self.guard;
        if let Some(retry_after) = g.throttle.wait(peer.0) {
            return Err(AuthError::Throttled { retry_after });
        }
        let u = match self.store.user_find(user).await {
            Ok(u) => u,
            Err(Error::NotFound { .. }) => {
                // Same work as a real check, so timing does not reveal unknown users.
                self.verify(password, password::dummy_hash()).await?;
                g.throttle.failed(peer.0);
                return Err(AuthError::Unauthenticated);
            }
            Err(e) => return Err(e.into()),
        };
        // As Keystone: a locked account is refused before its password is looked at.
        if g.lockout.locked(&u.id) {
            return Err(AuthError::Locked { user_id: u.id });
        }
        let ok = g.verified.hit(&u.id, password, &u.password_hash)
            || self.verify(password, &u.password_hash).await?;
        if !ok {
            g.lockout.failed(&u.id);
            g.throttle.failed(peer.0);
            return Err(AuthError::Unauthenticated);
        }
        g.lockout.succeeded(&u.id);
        if !u.enabled {
            return Err(AuthError::Unauthenticated);
        }
        g.verified.insert(&u.id, password, &u.password_hash);
        Ok(u)
    }

    /// Builds the context of `user` scoped to `project` (id or name).
    pub async fn context_for(&self, user: &store::identity::User, project: &str) -> Result<AuthContext> {
        let p = self
            .store
            .project_find(project)
            .await
            .map_err(|_| Error::Unauthenticated)?;
        let roles = roles::effective(&self.store.roles_of(&user.id, &p.id).await?);
        if roles.is_empty() || !p.enabled {
            return Err(Error::Unauthenticated);
        }
        Ok(AuthContext {
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            project_id: p.id,
            project_name: p.name,
            roles,
        })
    }

    /// Issues a project-scoped token for an authenticated context.
    pub async fn issue(&self, ctx: AuthContext) -> Result<Issued> {
        let (token, hash) = store::new_token();
        let mut audit = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut audit);
        let audit_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(audit);
        let issued_at = now_ms();
        let expires_at = issued_at + self.cfg.token_ttl.as_millis() as i64;
        self.store
            .token_insert(
                &hash,
                &TokenRow {
                    user_id: ctx.user_id.clone(),
                    project_id: ctx.project_id.clone(),
                    audit_id: audit_id.clone(),
                    issued_at,
                    expires_at,
                },
            )
            .await?;
        Ok(Issued {
            token,
            ctx,
            audit_id,
            issued_at,
            expires_at,
        })
    }

    /// Validates a token; returns its context and expiry (epoch ms).
    pub async fn validate(&self, token: &str) -> Result<(AuthContext, i64)> {
        if token.is_empty() || token.len() > 512 {
            return Err(Error::Unauthenticated);
        }
        let hash = store::token_hash(token);
        let now = now_ms();
        if let Some((ctx, exp, at)) = self.cache.lock().ok().and_then(|c| c.get(&hash).cloned())
            && at.elapsed() < CACHE_TTL
            && exp > now
        {
            return Ok((ctx, exp));
        }
        let row = self.store.token_get(&hash).await?.ok_or(Error::Unauthenticated)?;
        if row.expires_at <= now {
            return Err(Error::Unauthenticated);
        }
        let user = self
            .store
            .user_find(&row.user_id)
            .await
            .map_err(|_| Error::Unauthenticated)?;
        if !user.enabled {
            return Err(Error::Unauthenticated);
        }
        let ctx = self.context_for(&user, &row.project_id).await?;
        if let Ok(mut c) = self.cache.lock() {
            if c.len() > 100_000 {
                c.clear();
            }
            c.insert(hash, (ctx.clone(), row.expires_at, Instant::now()));
        }
        Ok((ctx, row.expires_at))
    }

    /// Drops every cached validation of `user_id`'s tokens, so the next
    /// request with one reads the store again (after a revocation, or a
    /// change of the user's roles).
    pub fn forget_user(&self, user_id: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, (ctx, _, _)| ctx.user_id != user_id);
        }
    }

    /// Drops every cached validation of tokens scoped to `project_id`.
    pub fn forget_project(&self, project_id: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, (ctx, _, _)| ctx.project_id != project_id);
        }
    }

    /// Keystone's self-service password change: `original` must be the
    /// user's password (checked through the guard, like a login); then the
    /// new one replaces it and every token of the user is revoked.
    pub async fn change_password(
        &self,
        user_id: &str,
        original: &str,
        new: &str,
        peer: Peer,
    ) -> std::result::Result<(), KeystoneError> {
        let u = match self.check_password(user_id, original, peer).await {
            Ok(u) if u.id == user_id => u,
            Ok(_) | Err(AuthError::Unauthenticated) => return Err(KeystoneError::PasswordChange),
            Err(e) => return Err(e.into()),
        };
        let change = admin::UserChange {
            password: Some(new.to_string()),
            ..admin::UserChange::default()
        };
        admin::user_update(&self.store, &u.id, change).await?;
        self.forget_user(&u.id);
        Ok(())
    }

    /// Revokes a token.
    pub async fn revoke(&self, token: &str) -> Result<bool> {
        let hash = store::token_hash(token);
        if let Ok(mut c) = self.cache.lock() {
            c.remove(&hash);
        }
        self.store.token_delete(&hash).await
    }

    /// HTTP basic credentials (NSX API): the user's password, scoped to a project
    /// where the user holds a role, preferring `admin`.
    pub async fn basic(
        &self,
        user: &str,
        password: &str,
        project: Option<&str>,
        peer: Peer,
    ) -> std::result::Result<AuthContext, AuthError> {
        let u = self.check_password(user, password, peer).await?;
        let project = match project {
            Some(p) => p.to_string(),
            None => self
                .store
                .default_project_of(&u.id)
                .await?
                .ok_or(Error::Unauthenticated)?,
        };
        Ok(self.context_for(&u, &project).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_grouped_by_host_or_ipv6_prefix() {
        let ext = |a: &str| {
            let mut e = Extensions::new();
            e.insert(ConnectInfo(a.parse::<SocketAddr>().unwrap()));
            Peer::from_extensions(&e).0.map(|ip| ip.to_string())
        };
        assert_eq!(ext("192.0.2.1:5000").as_deref(), Some("192.0.2.1"));
        assert_eq!(ext("[::ffff:192.0.2.1]:5000").as_deref(), Some("192.0.2.1"));
        assert_eq!(
            ext("[2001:db8:1:2:3:4:5:6]:5000").as_deref(),
            Some("2001:db8:1:2::")
        );
        assert_eq!(Peer::from_extensions(&Extensions::new()), Peer(None));
    }
}
