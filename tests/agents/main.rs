//! Real `dvmsd` processes on loopback over the lab hypervisor (harness: `dvms-testkit`).
//!
//! Clusters run one at a time ([`dvms_testkit::serial`]). No assertion is on time: waits poll
//! with generous hang guards.

mod admission;
mod failures;
mod overload;
