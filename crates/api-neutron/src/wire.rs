//! Neutron's JSON, typed: one response struct per resource, built from the
//! canonical record (plus what it shows of other objects: a service's gateway
//! addresses, derived status), serialized by serde and described by the same
//! struct's `utoipa::ToSchema`. `views` renders through these; the OpenAPI
//! document (`crate::openapi`) names them.
//!
//! Algorithm, group and mode values are the model's enums: their canonical
//! spelling *is* Neutron's (see `model::enums`), so they serialize as Neutron
//! shows them, and their schemas list every value a response can hold
//! (including values only the NSX API can set, like `flex`).
//!
//! Requests stay parsed by `attrs` (Neutron's exact messages depend on the
//! order of its checks); their documented schemas are derived from the same
//! attribute tables in `crate::openapi`.

use model::{
    AuthAlgorithm, DhGroup, DpdAction, EncapsulationMode, EncryptionAlgorithm, EndpointType, Gateway,
    IkeVersion, Initiator, LifetimeUnits, Meta, Phase1Mode, Record, Status, TransformProtocol,
};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A response struct as the JSON object `query` filters, sorts and selects
/// fields of.
pub fn to_obj<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(o)) => o,
        // Every response type is a struct of strings, numbers, booleans and
        // lists of those: it always serializes to an object.
        other => unreachable!("a Neutron response body is not a JSON object: {other:?}"),
    }
}

/// The five attributes every resource starts with: `id`, `tenant_id`,
/// `project_id` (the same), `name`, `description`.
fn common(m: &Meta) -> (String, String, String, String, String) {
    (
        m.id.clone(),
        m.project_id.clone(),
        m.project_id.clone(),
        m.name.clone(),
        m.description.clone(),
    )
}

/// A policy's SA lifetime.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Lifetime)]
pub struct Lifetime {
    /// Only `seconds`.
    pub units: LifetimeUnits,
    /// In `units`.
    pub value: u32,
}

impl From<&model::Lifetime> for Lifetime {
    fn from(l: &model::Lifetime) -> Lifetime {
        Lifetime {
            units: l.units,
            value: l.value,
        }
    }
}

/// An IKE policy as Neutron renders it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::IkePolicy)]
pub struct IkePolicy {
    /// UUID, assigned by the server.
    pub id: String,
    /// Always the same as `project_id` (Neutron's older name for it).
    pub tenant_id: String,
    /// The project owning the object.
    pub project_id: String,
    /// Display name; need not be unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Integrity/PRF algorithm.
    pub auth_algorithm: AuthAlgorithm,
    /// Cipher.
    pub encryption_algorithm: EncryptionAlgorithm,
    /// `main` or `aggressive` (IKEv1 only).
    pub phase1_negotiation_mode: Phase1Mode,
    /// IKE SA lifetime.
    pub lifetime: Lifetime,
    /// `v1` or `v2`.
    pub ike_version: IkeVersion,
    /// Diffie-Hellman group.
    pub pfs: DhGroup,
}

impl From<&Record<model::IkePolicy>> for IkePolicy {
    fn from(rec: &Record<model::IkePolicy>) -> IkePolicy {
        let (id, tenant_id, project_id, name, description) = common(&rec.meta);
        let b = &rec.body;
        IkePolicy {
            id,
            tenant_id,
            project_id,
            name,
            description,
            auth_algorithm: b.auth_algorithm,
            encryption_algorithm: b.encryption_algorithm,
            phase1_negotiation_mode: b.phase1_negotiation_mode,
            lifetime: (&b.lifetime).into(),
            ike_version: b.ike_version,
            pfs: b.pfs,
        }
    }
}

/// An IPsec policy as Neutron renders it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::IpsecPolicy)]
pub struct IpsecPolicy {
    /// UUID, assigned by the server.
    pub id: String,
    /// Always the same as `project_id`.
    pub tenant_id: String,
    /// The project owning the object.
    pub project_id: String,
    /// Display name; need not be unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `esp`, `ah` or `ah-esp`.
    pub transform_protocol: TransformProtocol,
    /// Integrity algorithm.
    pub auth_algorithm: AuthAlgorithm,
    /// Cipher.
    pub encryption_algorithm: EncryptionAlgorithm,
    /// `tunnel` or `transport`.
    pub encapsulation_mode: EncapsulationMode,
    /// CHILD SA lifetime.
    pub lifetime: Lifetime,
    /// Perfect forward secrecy group.
    pub pfs: DhGroup,
}

