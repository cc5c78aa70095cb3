//! The one place where errors become NSX's `ApiError` envelope
//! `{"httpStatus", "error_code", "module_name", "error_message"}`. vmware-nsxlib
//! decides what to do from the HTTP status and `error_code` (404 → not found,
//! 412 → stale revision, 400 + 500030 → in use, 403 + 403 → bad credentials), so
//! those pairs are the contract. [`NsxError::answer`] is the one mapping; the
//! code table in the crate doc is checked against it by a test.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use model::{Error, Kind, Violation};

use crate::response::ErrorBody;

/// The `module_name` of request-shape, authentication and lookup errors.
pub const MODULE_COMMON: &str = "common-services";
/// The `module_name` of the VPN's own rules (`error_code` 110xxx, in use).
pub const MODULE_VPN: &str = "VPN";

/// NSX error codes this API answers with (see the table in the crate doc).
pub mod code {
    /// Request shape: not JSON, wrong type, missing required field, unknown enum
    /// value, value out of range, bad query parameter, body too large.
    pub const FIELD: i64 = 255;
    /// A rule across fields or objects failed.
    pub const RULE: i64 = 110_001;
    /// Something vpnaas does not implement (certificates, GMAC digests).
    pub const UNSUPPORTED: i64 = 110_002;
    /// A system-owned default profile can't be modified or deleted.
    pub const SYSTEM_OWNED: i64 = 110_003;
    /// A concurrent change made the request impossible (a referenced object
    /// vanished between checks), or a unique key is taken.
    pub const CONFLICT: i64 = 110_004;
    /// The IPSec VPN service of a session is disabled (realization state).
    pub const SERVICE_DISABLED: i64 = 110_199;
    /// The object is referenced by others (vmware-nsxlib: ResourceInUse).
    pub const IN_USE: i64 = 500_030;
    /// Missing or wrong credentials (vmware-nsxlib: InvalidCredentials).
    pub const BAD_CREDENTIALS: i64 = 403;
    /// Session cookie without its X-XSRF-TOKEN (vmware-nsxlib: BadXSRFToken).
    pub const BAD_XSRF: i64 = 98;
    /// Authenticated, but without the admin role.
    pub const NOT_ADMIN: i64 = 401;
    /// Unknown object id or path.
    pub const NOT_FOUND: i64 = 600;
    /// `_revision` missing or stale (vmware-nsxlib: StaleRevision).
    pub const STALE_REVISION: i64 = 206;
    /// Anything unexpected on the server side; details are only in the log.
    pub const INTERNAL: i64 = 100;
    /// 429: too many failed password checks from the caller's address
    /// (vmware-nsxlib: TooManyRequests, retried as ServerBusy).
    pub const THROTTLED: i64 = 110_005;
    /// 503: every password-hashing thread stayed busy (vmware-nsxlib:
    /// ServiceUnavailable, retried as ServerBusy).
    pub const BUSY: i64 = 110_006;
}

/// The NSX name of a canonical kind, as in `resource_type` and error messages.
pub fn nsx_type(kind: Kind) -> &'static str {
    match kind {
        Kind::IkePolicy => "IPSecVPNIKEProfile",
        Kind::IpsecPolicy => "IPSecVPNTunnelProfile",
        Kind::VpnService => "IPSecVPNService",
        Kind::Connection => "IPSecVPNSession",
        Kind::DpdProfile => "IPSecVPNDPDProfile",
        Kind::LocalEndpoint => "IPSecVPNLocalEndpoint",
        Kind::PeerEndpoint => "IPSecVPNPeerEndpoint",
        Kind::Gateway => "LogicalRouter",
        Kind::Subnet => "Subnet",
        Kind::Network => "Network",
        Kind::EndpointGroup => "EndpointGroup",
        Kind::Project => "Project",
        Kind::User => "User",
        Kind::SystemDefaults => "SystemDefaults",
        Kind::Node => "TransportNode",
    }
}

