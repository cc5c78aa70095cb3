//! The one transport-agnostic error every layer below the HTTP edge returns.
//! Each API crate has exactly one function that maps it to its own envelope.
//!
//! Every variant names what went wrong (a system-owned object, a duplicate, an
//! unknown request id, a feature vpnaas does not implement), so an API crate
//! maps it by matching on the variant, never by reading a message: the message
//! of a variant is for logs and the CLI, the wording clients see is the API's.

use std::fmt;

/// Kinds of stored objects; used in errors and in the store's generic tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Phase-1 parameters: a Neutron IKE policy or an NSX IKE profile.
    IkePolicy,
    /// Phase-2 parameters: a Neutron IPsec policy or an NSX tunnel profile.
    IpsecPolicy,
    /// The IPsec endpoint on one gateway (Neutron vpnservice, NSX IPSec VPN service).
    VpnService,
    /// A Neutron endpoint group: local subnets or peer CIDRs.
    EndpointGroup,
    /// A site-to-site connection (Neutron ipsec-site-connection, NSX session).
    Connection,
    /// A gateway with its external addresses (Neutron router, NSX logical
    /// router), registered with `vpnaas gateway`.
    Gateway,
    /// A subnet of a network; a gateway's internal subnet once attached to it
    /// (a Neutron router interface, or `vpnaas subnet create`).
    Subnet,
    /// A Neutron network: what subnets belong to; external ones give gateways
    /// their addresses.
    Network,
    /// A Keystone project: the owner of resources.
    Project,
    /// A Keystone user.
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
    /// A gateway node (transport node) registered with `vpnaas node add`; kept in
    /// its own table, not among the resources.
    Node,
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
            Kind::Network => "network",
            Kind::Project => "project",
            Kind::User => "user",
            Kind::DpdProfile => "dpd_profile",
            Kind::LocalEndpoint => "local_endpoint",
            Kind::PeerEndpoint => "peer_endpoint",
            Kind::SystemDefaults => "system_defaults",
            Kind::Node => "node",
        }
    }

    /// Every kind, in declaration order (for `parse` and for tests that must
    /// cover each kind). A new kind must get an arm in `as_str` just above: add
    /// it here too.
    pub const ALL: [Kind; 15] = [
        Kind::IkePolicy,
        Kind::IpsecPolicy,
        Kind::VpnService,
        Kind::EndpointGroup,
        Kind::Connection,
        Kind::Gateway,
        Kind::Subnet,
        Kind::Network,
        Kind::Project,
        Kind::User,
        Kind::DpdProfile,
        Kind::LocalEndpoint,
        Kind::PeerEndpoint,
        Kind::SystemDefaults,
        Kind::Node,
    ];

    /// Inverse of [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
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
    /// This gateway's side (the subnet endpoint group).
    Local,
    /// The peer's side (the CIDR endpoint group).
    Peer,
    /// Both sides at once.
    Both,
}

