//! Admin commands (projects, users, gateways, subnets) and first-start bootstrap.
//! They work on the database directly, so an operator can prepare a deployment
//! before the server runs; SQLite's WAL lets them run beside a live server.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use app::{App, Dialect};
use base64::Engine;
use model::{Gateway, Record, Subnet};
use rand::RngCore;
use serde_json::{Value, json};
use store::{NewMeta, Scope, Store, WriteCtx};

use crate::server::ServeConfig;

/// The application for the operator's own writes (`gateway create`,
/// `subnet create`): the same operations as the APIs', under no API's rules.
/// None of them waits on node state, so the node timeout is the default.
pub fn operator(store: &Store) -> App {
    App::new(store.clone(), realize::RealizeConfig::default().node_timeout)
}

/// Creates the admin project, user and role on first start, and records them
/// as the bootstrap admin (which no API can delete, disable or strip of its
/// role: see `identity::admin`). Returns the file a generated password was
/// written to, if one was generated.
pub async fn bootstrap(store: &Store, cfg: &ServeConfig) -> anyhow::Result<Option<PathBuf>> {
    // Recorded once: after that the admin may have been renamed, and is not
    // made again under the configured name.
    if store.bootstrap_admin().await?.is_some() {
        return Ok(None);
    }
    if let Ok(user) = store.user_find(&cfg.admin_user).await {
        // A database from before the record existed: record what is there.
        if let Ok(project) = store.project_find(&cfg.admin_project).await
            && store
                .roles_of(&user.id, &project.id)
                .await?
                .iter()
                .any(|r| r == "admin")
        {
            record_bootstrap(store, &user.id, &project.id).await?;
        }
        return Ok(None);
    }
    let (password, file) = match &cfg.admin_password {
        Some(p) if !p.is_empty() => (p.clone(), None),
        _ => {
            let mut raw = [0u8; 18];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            let pw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            let path = crate::server::sidecar(&cfg.db, cfg.key_file.as_deref(), ".admin-password")?;
            write_private(&path, &pw).with_context(|| format!("write {}", path.display()))?;
            (pw, Some(path))
        }
    };
    // Several replicas may start on one new PostgreSQL database at once: one
    // of them creates the admin; the others find it made and go on.
    let project = match store.project_find(&cfg.admin_project).await {
        Ok(p) => p,
        Err(_) => match store.project_create(&cfg.admin_project, "Administration").await {
            Err(model::Error::AlreadyExists { .. }) => store.project_find(&cfg.admin_project).await?,
            other => other?,
        },
    };
    let hash = identity::hash_password(&password)?;
    let user = match store.user_create(&cfg.admin_user, &hash).await {
        Err(model::Error::AlreadyExists { .. }) => {
            if let Some(f) = &file {
                let _ = std::fs::remove_file(f);
            }
            return Ok(None);
        }
        other => other?,
    };
    // `admin` implies `member` and `reader` (identity::roles), as in Keystone.
    store.role_grant(&user.id, &project.id, "admin").await?;
    record_bootstrap(store, &user.id, &project.id).await?;
    Ok(file)
}

async fn record_bootstrap(store: &Store, user_id: &str, project_id: &str) -> anyhow::Result<()> {
    store
        .bootstrap_admin_set(&store::identity::BootstrapAdmin {
            user_id: user_id.to_string(),
            project_id: project_id.to_string(),
            role: "admin".into(),
        })
        .await?;
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(0o600);
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}

fn admin_ctx() -> WriteCtx {
    WriteCtx::new("vpnaas-admin")
}

/// Creates a project (the same operation as `POST /v3/projects`); answers it
/// as JSON.
pub async fn project_create(store: &Store, name: &str, description: &str) -> anyhow::Result<Value> {
    let new = store::identity::NewProject {
        name: name.to_string(),
        description: description.to_string(),
        enabled: true,
        extra: Default::default(),
    };
    let p = identity::admin::project_create(store, &new).await?;
    Ok(json!({"id": p.id, "name": p.name, "description": p.description}))
}

