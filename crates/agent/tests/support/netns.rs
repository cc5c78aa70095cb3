//! Test/bench support: one charon in its own network namespace, with a private
//! /run and its own VICI socket, stopped by PID and removed on drop (also on panic).
//! Shared by `tests/charon.rs` and `benches/charon.rs` via `#[path]`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether this machine can run charon here (root and Debian's strongSwan).
pub(crate) fn available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    root && Path::new("/usr/lib/ipsec/charon").exists()
}

/// One charon in its own network namespace; stopped and removed on drop.
pub(crate) struct Site {
    pub ns: String,
    dir: PathBuf,
    charon: Option<Child>,
}

pub(crate) fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().expect("sh");
    assert!(st.success(), "failed: {cmd}");
}

impl Site {
    pub(crate) fn start(name: &str, addr: &str, host: &str, veth: Option<(&str, &str)>) -> Site {
        let ns = format!("vpnaas-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&ns);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        sh(&format!("ip netns add {ns} && ip -n {ns} link set lo up"));
        let mut site = Site {
            ns: ns.clone(),
            dir: dir.clone(),
            charon: None,
        };
        if let Some((dev, peer_ns)) = veth {
            sh(&format!(
                "ip link add {dev} netns {ns} type veth peer name {dev}p netns {peer_ns} && \
                 ip -n {ns} addr add {addr}/30 dev {dev} && ip -n {ns} link set {dev} up && \
                 ip -n {peer_ns} link set {dev}p up"
            ));
        } else {
            sh(&format!("ip -n {ns} addr add {addr}/32 dev lo"));
        }
        sh(&format!("ip -n {ns} addr add {host}/32 dev lo"));
        let conf = dir.join("strongswan.conf");
        std::fs::write(
            &conf,
            format!(
                "charon {{\n  load_modular = no\n  load = random nonce openssl aes sha1 sha2 hmac gcm gmp pem pkcs1 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici\n  \
                 plugins {{ vici {{ socket = unix://{d}/charon.vici }} }}\n  \
                 filelog {{ main {{ path = {d}/charon.log\n default = 0\n }} }}\n}}\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "sh", "-c"])
            .arg(format!(
                "mount --bind {d}/run /run && exec env STRONGSWAN_CONF={c} /usr/lib/ipsec/charon",
                d = dir.display(),
                c = conf.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start charon");
        site.charon = Some(child);
        for _ in 0..200 {
            if site.vici().exists() {
                return site;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("charon did not open {}", site.vici().display());
    }

    pub(crate) fn vici(&self) -> PathBuf {
        self.dir.join("charon.vici")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut c) = self.charon.take() {
            // SIGTERM by PID (ip execs sh which execs charon: same PID).
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            for _ in 0..100 {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
