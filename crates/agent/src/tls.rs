//! How the agent reaches the server safely: the plain-HTTP rule and the HTTPS
//! client (server CA, client certificate).
//!
//! The node API carries a node's bearer token and its tunnels' pre-shared keys,
//! so it must not cross a network in clear text. `http://` is accepted only for
//! a loopback server (127.0.0.0/8, ::1, `localhost`: a server on the same host,
//! as in tests or behind a local TLS proxy), or when the operator says so with
//! `--insecure-plain-http`; anything else stops the agent at start-up.
//!
//! Trust: without `--ca-file` the server certificate is verified against the
//! system trust store (plus the Mozilla roots compiled in as a fallback). With
//! `--ca-file`, **only** the CAs in that file are trusted, not the system
//! roots: a control plane normally has a private CA, and a public CA must not be
//! able to impersonate it. `--client-cert`/`--client-key` present a client
//! certificate (mutual TLS); a node registered with `vpnaas node add
//! --cert-file` then needs no token.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::AgentError;

/// TLS-related settings of the agent.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM file of the CA(s) to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM files of the client certificate (chain) and its private key.
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<PathBuf>,
    /// Allow `http://` to a non-loopback server.
    pub insecure_plain_http: bool,
}

impl TlsSettings {
    /// Whether the node authenticates with a client certificate.
    pub fn has_client_cert(&self) -> bool {
        self.client_cert.is_some()
    }
}

/// Whether `host` (as in a URL, IPv6 possibly in brackets) is this machine.
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        url::Host::Ipv4(a) => IpAddr::V4(*a).is_loopback(),
        url::Host::Ipv6(a) => {
            IpAddr::V6(*a).is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Checks every server URL of `--server` (comma-separated) against the
/// transport rules (see the module doc).
pub fn check_server_url(servers: &str, tls: &TlsSettings) -> Result<(), AgentError> {
    let list = crate::api::server_list(servers);
    if list.is_empty() {
        return Err(AgentError::Invalid("--server names no server".into()));
    }
    list.iter().try_for_each(|s| check_one_server_url(s, tls))
}

fn check_one_server_url(server: &str, tls: &TlsSettings) -> Result<(), AgentError> {
    let url = url::Url::parse(server)
        .map_err(|e| AgentError::Invalid(format!("--server {server:?} is not a URL: {e}")))?;
    let Some(host) = url.host() else {
        return Err(AgentError::Invalid(format!("--server {server:?} has no host")));
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            if tls.client_cert.is_some() || tls.ca_file.is_some() {
                return Err(AgentError::Invalid(format!(
                    "--server {server} is plain http: --ca-file and --client-cert need an https:// URL"
                )));
            }
            if is_loopback(&host) || tls.insecure_plain_http {
                Ok(())
            } else {
                Err(AgentError::Invalid(format!(
                    "refusing plain http to {host}: the node token and pre-shared keys would cross \
                     the network in clear text; use https:// (with --ca-file for a private CA), or \
                     pass --insecure-plain-http if this network is trusted"
                )))
            }
        }
        other => Err(AgentError::Invalid(format!(
            "--server {server:?}: unsupported scheme {other:?} (use https:// or http://)"
        ))),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, AgentError> {
    std::fs::read(path).map_err(|source| AgentError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// An HTTP client builder configured for `tls` (rustls).
pub fn client_builder(tls: &TlsSettings) -> Result<reqwest::ClientBuilder, AgentError> {
    let mut b = reqwest::Client::builder().use_rustls_tls();
    if let Some(ca) = &tls.ca_file {
        let pem = read(ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| AgentError::Invalid(format!("--ca-file {}: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(AgentError::Invalid(format!(
                "--ca-file {}: no PEM certificate found",
                ca.display()
            )));
        }
        b = b.tls_built_in_root_certs(false);
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            // reqwest wants the certificate chain and the key in one PEM buffer.
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend_from_slice(&read(key)?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                AgentError::Invalid(format!(
                    "--client-cert {} / --client-key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => {
            return Err(AgentError::Invalid(
                "--client-cert and --client-key go together".into(),
            ));
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> bool {
        check_server_url(url, &TlsSettings::default()).is_ok()
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for url in [
            "http://127.0.0.1:9696",
            "http://127.1.2.3/",
            "http://[::1]:9696",
            "http://localhost:9696",
            "http://LOCALHOST.",
            "http://api.localhost:1",
            "http://[::ffff:127.0.0.1]:80",
            "https://192.0.2.1:9696",
            "https://vpnaas.example.com",
        ] {
            assert!(ok(url), "{url} should be allowed");
        }
        for url in [
            "http://192.0.2.1:9696",
            "http://10.0.0.1",
            "http://[2001:db8::1]:9696",
            "http://vpnaas.example.com",
            "http://localhost.example.com",
            "http://128.0.0.1",
            "http://0.0.0.0:9696",
            "ftp://127.0.0.1",
            "127.0.0.1:9696",
            "not a url",
        ] {
            assert!(!ok(url), "{url} should be refused");
        }
    }

    #[test]
    fn insecure_plain_http_is_explicit() {
        let tls = TlsSettings {
            insecure_plain_http: true,
            ..TlsSettings::default()
        };
        assert!(check_server_url("http://192.0.2.1:9696", &tls).is_ok());
        let err = check_server_url("http://192.0.2.1:9696", &TlsSettings::default()).unwrap_err();
        assert!(err.to_string().contains("--insecure-plain-http"), "{err}");
    }

    #[test]
    fn tls_options_need_https() {
        let tls = TlsSettings {
            ca_file: Some("/ca.pem".into()),
            ..TlsSettings::default()
        };
        assert!(check_server_url("http://127.0.0.1:1", &tls).is_err());
        assert!(check_server_url("https://127.0.0.1:1", &tls).is_ok());
    }

    #[test]
    fn client_cert_and_key_go_together() {
        let tls = TlsSettings {
            client_cert: Some("/cert.pem".into()),
            ..TlsSettings::default()
        };
        assert!(client_builder(&tls).is_err());
        assert!(client_builder(&TlsSettings::default()).is_ok());
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("agent-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let tls = TlsSettings {
            ca_file: Some(empty),
            ..TlsSettings::default()
        };
        let err = client_builder(&tls).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let missing = TlsSettings {
            ca_file: Some(dir.join("missing.pem")),
            ..TlsSettings::default()
        };
        assert!(client_builder(&missing).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