/// Everything an NSX handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NsxError {
    /// A model/store error. A `NotFound` here is about a *referenced* object
    /// (the target of the request is [`NsxError::NotFound`]).
    #[error(transparent)]
    Model(#[from] Error),
    /// The object the request names does not exist.
    #[error("object {0} not found")]
    NotFound(String),
    /// A request-shape error about one field (or the body as a whole).
    #[error("invalid {field}: {reason}")]
    Field {
        /// The field's name (`parent.child` inside nested objects).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A PUT without `_revision`.
    #[error("revision missing")]
    RevisionMissing,
    /// A request body over [`crate::MAX_BODY`] bytes.
    #[error("request body too large")]
    TooLarge,
    /// Missing or wrong credentials (basic auth or session cookie).
    #[error("bad credentials")]
    BadCredentials,
    /// A write with a session cookie but without its `X-XSRF-TOKEN`.
    #[error("bad XSRF token")]
    BadXsrf,
    /// Authenticated, but the user is no admin (NSX has no project scope).
    #[error("admin role required")]
    NotAdmin,
    /// No NSX route at this path (the path given).
    #[error("no such path {0}")]
    NoRoute(String),
    /// Too many failed password checks from the caller's address; retry after
    /// `retry_after` seconds.
    #[error("too many failed password checks")]
    Throttled {
        /// Seconds until a retry may succeed (`Retry-After`).
        retry_after: u64,
    },
    /// Every password-hashing thread stayed busy; retry after `retry_after`
    /// seconds.
    #[error("password checks busy")]
    Busy {
        /// Seconds until a retry may succeed (`Retry-After`).
        retry_after: u64,
    },
}

/// What an error answers: the HTTP status and the envelope's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The envelope's `error_code` (one of [`code`]).
    pub code: i64,
    /// The envelope's `module_name`.
    pub module: &'static str,
    /// The envelope's `error_message`.
    pub message: String,
}

impl Answer {
    fn new(status: StatusCode, code: i64, module: &'static str, message: impl Into<String>) -> Answer {
        Answer {
            status,
            code,
            module,
            message: message.into(),
        }
    }
}

impl NsxError {
    /// A request-shape error about `field`.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> NsxError {
        NsxError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Maps a store error about the request's target `id`: its own `NotFound`
    /// becomes [`NsxError::NotFound`]; everything else stays a model error.
    pub fn for_target(e: Error, id: &str) -> NsxError {
        match e {
            Error::NotFound { id: ref missing, .. } if missing == id => NsxError::NotFound(id.to_string()),
            e => NsxError::Model(e),
        }
    }

