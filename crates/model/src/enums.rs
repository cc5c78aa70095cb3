//! Closed value sets (algorithms, groups, modes). Each value has one canonical
//! spelling, which is Neutron's (it is also close to strongSwan's); API views map
//! their own spellings onto these.
//!
//! Each enum's schema (`utoipa::ToSchema`) is that canonical spelling: the node
//! API carries these values as they are, and Neutron's view spells them so too.

use serde::{Deserialize, Serialize};

/// Declares a string-valued enum with its canonical wire spelling.
macro_rules! string_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $variant),+
        }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            /// Parses the canonical spelling (exact match).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        // Written out rather than derived: the derive can't see the serde
        // renames through the macro's literals, and the schema must list the
        // canonical spellings.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::enums::string_schema(&[$($doc),*], &[$($s),+])
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

/// The schema of a string enum: its doc comment and its spellings.
pub(crate) fn string_schema(
    doc: &[&str],
    values: &[&str],
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let description = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join("\n");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description).filter(|d| !d.is_empty()))
        .enum_values(Some(values.iter().copied()))
        .into()
}

pub(crate) use string_enum;

string_enum!(
    /// Integrity (PRF/digest) algorithm.
    AuthAlgorithm {
        /// HMAC-SHA-1; Neutron's default.
        Sha1 = "sha1",
        /// HMAC-SHA-256.
        Sha256 = "sha256",
        /// HMAC-SHA-384.
        Sha384 = "sha384",
        /// HMAC-SHA-512.
        Sha512 = "sha512",
        /// AES-XCBC-MAC (RFC 3566).
        AesXcbc = "aes-xcbc",
        /// AES-CMAC (RFC 4494).
        AesCmac = "aes-cmac",
    }
);

string_enum!(
    /// Encryption algorithm, including the AEAD (CCM/GCM) and CTR variants.
    EncryptionAlgorithm {
        /// Triple DES in CBC mode; legacy peers only.
        TripleDes = "3des",
        /// AES-128 in CBC mode; Neutron's default.
        Aes128 = "aes-128",
        /// AES-192 in CBC mode.
        Aes192 = "aes-192",
        /// AES-256 in CBC mode.
        Aes256 = "aes-256",
        /// AES-128 in CCM mode with a 8-byte ICV (AEAD).
        Aes128Ccm8 = "aes-128-ccm-8",
        /// AES-192 in CCM mode with a 8-byte ICV (AEAD).
        Aes192Ccm8 = "aes-192-ccm-8",
        /// AES-256 in CCM mode with a 8-byte ICV (AEAD).
        Aes256Ccm8 = "aes-256-ccm-8",
        /// AES-128 in CCM mode with a 12-byte ICV (AEAD).
        Aes128Ccm12 = "aes-128-ccm-12",
        /// AES-192 in CCM mode with a 12-byte ICV (AEAD).
        Aes192Ccm12 = "aes-192-ccm-12",
        /// AES-256 in CCM mode with a 12-byte ICV (AEAD).
        Aes256Ccm12 = "aes-256-ccm-12",
        /// AES-128 in CCM mode with a 16-byte ICV (AEAD).
        Aes128Ccm16 = "aes-128-ccm-16",
        /// AES-192 in CCM mode with a 16-byte ICV (AEAD).
        Aes192Ccm16 = "aes-192-ccm-16",
        /// AES-256 in CCM mode with a 16-byte ICV (AEAD).
        Aes256Ccm16 = "aes-256-ccm-16",
        /// AES-128 in GCM mode with a 8-byte ICV (AEAD).
        Aes128Gcm8 = "aes-128-gcm-8",
        /// AES-192 in GCM mode with a 8-byte ICV (AEAD).
        Aes192Gcm8 = "aes-192-gcm-8",
        /// AES-256 in GCM mode with a 8-byte ICV (AEAD).
        Aes256Gcm8 = "aes-256-gcm-8",
        /// AES-128 in GCM mode with a 12-byte ICV (AEAD).
        Aes128Gcm12 = "aes-128-gcm-12",
        /// AES-192 in GCM mode with a 12-byte ICV (AEAD).
        Aes192Gcm12 = "aes-192-gcm-12",
        /// AES-256 in GCM mode with a 12-byte ICV (AEAD).
        Aes256Gcm12 = "aes-256-gcm-12",
        /// AES-128 in GCM mode with a 16-byte ICV (AEAD).
        Aes128Gcm16 = "aes-128-gcm-16",
        /// AES-192 in GCM mode with a 16-byte ICV (AEAD).
        Aes192Gcm16 = "aes-192-gcm-16",
        /// AES-256 in GCM mode with a 16-byte ICV (AEAD).
        Aes256Gcm16 = "aes-256-gcm-16",
        /// AES-128 in counter mode; needs an integrity algorithm.
        Aes128Ctr = "aes-128-ctr",
        /// AES-192 in counter mode; needs an integrity algorithm.
        Aes192Ctr = "aes-192-ctr",
        /// AES-256 in counter mode; needs an integrity algorithm.
        Aes256Ctr = "aes-256-ctr",
    }
);

