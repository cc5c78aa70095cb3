//! The error table of both APIs: every `model::Error` variant about every kind
//! (and every rule violation), with the HTTP status and exception type Neutron
//! answers and the HTTP status and `error_code` NSX answers. It lives here, in
//! the crate that composes both APIs, because it is about the two side by side:
//! a change to either mapping shows up as a one-line diff in this table.
//! (The NSX crate checks its own doc table of codes against its mapping.)

use api_neutron::error::{Answer as NeutronAnswer, ApiError};
use api_nsx::error::NsxError;
use model::error::one_of_each;
use model::{Error, Kind};

/// A row: error (`Invalid/<violation>` for rule violations), the kind it is
/// about (`None`: every kind without a row of its own), Neutron's status and
/// type (`keystone`: keystonemiddleware's 401), NSX's status and `error_code`.
type Row = (&'static str, Option<Kind>, u16, &'static str, u16, i64);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    ("NotFound", Some(Kind::IkePolicy), 404, "IKEPolicyNotFound", 404, 600),
    ("NotFound", Some(Kind::IpsecPolicy), 404, "IPsecPolicyNotFound", 404, 600),
    ("NotFound", Some(Kind::VpnService), 404, "VPNServiceNotFound", 404, 600),
    ("NotFound", Some(Kind::EndpointGroup), 404, "VPNEndpointGroupNotFound", 404, 600),
    ("NotFound", Some(Kind::Connection), 404, "IPsecSiteConnectionNotFound", 404, 600),
    ("NotFound", Some(Kind::Gateway), 404, "RouterNotFound", 404, 600),
    ("NotFound", Some(Kind::Subnet), 404, "SubnetNotFound", 404, 600),
    ("NotFound", Some(Kind::Network), 404, "NetworkNotFound", 404, 600),
    ("NotFound", None, 404, "NotFound", 404, 600),
    ("RequestNotFound", None, 404, "NotFound", 404, 600),
    ("InUse", Some(Kind::IkePolicy), 409, "IKEPolicyInUse", 400, 500_030),
    ("InUse", Some(Kind::IpsecPolicy), 409, "IPsecPolicyInUse", 400, 500_030),
    ("InUse", Some(Kind::VpnService), 409, "VPNServiceInUse", 400, 500_030),
    // Neutron raises EndpointGroupInUse as a BadRequest.
    ("InUse", Some(Kind::EndpointGroup), 400, "EndpointGroupInUse", 400, 500_030),
    ("InUse", Some(Kind::Gateway), 409, "RouterInUse", 400, 500_030),
    ("InUse", Some(Kind::Subnet), 409, "SubnetInUse", 400, 500_030),
    ("InUse", Some(Kind::Network), 409, "NetworkInUse", 400, 500_030),
    // The examples are used by a VPN service: neutron-vpnaas's refusals.
    ("UsedBy", Some(Kind::Gateway), 409, "RouterInUseByVPNService", 400, 500_030),
    ("UsedBy", Some(Kind::Subnet), 409, "SubnetInUseByVPNService", 400, 500_030),
    ("UsedBy", None, 409, "InUse", 400, 500_030),
    ("InterfaceNotFound", None, 404, "RouterInterfaceNotFoundForSubnet", 404, 600),
    ("AddressesExhausted", None, 409, "IpAddressGenerationFailure", 400, 110_004),
    ("InUse", None, 409, "InUse", 400, 500_030),
    ("AlreadyExists", None, 409, "Conflict", 400, 110_004),
    ("AmbiguousName", None, 409, "Conflict", 400, 110_004),
    ("SystemOwned", None, 403, "PolicyNotAuthorized", 400, 110_003),
    ("Unsupported", None, 400, "HTTPBadRequest", 400, 110_002),
    ("StaleRevision", None, 412, "RevisionNumberConstraintFailed", 412, 206),
    ("ReferenceGone", None, 409, "Conflict", 400, 110_004),
    ("Unauthenticated", None, 401, "keystone", 403, 403),
    ("Internal", None, 500, "HTTPInternalServerError", 500, 100),
    ("Invalid/Field", None, 400, "HTTPBadRequest", 400, 110_001),
    ("Invalid/DpdTimeoutNotAboveInterval", None, 400, "IPsecSiteConnectionDpdIntervalValueError", 400, 110_001),
    ("Invalid/MtuTooSmall", None, 400, "IPsecSiteConnectionMtuError", 400, 110_001),
    ("Invalid/PeerCidrInvalid", None, 400, "IPsecSiteConnectionPeerCidrError", 400, 110_001),
    ("Invalid/MixedPeerCidrVersions", None, 400, "MixedIPVersionsForPeerCidrs", 400, 110_001),
    ("Invalid/MixedEndpointVersions", None, 400, "MixedIPVersionsForIPSecEndpoints", 400, 110_001),
    ("Invalid/MixedConnectionVersions", None, 400, "MixedIPVersionsForIPSecConnection", 400, 110_001),
    ("Invalid/MissingPeerCidrs", None, 400, "MissingPeerCidrs", 400, 110_001),
    ("Invalid/EndpointGroupWithSubnetService", None, 400, "InvalidEndpointGroup", 400, 110_001),
    ("Invalid/PeerCidrsWithEndpointGroups", None, 400, "PeerCidrsInvalid", 400, 110_001),
    ("Invalid/MissingEndpointGroup", None, 400, "MissingRequiredEndpointGroup", 400, 110_001),
    ("Invalid/WrongEndpointGroupType", None, 400, "WrongEndpointGroupType", 400, 110_001),
    ("Invalid/SubnetNotOnRouter", None, 400, "SubnetIsNotConnectedToRouter", 400, 110_001),
    ("Invalid/RouterNotExternal", None, 400, "RouterIsNotExternal", 400, 110_001),
    ("Invalid/NoExternalAddress", None, 400, "ExternalNetworkHasNoSubnet", 400, 110_001),
    ("Invalid/PeerAddressUnresolved", None, 400, "VPNPeerAddressNotResolved", 400, 110_001),
    ("Invalid/InvalidEndpoint", None, 400, "InvalidEndpointInEndpointGroup", 400, 110_001),
    ("Invalid/MissingEndpoints", None, 400, "MissingEndpointForEndpointGroup", 400, 110_001),
    ("Invalid/SubnetNotFound", None, 400, "NonExistingSubnetInEndpointGroup", 400, 110_001),
    ("Invalid/IpsecUnsupported", None, 400, "IpsecValidationFailure", 400, 110_001),
    ("Invalid/StateInvalidToUpdate", None, 400, "VPNStateInvalidToUpdate", 400, 110_001),
    ("Invalid/ServiceDisabled", None, 400, "VPNServiceDisabled", 400, 110_199),
    ("Invalid/SubnetOverlap", None, 400, "InvalidInput", 400, 110_001),
    ("Invalid/SubnetAlreadyAttached", None, 400, "BadRequest", 400, 110_001),
    ("Invalid/SubnetOverlapsRouterInterface", None, 400, "BadRequest", 400, 110_001),
    ("Invalid/SubnetHasNoGatewayIp", None, 400, "BadRequest", 400, 110_001),
    ("Invalid/NetworkNotExternal", None, 400, "BadRequest", 400, 110_001),
    ("Invalid/AddressNotInSubnet", None, 400, "InvalidIpForSubnet", 400, 110_001),
];