    /// The status, code, module and message this error answers with; the
    /// single mapping from errors to NSX's wire (the crate doc's table lists
    /// exactly the codes it produces, which a test checks).
    pub fn answer(&self) -> Answer {
        let bad = StatusCode::BAD_REQUEST;
        match self {
            NsxError::NotFound(id) => Answer::new(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                MODULE_COMMON,
                not_found_message(id),
            ),
            NsxError::Field { field, reason } => Answer::new(
                bad,
                code::FIELD,
                MODULE_COMMON,
                format!("Field level validation errors: {{{field}: {reason}}}"),
            ),
            NsxError::RevisionMissing => stale(),
            NsxError::TooLarge => Answer::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::FIELD,
                MODULE_COMMON,
                format!("The request body exceeds {} bytes.", crate::MAX_BODY),
            ),
            NsxError::BadCredentials => Answer::new(
                StatusCode::FORBIDDEN,
                code::BAD_CREDENTIALS,
                MODULE_COMMON,
                "The username/password combination is incorrect or the account specified has been locked.",
            ),
            NsxError::BadXsrf => Answer::new(
                StatusCode::FORBIDDEN,
                code::BAD_XSRF,
                MODULE_COMMON,
                "Bad XSRF token: send the X-XSRF-TOKEN header of the session.",
            ),
            NsxError::NotAdmin => Answer::new(
                StatusCode::FORBIDDEN,
                code::NOT_ADMIN,
                MODULE_COMMON,
                "The user does not have the admin role, which the NSX API requires.",
            ),
            NsxError::NoRoute(path) => Answer::new(
                StatusCode::NOT_FOUND,
                code::NOT_FOUND,
                MODULE_COMMON,
                format!("The requested URI : {path} could not be found."),
            ),
            NsxError::Throttled { .. } => Answer::new(
                StatusCode::TOO_MANY_REQUESTS,
                code::THROTTLED,
                MODULE_COMMON,
                "Too many failed authentication attempts from this address. Retry later.",
            ),
            NsxError::Busy { .. } => Answer::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::BUSY,
                MODULE_COMMON,
                "The server is too busy checking passwords to check this one now. Retry later.",
            ),
            NsxError::Model(e) => model_answer(e),
        }
    }

    /// Seconds to send as `Retry-After`, for the errors that have them.
    fn retry_after(&self) -> Option<u64> {
        match self {
            NsxError::Throttled { retry_after } | NsxError::Busy { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

fn model_answer(e: &Error) -> Answer {
    let bad = StatusCode::BAD_REQUEST;
    match e {
        Error::NotFound { kind, id } => Answer::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            MODULE_COMMON,
            format!(
                "The operation failed because object identifier {}/{id} is missing: Object identifiers are case sensitive..",
                nsx_type(*kind)
            ),
        ),
        // The `request_id` of a realization-state query: NSX answers it like
        // an unknown object id.
        Error::RequestNotFound { request_id } => Answer::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            MODULE_COMMON,
            not_found_message(request_id),
        ),
        Error::InUse { kind, id } | Error::UsedBy { kind, id, .. } => Answer::new(
            bad,
            code::IN_USE,
            MODULE_VPN,
            format!(
                "{} {id} is in use by other objects and can not be modified or deleted.",
                nsx_type(*kind)
            ),
        ),
        Error::InterfaceNotFound { router, subnet } => Answer::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            MODULE_COMMON,
            format!("LogicalRouter {router} has no interface on subnet {subnet}."),
        ),
        Error::AddressesExhausted { network } => Answer::new(
            bad,
            code::CONFLICT,
            MODULE_VPN,
            format!("No more IP addresses available on network {network}."),
        ),
        Error::SystemOwned { id, .. } => Answer::new(
            bad,
            code::SYSTEM_OWNED,
            MODULE_VPN,
            format!("The object {id} is system owned and can not be modified or deleted."),
        ),
        Error::Unsupported(m) => Answer::new(bad, code::UNSUPPORTED, MODULE_VPN, m.clone()),
        Error::Invalid(v) => {
            let c = if matches!(v, Violation::ServiceDisabled { .. }) {
                code::SERVICE_DISABLED
            } else {
                code::RULE
            };
            Answer::new(bad, c, MODULE_VPN, violation_message(v))
        }
        Error::StaleRevision { .. } => stale(),
        Error::AlreadyExists { .. } | Error::AmbiguousName { .. } | Error::ReferenceGone { .. } => {
            Answer::new(bad, code::CONFLICT, MODULE_VPN, e.to_string())
        }
        Error::Unauthenticated => NsxError::BadCredentials.answer(),
        Error::Internal { .. } => Answer::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            MODULE_COMMON,
            "General error has occurred.",
        ),
    }
}

/// An NSX error response. Every error this crate sends goes through here.
fn envelope(a: Answer) -> Response {
    let http_status = a
        .status
        .canonical_reason()
        .unwrap_or("ERROR")
        .to_ascii_uppercase()
        .replace([' ', '-'], "_");
    (
        a.status,
        Json(ErrorBody {
            http_status,
            error_code: a.code,
            module_name: a.module,
            error_message: a.message,
        }),
    )
        .into_response()
}

/// The code and module of a failure at the HTTP level (see [`http_error`]).
pub fn http_answer(status: StatusCode, message: impl Into<String>) -> Answer {
    let code = match status.as_u16() {
        400 | 411 | 413 | 414 | 415 | 431 => code::FIELD,
        401 | 403 => code::BAD_CREDENTIALS,
        404 => code::NOT_FOUND,
        s if s >= 500 && s != 503 && s != 504 => code::INTERNAL,
        s => i64::from(s),
    };
    Answer::new(status, code, MODULE_COMMON, message)
}

/// An NSX error for a failure at the HTTP level (before or around any handler:
/// unsupported method, body/URL/headers too large, timeouts, overload). Request
/// shape problems keep NSX's field-validation code; the rest carry the HTTP
/// status as their code (see the crate doc's table).
pub fn http_error(status: StatusCode, message: impl Into<String>) -> Response {
    envelope(http_answer(status, message))
}

/// The standard 404 for an unknown object id.
pub fn not_found_message(id: &str) -> String {
    format!("The requested object : {id} could not be found. Object identifiers are case sensitive.")
}