impl EncryptionAlgorithm {
    /// AEAD algorithms carry their own integrity check (no separate auth algorithm on ESP).
    pub fn is_aead(self) -> bool {
        let s = self.as_str();
        s.contains("-ccm-") || s.contains("-gcm-")
    }
}

string_enum!(
    /// Diffie-Hellman group used for IKE and PFS.
    DhGroup {
        /// 1024-bit MODP.
        Group2 = "group2",
        /// 1536-bit MODP; Neutron's default.
        Group5 = "group5",
        /// 2048-bit MODP; NSX's default.
        Group14 = "group14",
        /// 3072-bit MODP.
        Group15 = "group15",
        /// 4096-bit MODP.
        Group16 = "group16",
        /// 6144-bit MODP.
        Group17 = "group17",
        /// 8192-bit MODP.
        Group18 = "group18",
        /// 256-bit random ECP (NIST P-256).
        Group19 = "group19",
        /// 384-bit random ECP (NIST P-384).
        Group20 = "group20",
        /// 521-bit random ECP (NIST P-521).
        Group21 = "group21",
        /// 1024-bit MODP with a 160-bit prime-order subgroup (RFC 5114).
        Group22 = "group22",
        /// 2048-bit MODP with a 224-bit prime-order subgroup (RFC 5114).
        Group23 = "group23",
        /// 2048-bit MODP with a 256-bit prime-order subgroup (RFC 5114).
        Group24 = "group24",
        /// 192-bit random ECP (NIST P-192).
        Group25 = "group25",
        /// 224-bit random ECP (NIST P-224).
        Group26 = "group26",
        /// Brainpool P-224 (brainpoolP224r1).
        Group27 = "group27",
        /// Brainpool P-256 (brainpoolP256r1).
        Group28 = "group28",
        /// Brainpool P-384 (brainpoolP384r1).
        Group29 = "group29",
        /// Brainpool P-512 (brainpoolP512r1).
        Group30 = "group30",
        /// Curve25519 (RFC 8031).
        Group31 = "group31",
    }
);

impl DhGroup {
    /// The IANA group number.
    pub fn number(self) -> u32 {
        self.as_str()["group".len()..].parse().unwrap_or(0)
    }
}

string_enum!(
    /// IKE phase-1 negotiation mode (IKEv1 only).
    Phase1Mode {
        /// Six messages; the identities are encrypted.
        Main = "main",
        /// Three messages; the identities travel in the clear.
        Aggressive = "aggressive",
    }
);

string_enum!(
    /// IKE protocol version. `Flex` (NSX `IKE_FLEX`) accepts either version as a
    /// responder and initiates with IKEv2 (strongSwan `version = 0`).
    IkeVersion {
        /// IKEv1 (RFC 2409); Neutron's default.
        V1 = "v1",
        /// IKEv2 (RFC 7296).
        V2 = "v2",
        /// Either version as responder, IKEv2 as initiator.
        Flex = "flex",
    }
);

