//! The one place where errors become Neutron's `{"NeutronError": {...}}` envelope.
//! Exception type names and message templates are Neutron's (neutron-lib
//! `exceptions/vpn.py`, webob for request-shape errors), because clients show
//! them to operators and some scripts match on them.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use model::{Error, Kind, Violation};

use crate::wire::{ErrorBody, ErrorDetail};

/// Everything a Neutron handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A store or validation failure, mapped to Neutron's exception per kind.
    #[error(transparent)]
    Model(#[from] Error),
    /// A request-shape error (webob `HTTPBadRequest`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A converter failed (neutron-lib `InvalidInput`).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The caller's role does not allow the action (oslo.policy).
    #[error("policy does not allow {0}")]
    Policy(String),
    /// A path no route matches.
    #[error("no such resource")]
    NoRoute,
    /// A body over the server's size limit.
    #[error("request body too large")]
    TooLarge,
    /// neutron-lib's `BadRequest`: "Bad {resource} request: {msg}." (e.g. a
    /// `limit` that is not a number).
    #[error("bad {resource} request: {msg}")]
    BadRequestFor {
        /// The resource the request was about (`ikepolicy`, ...).
        resource: &'static str,
        /// What was wrong with it.
        msg: String,
    },
    /// A body that is not JSON (neutron's `MalformedRequestBody`).
    #[error("malformed request body")]
    MalformedBody,
    /// `GET /v2.0/extensions/{alias}` of an alias this server does not have.
    #[error("no extension {0}")]
    ExtensionNotFound(String),
    /// A `flavor_id` on a VPN service: the flavors plugin is not loaded.
    #[error("flavors plugin not loaded")]
    FlavorsPluginNotLoaded,
    /// No port with this id is visible (ports are derived, not a stored kind).
    #[error("port {0} not found")]
    PortNotFound(String),
}

/// What an error answers: a `NeutronError` envelope, or for missing or invalid
/// credentials keystonemiddleware's Keystone-style 401 (which is what
/// neutron-server, behind keystonemiddleware, sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A `NeutronError` body with this status.
    Neutron {
        /// The HTTP status.
        status: StatusCode,
        /// Neutron's exception name (the envelope's `type`).
        kind: &'static str,
        /// The envelope's `message`.
        message: String,
    },
    /// Keystone-style 401: missing or invalid credentials.
    Unauthorized,
}

fn answer(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Answer {
    Answer::Neutron {
        status,
        kind,
        message: message.into(),
    }
}

fn envelope(status: StatusCode, kind: &str, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            neutron_error: ErrorDetail {
                kind: kind.to_string(),
                message,
                detail: String::new(),
            },
        }),
    )
        .into_response()
}

/// A Neutron error for a failure at the HTTP level (before or around any
/// handler: unsupported method, body or URL too long, timeouts, overload), with
/// webob's exception names as neutron-server answers them.
pub fn http_error(status: StatusCode, message: impl Into<String>) -> Response {
    let kind = match status.as_u16() {
        400 => "HTTPBadRequest",
        401 => "HTTPUnauthorized",
        403 => "HTTPForbidden",
        404 => "HTTPNotFound",
        405 => "HTTPMethodNotAllowed",
        408 => "HTTPRequestTimeout",
        411 => "HTTPLengthRequired",
        413 => "HTTPRequestEntityTooLarge",
        414 => "HTTPRequestURITooLong",
        415 => "HTTPUnsupportedMediaType",
        429 => "HTTPTooManyRequests",
        431 => "HTTPRequestHeaderFieldsTooLarge",
        503 => "HTTPServiceUnavailable",
        504 => "HTTPGatewayTimeout",
        s if s >= 500 => "HTTPInternalServerError",
        _ => "HTTPClientError",
    };
    envelope(status, kind, message.into())
}

