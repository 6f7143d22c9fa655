//! Scenario tests of the protocol on small clusters, named after `docs/protocol.md` sections.

mod cluster;
mod safety;
mod scenarios;
mod stress;