fn label(e: &Error) -> String {
    let name = match e {
        Error::NotFound { .. } => "NotFound",
        Error::RequestNotFound { .. } => "RequestNotFound",
        Error::InUse { .. } => "InUse",
        Error::UsedBy { .. } => "UsedBy",
        Error::InterfaceNotFound { .. } => "InterfaceNotFound",
        Error::AddressesExhausted { .. } => "AddressesExhausted",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::AmbiguousName { .. } => "AmbiguousName",
        Error::SystemOwned { .. } => "SystemOwned",
        Error::Unsupported(_) => "Unsupported",
        Error::Invalid(v) => return format!("Invalid/{}", v.name()),
        Error::StaleRevision { .. } => "StaleRevision",
        Error::ReferenceGone { .. } => "ReferenceGone",
        Error::Unauthenticated => "Unauthenticated",
        Error::Internal { .. } => "Internal",
    };
    name.to_string()
}

/// What both APIs answer for an error (given twice: `model::Error` is not
/// `Clone`, since an internal error carries its source).
fn answers(for_neutron: Error, for_nsx: Error) -> (u16, &'static str, u16, i64) {
    let (n_status, n_type) = match ApiError::Model(for_neutron).answer() {
        NeutronAnswer::Neutron { status, kind, .. } => (status.as_u16(), kind),
        NeutronAnswer::Unauthorized => (401, "keystone"),
    };
    let nsx = NsxError::Model(for_nsx).answer();
    (n_status, n_type, nsx.status.as_u16(), nsx.code)
}

#[test]
fn every_error_about_every_kind_maps_as_the_table_says() {
    let mut used = vec![false; TABLE.len()];
    let mut wrong = Vec::new();
    for kind in Kind::ALL {
        for (e, twin) in one_of_each(kind).into_iter().zip(one_of_each(kind)) {
            let name = label(&e);
            let row = TABLE
                .iter()
                .position(|r| r.0 == name && r.1 == Some(kind))
                .or_else(|| TABLE.iter().position(|r| r.0 == name && r.1.is_none()));
            let got = answers(e, twin);
            match row {
                Some(i) => {
                    used[i] = true;
                    let (_, _, ns, nt, xs, xc) = TABLE[i];
                    if got != (ns, nt, xs, xc) {
                        wrong.push(format!(
                            "{name} {kind:?}: table {:?}, answered {got:?}",
                            (ns, nt, xs, xc)
                        ));
                    }
                }
                None => wrong.push(format!("{name} {kind:?}: no row (answers {got:?})")),
            }
        }
    }
    for (i, row) in TABLE.iter().enumerate() {
        if !used[i] {
            wrong.push(format!("row {row:?} matches no error"));
        }
    }
    assert!(wrong.is_empty(), "error table out of date:\n{}", wrong.join("\n"));
}