fn not_found(kind: Kind, id: &str) -> (&'static str, String) {
    match kind {
        Kind::IkePolicy => ("IKEPolicyNotFound", format!("IKEPolicy {id} could not be found")),
        Kind::IpsecPolicy => (
            "IPsecPolicyNotFound",
            format!("IPsecPolicy {id} could not be found"),
        ),
        Kind::VpnService => (
            "VPNServiceNotFound",
            format!("VPNService {id} could not be found"),
        ),
        Kind::EndpointGroup => (
            "VPNEndpointGroupNotFound",
            format!("Endpoint group {id} could not be found"),
        ),
        Kind::Connection => (
            "IPsecSiteConnectionNotFound",
            format!("ipsec_site_connection {id} not found"),
        ),
        Kind::Gateway => ("RouterNotFound", format!("Router {id} could not be found")),
        Kind::Subnet => ("SubnetNotFound", format!("Subnet {id} could not be found.")),
        Kind::Network => ("NetworkNotFound", format!("Network {id} could not be found.")),
        // Objects Neutron has no resource for (identity, NSX-only kinds).
        _ => ("NotFound", format!("The resource {id} could not be found.")),
    }
}

fn in_use(kind: Kind, id: &str) -> (StatusCode, &'static str, String) {
    let c = StatusCode::CONFLICT;
    match kind {
        Kind::IkePolicy => (
            c,
            "IKEPolicyInUse",
            format!(
                "IKEPolicy {id} is in use by existing IPsecSiteConnection and can't be updated or deleted"
            ),
        ),
        Kind::IpsecPolicy => (
            c,
            "IPsecPolicyInUse",
            format!(
                "IPsecPolicy {id} is in use by existing IPsecSiteConnection and can't be updated or deleted"
            ),
        ),
        Kind::VpnService => (c, "VPNServiceInUse", format!("VPNService {id} is still in use")),
        // Neutron raises this one as a BadRequest.
        Kind::EndpointGroup => (
            StatusCode::BAD_REQUEST,
            "EndpointGroupInUse",
            format!("Endpoint group {id} is in use and cannot be deleted"),
        ),
        Kind::Gateway => (c, "RouterInUse", format!("Router {id} still has ports")),
        Kind::Network => (
            c,
            "NetworkInUse",
            format!(
                "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
            ),
        ),
        Kind::Subnet => (
            c,
            "SubnetInUse",
            format!(
                "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
            ),
        ),
        _ => (c, "InUse", format!("The resource {id} is in use.")),
    }
}

/// neutron-vpnaas's refusals of a change to what a VPN object uses (a
/// router's gateway or interfaces), and Neutron's own for the core objects.
fn used_by(kind: Kind, id: &str, user_kind: Kind, user: &str) -> (&'static str, String) {
    match (kind, user_kind) {
        (Kind::Gateway, Kind::VpnService) => (
            "RouterInUseByVPNService",
            format!("Router {id} is used by VPNService {user}"),
        ),
        (Kind::Subnet, Kind::VpnService) => (
            "SubnetInUseByVPNService",
            format!("Subnet {id} is used by VPNService {user}"),
        ),
        (Kind::Subnet, Kind::EndpointGroup) => (
            "SubnetInUseByEndpointGroup",
            format!("Subnet {id} is used by endpoint group {user}"),
        ),
        (Kind::Network, Kind::Gateway) => (
            "NetworkInUse",
            format!(
                "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
            ),
        ),
        _ => ("InUse", format!("The resource {id} is in use.")),
    }
}