impl From<&Record<model::IpsecPolicy>> for IpsecPolicy {
    fn from(rec: &Record<model::IpsecPolicy>) -> IpsecPolicy {
        let (id, tenant_id, project_id, name, description) = common(&rec.meta);
        let b = &rec.body;
        IpsecPolicy {
            id,
            tenant_id,
            project_id,
            name,
            description,
            transform_protocol: b.transform_protocol,
            auth_algorithm: b.auth_algorithm,
            encryption_algorithm: b.encryption_algorithm,
            encapsulation_mode: b.encapsulation_mode,
            lifetime: (&b.lifetime).into(),
            pfs: b.pfs,
        }
    }
}

/// A VPN service as Neutron renders it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::VpnService)]
pub struct VpnService {
    /// UUID, assigned by the server.
    pub id: String,
    /// Always the same as `project_id`.
    pub tenant_id: String,
    /// The project owning the object.
    pub project_id: String,
    /// Display name; need not be unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The legacy local subnet (connections then name `peer_cidrs`).
    #[schema(required = true)]
    pub subnet_id: Option<String>,
    /// The gateway (router) the service lives on.
    pub router_id: String,
    /// Always null: the flavors plugin is not loaded.
    #[schema(required = true)]
    pub flavor_id: Option<String>,
    /// False: the service's tunnels are taken down (status DOWN).
    pub admin_state_up: bool,
    /// The gateway's external IPv4 address.
    #[schema(required = true)]
    pub external_v4_ip: Option<String>,
    /// The gateway's external IPv6 address.
    #[schema(required = true)]
    pub external_v6_ip: Option<String>,
    /// Derived from what the gateway's nodes report, never stored.
    pub status: Status,
}

impl VpnService {
    /// `gateway` is the service's router (None: gone meanwhile), `status` its
    /// derived status.
    pub fn new(
        rec: &Record<model::VpnService>,
        gateway: Option<&Record<Gateway>>,
        status: Status,
    ) -> VpnService {
        let (id, tenant_id, project_id, name, description) = common(&rec.meta);
        let b = &rec.body;
        VpnService {
            id,
            tenant_id,
            project_id,
            name,
            description,
            subnet_id: b.subnet_id.clone(),
            router_id: b.router_id.clone(),
            flavor_id: b.flavor_id.clone(),
            admin_state_up: b.admin_state_up,
            external_v4_ip: gateway.and_then(|g| g.body.external_v4).map(|a| a.to_string()),
            external_v6_ip: gateway.and_then(|g| g.body.external_v6).map(|a| a.to_string()),
            status,
        }
    }
}

/// An endpoint group as Neutron renders it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::EndpointGroup)]
pub struct EndpointGroup {
    /// UUID, assigned by the server.
    pub id: String,
    /// Always the same as `project_id`.
    pub tenant_id: String,
    /// The project owning the object.
    pub project_id: String,
    /// Display name; need not be unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `subnet` or `cidr`: what `endpoints` holds.
    #[serde(rename = "type")]
    pub endpoint_type: EndpointType,
    /// Subnet ids (`subnet`) or CIDRs (`cidr`), as given.
    pub endpoints: Vec<String>,
}

impl From<&Record<model::EndpointGroup>> for EndpointGroup {
    fn from(rec: &Record<model::EndpointGroup>) -> EndpointGroup {
        let (id, tenant_id, project_id, name, description) = common(&rec.meta);
        EndpointGroup {
            id,
            tenant_id,
            project_id,
            name,
            description,
            endpoint_type: rec.body.endpoint_type,
            endpoints: rec.body.endpoints.clone(),
        }
    }
}