string_enum!(
    /// IPsec transform protocol.
    TransformProtocol {
        /// ESP: encryption and integrity of the payload.
        Esp = "esp",
        /// AH: integrity only, including the outer IP header.
        Ah = "ah",
        /// AH and ESP together; Neutron accepts the value, validation refuses
        /// it ([`crate::Violation::IpsecUnsupported`]).
        AhEsp = "ah-esp",
    }
);

string_enum!(
    /// IPsec encapsulation mode.
    EncapsulationMode {
        /// The whole inner packet is carried behind a new IP header (site-to-site).
        Tunnel = "tunnel",
        /// Only the payload is protected; the original IP header stays.
        Transport = "transport",
    }
);

string_enum!(
    /// Lifetime units; only seconds exist.
    LifetimeUnits {
        /// The lifetime value counts seconds.
        Seconds = "seconds",
    }
);

string_enum!(
    /// Who starts the IKE negotiation. `OnDemand` (NSX `ON_DEMAND`) initiates when
    /// matching traffic appears (strongSwan `start_action = trap`).
    Initiator {
        /// This side initiates (the agent starts it) and also accepts the peer's
        /// initiation.
        BiDirectional = "bi-directional",
        /// This side only answers; the peer must initiate.
        ResponseOnly = "response-only",
        /// charon installs trap policies and negotiates when traffic first matches.
        OnDemand = "on-demand",
    }
);

string_enum!(
    /// What to do when dead peer detection declares the peer dead.
    DpdAction {
        /// Close the SAs and stay down.
        Clear = "clear",
        /// No dead peer detection.
        Disabled = "disabled",
        /// Close the SAs and renegotiate when traffic for the peer appears
        /// (strongSwan `trap`); Neutron's default.
        Hold = "hold",
        /// Close the SAs and renegotiate at once.
        Restart = "restart",
        /// Close the SAs and wait for the peer to re-establish them.
        RestartByPeer = "restart-by-peer",
    }
);

string_enum!(
    /// Endpoint group type.
    EndpointType {
        /// Endpoints are prefixes (the peer side of a connection).
        Cidr = "cidr",
        /// Endpoints are Neutron network ids; accepted, not usable by a connection.
        Network = "network",
        /// Endpoints are Neutron router ids; accepted, not usable by a connection.
        Router = "router",
        /// Endpoints are subnet ids (the local side of a connection).
        Subnet = "subnet",
        /// Endpoints are VLAN ids; accepted, not usable by a connection.
        Vlan = "vlan",
    }
);

string_enum!(
    /// Operational status as Neutron reports it.
    Status {
        /// A live node has realized the last change (a connection: with its CHILD SA
        /// installed).
        Active = "ACTIVE",
        /// Disabled, carried by no live node, or (a connection) realized but not
        /// established.
        Down = "DOWN",
        /// In Neutron's value set; vpnaas never derives it.
        Build = "BUILD",
        /// A node failed to apply the connection.
        Error = "ERROR",
        /// No node has realized the object since it was created; Neutron refuses
        /// updates meanwhile.
        PendingCreate = "PENDING_CREATE",
        /// No node has realized the object's last update; Neutron refuses updates
        /// meanwhile.
        PendingUpdate = "PENDING_UPDATE",
        /// In Neutron's value set; vpnaas deletes at once and never derives it.
        PendingDelete = "PENDING_DELETE",
    }
);

impl Status {
    /// Whether the status is one of the PENDING_* transition states.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Status::PendingCreate | Status::PendingUpdate | Status::PendingDelete
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_numbers() {
        for g in DhGroup::ALL {
            assert_eq!(DhGroup::parse(g.as_str()), Some(*g));
        }
        assert_eq!(DhGroup::Group14.number(), 14);
        assert!(EncryptionAlgorithm::Aes256Gcm16.is_aead());
        assert!(!EncryptionAlgorithm::Aes256Ctr.is_aead());
        assert_eq!(EncryptionAlgorithm::ALL.len(), 25);
        assert_eq!(EncryptionAlgorithm::parse("aes-512"), None);
    }
}