fn violation(v: &Violation) -> (&'static str, String) {
    use Violation::*;
    match v {
        Field { field, reason } => (
            "HTTPBadRequest",
            format!("Invalid input for {field}. Reason: {reason}."),
        ),
        DpdTimeoutNotAboveInterval => (
            "IPsecSiteConnectionDpdIntervalValueError",
            "ipsec_site_connection dpd_timeout is equal to or less than dpd_interval".into(),
        ),
        MtuTooSmall { mtu, ip_version } => (
            "IPsecSiteConnectionMtuError",
            format!("ipsec_site_connection MTU {mtu} is too small for ipv{ip_version}"),
        ),
        PeerCidrInvalid { cidr } => (
            "IPsecSiteConnectionPeerCidrError",
            format!("ipsec_site_connection peer cidr {cidr} is invalid CIDR"),
        ),
        MixedPeerCidrVersions => (
            "MixedIPVersionsForPeerCidrs",
            "Peer CIDRs do not have the same IP version, as required for IPSec site-to-site connection"
                .into(),
        ),
        MixedEndpointVersions { group } => (
            "MixedIPVersionsForIPSecEndpoints",
            format!(
                "Endpoints in group {group} do not have the same IP version, as required for IPSec site-to-site connection"
            ),
        ),
        MixedConnectionVersions => (
            "MixedIPVersionsForIPSecConnection",
            "IP versions are not compatible between peer and local endpoints".into(),
        ),
        MissingPeerCidrs => (
            "MissingPeerCidrs",
            "Missing peer CIDRs for IPsec site-to-site connection".into(),
        ),
        EndpointGroupWithSubnetService { side } => {
            let s = if *side == model::error::Side::Both {
                "s"
            } else {
                ""
            };
            (
                "InvalidEndpointGroup",
                format!(
                    "Endpoint group{s} {} cannot be specified, when VPN Service has subnet specified",
                    side.as_str()
                ),
            )
        }
        PeerCidrsWithEndpointGroups => (
            "PeerCidrsInvalid",
            "Peer CIDRs cannot be specified, when using endpoint groups".into(),
        ),
        MissingEndpointGroup { side } => {
            let s = if *side == model::error::Side::Both {
                "s"
            } else {
                ""
            };
            (
                "MissingRequiredEndpointGroup",
                format!(
                    "Missing endpoint group{s} {} for IPSec site-to-site connection",
                    side.as_str()
                ),
            )
        }
        WrongEndpointGroupType {
            group,
            actual,
            expected,
            ..
        } => (
            "WrongEndpointGroupType",
            format!("Endpoint group {group} type is '{actual}' and should be '{expected}'"),
        ),
        SubnetNotOnRouter { subnet, router } => (
            "SubnetIsNotConnectedToRouter",
            format!("Subnet {subnet} is not connected to Router {router}"),
        ),
        RouterNotExternal { router } => (
            "RouterIsNotExternal",
            format!("Router {router} has no external network gateway set"),
        ),
        NoExternalAddress { router, ip_version } => (
            "ExternalNetworkHasNoSubnet",
            format!("Router's {router} external network has no IPv{ip_version} subnet"),
        ),
        PeerAddressUnresolved { address } => (
            "VPNPeerAddressNotResolved",
            format!("Peer address {address} cannot be resolved"),
        ),
        InvalidEndpoint {
            endpoint,
            group_type,
            why,
        } => (
            "InvalidEndpointInEndpointGroup",
            format!("Endpoint '{endpoint}' is invalid for group type '{group_type}': {why}"),
        ),
        MissingEndpoints { group } => (
            "MissingEndpointForEndpointGroup",
            format!("No endpoints specified for endpoint group '{group}'"),
        ),
        SubnetNotFound { subnet } => (
            "NonExistingSubnetInEndpointGroup",
            format!("Subnet {subnet} in endpoint group does not exist"),
        ),
        IpsecUnsupported { resource, key, value } => (
            "IpsecValidationFailure",
            format!("IPSec does not support {resource} attribute {key} with value '{value}'"),
        ),
        ServiceDisabled { service, .. } => {
            ("VPNServiceDisabled", format!("VPNService {service} is disabled"))
        }
        StateInvalidToUpdate { state, id } => (
            "VPNStateInvalidToUpdate",
            format!("Invalid state {state} of vpnaas resource {id} for updating"),
        ),
        SubnetOverlap { cidr, network } => (
            "InvalidInput",
            format!(
                "Invalid input for operation: Requested subnet with cidr: {cidr} for network: {network} overlaps with another subnet."
            ),
        ),
        SubnetAlreadyAttached { subnet, router } => (
            "BadRequest",
            format!("Bad router request: Subnet {subnet} is already attached to router {router}."),
        ),
        SubnetOverlapsRouterInterface {
            subnet,
            cidr,
            other,
            other_cidr,
        } => (
            "BadRequest",
            format!(
                "Bad router request: Cidr {cidr} of subnet {subnet} overlaps with cidr {other_cidr} of subnet {other}."
            ),
        ),
        SubnetHasNoGatewayIp { subnet } => (
            "BadRequest",
            format!("Bad router request: Subnet {subnet} does not have a gateway IP."),
        ),
        NetworkNotExternal { network } => (
            "BadRequest",
            format!("Bad router request: Network {network} is not an external network."),
        ),
        AddressNotInSubnet { address, subnet } => (
            "InvalidIpForSubnet",
            format!("IP address {address} is not a valid IP for the specified subnet {subnet}."),
        ),
    }
}