/// How a connection's traffic enters its tunnel.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = neutron::RouteMode)]
pub enum RouteMode {
    /// Neutron's only mode: policy-based, the traffic selectors are the
    /// connection's subnets (service subnet + `peer_cidrs`, or endpoint groups).
    Static,
    /// vpnaas extension: route-based. The tunnel is an interface with the
    /// `tunnel_addresses`, its selectors are everything (`0.0.0.0/0`, `::/0`)
    /// and `peer_cidrs` are routed into it (NSX `RouteBasedIPSecVPNSession`).
    Route,
}

/// Peers authenticate with the pre-shared key.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = neutron::AuthMode)]
pub enum AuthMode {
    /// The only mode.
    Psk,
}

/// Dead peer detection settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Dpd)]
pub struct Dpd {
    /// What to do with a dead peer (`hold`, `clear`, `restart`, ...).
    pub action: DpdAction,
    /// Seconds between probes.
    pub interval: u32,
    /// Seconds without an answer before `action`.
    pub timeout: u32,
}

/// An IPsec site connection as Neutron renders it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::IpsecSiteConnection)]
pub struct IpsecSiteConnection {
    /// UUID, assigned by the server.
    pub id: String,
    /// Always the same as `project_id`.
    pub tenant_id: String,
    /// The project owning the object.
    pub project_id: String,
    /// Display name; need not be unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The peer's public address (IP or FQDN).
    pub peer_address: String,
    /// The peer's IKE identity.
    pub peer_id: String,
    /// Our IKE identity; empty: the local address.
    pub local_id: String,
    /// `static` (Neutron's policy-based mode, the default) or `route`
    /// (vpnaas extension, set on create only: a route-based tunnel interface).
    pub route_mode: RouteMode,
    /// vpnaas extension: the tunnel interface's own addresses with their
    /// prefix lengths (e.g. `169.254.10.1/30`) in `route` mode; empty in
    /// `static` mode.
    pub tunnel_addresses: Vec<String>,
    /// Bytes.
    pub mtu: u32,
    /// Always `psk`.
    pub auth_mode: AuthMode,
    /// The pre-shared key, as given.
    pub psk: String,
    /// `bi-directional` or `response-only`.
    pub initiator: Initiator,
    /// Dead peer detection.
    pub dpd: Dpd,
    /// False: the tunnel is taken down (status DOWN).
    pub admin_state_up: bool,
    /// Derived from what the gateway's nodes report, never stored.
    pub status: Status,
    /// vpnaas extension, read-only: why the connection is not `ACTIVE`, as
    /// `REASON: detail` — REASON one of AUTHENTICATION_FAILED,
    /// NO_PROPOSAL_CHOSEN, PEER_UNREACHABLE, TS_UNACCEPTABLE, DPD_TIMEOUT,
    /// ADMINISTRATIVELY_DOWN, CONFIGURATION_FAILED, NODE_FAILURE, OTHER, and
    /// the detail charon's own words (e.g. `AUTHENTICATION_FAILED: received
    /// AUTHENTICATION_FAILED notify error`); free text alone while pending.
    /// Null while the connection is `ACTIVE`.
    #[schema(required = true)]
    pub status_description: Option<String>,
    /// The service (and so gateway) the connection belongs to.
    pub vpnservice_id: String,
    /// The IKE policy used.
    pub ikepolicy_id: String,
    /// The IPsec policy used.
    pub ipsecpolicy_id: String,
    /// The peer's subnets: in `static` mode the legacy form's peer side (with
    /// the service's `subnet_id`); in `route` mode the peer networks routed
    /// into the tunnel interface.
    pub peer_cidrs: Vec<String>,
    /// The endpoint group of local subnets (endpoint-group form, with `peer_ep_group_id`).
    #[schema(required = true)]
    pub local_ep_group_id: Option<String>,
    /// The endpoint group of peer CIDRs (endpoint-group form, with `local_ep_group_id`).
    #[schema(required = true)]
    pub peer_ep_group_id: Option<String>,
}