/// Every project, as a JSON list.
pub async fn project_list(store: &Store) -> anyhow::Result<Value> {
    Ok(Value::Array(
        identity::admin::project_list(store, &Default::default())
            .await?
            .into_iter()
            .map(|p| json!({"id": p.id, "name": p.name, "description": p.description}))
            .collect(),
    ))
}

/// Creates a user with a password and grants it `roles` in `project`; an
/// existing user (same password) only gains the roles. Answers the user and
/// its roles there as JSON (without the password). The same operations as
/// `POST /v3/users` and `PUT /v3/projects/{p}/users/{u}/roles/{r}`.
pub async fn user_create(
    store: &Store,
    name: &str,
    password: &str,
    project: &str,
    roles: &[String],
) -> anyhow::Result<Value> {
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    let p = store
        .project_find(project)
        .await
        .with_context(|| format!("project {project}"))?;
    let user = match store.user_find(name).await {
        Ok(u) => {
            // Adding roles to an existing user must not look like a password
            // change that did not happen.
            if !identity::verify_password(password, &u.password_hash) {
                bail!(
                    "user {name} already exists with another password; \
                     `vpnaas user set {name} --password ...` changes it"
                );
            }
            u
        }
        Err(_) => {
            let input = identity::admin::UserInput {
                name: name.to_string(),
                password: Some(password.to_string()),
                enabled: true,
                ..Default::default()
            };
            identity::admin::user_create(store, input).await?
        }
    };
    for r in roles {
        identity::admin::grant(store, &p.id, &user.id, r).await?;
    }
    Ok(
        json!({"id": user.id, "name": user.name, "project_id": p.id, "roles": store.roles_of(&user.id, &p.id).await?}),
    )
}

/// Changes a user's password and/or enables or disables the user (the same
/// operation as `PATCH /v3/users/{id}`). Tokens already issued to the user
/// are revoked (a running server's validation cache forgets them within
/// seconds); cached password checks no longer match a changed password.
pub async fn user_set(
    store: &Store,
    name: &str,
    password: Option<&str>,
    enabled: Option<bool>,
) -> anyhow::Result<Value> {
    let user = store
        .user_find(name)
        .await
        .with_context(|| format!("user {name}"))?;
    if password.is_some_and(str::is_empty) {
        bail!("the password must not be empty");
    }
    let change = identity::admin::UserChange {
        password: password.map(str::to_string),
        enabled,
        ..Default::default()
    };
    let user = identity::admin::user_update(store, &user.id, change).await?;
    Ok(json!({"id": user.id, "name": user.name, "enabled": user.enabled}))
}

fn gateway_json(g: &Record<Gateway>) -> Value {
    json!({"id": g.meta.id, "name": g.meta.name, "project_id": g.meta.project_id,
           "external_v4": g.body.external_v4, "external_v6": g.body.external_v6})
}

/// Creates a gateway (a Neutron router, NSX logical router) of `project` with
/// its external addresses; answers it as JSON.
pub async fn gateway_create(
    store: &Store,
    name: &str,
    project: &str,
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
) -> anyhow::Result<Value> {
    let p = store
        .project_find(project)
        .await
        .with_context(|| format!("project {project}"))?;
    let w = operator(store)
        .create(
            &admin_ctx(),
            &Scope::All,
            Dialect::Admin,
            NewMeta {
                id: None,
                project_id: p.id,
                name: name.to_string(),
                description: String::new(),
            },
            Gateway::with_addresses(v4, v6),
        )
        .await?;
    Ok(gateway_json(&w.record))
}

/// Every gateway, as a JSON list.
pub async fn gateway_list(store: &Store) -> anyhow::Result<Value> {
    Ok(Value::Array(
        store
            .list::<Gateway>(&Scope::All)
            .await?
            .iter()
            .map(gateway_json)
            .collect(),
    ))
}