impl ApiError {
    /// The status, exception type and message this error answers with; the
    /// single mapping from errors to Neutron's wire.
    pub fn answer(&self) -> Answer {
        let bad = StatusCode::BAD_REQUEST;
        match self {
            ApiError::BadRequest(m) => answer(bad, "HTTPBadRequest", m.clone()),
            ApiError::MalformedBody => answer(
                bad,
                "MalformedRequestBody",
                "Malformed request body: Cannot understand JSON.",
            ),
            ApiError::InvalidInput(m) => {
                answer(bad, "InvalidInput", format!("Invalid input for operation: {m}."))
            }
            ApiError::Policy(rule) => answer(
                StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                format!("rule:{rule} is disallowed by policy"),
            ),
            ApiError::NoRoute => answer(
                StatusCode::NOT_FOUND,
                "HTTPNotFound",
                "The resource could not be found.",
            ),
            ApiError::TooLarge => answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "HTTPRequestEntityTooLarge",
                "Request is too large.",
            ),
            ApiError::BadRequestFor { resource, msg } => {
                answer(bad, "BadRequest", format!("Bad {resource} request: {msg}."))
            }
            ApiError::ExtensionNotFound(alias) => answer(
                StatusCode::NOT_FOUND,
                "HTTPNotFound",
                format!("Extension with alias {alias} does not exist"),
            ),
            ApiError::FlavorsPluginNotLoaded => answer(
                StatusCode::NOT_FOUND,
                "FlavorsPluginNotLoaded",
                "Flavors plugin not found",
            ),
            ApiError::PortNotFound(id) => answer(
                StatusCode::NOT_FOUND,
                "PortNotFound",
                format!("Port {id} could not be found."),
            ),
            ApiError::Model(e) => model_answer(e),
        }
    }
}

fn model_answer(e: &Error) -> Answer {
    match e {
        Error::NotFound { kind, id } => {
            let (t, m) = not_found(*kind, id);
            answer(StatusCode::NOT_FOUND, t, m)
        }
        Error::RequestNotFound { request_id } => answer(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("The resource {request_id} could not be found."),
        ),
        Error::InUse { kind, id } => {
            let (s, t, m) = in_use(*kind, id);
            answer(s, t, m)
        }
        Error::UsedBy {
            kind,
            id,
            user_kind,
            user,
        } => {
            let (t, m) = used_by(*kind, id, *user_kind, user);
            answer(StatusCode::CONFLICT, t, m)
        }
        Error::InterfaceNotFound { router, subnet } => answer(
            StatusCode::NOT_FOUND,
            "RouterInterfaceNotFoundForSubnet",
            format!("Router {router} has no interface on subnet {subnet}"),
        ),
        Error::AddressesExhausted { network } => answer(
            StatusCode::CONFLICT,
            "IpAddressGenerationFailure",
            format!("No more IP addresses available on network {network}."),
        ),
        Error::Invalid(v) => {
            let (t, m) = violation(v);
            answer(StatusCode::BAD_REQUEST, t, m)
        }
        Error::Unsupported(m) => answer(StatusCode::BAD_REQUEST, "HTTPBadRequest", m.clone()),
        Error::StaleRevision { .. } => answer(
            StatusCode::PRECONDITION_FAILED,
            "RevisionNumberConstraintFailed",
            "The resource was changed by another request; retry.",
        ),
        Error::AlreadyExists { .. } | Error::AmbiguousName { .. } | Error::ReferenceGone { .. } => {
            answer(StatusCode::CONFLICT, "Conflict", e.to_string())
        }
        Error::SystemOwned { .. } => answer(
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
            "The request is not allowed by policy.",
        ),
        Error::Unauthenticated => Answer::Unauthorized,
        Error::Internal { .. } => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "HTTPInternalServerError",
            "Request Failed: internal server error while processing your request.",
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Model(e @ Error::Internal { .. }) = &self {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "request failed");
        }
        match self.answer() {
            Answer::Neutron {
                status,
                kind,
                message,
            } => envelope(status, kind, message),
            Answer::Unauthorized => identity::KeystoneError::Unauthorized.into_response(),
        }
    }
}

