//! [`DialGate`]: refuses an outbound dial *before* its handshake once the outbound
//! connection limit is reached.
//!
//! `libp2p::connection_limits` checks established-connection limits only after the
//! handshake (TCP, pnet, Noise, Yamux) has completed at both ends. Kademlia lookups dial many
//! peers, so at the limit each refused dial would still cost a full handshake at both hosts,
//! for a connection thrown away at once. This gate refuses such dials for free; the
//! connection-limits behaviour stays the authority for the hard limits (dials already in
//! flight when the limit is reached are still refused by it).

use std::{
    collections::HashSet,
    convert::Infallible,
    task::{Context, Poll},
};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, transport::PortUse},
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm, dummy,
    },
};

/// The gate; see the module docs.
#[derive(Debug)]
pub(crate) struct DialGate {
    /// Outbound connection limit.
    max_outbound: usize,
    /// Established outbound connections.
    outbound: HashSet<ConnectionId>,
    /// Peers the application is dialing (its requests are never refused).
    bypass: HashSet<PeerId>,
}

impl DialGate {
    pub(crate) fn new(max_outbound: u32) -> Self {
        Self {
            max_outbound: usize::try_from(max_outbound).unwrap_or(usize::MAX),
            outbound: HashSet::new(),
            bypass: HashSet::new(),
        }
    }

    /// Lets dials to `peer` through until [`DialGate::remove_bypass`].
    pub(crate) fn bypass(&mut self, peer: PeerId) {
        self.bypass.insert(peer);
    }

    pub(crate) fn remove_bypass(&mut self, peer: &PeerId) {
        self.bypass.remove(peer);
    }
}

impl NetworkBehaviour for DialGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        maybe_peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        let bypassed = maybe_peer.is_some_and(|p| self.bypass.contains(&p));
        if self.outbound.len() >= self.max_outbound && !bypassed {
            return Err(ConnectionDenied::new(std::io::Error::other(
                "outbound connection limit reached",
            )));
        }
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) if e.endpoint.is_dialer() => {
                self.outbound.insert(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                self.outbound.remove(&e.connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
