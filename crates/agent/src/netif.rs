//! The interface side of route-based tunnels: what the node's kernel must
//! carry so that only what is routed into a tunnel enters it.
//!
//! A route-based tunnel ([`Tunnel::route`]) has selectors of everything
//! (0.0.0.0/0, ::/0); on its own, a CHILD_SA like that would capture all of
//! the node's traffic. What keeps it honest is an interface: charon's SAs and
//! policies carry the tunnel's `if_id` ([`crate::render`]), and the node
//! routes the peer networks into the interface of that id. This module owns
//! those interfaces, their addresses (the VTI addresses) and those routes,
//! with the reconciler's discipline:
//!
//! - **Exact diff.** What was last made to hold is kept per tunnel; a tunnel
//!   whose interface spec is unchanged gets no `ip` call at all. A new or
//!   changed one is read back from the kernel (`ip -json`), and only the
//!   difference is applied ([`plan`], pure and unit-tested): a missing device
//!   is created, a device of the wrong kind or id re-created, missing
//!   addresses and routes added, extra ones removed, a down device set up.
//!   A removed or disabled tunnel loses its interface.
//! - **Adoption.** After the agent (or charon) starts, nothing is assumed:
//!   every desired interface is read back and fixed, and interfaces that
//!   match our naming scheme (`vpn<if_id>`, XFRM) but no desired tunnel are
//!   deleted. Nothing outside that scheme is touched.
//! - **Failures.** `ip` missing, the kernel refusing: the tunnel's
//!   [`Failure`](model::realization::Failure) with the kernel's words, retried
//!   on the reconciler's failure timer; never a panic, and never a stop for
//!   the other tunnels.
//!
//! Two data paths, chosen by the agent's [`EspMode`]:
//!
//! - `kernel` (real gateways): one XFRM interface per tunnel,
//!   `ip link add vpn<N> type xfrm if_id N`, its addresses, up, and the
//!   peer networks routed through it. The kernel's XFRM lookup then only
//!   encrypts what leaves through that interface, per tunnel.
//! - `userspace` (charon's kernel-libipsec, for kernels without ESP): there
//!   is no per-tunnel interface. libipsec reads packets from its one TUN
//!   device (`ipsec0`, in charon's network namespace) and picks the SA by the
//!   packet's addresses alone; strongSwan 5.9's libipsec ignores `if_id`.
//!   So the tunnel's VTI addresses go on the TUN device and its peer
//!   networks are routed into it, and charon must not install routes of its
//!   own (`charon.install_routes = no`), or its 0.0.0.0/0 route would
//!   capture everything. With no demultiplexing, only **one** route-based
//!   tunnel per node can work on this path: a second one is refused (its
//!   charon configuration is not loaded either) with a failure saying so,
//!   rather than misrouting. The agent owns the TUN device's global
//!   addresses and its main-table routes (charon's own go to table 220).
//!
//! Every `ip` call targets the agent's `--netns` when given (`ip -n NAME`):
//! in the end-to-end tests charon runs in a namespace and the agent on the
//! host.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ipnet::IpNet;
use model::realization::{NodeConfig, RouteSpec, Tunnel};

use crate::render::EspMode;

/// The name prefix of the XFRM interfaces the agent owns: `vpn<if_id>`.
pub const NAME_PREFIX: &str = "vpn";

/// Interface settings of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetifSettings {
    /// The `ip` binary (iproute2). None: this reconciler makes no interfaces
    /// (the default, for tests and simulations; `vpnaas agent` always sets
    /// it), and a route-based tunnel fails saying so.
    pub ip: Option<PathBuf>,
    /// Network namespace every call targets (`ip -n NAME`); None: the agent's own.
    pub netns: Option<String>,
    /// Userspace ESP: charon's kernel-libipsec TUN device.
    pub tun_device: String,
}

impl Default for NetifSettings {
    fn default() -> Self {
        NetifSettings {
            ip: None,
            netns: None,
            tun_device: "ipsec0".into(),
        }
    }
}

/// The interface name of a kernel-mode tunnel with `if_id`.
pub fn ifname(if_id: u32) -> String {
    format!("{NAME_PREFIX}{if_id}")
}

/// The `if_id` a name of our scheme stands for (`vpn7` → 7).
pub fn if_id_of(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(NAME_PREFIX)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n != 0)
}