impl Side {
    /// The side as error messages word it.
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
        /// The attribute, as the checking code names it (NSX rules use NSX's
        /// spelling, e.g. `sa_life_time`).
        field: String,
        /// What is wrong with its value, fit for the client.
        reason: String,
    },
    /// The DPD timeout is not longer than the DPD interval.
    DpdTimeoutNotAboveInterval,
    /// The MTU is below the minimum of the traffic's IP version (68 for IPv4,
    /// 1280 for IPv6); 0 is never refused.
    MtuTooSmall {
        /// The MTU asked for, in bytes.
        mtu: u32,
        /// The IP version (4 or 6) of the protected traffic.
        ip_version: u8,
    },
    /// A `peer_cidrs` entry is not a CIDR.
    PeerCidrInvalid {
        /// The entry as given.
        cidr: String,
    },
    /// A legacy-mode connection's `peer_cidrs` mix IPv4 and IPv6.
    MixedPeerCidrVersions,
    /// One side's prefixes mix IPv4 and IPv6.
    MixedEndpointVersions {
        /// The endpoint group's id, or which side of an NSX session's policy
        /// rules (`policy_rules sources` / `policy_rules destinations`).
        group: String,
    },
    /// The local and the peer traffic (or a bypass rule's sources and
    /// destinations) are of different IP versions.
    MixedConnectionVersions,
    /// A connection on a service with a subnet (legacy mode) has no `peer_cidrs`.
    MissingPeerCidrs,
    /// A connection on a service with a subnet (legacy mode) names endpoint groups.
    EndpointGroupWithSubnetService {
        /// Which group(s) it named.
        side: Side,
    },
    /// A connection on a service without a subnet has `peer_cidrs`; it must
    /// name endpoint groups instead.
    PeerCidrsWithEndpointGroups,
    /// A connection on a service without a subnet lacks an endpoint group.
    MissingEndpointGroup {
        /// Which group(s) it lacks.
        side: Side,
    },
    /// An endpoint group of the wrong type: the local one must be `subnet`,
    /// the peer one `cidr`.
    WrongEndpointGroupType {
        /// The group's id.
        group: String,
        /// The side the group was given for.
        side: Side,
        /// The group's endpoint type.
        actual: String,
        /// The endpoint type that side needs.
        expected: String,
    },
    /// A subnet (the service's, or in the local endpoint group) is on another
    /// gateway than the service.
    SubnetNotOnRouter {
        /// The subnet's id.
        subnet: String,
        /// The service's gateway id.
        router: String,
    },
    /// A VPN service's gateway has no external address at all.
    RouterNotExternal {
        /// The gateway's id.
        router: String,
    },
    /// The gateway has no external address of the peer address's IP version.
    NoExternalAddress {
        /// The gateway's id.
        router: String,
        /// The peer address's IP version (4 or 6).
        ip_version: u8,
    },
    /// The peer address is neither an IP nor a DNS name that resolves (within
    /// the lookup timeout).
    PeerAddressUnresolved {
        /// The address as given.
        address: String,
    },
    /// An endpoint group's endpoint is malformed or repeated.
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// The group's endpoint type.
        group_type: String,
        /// Neutron's wording of the fault (e.g. "Invalid CIDR").
        why: String,
    },
    /// An endpoint group has no endpoints.
    MissingEndpoints {
        /// The group's name (or "endpoint group" when it has none).
        group: String,
    },
    /// A `subnet` endpoint names no known subnet.
    SubnetNotFound {
        /// The subnet id as given.
        subnet: String,
    },
    /// A value the API accepts but vpnaas cannot realize (today only
    /// `transform_protocol` `ah-esp`).
    IpsecUnsupported {
        /// The resource as Neutron's message words it (`IPsec Policy`).
        resource: String,
        /// The attribute.
        key: String,
        /// Its refused value.
        value: String,
    },
    /// Neutron refuses to update an object whose status is `PENDING_*`.
    StateInvalidToUpdate {
        /// The object's current status.
        state: String,
        /// The object's id.
        id: String,
    },
    /// A subnet's prefix overlaps another subnet of the same network.
    SubnetOverlap {
        /// The new prefix.
        cidr: String,
        /// The network's id.
        network: String,
    },
    /// A subnet is already attached to a gateway (another one, or this one).
    SubnetAlreadyAttached {
        /// The subnet's id.
        subnet: String,
        /// The gateway it is attached to.
        router: String,
    },
    /// A subnet to attach overlaps a subnet already attached to the gateway.
    SubnetOverlapsRouterInterface {
        /// The subnet to attach.
        subnet: String,
        /// Its prefix.
        cidr: String,
        /// The attached subnet it overlaps.
        other: String,
        /// That subnet's prefix.
        other_cidr: String,
    },
    /// A subnet without a gateway address can't be a gateway's interface.
    SubnetHasNoGatewayIp {
        /// The subnet's id.
        subnet: String,
    },
    /// The network named as a gateway's external network is not external.
    NetworkNotExternal {
        /// The network's id.
        network: String,
    },
    /// A requested address is not in the subnet it was asked from (or the
    /// subnet is not on the external network).
    AddressNotInSubnet {
        /// The address asked for.
        address: String,
        /// The subnet.
        subnet: String,
    },
    /// Realization state asked for a connection whose service is disabled.
    ServiceDisabled {
        /// The service's id.
        service: String,
        /// The connection's id.
        connection: String,
    },
}