fn violation_message(v: &Violation) -> String {
    use Violation::*;
    match v {
        Field { field, reason } => format!("Invalid value for {field}: {reason}."),
        DpdTimeoutNotAboveInterval => "The DPD timeout must be greater than the probe interval.".into(),
        MtuTooSmall { mtu, ip_version } => format!("MTU {mtu} is too small for IPv{ip_version}."),
        PeerCidrInvalid { cidr } => format!("Peer subnet {cidr} is not a valid CIDR."),
        MixedPeerCidrVersions => "Peer subnets do not all have the same IP version.".into(),
        MixedEndpointVersions { group } => {
            format!("The subnets of {group} do not all have the same IP version.")
        }
        MixedConnectionVersions => {
            "Local and peer subnets of a session must have the same IP version.".into()
        }
        MissingPeerCidrs => "Peer subnets are missing.".into(),
        EndpointGroupWithSubnetService { side } => {
            format!(
                "Endpoint group {} can't be used with a subnet VPN service.",
                side.as_str()
            )
        }
        PeerCidrsWithEndpointGroups => "Peer CIDRs can't be used with endpoint groups.".into(),
        MissingEndpointGroup { side } => format!("Endpoint group {} is missing.", side.as_str()),
        WrongEndpointGroupType {
            group,
            side,
            actual,
            expected,
        } => format!(
            "Endpoint group {} ({group}) has type {actual}; {expected} is required.",
            side.as_str()
        ),
        SubnetNotOnRouter { subnet, router } => {
            format!("Subnet {subnet} is not attached to logical router {router}.")
        }
        RouterNotExternal { router } => {
            format!("Logical router {router} has no external address for IPSec VPN.")
        }
        NoExternalAddress { router, ip_version } => {
            format!("Logical router {router} has no IPv{ip_version} external address.")
        }
        PeerAddressUnresolved { address } => format!("Peer address {address} is not an IP address."),
        InvalidEndpoint {
            endpoint,
            group_type,
            why,
        } => format!("Endpoint {endpoint} is invalid for type {group_type}: {why}."),
        MissingEndpoints { group } => format!("Endpoint group {group} has no endpoints."),
        SubnetNotFound { subnet } => format!("Subnet {subnet} does not exist."),
        IpsecUnsupported { resource, key, value } => {
            format!("{resource} attribute {key} with value {value} is not supported.")
        }
        StateInvalidToUpdate { state, id } => format!("Object {id} can't be updated in state {state}."),
        ServiceDisabled { service, connection } => format!(
            "VPN service {service} associated with the session {connection} is disabled. Can not get the realization status."
        ),
        SubnetOverlap { cidr, network } => {
            format!("Subnet {cidr} overlaps another subnet of network {network}.")
        }
        SubnetAlreadyAttached { subnet, router } => {
            format!("Subnet {subnet} is already attached to LogicalRouter {router}.")
        }
        SubnetOverlapsRouterInterface { subnet, other, .. } => {
            format!("Subnet {subnet} overlaps subnet {other} of the same LogicalRouter.")
        }
        SubnetHasNoGatewayIp { subnet } => format!("Subnet {subnet} has no gateway address."),
        NetworkNotExternal { network } => format!("Network {network} is not external."),
        AddressNotInSubnet { address, subnet } => format!("Address {address} is not in subnet {subnet}."),
    }
}