impl IpsecSiteConnection {
    /// `status` is the connection's derived status.
    pub fn new(rec: &Record<model::Connection>, status: Status) -> IpsecSiteConnection {
        let (id, tenant_id, project_id, name, description) = common(&rec.meta);
        let b = &rec.body;
        IpsecSiteConnection {
            id,
            tenant_id,
            project_id,
            name,
            description,
            peer_address: b.peer_address.clone(),
            peer_id: b.peer_id.clone(),
            local_id: b.local_id.clone(),
            route_mode: if b.route_based {
                RouteMode::Route
            } else {
                RouteMode::Static
            },
            tunnel_addresses: b.tunnel_addresses().map(|n| n.to_string()).collect(),
            mtu: b.mtu,
            auth_mode: AuthMode::Psk,
            psk: b.psk.expose().to_string(),
            initiator: b.initiator,
            dpd: Dpd {
                action: b.dpd.action,
                interval: b.dpd.interval,
                timeout: b.dpd.timeout,
            },
            admin_state_up: b.admin_state_up,
            status,
            status_description: None,
            vpnservice_id: b.vpnservice_id.clone(),
            ikepolicy_id: b.ikepolicy_id.clone(),
            ipsecpolicy_id: b.ipsecpolicy_id.clone(),
            peer_cidrs: b.peer_cidrs.iter().map(|c| c.to_string()).collect(),
            local_ep_group_id: b.local_ep_group_id.clone(),
            peer_ep_group_id: b.peer_ep_group_id.clone(),
        }
    }

    /// Sets why the connection is not `ACTIVE` (see `status_description`).
    pub fn with_status_description(mut self, why: Option<String>) -> IpsecSiteConnection {
        self.status_description = why;
        self
    }
}

// ------------------------------------------------ routers and subnets (read-only)

/// One external address of a router.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::FixedIp)]
pub struct FixedIp {
    /// The subnet the address is from; null for a gateway whose addresses
    /// the operator gave (`vpnaas gateway create`).
    #[schema(required = true)]
    pub subnet_id: Option<String>,
    /// The address.
    pub ip_address: String,
}

/// A router's external side.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::ExternalGatewayInfo)]
pub struct ExternalGatewayInfo {
    /// The external network; null for operator-given addresses.
    #[schema(required = true)]
    pub network_id: Option<String>,
    /// As set (shown only; vpnaas does no NAT).
    pub enable_snat: bool,
    /// The gateway's external addresses.
    pub external_fixed_ips: Vec<FixedIp>,
}

/// The external addresses of a gateway with the subnets they came from.
fn external_ips(gw: &Gateway) -> Vec<FixedIp> {
    [
        gw.external_v4
            .map(|a| (gw.external_v4_subnet_id.clone(), a.to_string())),
        gw.external_v6
            .map(|a| (gw.external_v6_subnet_id.clone(), a.to_string())),
    ]
    .into_iter()
    .flatten()
    .map(|(subnet_id, ip_address)| FixedIp {
        subnet_id,
        ip_address,
    })
    .collect()
}

/// A gateway as a Neutron router.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Router)]
pub struct Router {
    /// UUID, assigned by the server.
    pub id: String,
    /// Always the same as `project_id`.
    pub tenant_id: String,
    /// The project owning the object.
    pub project_id: String,
    /// Display name; need not be unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Always `ACTIVE`.
    pub status: Status,
    /// As set.
    pub admin_state_up: bool,
    /// The gateway's external network and addresses; null when it has none.
    #[schema(required = true)]
    pub external_gateway_info: Option<ExternalGatewayInfo>,
}

impl From<&Record<Gateway>> for Router {
    fn from(rec: &Record<Gateway>) -> Router {
        let (id, tenant_id, project_id, name, description) = common(&rec.meta);
        let b = &rec.body;
        Router {
            id,
            tenant_id,
            project_id,
            name,
            description,
            status: Status::Active,
            admin_state_up: b.admin_state_up,
            external_gateway_info: (b.has_external() || b.external_network_id.is_some()).then(|| {
                ExternalGatewayInfo {
                    network_id: b.external_network_id.clone(),
                    enable_snat: b.enable_snat,
                    external_fixed_ips: external_ips(b),
                }
            }),
        }
    }
}