/// Errors of the model, store and realization layers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No object of `kind` with that id is visible to the caller.
    #[error("{kind} {id} not found")]
    NotFound {
        /// The kind looked up.
        kind: Kind,
        /// The id looked up.
        id: String,
    },
    /// A request id (NSX `x-nsx-requestid`, asked for in a realization-state
    /// query) that no acknowledged write carries.
    #[error("request {request_id} not found")]
    RequestNotFound {
        /// The request id asked for.
        request_id: String,
    },
    /// The object is referenced by another and can't be changed or deleted.
    #[error("{kind} {id} is in use")]
    InUse {
        /// The referenced object's kind.
        kind: Kind,
        /// The referenced object's id.
        id: String,
    },
    /// A unique key is taken: the id (or name, certificate, ...) `value` of `key`.
    #[error("{kind} with {key} {value} already exists")]
    AlreadyExists {
        /// The kind of the existing object.
        kind: Kind,
        /// Which unique key collided (`id`, `name`, ...).
        key: &'static str,
        /// The taken value.
        value: String,
    },
    /// A lookup by name found more than one object.
    #[error("more than one {kind} is named {name}; use its id")]
    AmbiguousName {
        /// The kind looked up.
        kind: Kind,
        /// The name that matched several objects.
        name: String,
    },
    /// A system-owned object (an NSX default profile) can't be changed or deleted.
    #[error("{kind} {id} is system owned")]
    SystemOwned {
        /// The object's kind.
        kind: Kind,
        /// The object's id (one of the fixed `model::nsx::DEFAULT_*_ID`s).
        id: String,
    },
    /// Something valid in the API that vpnaas does not implement; the text says
    /// what, in words fit for the client (e.g. "authentication_mode CERTIFICATE
    /// is not supported by this server; use PSK").
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The request breaks a domain rule; the violation says which.
    #[error("invalid request: {0:?}")]
    Invalid(Violation),
    /// The object is used by `user` (and that use is what the message names:
    /// a router used by a VPN service, a subnet by an endpoint group, ...).
    #[error("{kind} {id} is used by {user_kind} {user}")]
    UsedBy {
        /// The used object's kind.
        kind: Kind,
        /// The used object's id.
        id: String,
        /// The user's kind.
        user_kind: Kind,
        /// The user's id.
        user: String,
    },
    /// The gateway has no interface on the subnet (remove interface).
    #[error("gateway {router} has no interface on subnet {subnet}")]
    InterfaceNotFound {
        /// The gateway's id.
        router: String,
        /// The subnet's id.
        subnet: String,
    },
    /// No address is left to allocate on the network (or the requested one is taken).
    #[error("no more addresses available on network {network}")]
    AddressesExhausted {
        /// The network's id.
        network: String,
    },
    /// Optimistic concurrency: the caller's revision is not the current one.
    #[error("{kind} {id}: revision {given:?} is not the current revision {current}")]
    StaleRevision {
        /// The object's kind.
        kind: Kind,
        /// The object's id.
        id: String,
        /// The revision the caller sent.
        given: Option<i64>,
        /// The object's revision now.
        current: i64,
    },
    /// An object the write refers to vanished between its checks and the
    /// commit (a concurrent delete); retrying gives the ordinary answer.
    #[error("referenced object {id} does not exist")]
    ReferenceGone {
        /// The vanished object's id.
        id: String,
    },
    /// The credentials (token, password, project scope) authenticate no one.
    #[error("authentication required")]
    Unauthenticated,
    /// Storage or other infrastructure failure; the message is for logs only.
    #[error("internal error: {context}")]
    Internal {
        /// What was being done when it failed.
        context: String,
        /// The underlying failure, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// [`Error::NotFound`] for `kind` `id`.
    pub fn not_found(kind: Kind, id: impl Into<String>) -> Error {
        Error::NotFound { kind, id: id.into() }
    }
    /// [`Error::InUse`] for `kind` `id`.
    pub fn in_use(kind: Kind, id: impl Into<String>) -> Error {
        Error::InUse { kind, id: id.into() }
    }
    /// [`Error::SystemOwned`] for `kind` `id`.
    pub fn system_owned(kind: Kind, id: impl Into<String>) -> Error {
        Error::SystemOwned { kind, id: id.into() }
    }
    /// [`Error::AlreadyExists`]: `value` of unique key `key` is taken.
    pub fn already_exists(kind: Kind, key: &'static str, value: impl Into<String>) -> Error {
        Error::AlreadyExists {
            kind,
            key,
            value: value.into(),
        }
    }
    /// [`Violation::Field`]: one attribute failed a value check.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid(Violation::Field {
            field: field.into(),
            reason: reason.into(),
        })
    }
    /// [`Error::Internal`] with `source` kept as the error's source.
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

