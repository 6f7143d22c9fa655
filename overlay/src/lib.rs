//! dvms-overlay: the libp2p overlay (placeholder until its issue lands).