/// A Neutron network.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Network)]
pub struct Network {
    /// UUID, assigned by the server.
    pub id: String,
    /// Always the same as `project_id`.
    pub tenant_id: String,
    /// The project owning the object.
    pub project_id: String,
    /// Display name; need not be unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// As set.
    pub admin_state_up: bool,
    /// Always `ACTIVE`.
    pub status: Status,
    /// Ids of the network's subnets.
    pub subnets: Vec<String>,
    /// Always false.
    pub shared: bool,
    /// Whether routers take their external addresses from it.
    #[serde(rename = "router:external")]
    #[schema(rename = "router:external")]
    pub router_external: bool,
}

impl Network {
    /// The network with its subnets' ids.
    pub fn new(rec: &Record<model::Network>, subnets: Vec<String>) -> Network {
        let (id, tenant_id, project_id, name, description) = common(&rec.meta);
        Network {
            id,
            tenant_id,
            project_id,
            name,
            description,
            admin_state_up: rec.body.admin_state_up,
            status: Status::Active,
            subnets,
            shared: false,
            router_external: rec.body.external,
        }
    }
}

/// An allocation pool of a subnet.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::AllocationPool)]
pub struct AllocationPool {
    /// First address.
    pub start: String,
    /// Last address.
    pub end: String,
}

/// A Neutron subnet.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Subnet)]
pub struct Subnet {
    /// UUID, assigned by the server.
    pub id: String,
    /// Always the same as `project_id`.
    pub tenant_id: String,
    /// The project owning the object.
    pub project_id: String,
    /// Display name; need not be unique.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The subnet's prefix.
    pub cidr: String,
    /// 4 or 6.
    pub ip_version: u8,
    /// The network the subnet belongs to.
    pub network_id: String,
    /// The router interface address; null: none.
    #[schema(required = true)]
    pub gateway_ip: Option<String>,
    /// As set (nothing serves DHCP).
    pub enable_dhcp: bool,
    /// The host addresses other than the gateway's, as one range (or two,
    /// around a gateway address inside the range).
    pub allocation_pools: Vec<AllocationPool>,
}

fn allocation_pools(cidr: &ipnet::IpNet, gateway: Option<std::net::IpAddr>) -> Vec<AllocationPool> {
    let (first, last) = model::host_range(cidr);
    let pool = |a: std::net::IpAddr, b: std::net::IpAddr| AllocationPool {
        start: a.to_string(),
        end: b.to_string(),
    };
    let step = |a: std::net::IpAddr, up: bool| -> Option<std::net::IpAddr> {
        match a {
            std::net::IpAddr::V4(v) => {
                let n = u32::from(v);
                let n = if up { n.checked_add(1)? } else { n.checked_sub(1)? };
                Some(std::net::IpAddr::V4(n.into()))
            }
            std::net::IpAddr::V6(v) => {
                let n = u128::from(v);
                let n = if up { n.checked_add(1)? } else { n.checked_sub(1)? };
                Some(std::net::IpAddr::V6(n.into()))
            }
        }
    };
    match gateway {
        Some(g) if g >= first && g <= last => {
            let mut out = Vec::new();
            if g > first
                && let Some(before) = step(g, false)
            {
                out.push(pool(first, before));
            }
            if g < last
                && let Some(after) = step(g, true)
            {
                out.push(pool(after, last));
            }
            out
        }
        _ => vec![pool(first, last)],
    }
}

impl From<&Record<model::Subnet>> for Subnet {
    fn from(rec: &Record<model::Subnet>) -> Subnet {
        let (id, tenant_id, project_id, name, description) = common(&rec.meta);
        let b = &rec.body;
        Subnet {
            id,
            tenant_id,
            project_id,
            name,
            description,
            cidr: b.cidr.to_string(),
            ip_version: b.ip_version(),
            network_id: b.network_id.clone(),
            gateway_ip: b.gateway_ip.map(|a| a.to_string()),
            enable_dhcp: b.enable_dhcp,
            allocation_pools: allocation_pools(&b.cidr, b.gateway_ip),
        }
    }
}

/// A port's address.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::PortFixedIp)]
pub struct PortFixedIp {
    /// The subnet the address is from.
    #[schema(required = true)]
    pub subnet_id: Option<String>,
    /// The address.
    pub ip_address: String,
}