/// What one tunnel needs of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The device.
    pub dev: String,
    /// Kernel mode: an XFRM interface with this id, created by us. None: a
    /// device we don't create (the userspace TUN device).
    pub xfrm_if_id: Option<u32>,
    /// Its global addresses (address/prefix).
    pub addresses: Vec<IpNet>,
    /// Networks routed through it (main table).
    pub routes: Vec<IpNet>,
}

impl Desired {
    /// The device state a tunnel's route spec asks for on this data path.
    pub fn of(route: &RouteSpec, esp: EspMode, settings: &NetifSettings) -> Desired {
        let (dev, xfrm_if_id) = match esp {
            EspMode::Kernel => (ifname(route.if_id), Some(route.if_id)),
            EspMode::Userspace => (settings.tun_device.clone(), None),
        };
        Desired {
            dev,
            xfrm_if_id,
            addresses: route.addresses.clone(),
            routes: route.routes.iter().map(IpNet::trunc).collect(),
        }
    }

    /// No addresses and no routes on `dev`: what is left once a tunnel goes.
    fn nothing_on(dev: &str) -> Desired {
        Desired {
            dev: dev.to_string(),
            xfrm_if_id: None,
            addresses: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// What the kernel has of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The device exists.
    pub exists: bool,
    /// Its link kind (`xfrm`, `tun`, ...), when it has one.
    pub kind: Option<String>,
    /// Its XFRM interface id, when it is one.
    pub if_id: Option<u32>,
    /// Administratively up.
    pub up: bool,
    /// Its global-scope addresses.
    pub addresses: Vec<IpNet>,
    /// Main-table routes through it, except the kernel's own prefix routes.
    pub routes: Vec<IpNet>,
}

/// One `ip` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `ip link add NAME type xfrm if_id N`.
    LinkAdd {
        /// The device.
        dev: String,
        /// The XFRM interface id.
        if_id: u32,
    },
    /// `ip link del NAME`.
    LinkDel {
        /// The device.
        dev: String,
    },
    /// `ip link set NAME up`.
    LinkUp {
        /// The device.
        dev: String,
    },
    /// `ip addr add A/P dev NAME`.
    AddrAdd {
        /// The device.
        dev: String,
        /// The address/prefix or network.
        net: IpNet,
    },
    /// `ip addr del A/P dev NAME`.
    AddrDel {
        /// The device.
        dev: String,
        /// The address/prefix or network.
        net: IpNet,
    },
    /// `ip route replace NET dev NAME proto static`.
    RouteReplace {
        /// The device.
        dev: String,
        /// The address/prefix or network.
        net: IpNet,
    },
    /// `ip route del NET dev NAME`.
    RouteDel {
        /// The device.
        dev: String,
        /// The address/prefix or network.
        net: IpNet,
    },
}

impl Cmd {
    /// The arguments after `ip [-n NS]`.
    pub fn args(&self) -> Vec<String> {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let fam = |n: &IpNet| if matches!(n, IpNet::V6(_)) { "-6" } else { "-4" };
        match self {
            Cmd::LinkAdd { dev, if_id } => {
                v(&["link", "add", dev, "type", "xfrm", "if_id", &if_id.to_string()])
            }
            Cmd::LinkDel { dev } => v(&["link", "del", dev]),
            Cmd::LinkUp { dev } => v(&["link", "set", dev, "up"]),
            Cmd::AddrAdd { dev, net } => v(&[fam(net), "addr", "add", &net.to_string(), "dev", dev]),
            Cmd::AddrDel { dev, net } => v(&[fam(net), "addr", "del", &net.to_string(), "dev", dev]),
            Cmd::RouteReplace { dev, net } => v(&[
                fam(net),
                "route",
                "replace",
                &net.to_string(),
                "dev",
                dev,
                "proto",
                "static",
            ]),
            Cmd::RouteDel { dev, net } => v(&[fam(net), "route", "del", &net.to_string(), "dev", dev]),
        }
    }
}

/// Why a device can't be made to hold what a tunnel needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Userspace ESP: charon's TUN device is not there (charon not running,
    /// or not with kernel-libipsec).
    #[error("charon's TUN device {0} does not exist (is charon running with kernel-libipsec?)")]
    NoTunDevice(String),
}

