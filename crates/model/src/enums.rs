//! Closed value sets (algorithms, groups, modes). Each value has one canonical
//! spelling, which is Neutron's (it is also close to strongSwan's); API views map
//! their own spellings onto these.
//!
//! Each enum's schema (`utoipa::ToSchema`) is that canonical spelling: the node
//! API carries these values as they are, and Neutron's view spells them so too.

use serde::{Deserialize, Serialize};

/// Declares a string-valued enum with its canonical wire spelling.
macro_rules! string_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $s)] $variant),+
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
        Sha1 = "sha1",
        Sha256 = "sha256",
        Sha384 = "sha384",
        Sha512 = "sha512",
        AesXcbc = "aes-xcbc",
        AesCmac = "aes-cmac",
    }
);

string_enum!(
    /// Encryption algorithm, including the AEAD (CCM/GCM) and CTR variants.
    EncryptionAlgorithm {
        TripleDes = "3des",
        Aes128 = "aes-128",
        Aes192 = "aes-192",
        Aes256 = "aes-256",
        Aes128Ccm8 = "aes-128-ccm-8",
        Aes192Ccm8 = "aes-192-ccm-8",
        Aes256Ccm8 = "aes-256-ccm-8",
        Aes128Ccm12 = "aes-128-ccm-12",
        Aes192Ccm12 = "aes-192-ccm-12",
        Aes256Ccm12 = "aes-256-ccm-12",
        Aes128Ccm16 = "aes-128-ccm-16",
        Aes192Ccm16 = "aes-192-ccm-16",
        Aes256Ccm16 = "aes-256-ccm-16",
        Aes128Gcm8 = "aes-128-gcm-8",
        Aes192Gcm8 = "aes-192-gcm-8",
        Aes256Gcm8 = "aes-256-gcm-8",
        Aes128Gcm12 = "aes-128-gcm-12",
        Aes192Gcm12 = "aes-192-gcm-12",
        Aes256Gcm12 = "aes-256-gcm-12",
        Aes128Gcm16 = "aes-128-gcm-16",
        Aes192Gcm16 = "aes-192-gcm-16",
        Aes256Gcm16 = "aes-256-gcm-16",
        Aes128Ctr = "aes-128-ctr",
        Aes192Ctr = "aes-192-ctr",
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
        Group2 = "group2",
        Group5 = "group5",
        Group14 = "group14",
        Group15 = "group15",
        Group16 = "group16",
        Group17 = "group17",
        Group18 = "group18",
        Group19 = "group19",
        Group20 = "group20",
        Group21 = "group21",
        Group22 = "group22",
        Group23 = "group23",
        Group24 = "group24",
        Group25 = "group25",
        Group26 = "group26",
        Group27 = "group27",
        Group28 = "group28",
        Group29 = "group29",
        Group30 = "group30",
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
    Phase1Mode { Main = "main", Aggressive = "aggressive" }
);

string_enum!(
    /// IKE protocol version. `Flex` (NSX `IKE_FLEX`) accepts either version as a
    /// responder and initiates with IKEv2 (strongSwan `version = 0`).
    IkeVersion { V1 = "v1", V2 = "v2", Flex = "flex" }
);

string_enum!(
    /// IPsec transform protocol.
    TransformProtocol { Esp = "esp", Ah = "ah", AhEsp = "ah-esp" }
);

string_enum!(
    /// IPsec encapsulation mode.
    EncapsulationMode { Tunnel = "tunnel", Transport = "transport" }
);

string_enum!(
    /// Lifetime units; only seconds exist.
    LifetimeUnits { Seconds = "seconds" }
);

string_enum!(
    /// Who starts the IKE negotiation. `OnDemand` (NSX `ON_DEMAND`) initiates when
    /// matching traffic appears (strongSwan `start_action = trap`).
    Initiator {
        BiDirectional = "bi-directional",
        ResponseOnly = "response-only",
        OnDemand = "on-demand",
    }
);

string_enum!(
    /// What to do when dead peer detection declares the peer dead.
    DpdAction {
        Clear = "clear",
        Disabled = "disabled",
        Hold = "hold",
        Restart = "restart",
        RestartByPeer = "restart-by-peer",
    }
);

string_enum!(
    /// Endpoint group type.
    EndpointType {
        Cidr = "cidr",
        Network = "network",
        Router = "router",
        Subnet = "subnet",
        Vlan = "vlan",
    }
);

string_enum!(
    /// Operational status as Neutron reports it.
    Status {
        Active = "ACTIVE",
        Down = "DOWN",
        Build = "BUILD",
        Error = "ERROR",
        PendingCreate = "PENDING_CREATE",
        PendingUpdate = "PENDING_UPDATE",
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