impl IntoResponse for NsxError {
    fn into_response(self) -> Response {
        if let NsxError::Model(e @ Error::Internal { .. }) = &self {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "NSX request failed");
        }
        let retry_after = self.retry_after();
        let mut resp = envelope(self.answer());
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

fn stale() -> Answer {
    Answer::new(
        StatusCode::PRECONDITION_FAILED,
        code::STALE_REVISION,
        MODULE_COMMON,
        "The object was modified by somebody else. Please retry.",
    )
}

/// What NSX handlers and parsers return.
pub type NsxResult<T> = Result<T, NsxError>;

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
        let (s, v) = body(NsxError::NotFound("x".into()).into_response()).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            v,
            json!({"httpStatus": "NOT_FOUND", "error_code": 600, "module_name": "common-services",
                   "error_message": "The requested object : x could not be found. Object identifiers are case sensitive."})
        );
        let stale = Error::StaleRevision {
            kind: Kind::Connection,
            id: "x".into(),
            given: Some(0),
            current: 1,
        };
        let (s, v) = body(NsxError::from(stale).into_response()).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED);
        assert_eq!(
            v,
            json!({"httpStatus": "PRECONDITION_FAILED", "error_code": 206, "module_name": "common-services",
                   "error_message": "The object was modified by somebody else. Please retry."})
        );
        let (s, v) = body(NsxError::from(Error::in_use(Kind::IkePolicy, "i")).into_response()).await;
        assert_eq!(
            (s, v["error_code"].as_i64()),
            (StatusCode::BAD_REQUEST, Some(500_030))
        );
        let (s, v) = body(NsxError::from(Error::not_found(Kind::Gateway, "g")).into_response()).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(v["error_message"].as_str().unwrap().contains("LogicalRouter/g"));
        let (s, v) = body(NsxError::BadCredentials.into_response()).await;
        assert_eq!((s, v["error_code"].as_i64()), (StatusCode::FORBIDDEN, Some(403)));
        let (s, v) = body(NsxError::TooLarge.into_response()).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(v["httpStatus"], "PAYLOAD_TOO_LARGE");
        let target = NsxError::for_target(Error::not_found(Kind::Connection, "s"), "s");
        assert!(matches!(target, NsxError::NotFound(_)));
        let other = NsxError::for_target(Error::not_found(Kind::PeerEndpoint, "p"), "s");
        assert!(matches!(other, NsxError::Model(_)));
    }

    /// One of each of this crate's own variants (the match stops compiling
    /// when a variant is added without an example).
    fn own_errors() -> Vec<NsxError> {
        let all = vec![
            NsxError::NotFound("x".into()),
            NsxError::field("f", "r"),
            NsxError::RevisionMissing,
            NsxError::TooLarge,
            NsxError::BadCredentials,
            NsxError::BadXsrf,
            NsxError::NotAdmin,
            NsxError::NoRoute("/x".into()),
            NsxError::Throttled { retry_after: 1 },
            NsxError::Busy { retry_after: 2 },
        ];
        for e in &all {
            match e {
                NsxError::Model(_)
                | NsxError::NotFound(_)
                | NsxError::Field { .. }
                | NsxError::RevisionMissing
                | NsxError::TooLarge
                | NsxError::BadCredentials
                | NsxError::BadXsrf
                | NsxError::NotAdmin
                | NsxError::NoRoute(_)
                | NsxError::Throttled { .. }
                | NsxError::Busy { .. } => {}
            }
        }
        all
    }

    /// The statuses the server's edge answers HTTP-level failures with
    /// (`vpnaas::edge`): unreadable request, unknown path, method not allowed,
    /// body timeout, body/URL/headers too large, request timeout.
    const EDGE_STATUSES: [u16; 8] = [400, 404, 405, 408, 413, 414, 431, 503];

    /// The (HTTP status, `error_code`, `module_name`) rows of the crate doc's
    /// code table.
    fn documented() -> std::collections::BTreeSet<(u16, i64, String)> {
        include_str!("lib.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//! | "))
            .filter_map(|row| {
                let cells: Vec<&str> = row.split(" | ").map(str::trim).collect();
                let status = cells.first()?.parse().ok()?;
                let code = cells.get(1)?.parse().ok()?;
                Some((status, code, cells.get(2)?.to_string()))
            })
            .collect()
    }

    /// Every answer this crate can give, from every error (its own, every model
    /// error about every kind, the edge's HTTP-level ones), is a row of the crate
    /// doc's table, and every row of the table is an answer something gives.
    #[test]
    fn crate_doc_lists_exactly_the_codes_answered() {
        let mut answers: Vec<Answer> = own_errors().iter().map(NsxError::answer).collect();
        for kind in Kind::ALL {
            for e in model::error::one_of_each(kind) {
                answers.push(NsxError::Model(e).answer());
            }
        }
        for s in EDGE_STATUSES {
            answers.push(http_answer(StatusCode::from_u16(s).unwrap(), "x"));
        }
        let given: std::collections::BTreeSet<(u16, i64, String)> = answers
            .iter()
            .map(|a| (a.status.as_u16(), a.code, a.module.to_string()))
            .collect();
        let doc = documented();
        let undocumented: Vec<_> = given.difference(&doc).collect();
        let unanswered: Vec<_> = doc.difference(&given).collect();
        assert!(
            undocumented.is_empty() && unanswered.is_empty(),
            "crate doc table of error codes is out of date:\n  answered but not in the table: {undocumented:?}\n  in the table but never answered: {unanswered:?}"
        );
    }

    /// Retry-After goes with the throttled and busy answers only.
    #[tokio::test]
    async fn retry_after_only_when_asked_to_wait() {
        for e in own_errors() {
            let wait = e.retry_after();
            let resp = e.into_response();
            let header = resp.headers().get(axum::http::header::RETRY_AFTER).cloned();
            assert_eq!(header.map(|v| v.to_str().unwrap().parse::<u64>().unwrap()), wait);
        }
    }
}