/// The commands that turn `have` into `want`, in order (pure). An XFRM
/// device of the wrong kind or id is deleted and re-created (which drops
/// whatever was on it); otherwise addresses are fixed before routes (a route
/// may need the address's subnet), and the device is set up before its
/// routes are added.
pub fn plan(want: &Desired, have: &Observed) -> Result<Vec<Cmd>, PlanError> {
    let dev = want.dev.clone();
    let mut cmds = Vec::new();
    let mut have = have.clone();
    if let Some(if_id) = want.xfrm_if_id {
        let right = have.exists && have.kind.as_deref() == Some("xfrm") && have.if_id == Some(if_id);
        if have.exists && !right {
            cmds.push(Cmd::LinkDel { dev: dev.clone() });
            have = Observed::default();
        }
        if !have.exists {
            cmds.push(Cmd::LinkAdd {
                dev: dev.clone(),
                if_id,
            });
        }
    } else if !have.exists {
        return Err(PlanError::NoTunDevice(dev));
    }
    let addr_del = |net| Cmd::AddrDel {
        dev: dev.clone(),
        net,
    };
    let addr_add = |net| Cmd::AddrAdd {
        dev: dev.clone(),
        net,
    };
    cmds.extend(diff(&have.addresses, &want.addresses, addr_del, addr_add));
    if !have.up && (want.xfrm_if_id.is_some() || !want.addresses.is_empty() || !want.routes.is_empty()) {
        cmds.push(Cmd::LinkUp { dev: dev.clone() });
    }
    let route_del = |net| Cmd::RouteDel {
        dev: dev.clone(),
        net,
    };
    let route_add = |net| Cmd::RouteReplace {
        dev: dev.clone(),
        net,
    };
    cmds.extend(diff(&have.routes, &want.routes, route_del, route_add));
    Ok(cmds)
}

/// The commands turning the set `have` into `want`: `del` for each of `have`
/// not wanted, then `add` for each of `want` not there, in their orders.
fn diff(have: &[IpNet], want: &[IpNet], del: impl Fn(IpNet) -> Cmd, add: impl Fn(IpNet) -> Cmd) -> Vec<Cmd> {
    let gone = have.iter().filter(|n| !want.contains(n)).map(|n| del(*n));
    let new = want.iter().filter(|n| !have.contains(n)).map(|n| add(*n));
    gone.chain(new).collect()
}

/// An `ip` call that failed: what it was and what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`ip {args}`: {message}")]
pub struct IpError {
    /// The arguments, space-joined.
    pub args: String,
    /// The kernel's (or the OS's) words.
    pub message: String,
}

/// Runs `ip`: the real one, or a recording stand-in in tests.
pub trait IpRunner: Send {
    /// Runs `ip [-n NS] ARGS`; Ok(stdout) on success, Err(stderr or the
    /// spawn error) otherwise.
    fn run(&mut self, args: &[String]) -> impl Future<Output = Result<String, String>> + Send;
}

/// The system's iproute2, through `tokio::process`.
#[derive(Debug, Clone)]
pub struct SystemIp {
    settings: NetifSettings,
}

impl SystemIp {
    /// `ip` as `settings` say.
    pub fn new(settings: NetifSettings) -> SystemIp {
        SystemIp { settings }
    }
}

impl IpRunner for SystemIp {
    async fn run(&mut self, args: &[String]) -> Result<String, String> {
        let Some(bin) = &self.settings.ip else {
            return Err("this agent does not manage tunnel interfaces (no ip binary configured)".into());
        };
        let mut cmd = tokio::process::Command::new(bin);
        if let Some(ns) = &self.settings.netns {
            cmd.arg("-n").arg(ns);
        }
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = cmd
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(if err.is_empty() {
                format!("exited with {}", out.status)
            } else {
                err
            })
        }
    }
}

async fn ip<R: IpRunner>(r: &mut R, args: Vec<String>) -> Result<String, IpError> {
    tracing::debug!(args = %args.join(" "), "ip");
    r.run(&args).await.map_err(|message| IpError {
        args: args.join(" "),
        message,
    })
}

fn absent(e: &IpError) -> bool {
    let m = e.message.to_ascii_lowercase();
    m.contains("does not exist") || m.contains("cannot find device")
}