/// One error of every variant about `kind`, and one of every violation: what
/// the API crates' mapping tables are tested over, so that a new variant can't
/// go unmapped or undocumented. The `match` at the end stops compiling when a
/// variant is added without an example here.
pub fn one_of_each(kind: Kind) -> Vec<Error> {
    let id = || "x".to_string();
    let mut all = vec![
        Error::NotFound { kind, id: id() },
        Error::RequestNotFound { request_id: id() },
        Error::InUse { kind, id: id() },
        Error::UsedBy {
            kind,
            id: id(),
            user_kind: Kind::VpnService,
            user: id(),
        },
        Error::AddressesExhausted { network: id() },
        Error::InterfaceNotFound {
            router: id(),
            subnet: id(),
        },
        Error::AlreadyExists {
            kind,
            key: "id",
            value: id(),
        },
        Error::AmbiguousName { kind, name: id() },
        Error::SystemOwned { kind, id: id() },
        Error::Unsupported("x is not supported by this server".into()),
        Error::StaleRevision {
            kind,
            id: id(),
            given: Some(0),
            current: 1,
        },
        Error::ReferenceGone { id: id() },
        Error::Unauthenticated,
        Error::Internal {
            context: "x".into(),
            source: None,
        },
    ];
    all.extend(Violation::one_of_each().into_iter().map(Error::Invalid));
    for e in &all {
        match e {
            Error::NotFound { .. }
            | Error::RequestNotFound { .. }
            | Error::InUse { .. }
            | Error::UsedBy { .. }
            | Error::AddressesExhausted { .. }
            | Error::InterfaceNotFound { .. }
            | Error::AlreadyExists { .. }
            | Error::AmbiguousName { .. }
            | Error::SystemOwned { .. }
            | Error::Unsupported(_)
            | Error::Invalid(_)
            | Error::StaleRevision { .. }
            | Error::ReferenceGone { .. }
            | Error::Unauthenticated
            | Error::Internal { .. } => {}
        }
    }
    all
}