/// A port derived from a router: its interface on a subnet, or its gateway
/// on the external network. Not stored; see `views::router`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Port)]
pub struct Port {
    /// Derived from the router (and subnet): stable.
    pub id: String,
    /// The router's project.
    pub tenant_id: String,
    /// The router's project.
    pub project_id: String,
    /// Always empty.
    pub name: String,
    /// Always empty.
    pub description: String,
    /// The subnet's network (interface) or the external network (gateway).
    #[schema(required = true)]
    pub network_id: Option<String>,
    /// The router.
    pub device_id: String,
    /// `network:router_interface` or `network:router_gateway`.
    pub device_owner: String,
    /// Derived from the id (locally administered).
    pub mac_address: String,
    /// Always `ACTIVE`.
    pub status: Status,
    /// Always true.
    pub admin_state_up: bool,
    /// The interface's gateway address, or the router's external addresses.
    pub fixed_ips: Vec<PortFixedIp>,
}

fn mac_of(id: &str) -> String {
    let hex: String = id.chars().filter(char::is_ascii_hexdigit).take(10).collect();
    let b = hex.as_bytes();
    format!(
        "fa:16:3e:{}:{}:{}",
        std::str::from_utf8(&b[0..2]).unwrap_or("00"),
        std::str::from_utf8(&b[2..4]).unwrap_or("00"),
        std::str::from_utf8(&b[4..6]).unwrap_or("00")
    )
}

impl Port {
    /// The interface port of `gw` on `subnet` (its gateway address).
    pub fn interface(gw: &Record<Gateway>, subnet: &Record<model::Subnet>) -> Port {
        let id = interface_port_id(&gw.meta.id, &subnet.meta.id);
        Port {
            mac_address: mac_of(&id),
            id,
            tenant_id: gw.meta.project_id.clone(),
            project_id: gw.meta.project_id.clone(),
            name: String::new(),
            description: String::new(),
            network_id: Some(subnet.body.network_id.clone()),
            device_id: gw.meta.id.clone(),
            device_owner: "network:router_interface".into(),
            status: Status::Active,
            admin_state_up: true,
            fixed_ips: vec![PortFixedIp {
                subnet_id: Some(subnet.meta.id.clone()),
                ip_address: subnet.body.gateway_ip.map(|a| a.to_string()).unwrap_or_default(),
            }],
        }
    }

    /// The gateway port of `gw`, when it has an external network.
    pub fn gateway(gw: &Record<Gateway>) -> Option<Port> {
        let network_id = gw.body.external_network_id.clone()?;
        let id = model::derived_id(&["router-gateway-port", &gw.meta.id]);
        Some(Port {
            mac_address: mac_of(&id),
            id,
            tenant_id: gw.meta.project_id.clone(),
            project_id: gw.meta.project_id.clone(),
            name: String::new(),
            description: String::new(),
            network_id: Some(network_id),
            device_id: gw.meta.id.clone(),
            device_owner: "network:router_gateway".into(),
            status: Status::Active,
            admin_state_up: true,
            fixed_ips: external_ips(&gw.body)
                .into_iter()
                .map(|f| PortFixedIp {
                    subnet_id: f.subnet_id,
                    ip_address: f.ip_address,
                })
                .collect(),
        })
    }
}

/// The id of `router`'s interface port on `subnet`.
pub fn interface_port_id(router: &str, subnet: &str) -> String {
    model::derived_id(&["router-interface-port", router, subnet])
}

/// The answer of `add_router_interface` / `remove_router_interface`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::RouterInterface)]
pub struct RouterInterface {
    /// The router.
    pub id: String,
    /// The router's project.
    pub tenant_id: String,
    /// The router's project.
    pub project_id: String,
    /// The interface port.
    pub port_id: String,
    /// The subnet.
    pub subnet_id: String,
    /// The subnet, as a list.
    pub subnet_ids: Vec<String>,
    /// The subnet's network.
    pub network_id: String,
}

