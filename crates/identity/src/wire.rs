//! Keystone's JSON: the typed bodies the `/v3` handlers answer with, and the
//! documented shape of the one request body they read.
//!
//! Responses are built here from identity types (`From`), serialized by serde,
//! and described by the same types' `utoipa::ToSchema`, so the OpenAPI document
//! and the wire can't drift apart. The request side stays parsed by hand in
//! [`crate::keystone`], because Keystone's exact refusal messages depend on
//! which part of the body is missing; [`AuthRequest`] only documents it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::{DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME};

/// `GET /v3`: the Identity API version keystoneauth1 discovers.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::VersionDocument)]
pub struct VersionDocument {
    pub version: Version,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Version)]
pub struct Version {
    /// `v3.14`.
    pub id: &'static str,
    /// `stable`.
    pub status: &'static str,
    pub updated: &'static str,
    pub links: Vec<Link>,
    #[serde(rename = "media-types")]
    pub media_types: Vec<MediaType>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Link)]
pub struct Link {
    pub rel: &'static str,
    pub href: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::MediaType)]
pub struct MediaType {
    pub base: &'static str,
    #[serde(rename = "type")]
    pub media_type: &'static str,
}

/// A token, as `POST` and `GET /v3/auth/tokens` answer it (the token itself
/// travels in the `X-Subject-Token` header).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::TokenResponse)]
pub struct TokenResponse {
    pub token: Token,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Token)]
pub struct Token {
    /// `["password"]`.
    pub methods: Vec<&'static str>,
    pub user: TokenUser,
    pub audit_ids: Vec<String>,
    /// ISO 8601 with microseconds, UTC (`2024-01-01T00:00:00.000000Z`).
    pub expires_at: String,
    pub issued_at: String,
    pub project: TokenProject,
    pub is_domain: bool,
    pub roles: Vec<Role>,
    pub catalog: Vec<CatalogEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Domain)]
pub struct Domain {
    pub id: &'static str,
    pub name: &'static str,
}

impl Domain {
    /// The one domain every user and project belongs to.
    pub const DEFAULT: Domain = Domain {
        id: DEFAULT_DOMAIN_ID,
        name: DEFAULT_DOMAIN_NAME,
    };
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::TokenUser)]
pub struct TokenUser {
    pub id: String,
    pub name: String,
    pub domain: Domain,
    /// Always null: vpnaas passwords do not expire.
    #[schema(required = true)]
    pub password_expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::TokenProject)]
pub struct TokenProject {
    pub id: String,
    pub name: String,
    pub domain: Domain,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Role)]
pub struct Role {
    pub id: String,
    pub name: String,
}

/// One service of the catalog (`network` = this server's Neutron API,
/// `identity` = its `/v3`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::CatalogEntry)]
pub struct CatalogEntry {
    #[serde(rename = "type")]
    pub service_type: &'static str,
    pub name: &'static str,
    pub id: &'static str,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Endpoint)]
pub struct Endpoint {
    pub id: &'static str,
    pub interface: &'static str,
    pub region: String,
    pub region_id: String,
    pub url: String,
}

/// Keystone's error envelope (also what keystonemiddleware answers in front of
/// Neutron when a token is missing or invalid).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = keystone::ErrorDetail)]
pub struct ErrorDetail {
    /// The HTTP status again.
    pub code: u16,
    /// The status's reason phrase.
    pub title: String,
    pub message: String,
}

// ------------------------------------------------------ request (documented)

/// `POST /v3/auth/tokens`: a password or an existing token, and optionally a
/// project scope (vpnaas issues project-scoped tokens only; without a scope the
/// user's default project is used).
#[derive(Debug, ToSchema)]
#[schema(as = keystone::AuthRequest)]
pub struct AuthRequest {
    pub auth: Auth,
}

#[derive(Debug, ToSchema)]
#[schema(as = keystone::Auth)]
pub struct Auth {
    pub identity: AuthIdentity,
    pub scope: Option<AuthScope>,
}

#[derive(Debug, ToSchema)]
#[schema(as = keystone::AuthIdentity)]
pub struct AuthIdentity {
    /// `password` or `token`.
    pub methods: Vec<String>,
    pub password: Option<PasswordMethod>,
    pub token: Option<TokenMethod>,
}

#[derive(Debug, ToSchema)]
#[schema(as = keystone::PasswordMethod)]
pub struct PasswordMethod {
    pub user: PasswordUser,
}

/// A user by id or by name (in the default domain).
#[derive(Debug, ToSchema)]
#[schema(as = keystone::PasswordUser)]
pub struct PasswordUser {
    pub id: Option<String>,
    pub name: Option<String>,
    pub password: String,
    pub domain: Option<DomainRef>,
}

#[derive(Debug, ToSchema)]
#[schema(as = keystone::TokenMethod)]
pub struct TokenMethod {
    pub id: String,
}

#[derive(Debug, ToSchema)]
#[schema(as = keystone::AuthScope)]
pub struct AuthScope {
    pub project: Option<ProjectRef>,
}

/// A project by id, or by name in the default domain.
#[derive(Debug, ToSchema)]
#[schema(as = keystone::ProjectRef)]
pub struct ProjectRef {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain: Option<DomainRef>,
}

#[derive(Debug, ToSchema)]
#[schema(as = keystone::DomainRef)]
pub struct DomainRef {
    pub id: Option<String>,
    pub name: Option<String>,
}
