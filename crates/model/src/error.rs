//! The one transport-agnostic error every layer below the HTTP edge returns.
//! Each API crate has exactly one function that maps it to its own envelope.

use std::fmt;

/// Kinds of stored objects; used in errors and in the store's generic tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    IkePolicy,
    IpsecPolicy,
    VpnService,
    EndpointGroup,
    Connection,
    Gateway,
    Subnet,
    Project,
    User,
    /// NSX dead-peer-detection profile.
    DpdProfile,
    /// NSX local endpoint (local address and identity on a VPN service).
    LocalEndpoint,
    /// NSX peer endpoint (peer address, identity, key and profiles).
    PeerEndpoint,
    /// The hidden holder that keeps the system-owned default profiles in use, so
    /// no API can change or delete them.
    SystemDefaults,
}

impl Kind {
    /// Stable name used as the store's `kind` column and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::IkePolicy => "ike_policy",
            Kind::IpsecPolicy => "ipsec_policy",
            Kind::VpnService => "vpn_service",
            Kind::EndpointGroup => "endpoint_group",
            Kind::Connection => "connection",
            Kind::Gateway => "gateway",
            Kind::Subnet => "subnet",
            Kind::Project => "project",
            Kind::User => "user",
            Kind::DpdProfile => "dpd_profile",
            Kind::LocalEndpoint => "local_endpoint",
            Kind::PeerEndpoint => "peer_endpoint",
            Kind::SystemDefaults => "system_defaults",
        }
    }

    /// Inverse of [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::IkePolicy,
            Kind::IpsecPolicy,
            Kind::VpnService,
            Kind::EndpointGroup,
            Kind::Connection,
            Kind::Gateway,
            Kind::Subnet,
            Kind::Project,
            Kind::User,
            Kind::DpdProfile,
            Kind::LocalEndpoint,
            Kind::PeerEndpoint,
            Kind::SystemDefaults,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side(s) of a connection an endpoint-group rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Local,
    Peer,
    Both,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Local => "local",
            Side::Peer => "peer",
            Side::Both => "local and peer",
        }
    }
}

/// A domain rule that a request broke. Variants carry what a message needs;
/// the API crates turn them into their own wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A single attribute failed a value check.
    Field {
        field: String,
        reason: String,
    },
    DpdTimeoutNotAboveInterval,
    MtuTooSmall {
        mtu: u32,
        ip_version: u8,
    },
    PeerCidrInvalid {
        cidr: String,
    },
    MixedPeerCidrVersions,
    MixedEndpointVersions {
        group: String,
    },
    MixedConnectionVersions,
    MissingPeerCidrs,
    EndpointGroupWithSubnetService {
        side: Side,
    },
    PeerCidrsWithEndpointGroups,
    MissingEndpointGroup {
        side: Side,
    },
    WrongEndpointGroupType {
        side: Side,
        actual: String,
        expected: String,
    },
    SubnetNotOnRouter {
        subnet: String,
        router: String,
    },
    RouterNotExternal {
        router: String,
    },
    NoExternalAddress {
        router: String,
        ip_version: u8,
    },
    PeerAddressUnresolved {
        address: String,
    },
    InvalidEndpoint {
        endpoint: String,
        group_type: String,
        why: String,
    },
    MissingEndpoints {
        group: String,
    },
    SubnetNotFound {
        subnet: String,
    },
    IpsecUnsupported {
        resource: String,
        key: String,
        value: String,
    },
    StateInvalidToUpdate {
        state: String,
        id: String,
    },
    /// Realization state asked for a connection whose service is disabled.
    ServiceDisabled {
        service: String,
        connection: String,
    },
}

/// Errors of the model, store and realization layers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {id} not found")]
    NotFound { kind: Kind, id: String },
    /// The object is referenced by another and can't be changed or deleted.
    #[error("{kind} {id} is in use")]
    InUse { kind: Kind, id: String },
    #[error("invalid request: {0:?}")]
    Invalid(Violation),
    /// Optimistic concurrency: the caller's revision is not the current one.
    #[error("{kind} {id}: revision {given:?} is not the current revision {current}")]
    StaleRevision {
        kind: Kind,
        id: String,
        given: Option<i64>,
        current: i64,
    },
    /// A uniqueness or state conflict not covered above.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    /// Storage or other infrastructure failure; the message is for logs only.
    #[error("internal error: {context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    pub fn not_found(kind: Kind, id: impl Into<String>) -> Error {
        Error::NotFound { kind, id: id.into() }
    }
    pub fn in_use(kind: Kind, id: impl Into<String>) -> Error {
        Error::InUse { kind, id: id.into() }
    }
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid(Violation::Field {
            field: field.into(),
            reason: reason.into(),
        })
    }
    pub fn internal(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Internal {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl From<Violation> for Error {
    fn from(v: Violation) -> Error {
        Error::Invalid(v)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