/// What Neutron handlers and converters return.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn body(r: Response) -> (StatusCode, serde_json::Value) {
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn envelopes() {
        let (s, v) = body(ApiError::from(Error::not_found(Kind::IkePolicy, "x")).into_response()).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            v,
            json!({"NeutronError": {"type": "IKEPolicyNotFound",
                   "message": "IKEPolicy x could not be found", "detail": ""}})
        );
        // Missing credentials: keystonemiddleware's 401, not a NeutronError.
        let r = ApiError::from(Error::Unauthenticated).into_response();
        assert!(r.headers().contains_key("WWW-Authenticate"));
        let (s, v) = body(r).await;
        assert_eq!(
            (s, v["error"]["code"].as_u64()),
            (StatusCode::UNAUTHORIZED, Some(401))
        );
    }

    /// This crate's own variants: status, type and message.
    #[test]
    fn own_errors() {
        let cases = [
            (ApiError::BadRequest("m".into()), 400, "HTTPBadRequest", "m"),
            (
                ApiError::InvalidInput("m".into()),
                400,
                "InvalidInput",
                "Invalid input for operation: m.",
            ),
            (
                ApiError::Policy("get_x".into()),
                403,
                "PolicyNotAuthorized",
                "rule:get_x is disallowed by policy",
            ),
            (
                ApiError::NoRoute,
                404,
                "HTTPNotFound",
                "The resource could not be found.",
            ),
            (
                ApiError::TooLarge,
                413,
                "HTTPRequestEntityTooLarge",
                "Request is too large.",
            ),
            (
                ApiError::BadRequestFor {
                    resource: "limit",
                    msg: "m".into(),
                },
                400,
                "BadRequest",
                "Bad limit request: m.",
            ),
            (
                ApiError::ExtensionNotFound("a".into()),
                404,
                "HTTPNotFound",
                "Extension with alias a does not exist",
            ),
            (
                ApiError::FlavorsPluginNotLoaded,
                404,
                "FlavorsPluginNotLoaded",
                "Flavors plugin not found",
            ),
            (
                ApiError::PortNotFound("p".into()),
                404,
                "PortNotFound",
                "Port p could not be found.",
            ),
        ];
        for (e, status, kind, message) in cases {
            match &e {
                ApiError::Model(_)
                | ApiError::BadRequest(_)
                | ApiError::MalformedBody
                | ApiError::InvalidInput(_)
                | ApiError::Policy(_)
                | ApiError::NoRoute
                | ApiError::TooLarge
                | ApiError::BadRequestFor { .. }
                | ApiError::ExtensionNotFound(_)
                | ApiError::FlavorsPluginNotLoaded
                | ApiError::PortNotFound(_) => {}
            }
            assert_eq!(
                e.answer(),
                Answer::Neutron {
                    status: StatusCode::from_u16(status).unwrap(),
                    kind,
                    message: message.into(),
                }
            );
        }
    }
}