impl RouterInterface {
    /// The interface of `gw` on `subnet`.
    pub fn new(gw: &Record<Gateway>, subnet: &Record<model::Subnet>) -> RouterInterface {
        RouterInterface {
            id: gw.meta.id.clone(),
            tenant_id: gw.meta.project_id.clone(),
            project_id: gw.meta.project_id.clone(),
            port_id: interface_port_id(&gw.meta.id, &subnet.meta.id),
            subnet_id: subnet.meta.id.clone(),
            subnet_ids: vec![subnet.meta.id.clone()],
            network_id: subnet.body.network_id.clone(),
        }
    }
}

// --------------------------------------------------------- discovery documents

/// A link of a discovery document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Link)]
pub struct Link {
    /// Always `self`.
    pub rel: String,
    /// Absolute URL.
    pub href: String,
}

/// `GET /`: the API versions (unauthenticated).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Versions)]
pub struct Versions {
    /// The one version, v2.0.
    pub versions: Vec<ApiVersion>,
}

/// One API version.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::ApiVersion)]
pub struct ApiVersion {
    /// `CURRENT`.
    pub status: &'static str,
    /// `v2.0`.
    pub id: &'static str,
    /// Its `self` link.
    pub links: Vec<Link>,
}

/// `GET /v2.0`: the collections this server has.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Resources)]
pub struct Resources {
    /// One per collection.
    pub resources: Vec<ResourceLink>,
}

/// One collection of `/v2.0`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::ResourceLink)]
pub struct ResourceLink {
    /// The resource, singular (`ikepolicy`).
    pub name: &'static str,
    /// The last segment of the collection's path (`ikepolicies`).
    pub collection: &'static str,
    /// Its `self` link.
    pub links: Vec<Link>,
}

/// One API extension this server implements.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Extension)]
pub struct Extension {
    /// The key clients look extensions up by.
    pub alias: &'static str,
    /// Human-readable title.
    pub name: &'static str,
    /// What the extension adds.
    pub description: &'static str,
    /// When the extension last changed (ISO 8601).
    pub updated: &'static str,
    /// Always empty.
    pub links: Vec<Link>,
}

/// `GET /v2.0/extensions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Extensions)]
pub struct Extensions {
    /// Every extension this server has.
    pub extensions: Vec<Extension>,
}

/// `GET /v2.0/extensions/{alias}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::ExtensionDocument)]
pub struct ExtensionDocument {
    /// The extension asked for.
    pub extension: Extension,
}

// ----------------------------------------------------------------------- errors

/// Neutron's error envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::Error)]
pub struct ErrorBody {
    /// What went wrong.
    #[serde(rename = "NeutronError")]
    pub neutron_error: ErrorDetail,
}