/// Reads one device back from the kernel.
pub async fn observe<R: IpRunner>(r: &mut R, dev: &str) -> Result<Observed, IpError> {
    let link = match ip(r, to_args(&["-json", "-d", "link", "show", "dev", dev])).await {
        Ok(out) => out,
        Err(e) if absent(&e) => return Ok(Observed::default()),
        Err(e) => return Err(e),
    };
    let mut o = parse_link(&link);
    if !o.exists {
        return Ok(o);
    }
    o.addresses = parse_addrs(&ip(r, to_args(&["-json", "addr", "show", "dev", dev])).await?);
    for fam in ["-4", "-6"] {
        let out = ip(
            r,
            to_args(&[fam, "-json", "route", "show", "table", "main", "dev", dev]),
        )
        .await?;
        o.routes.extend(parse_routes(&out, fam == "-6"));
    }
    Ok(o)
}

fn to_args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// `ip -json -d link show dev X` → existence, kind, if_id, up.
pub fn parse_link(json: &str) -> Observed {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let Some(l) = v.as_array().and_then(|a| a.first()) else {
        return Observed::default();
    };
    let info = l.get("linkinfo");
    let kind = info
        .and_then(|i| i.get("info_kind"))
        .and_then(|k| k.as_str())
        .map(str::to_owned);
    let if_id = info
        .and_then(|i| i.get("info_data"))
        .and_then(|d| d.get("if_id"))
        .and_then(parse_if_id);
    let up = l
        .get("flags")
        .and_then(|f| f.as_array())
        .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("UP")));
    Observed {
        exists: true,
        kind,
        if_id,
        up,
        ..Observed::default()
    }
}

/// iproute2 prints `if_id` as a hex string (`"0x7"`); accept a number too.
fn parse_if_id(v: &serde_json::Value) -> Option<u32> {
    if let Some(n) = v.as_u64() {
        return u32::try_from(n).ok();
    }
    let s = v.as_str()?.trim().trim_start_matches("if_id").trim();
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `ip -json addr show dev X` → its global-scope addresses.
pub fn parse_addrs(json: &str) -> Vec<IpNet> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut out = Vec::new();
    for l in v.as_array().into_iter().flatten() {
        for a in l
            .get("addr_info")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
        {
            if a.get("scope").and_then(|s| s.as_str()) != Some("global") {
                continue;
            }
            let (Some(local), Some(len)) = (
                a.get("local")
                    .and_then(|s| s.as_str())
                    .and_then(|s| s.parse().ok()),
                a.get("prefixlen").and_then(|p| p.as_u64()),
            ) else {
                continue;
            };
            if let Ok(n) = IpNet::new(local, len as u8)
                && !out.contains(&n)
            {
                out.push(n);
            }
        }
    }
    out
}

/// `ip -json route show table main dev X` → destinations, except the
/// kernel's prefix routes of the device's own addresses.
pub fn parse_routes(json: &str, v6: bool) -> Vec<IpNet> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut out = Vec::new();
    for r in v.as_array().into_iter().flatten() {
        if r.get("protocol").and_then(|p| p.as_str()) == Some("kernel") {
            continue;
        }
        let Some(dst) = r.get("dst").and_then(|d| d.as_str()) else {
            continue;
        };
        let net = match dst {
            "default" if v6 => "::/0".parse().ok(),
            "default" => "0.0.0.0/0".parse().ok(),
            d if d.contains('/') => d.parse::<IpNet>().ok(),
            d => d.parse::<std::net::IpAddr>().ok().map(IpNet::from),
        };
        if let Some(n) = net
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// Names of the XFRM interfaces of our scheme the kernel has
/// (`ip -json -d link show type xfrm`).
pub fn parse_ours(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("ifname").and_then(|n| n.as_str()))
        .filter(|n| if_id_of(n).is_some())
        .map(str::to_owned)
        .collect()
}

/// What one [`Netif::apply`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetifStats {
    /// Tunnels whose interface was read back and fixed (new or changed).
    pub fixed: usize,
    /// Tunnels whose interface was removed.
    pub removed: usize,
    /// Orphaned interfaces deleted on adoption.
    pub swept: usize,
    /// `ip` commands that changed something.
    pub commands: usize,
}

/// The interfaces of one node's route-based tunnels. Owned by the reconciler.
#[derive(Debug)]
pub struct Netif {
    esp: EspMode,
    settings: NetifSettings,
    /// Per tunnel id: the device state last made to hold.
    applied: BTreeMap<String, Desired>,
    failures: BTreeMap<String, String>,
    adopt: bool,
}

