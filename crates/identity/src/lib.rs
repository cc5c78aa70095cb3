//! Identity: who is calling and what they may touch.
//!
//! vpnaas embeds the part of Keystone v3 that OpenStack clients need
//! (`GET /v3`, password and token authentication with a project scope, token
//! validation and revocation, a service catalog pointing back at this server), so
//! one binary is a complete endpoint for `openstack` and openstacksdk. The same
//! users authenticate to the NSX API with HTTP basic auth.
//!
//! Tokens are 256-bit random strings; only their SHA-256 is stored, so a database
//! dump does not hand out sessions. Passwords are Argon2id hashes.

pub mod keystone;
mod password;
pub mod request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use model::{Error, Result};
use rand::RngCore;
use sha2::{Digest, Sha256};
use store::identity::TokenRow;
use store::{Scope, Store};

pub use password::{hash_password, verify_password};

/// The fixed domain every user and project belongs to.
pub const DEFAULT_DOMAIN_ID: &str = "default";
pub const DEFAULT_DOMAIN_NAME: &str = "Default";

/// The caller of a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    pub user_id: String,
    pub user_name: String,
    pub project_id: String,
    pub project_name: String,
    pub roles: Vec<String>,
}

impl AuthContext {
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
    pub token: String,
    pub ctx: AuthContext,
    pub audit_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Configuration of the identity service.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Base URL clients reach this server at (used in the catalog).
    pub public_url: String,
    pub token_ttl: Duration,
    pub region: String,
}

/// A validated token: its context, expiry (epoch ms) and when it was checked.
type CachedToken = (AuthContext, i64, Instant);

/// Authenticates users and validates tokens.
#[derive(Clone)]
pub struct Identity {
    store: Store,
    cfg: Arc<IdentityConfig>,
    cache: Arc<Mutex<HashMap<String, CachedToken>>>,
}

/// How long a validated token is trusted without asking the database again.
/// Bounds how late another replica notices a revocation.
const CACHE_TTL: Duration = Duration::from_secs(5);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Identity {
    pub fn new(store: Store, cfg: IdentityConfig) -> Identity {
        Identity {
            store,
            cfg: Arc::new(cfg),
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.cfg
    }

    /// Checks a user's password (by user name or id). Any failure is the same
    /// `Unauthenticated`, so callers can't probe which part was wrong.
    pub async fn check_password(&self, user: &str, password: &str) -> Result<store::identity::User> {
        let u = match self.store.user_find(user).await {
            Ok(u) => u,
            Err(Error::NotFound { .. }) => {
                // Same work as a real check, so timing does not reveal unknown users.
                let pw = password.to_string();
                let _ = tokio::task::spawn_blocking(move || verify_password(&pw, dummy_hash())).await;
                return Err(Error::Unauthenticated);
            }
            Err(e) => return Err(e),
        };
        let hash = u.password_hash.clone();
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .unwrap_or(false);
        if !ok || !u.enabled {
            return Err(Error::Unauthenticated);
        }
        Ok(u)
    }

    /// Builds the context of `user` scoped to `project` (id or name).
    pub async fn context_for(&self, user: &store::identity::User, project: &str) -> Result<AuthContext> {
        let p = self
            .store
            .project_find(project)
            .await
            .map_err(|_| Error::Unauthenticated)?;
        let roles = self.store.roles_of(&user.id, &p.id).await?;
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
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let mut audit = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut audit);
        let audit_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(audit);
        let issued_at = now_ms();
        let expires_at = issued_at + self.cfg.token_ttl.as_millis() as i64;
        self.store
            .token_insert(
                &token_hash(&token),
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
        let hash = token_hash(token);
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

    /// Revokes a token.
    pub async fn revoke(&self, token: &str) -> Result<bool> {
        let hash = token_hash(token);
        if let Ok(mut c) = self.cache.lock() {
            c.remove(&hash);
        }
        self.store.token_delete(&hash).await
    }

    /// HTTP basic credentials (NSX API): the user's password, scoped to a project
    /// where the user holds a role, preferring `admin`.
    pub async fn basic(&self, user: &str, password: &str, project: Option<&str>) -> Result<AuthContext> {
        let u = self.check_password(user, password).await?;
        let project = match project {
            Some(p) => p.to_string(),
            None => self
                .store
                .default_project_of(&u.id)
                .await?
                .ok_or(Error::Unauthenticated)?,
        };
        self.context_for(&u, &project).await
    }
}

/// A real Argon2 hash of a random password, to spend equal time on unknown users.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}
