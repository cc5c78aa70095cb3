//! Tests over the composed server: the real `vpnaas::server::app` (Keystone,
//! Neutron, NSX and node API behind the edge) on a fresh database per test,
//! called in-process (see [`harness`]). They cover each Neutron and NSX
//! resource's lifecycle, in-use conflicts, realization status with simulated
//! nodes, the cross-API invariant (a Neutron connection is an NSX session), and
//! the agent's node-API client against the real router.
//!
//! One test binary with a module per topic, so the server's dependency tree is
//! linked once. The Python real-client suites (`tests/clients`) stay the judge
//! of compatibility with `openstack`, openstacksdk and vmware-nsxlib; these
//! tests pin the same behaviour without Python, in a few seconds.

mod agent_client;
mod cross_api;
mod harness;
mod neutron;
mod nsx;
mod openapi;
mod realization;
mod statistics;
mod truth;