impl Netif {
    /// Interfaces on the `esp` data path; the first pass adopts what is there.
    pub fn new(esp: EspMode, settings: NetifSettings) -> Netif {
        Netif {
            esp,
            settings,
            applied: BTreeMap::new(),
            failures: BTreeMap::new(),
            adopt: true,
        }
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &NetifSettings {
        &self.settings
    }

    /// Start over: read everything back on the next pass (charon restarted:
    /// on the userspace path its TUN device, and all on it, is new).
    pub fn restart(&mut self) {
        self.applied.clear();
        self.adopt = true;
    }

    /// Tunnels whose interface could not be made, with why.
    pub fn failures(&self) -> &BTreeMap<String, String> {
        &self.failures
    }

    /// Route-based tunnels this node must not carry at all (not even their
    /// charon configuration), with why: on the userspace path, every one but
    /// the first. The one already carried keeps its place; otherwise the
    /// lowest interface id wins, so the choice is stable.
    pub fn refused(&self, cfg: &NodeConfig) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if self.esp != EspMode::Userspace {
            return out;
        }
        let routed: Vec<(&Tunnel, u32)> = cfg
            .tunnels
            .iter()
            .filter(|t| t.enabled)
            .filter_map(|t| t.route.as_ref().map(|r| (t, r.if_id)))
            .collect();
        let Some(keeper) = routed
            .iter()
            .find(|(t, _)| self.applied.contains_key(&t.id))
            .or_else(|| routed.iter().min_by_key(|(t, n)| (*n, t.id.clone())))
            .map(|(t, _)| t.id.clone())
        else {
            return out;
        };
        for (t, _) in routed.iter().filter(|(t, _)| t.id != keeper) {
            out.insert(
                t.id.clone(),
                format!(
                    "userspace ESP (kernel-libipsec) has one TUN device and no if_id demultiplexing: \
                     only one route-based tunnel per node, and {keeper} has it"
                ),
            );
        }
        out
    }

    /// One pass: makes the kernel hold exactly the interfaces of `cfg`'s
    /// enabled route-based tunnels (except `refused` ones). Per-tunnel errors
    /// are kept in [`Netif::failures`]; nothing here aborts the pass.
    pub async fn apply<R: IpRunner>(
        &mut self,
        r: &mut R,
        cfg: &NodeConfig,
        refused: &BTreeMap<String, String>,
    ) -> NetifStats {
        let mut stats = NetifStats::default();
        let want: BTreeMap<String, Desired> = cfg
            .tunnels
            .iter()
            .filter(|t| t.enabled && !refused.contains_key(&t.id))
            .filter_map(|t| {
                t.route
                    .as_ref()
                    .map(|rt| (t.id.clone(), Desired::of(rt, self.esp, &self.settings)))
            })
            .collect();
        self.failures.retain(|id, _| want.contains_key(id));

        if std::mem::take(&mut self.adopt) && (self.settings.ip.is_some() || !want.is_empty()) {
            stats.swept = self.sweep(r, &want).await;
        }

        // Removals first: a replacement may reuse an address.
        let gone: Vec<String> = self
            .applied
            .keys()
            .filter(|id| !want.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            let old = self.applied.remove(&id).expect("listed above");
            tracing::info!(tunnel = %id, dev = %old.dev, "removing tunnel interface");
            let res = match old.xfrm_if_id {
                Some(_) => match ip(r, Cmd::LinkDel { dev: old.dev.clone() }.args()).await {
                    Err(e) if !absent(&e) => Err(e.to_string()),
                    _ => Ok(1),
                },
                None => self.converge(r, &Desired::nothing_on(&old.dev)).await,
            };
            match res {
                Ok(n) => stats.commands += n,
                Err(e) => tracing::warn!(tunnel = %id, error = %e, "could not remove a tunnel interface"),
            }
            stats.removed += 1;
        }

        for (id, d) in &want {
            if self.applied.get(id) == Some(d) {
                continue;
            }
            stats.fixed += 1;
            match self.converge(r, d).await {
                Ok(n) => {
                    stats.commands += n;
                    self.failures.remove(id);
                    self.applied.insert(id.clone(), d.clone());
                }
                Err(e) => {
                    tracing::warn!(tunnel = %id, error = %e, "tunnel interface failed");
                    self.failures
                        .insert(id.clone(), format!("tunnel interface {}: {e}", d.dev));
                    self.applied.remove(id);
                }
            }
        }
        stats
    }