impl Violation {
    /// The name of the variant (for tables and logs).
    pub fn name(&self) -> &'static str {
        use Violation::*;
        match self {
            Field { .. } => "Field",
            DpdTimeoutNotAboveInterval => "DpdTimeoutNotAboveInterval",
            MtuTooSmall { .. } => "MtuTooSmall",
            PeerCidrInvalid { .. } => "PeerCidrInvalid",
            MixedPeerCidrVersions => "MixedPeerCidrVersions",
            MixedEndpointVersions { .. } => "MixedEndpointVersions",
            MixedConnectionVersions => "MixedConnectionVersions",
            MissingPeerCidrs => "MissingPeerCidrs",
            EndpointGroupWithSubnetService { .. } => "EndpointGroupWithSubnetService",
            PeerCidrsWithEndpointGroups => "PeerCidrsWithEndpointGroups",
            MissingEndpointGroup { .. } => "MissingEndpointGroup",
            WrongEndpointGroupType { .. } => "WrongEndpointGroupType",
            SubnetNotOnRouter { .. } => "SubnetNotOnRouter",
            RouterNotExternal { .. } => "RouterNotExternal",
            NoExternalAddress { .. } => "NoExternalAddress",
            PeerAddressUnresolved { .. } => "PeerAddressUnresolved",
            InvalidEndpoint { .. } => "InvalidEndpoint",
            MissingEndpoints { .. } => "MissingEndpoints",
            SubnetNotFound { .. } => "SubnetNotFound",
            IpsecUnsupported { .. } => "IpsecUnsupported",
            StateInvalidToUpdate { .. } => "StateInvalidToUpdate",
            ServiceDisabled { .. } => "ServiceDisabled",
            SubnetOverlap { .. } => "SubnetOverlap",
            SubnetAlreadyAttached { .. } => "SubnetAlreadyAttached",
            SubnetOverlapsRouterInterface { .. } => "SubnetOverlapsRouterInterface",
            SubnetHasNoGatewayIp { .. } => "SubnetHasNoGatewayIp",
            NetworkNotExternal { .. } => "NetworkNotExternal",
            AddressNotInSubnet { .. } => "AddressNotInSubnet",
        }
    }

    /// One violation of every variant (see [`one_of_each`]). A new variant
    /// must get an arm in [`Violation::name`] just above: add its example here
    /// too.
    pub fn one_of_each() -> Vec<Violation> {
        use Violation::*;
        let s = || "x".to_string();
        vec![
            Field {
                field: s(),
                reason: s(),
            },
            DpdTimeoutNotAboveInterval,
            MtuTooSmall {
                mtu: 68,
                ip_version: 6,
            },
            PeerCidrInvalid { cidr: s() },
            MixedPeerCidrVersions,
            MixedEndpointVersions { group: s() },
            MixedConnectionVersions,
            MissingPeerCidrs,
            EndpointGroupWithSubnetService { side: Side::Both },
            PeerCidrsWithEndpointGroups,
            MissingEndpointGroup { side: Side::Local },
            WrongEndpointGroupType {
                group: s(),
                side: Side::Peer,
                actual: s(),
                expected: s(),
            },
            SubnetNotOnRouter {
                subnet: s(),
                router: s(),
            },
            RouterNotExternal { router: s() },
            NoExternalAddress {
                router: s(),
                ip_version: 4,
            },
            PeerAddressUnresolved { address: s() },
            InvalidEndpoint {
                endpoint: s(),
                group_type: s(),
                why: s(),
            },
            MissingEndpoints { group: s() },
            SubnetNotFound { subnet: s() },
            IpsecUnsupported {
                resource: s(),
                key: s(),
                value: s(),
            },
            StateInvalidToUpdate { state: s(), id: s() },
            ServiceDisabled {
                service: s(),
                connection: s(),
            },
            SubnetOverlap {
                cidr: s(),
                network: s(),
            },
            SubnetAlreadyAttached {
                subnet: s(),
                router: s(),
            },
            SubnetOverlapsRouterInterface {
                subnet: s(),
                cidr: s(),
                other: s(),
                other_cidr: s(),
            },
            SubnetHasNoGatewayIp { subnet: s() },
            NetworkNotExternal { network: s() },
            AddressNotInSubnet {
                address: s(),
                subnet: s(),
            },
        ]
    }
}

impl From<Violation> for Error {
    fn from(v: Violation) -> Error {
        Error::Invalid(v)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// `Kind::ALL` lists each kind once, and every name parses back.
    #[test]
    fn all_kinds_round_trip() {
        let names: std::collections::BTreeSet<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), Kind::ALL.len());
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }

    /// `Violation::one_of_each` has no variant twice.
    #[test]
    fn one_violation_of_each_variant() {
        let names: std::collections::BTreeSet<&str> =
            Violation::one_of_each().iter().map(Violation::name).collect();
        assert_eq!(names.len(), Violation::one_of_each().len());
    }
}