/// Creates a subnet `cidr` behind `gateway`, which VPN services can name;
/// answers it as JSON.
pub async fn subnet_create(store: &Store, name: &str, gateway: &str, cidr: &str) -> anyhow::Result<Value> {
    let cidr: ipnet::IpNet =
        model::validate::parse_cidr(cidr).with_context(|| format!("invalid CIDR {cidr}"))?;
    let gw: Record<Gateway> = store
        .find(&Scope::All, gateway)
        .await
        .with_context(|| format!("gateway {gateway}"))?;
    let w = operator(store)
        .subnet_create(&admin_ctx(), name, &gw.meta.id, cidr)
        .await?;
    let s: &Record<Subnet> = &w.record;
    Ok(
        json!({"id": s.meta.id, "name": s.meta.name, "project_id": s.meta.project_id,
              "gateway_id": s.body.gateway_id, "network_id": s.body.network_id,
              "cidr": s.body.cidr.to_string(), "gateway_ip": s.body.gateway_ip}),
    )
}

/// Registers a transport node of a gateway. Without a certificate it gets a
/// bearer token, shown only here; with `cert_file` (PEM) it authenticates by
/// mutual TLS with that certificate and gets no token.
pub async fn node_add(
    store: &Store,
    name: &str,
    gateway: &str,
    cert_file: Option<&std::path::Path>,
) -> anyhow::Result<Value> {
    let gw: Record<Gateway> = store
        .find(&Scope::All, gateway)
        .await
        .with_context(|| format!("gateway {gateway}"))?;
    if let Some(path) = cert_file {
        let pem = std::fs::read(path).with_context(|| format!("certificate file {}", path.display()))?;
        let fp = realize::http::ClientCertFingerprint::of_pem(&pem)
            .map_err(|e| anyhow::anyhow!("certificate file {}: {e}", path.display()))?;
        let creds = store::nodes::NodeCredentials {
            token_hash: None,
            cert_sha256: Some(fp.0),
        };
        let n = store.node_register(name, &gw.meta.id, &creds).await?;
        let fp = n.cert_sha256;
        return Ok(
            json!({"id": n.id, "name": n.name, "gateway_id": n.gateway_id, "auth": "certificate", "cert_sha256": fp}),
        );
    }
    let (token, hash) = store::new_token();
    let n = store.node_create(name, &gw.meta.id, &hash).await?;
    Ok(json!({"id": n.id, "name": n.name, "gateway_id": n.gateway_id, "auth": "token", "token": token}))
}

/// Unregisters the node `node` names: its id, or a name exactly one node
/// has (several: the ids are listed and nothing is deleted).
pub async fn node_delete(store: &Store, node: &str) -> anyhow::Result<Value> {
    let nodes = store.node_states(None).await?;
    let by_id: Vec<_> = nodes.iter().filter(|n| n.node.id == node).collect();
    let by_name: Vec<_> = nodes.iter().filter(|n| n.node.name == node).collect();
    let n = match (by_id.as_slice(), by_name.as_slice()) {
        ([n], _) | ([], [n]) => &n.node,
        ([], []) => anyhow::bail!("no node has the id or name {node}"),
        (_, many) => anyhow::bail!(
            "{} nodes are named {node}; delete one by its id: {}",
            many.len(),
            many.iter()
                .map(|n| n.node.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    store.node_delete(&n.id).await?;
    Ok(json!({"id": n.id, "name": n.name, "gateway_id": n.gateway_id, "deleted": true}))
}

/// Every transport node with its last report (realized generation, last
/// seen), as a JSON list.
pub async fn node_list(store: &Store) -> anyhow::Result<Value> {
    Ok(Value::Array(
        store
            .node_states(None)
            .await?
            .into_iter()
            .map(|n| {
                json!({"id": n.node.id, "name": n.node.name, "gateway_id": n.node.gateway_id,
                       "auth": if n.node.cert_sha256.is_some() { "certificate" } else { "token" },
                       "cert_sha256": n.node.cert_sha256,
                       "realized_generation": n.realized_generation, "last_seen_ms": n.last_seen})
            })
            .collect(),
    ))
}