    /// Reads `d.dev` back and applies the difference; the number of commands.
    async fn converge<R: IpRunner>(&self, r: &mut R, d: &Desired) -> Result<usize, String> {
        let have = observe(r, &d.dev).await.map_err(|e| e.to_string())?;
        if d.xfrm_if_id.is_none() && !have.exists && d.addresses.is_empty() && d.routes.is_empty() {
            // Removing from a TUN device charon took with it: nothing left.
            return Ok(0);
        }
        let cmds = plan(d, &have).map_err(|e| e.to_string())?;
        for c in &cmds {
            tracing::info!(dev = %d.dev, args = %c.args().join(" "), "ip");
            ip(r, c.args()).await.map_err(|e| e.to_string())?;
        }
        Ok(cmds.len())
    }

    /// After a start: deletes XFRM interfaces of our scheme that no tunnel
    /// wants (kernel path), or clears the TUN device when no tunnel wants it
    /// (userspace path). Desired ones are fixed by the pass itself, since
    /// nothing is in `applied` yet.
    async fn sweep<R: IpRunner>(&mut self, r: &mut R, want: &BTreeMap<String, Desired>) -> usize {
        let wanted: BTreeSet<&str> = want.values().map(|d| d.dev.as_str()).collect();
        match self.esp {
            EspMode::Kernel => {
                let list = match ip(r, to_args(&["-json", "-d", "link", "show", "type", "xfrm"])).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list XFRM interfaces; orphans stay");
                        return 0;
                    }
                };
                let mut n = 0;
                for dev in parse_ours(&list)
                    .into_iter()
                    .filter(|d| !wanted.contains(d.as_str()))
                {
                    tracing::info!(dev = %dev, "deleting a tunnel interface nobody wants");
                    match ip(r, Cmd::LinkDel { dev: dev.clone() }.args()).await {
                        Ok(_) => n += 1,
                        Err(e) => tracing::warn!(dev = %dev, error = %e, "could not delete an orphan"),
                    }
                }
                n
            }
            EspMode::Userspace => {
                let tun = self.settings.tun_device.clone();
                if wanted.contains(tun.as_str()) {
                    return 0;
                }
                match self.converge(r, &Desired::nothing_on(&tun)).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(error = %e, "TUN device not cleared");
                        0
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed() -> NetifSettings {
        NetifSettings {
            ip: Some("ip".into()),
            ..NetifSettings::default()
        }
    }

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn want(if_id: Option<u32>) -> Desired {
        Desired {
            dev: if_id.map(ifname).unwrap_or_else(|| "ipsec0".into()),
            xfrm_if_id: if_id,
            addresses: vec![n("169.254.0.1/30")],
            routes: vec![n("10.2.0.0/24"), n("2001:db8:2::/64")],
        }
    }

    #[test]
    fn names_of_our_scheme_only() {
        assert_eq!(ifname(7), "vpn7");
        assert_eq!(if_id_of("vpn7"), Some(7));
        for other in ["vpn", "vpn0", "vpn07", "vpnx", "eth0", "xfrm7", "vpn99999999999"] {
            assert_eq!(if_id_of(other), None, "{other}");
        }
    }

    #[test]
    fn kernel_plan_creates_addresses_ups_and_routes() {
        let cmds = plan(&want(Some(7)), &Observed::default()).unwrap();
        let text: Vec<String> = cmds.iter().map(|c| c.args().join(" ")).collect();
        assert_eq!(
            text,
            [
                "link add vpn7 type xfrm if_id 7",
                "-4 addr add 169.254.0.1/30 dev vpn7",
                "link set vpn7 up",
                "-4 route replace 10.2.0.0/24 dev vpn7 proto static",
                "-6 route replace 2001:db8:2::/64 dev vpn7 proto static",
            ]
        );
    }

    #[test]
    fn in_place_is_no_command_and_drift_is_fixed_exactly() {
        let w = want(Some(7));
        let good = Observed {
            exists: true,
            kind: Some("xfrm".into()),
            if_id: Some(7),
            up: true,
            addresses: w.addresses.clone(),
            routes: w.routes.clone(),
        };
        assert_eq!(plan(&w, &good).unwrap(), []);
        let drift = Observed {
            up: false,
            addresses: vec![n("169.254.9.1/30")],
            routes: vec![n("10.2.0.0/24"), n("10.3.0.0/24")],
            ..good.clone()
        };
        let text: Vec<String> = plan(&w, &drift)
            .unwrap()
            .iter()
            .map(|c| c.args().join(" "))
            .collect();
        assert_eq!(
            text,
            [
                "-4 addr del 169.254.9.1/30 dev vpn7",
                "-4 addr add 169.254.0.1/30 dev vpn7",
                "link set vpn7 up",
                "-4 route del 10.3.0.0/24 dev vpn7",
                "-6 route replace 2001:db8:2::/64 dev vpn7 proto static",
            ]
        );
        // The wrong id (or kind): re-created from scratch.
        let wrong = Observed {
            if_id: Some(8),
            ..good
        };
        let cmds = plan(&w, &wrong).unwrap();
        assert_eq!(cmds[0], Cmd::LinkDel { dev: "vpn7".into() });
        assert_eq!(
            cmds[1],
            Cmd::LinkAdd {
                dev: "vpn7".into(),
                if_id: 7
            }
        );
        assert_eq!(cmds.len(), 6);
    }

    #[test]
    fn userspace_needs_charons_tun_device() {
        assert_eq!(
            plan(&want(None), &Observed::default()),
            Err(PlanError::NoTunDevice("ipsec0".into()))
        );
        let tun = Observed {
            exists: true,
            kind: Some("tun".into()),
            up: true,
            ..Observed::default()
        };
        let cmds = plan(&want(None), &tun).unwrap();
        assert!(
            cmds.iter()
                .all(|c| !matches!(c, Cmd::LinkAdd { .. } | Cmd::LinkDel { .. }))
        );
        assert_eq!(cmds.len(), 3);
        // Once the tunnel goes: everything of ours off the device, the device stays.
        let full = Observed {
            addresses: vec![n("169.254.0.1/30")],
            routes: vec![n("10.2.0.0/24")],
            ..tun
        };
        let text: Vec<String> = plan(&Desired::nothing_on("ipsec0"), &full)
            .unwrap()
            .iter()
            .map(|c| c.args().join(" "))
            .collect();
        assert_eq!(
            text,
            [
                "-4 addr del 169.254.0.1/30 dev ipsec0",
                "-4 route del 10.2.0.0/24 dev ipsec0"
            ]
        );
    }

    #[test]
    fn parses_what_iproute2_prints() {
        let link = r#"[{"ifindex":5,"ifname":"vpn7","flags":["NOARP","UP","LOWER_UP"],"mtu":1500,
            "linkinfo":{"info_kind":"xfrm","info_data":{"link":"eth0","if_id":"0x7"}}}]"#;
        let o = parse_link(link);
        assert!(o.exists && o.up);
        assert_eq!((o.kind.as_deref(), o.if_id), (Some("xfrm"), Some(7)));
        let tun = r#"[{"ifname":"ipsec0","flags":["POINTOPOINT","NOARP"],"linkinfo":{"info_kind":"tun"}}]"#;
        let o = parse_link(tun);
        assert!(o.exists && !o.up && o.if_id.is_none());
        let addrs = r#"[{"ifname":"ipsec0","addr_info":[
            {"family":"inet","local":"169.254.0.1","prefixlen":30,"scope":"global"},
            {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#;
        assert_eq!(parse_addrs(addrs), [n("169.254.0.1/30")]);
        let routes = r#"[{"dst":"169.254.0.0/30","protocol":"kernel","scope":"link"},
            {"dst":"10.2.0.0/24","protocol":"static"},{"dst":"10.9.9.9"},{"dst":"default"}]"#;
        assert_eq!(
            parse_routes(routes, false),
            [n("10.2.0.0/24"), n("10.9.9.9/32"), n("0.0.0.0/0")]
        );
        let list = r#"[{"ifname":"vpn7"},{"ifname":"xfrm0"},{"ifname":"vpn12"}]"#;
        assert_eq!(parse_ours(list), ["vpn7", "vpn12"]);
    }

    /// An `ip` that answers from a script and records every call.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<String>,
        /// Answers by argument prefix; anything else succeeds with "[]".
        answers: Vec<(String, Result<String, String>)>,
    }

    impl IpRunner for Recorder {
        async fn run(&mut self, args: &[String]) -> Result<String, String> {
            let line = args.join(" ");
            self.calls.push(line.clone());
            self.answers
                .iter()
                .find(|(p, _)| line.starts_with(p.as_str()))
                .map(|(_, a)| a.clone())
                .unwrap_or_else(|| Ok("[]".into()))
        }
    }

    fn cfg(route: Option<RouteSpec>, enabled: bool) -> NodeConfig {
        let t = Tunnel {
            id: "t1".into(),
            name: "t".into(),
            enabled,
            local_ts: vec![n("0.0.0.0/0")],
            remote_ts: vec![n("0.0.0.0/0")],
            initiator: model::Initiator::BiDirectional,
            route,
            ..crate::fake::tunnel(1, "192.0.2.1", "192.0.2.2")
        };
        NodeConfig {
            node_id: "n".into(),
            gateway_id: "g".into(),
            generation: 1,
            tunnels: vec![t],
        }
    }

    fn spec() -> RouteSpec {
        RouteSpec {
            if_id: 3,
            addresses: vec![n("169.254.0.1/30")],
            routes: vec![n("10.2.0.0/24")],
        }
    }

    #[tokio::test]
    async fn unchanged_tunnel_gets_no_call_and_removal_deletes() {
        let mut netif = Netif::new(EspMode::Kernel, managed());
        let mut r = Recorder {
            answers: vec![(
                "-json -d link show type xfrm".into(),
                Ok(r#"[{"ifname":"vpn9"},{"ifname":"eth9"}]"#.into()),
            )],
            ..Recorder::default()
        };
        r.answers.push((
            "-json -d link show dev vpn3".into(),
            Err("Device \"vpn3\" does not exist.".into()),
        ));
        let c = cfg(Some(spec()), true);
        let s = netif.apply(&mut r, &c, &BTreeMap::new()).await;
        assert_eq!((s.swept, s.fixed, s.commands), (1, 1, 4), "{:?}", r.calls);
        assert!(
            r.calls.contains(&"link del vpn9".to_string()),
            "the orphan of our scheme goes"
        );
        assert!(
            !r.calls.iter().any(|c| c.contains("eth9")),
            "nothing else is touched"
        );
        assert!(netif.failures().is_empty());
        r.calls.clear();
        let s = netif.apply(&mut r, &c, &BTreeMap::new()).await;
        assert_eq!(s, NetifStats::default());
        assert!(
            r.calls.is_empty(),
            "an unchanged tunnel gets no ip call: {:?}",
            r.calls
        );
        let s = netif
            .apply(&mut r, &cfg(Some(spec()), false), &BTreeMap::new())
            .await;
        assert_eq!(s.removed, 1);
        assert_eq!(r.calls, ["link del vpn3"]);
    }

    #[tokio::test]
    async fn a_kernel_refusal_is_the_tunnels_failure() {
        let mut netif = Netif::new(EspMode::Kernel, managed());
        let mut r = Recorder {
            answers: vec![
                (
                    "-json -d link show dev vpn3".into(),
                    Err("Device \"vpn3\" does not exist.".into()),
                ),
                ("link add".into(), Err("Error: Unknown device type.".into())),
            ],
            ..Recorder::default()
        };
        netif
            .apply(&mut r, &cfg(Some(spec()), true), &BTreeMap::new())
            .await;
        let f = netif.failures().get("t1").expect("a failure");
        assert!(f.contains("Unknown device type") && f.contains("vpn3"), "{f}");
        // Retried on the next pass (not applied), cleared once it works.
        let _refusal = r.answers.remove(1);
        r.calls.clear();
        netif
            .apply(&mut r, &cfg(Some(spec()), true), &BTreeMap::new())
            .await;
        assert!(r.calls.iter().any(|c| c.starts_with("link add vpn3")));
        assert!(netif.failures().is_empty());
    }

    #[test]
    fn userspace_carries_one_route_based_tunnel() {
        let netif = Netif::new(EspMode::Userspace, managed());
        let mut c = cfg(Some(spec()), true);
        let mut second = c.tunnels[0].clone();
        second.id = "t0".into();
        second.route = Some(RouteSpec { if_id: 5, ..spec() });
        c.tunnels.push(second);
        let refused = netif.refused(&c);
        assert_eq!(refused.keys().collect::<Vec<_>>(), ["t0"]);
        assert!(refused["t0"].contains("only one route-based tunnel"));
        let kernel = Netif::new(EspMode::Kernel, managed());
        assert!(kernel.refused(&c).is_empty());
    }
}