/// The inside of Neutron's error envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = neutron::ErrorDetail)]
pub struct ErrorDetail {
    /// Neutron's exception name (`IKEPolicyNotFound`, `HTTPBadRequest`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable, as neutron-server words it.
    pub message: String,
    /// Always empty.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(id: &str) -> Meta {
        Meta {
            id: id.into(),
            project_id: "p1".into(),
            name: "n".into(),
            description: "d".into(),
            revision: 3,
            generation: 7,
            created_at: 1,
            updated_at: 2,
            created_by: "admin".into(),
            updated_by: "admin".into(),
        }
    }

    fn rec<T>(id: &str, body: T) -> Record<T> {
        Record { meta: meta(id), body }
    }

    const COMMON: [(&str, &str); 5] = [
        ("id", "x"),
        ("tenant_id", "p1"),
        ("project_id", "p1"),
        ("name", "n"),
        ("description", "d"),
    ];

    /// `extra` plus the five common attributes of object `x`.
    fn with_common(extra: Value) -> Value {
        let mut o = extra.as_object().unwrap().clone();
        for (k, v) in COMMON {
            o.insert(k.into(), json!(v));
        }
        Value::Object(o)
    }

    #[test]
    fn policies_render_as_neutron_shows_them() {
        let ike = to_obj(&IkePolicy::from(&rec("x", model::IkePolicy::default())));
        assert_eq!(
            Value::Object(ike),
            with_common(
                json!({"auth_algorithm": "sha1", "encryption_algorithm": "aes-128",
                "phase1_negotiation_mode": "main", "lifetime": {"units": "seconds", "value": 3600},
                "ike_version": "v1", "pfs": "group5"})
            )
        );
        let ipsec = to_obj(&IpsecPolicy::from(&rec("x", model::IpsecPolicy::default())));
        assert_eq!(
            Value::Object(ipsec),
            with_common(json!({"transform_protocol": "esp", "auth_algorithm": "sha1",
                "encryption_algorithm": "aes-128", "encapsulation_mode": "tunnel",
                "lifetime": {"units": "seconds", "value": 3600}, "pfs": "group5"}))
        );
    }

    #[test]
    fn service_connection_and_group_render_as_neutron_shows_them() {
        let gw = rec(
            "g",
            Gateway::with_addresses(Some("192.0.2.1".parse().unwrap()), None),
        );
        let svc = rec(
            "x",
            model::VpnService {
                router_id: "g".into(),
                ..model::VpnService::default()
            },
        );
        assert_eq!(
            Value::Object(to_obj(&VpnService::new(&svc, Some(&gw), Status::Down))),
            with_common(json!({"subnet_id": null, "router_id": "g", "flavor_id": null,
                "admin_state_up": true, "external_v4_ip": "192.0.2.1", "external_v6_ip": null,
                "status": "DOWN"}))
        );
        let conn = rec(
            "x",
            model::Connection {
                vpnservice_id: "s".into(),
                ikepolicy_id: "i".into(),
                ipsecpolicy_id: "q".into(),
                peer_address: "198.51.100.1".into(),
                peer_id: "peer".into(),
                psk: model::Psk("k".into()),
                peer_cidrs: vec!["10.2.0.0/24".parse().unwrap()],
                ..model::Connection::default()
            },
        );
        assert_eq!(
            Value::Object(to_obj(&IpsecSiteConnection::new(&conn, Status::Active))),
            with_common(
                json!({"peer_address": "198.51.100.1", "peer_id": "peer", "local_id": "",
                "route_mode": "static", "tunnel_addresses": [], "mtu": 1500, "auth_mode": "psk", "psk": "k",
                "initiator": "bi-directional",
                "dpd": {"action": "hold", "interval": 30, "timeout": 120},
                "admin_state_up": true, "status": "ACTIVE", "status_description": null, "vpnservice_id": "s",
                "ikepolicy_id": "i", "ipsecpolicy_id": "q", "peer_cidrs": ["10.2.0.0/24"],
                "local_ep_group_id": null, "peer_ep_group_id": null})
            )
        );
        let group = rec(
            "x",
            model::EndpointGroup {
                endpoint_type: EndpointType::Cidr,
                endpoints: vec!["10.3.0.0/24".into()],
            },
        );
        assert_eq!(
            Value::Object(to_obj(&EndpointGroup::from(&group))),
            with_common(json!({"type": "cidr", "endpoints": ["10.3.0.0/24"]}))
        );
    }

    #[test]
    fn routers_and_subnets_render_as_neutron_shows_them() {
        let gw = rec(
            "x",
            Gateway::with_addresses(
                Some("192.0.2.1".parse().unwrap()),
                Some("2001:db8::1".parse().unwrap()),
            ),
        );
        assert_eq!(
            Value::Object(to_obj(&Router::from(&gw))),
            with_common(json!({"status": "ACTIVE", "admin_state_up": true,
                "external_gateway_info": {"network_id": null, "enable_snat": false,
                    "external_fixed_ips": [{"subnet_id": null, "ip_address": "192.0.2.1"},
                                           {"subnet_id": null, "ip_address": "2001:db8::1"}]}}))
        );
        let bare = rec("x", Gateway::with_addresses(None, None));
        assert_eq!(to_obj(&Router::from(&bare))["external_gateway_info"], Value::Null);
        let subnet = rec(
            "x",
            model::Subnet::attached("n", "g", "10.1.0.0/24".parse().unwrap()),
        );
        assert_eq!(
            Value::Object(to_obj(&Subnet::from(&subnet))),
            with_common(json!({"cidr": "10.1.0.0/24", "ip_version": 4, "network_id": "n",
                "gateway_ip": "10.1.0.1", "enable_dhcp": false,
                "allocation_pools": [{"start": "10.1.0.2", "end": "10.1.0.254"}]}))
        );
    }
}
