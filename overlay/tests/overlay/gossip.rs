//! Load summary gossip.

use dvms_overlay::{CommandError, MAX_SUMMARY_LEN};

use crate::harness::{cluster, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_fans_out_to_every_node_and_reaches_candidates() {
    let nodes = cluster(6, |_| None).await;
    let author = nodes[3].peer();
    // Let the overlay settle (every node knows every other) so the gossip mesh has formed.
    for node in &nodes {
        eventually("every node knows the 5 others", || async {
            node.candidates(10).await.len() == 5
        })
        .await;
    }
    // Not every node is connected to the author: the summary travels the gossipsub mesh.
    nodes[3]
        .handle
        .publish_summary(b"load=17;free".to_vec())
        .await
        .unwrap();

    for node in nodes.iter().filter(|n| n.peer() != author) {
        eventually("summary reaches the candidate table", || async {
            node.candidates(10).await.iter().any(|c| {
                c.peer == author
                    && c.summary.as_deref() == Some(&b"load=17;free"[..])
                    && c.summary_age.is_some()
            })
        })
        .await;
    }
    // It arrived by gossip (sync does not count as a received summary), validated.
    for node in nodes.iter().filter(|n| n.peer() != author) {
        let s = node.handle.stats();
        assert_eq!(s.summaries_received, 1, "one gossiped summary per node");
        assert_eq!(s.gossip_rejected, 0);
    }

    // A changed summary replaces the old one everywhere.
    nodes[3]
        .handle
        .publish_summary(b"load=90;busy".to_vec())
        .await
        .unwrap();
    for node in nodes.iter().filter(|n| n.peer() != author) {
        eventually("new summary replaces the old", || async {
            node.candidates(10)
                .await
                .iter()
                .any(|c| c.peer == author && c.summary.as_deref() == Some(&b"load=90;busy"[..]))
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_local_summaries_are_refused() {
    let nodes = cluster(1, |_| None).await;
    let h = &nodes[0].handle;
    assert!(matches!(
        h.publish_summary(Vec::new()).await,
        Err(CommandError::InvalidSummary { .. })
    ));
    assert!(matches!(
        h.publish_summary(vec![0; MAX_SUMMARY_LEN + 1]).await,
        Err(CommandError::InvalidSummary { .. })
    ));
    h.publish_summary(vec![1; MAX_SUMMARY_LEN]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_learns_existing_summaries_through_peer_table_sync() {
    let nodes = cluster(3, |_| None).await;
    let author = nodes[1].peer();
    nodes[1]
        .handle
        .publish_summary(b"old-news".to_vec())
        .await
        .unwrap();
    eventually("node 0 has the summary", || async {
        nodes[0]
            .candidates(10)
            .await
            .iter()
            .any(|c| c.peer == author && c.summary.is_some())
    })
    .await;
    let published = nodes[1].handle.stats().summaries_published;

    // The joiner connects to node 0 only; node 1 does not republish (unchanged summary).
    let mut cfg = crate::harness::memory_config(crate::harness::PSK);
    cfg.bootstrap.push(nodes[0].p2p_addr());
    let joiner = crate::harness::start(cfg).await;
    eventually("joiner knows node 1's summary", || async {
        joiner
            .candidates(10)
            .await
            .iter()
            .any(|c| c.peer == author && c.summary.as_deref() == Some(&b"old-news"[..]))
    })
    .await;
    assert_eq!(nodes[1].handle.stats().summaries_published, published);
}
