//! Request-response messaging, shutdown, TCP on loopback, persisted identity.

use std::time::Duration;

use dvms_overlay::{
    CommandError, Config, Event, Identity, MAX_FRAME_LEN, NewError, Overlay, RequestError,
    TransportKind,
};

use crate::harness::{PSK, cluster, echo, eventually, memory_config, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_gets_its_response_and_ids_are_single_use() {
    let mut nodes = cluster(2, |_| None).await;
    let b = nodes.pop().unwrap();
    let mut a = nodes.pop().unwrap();
    let b_peer = b.peer();
    let (b_handle, _b_task) = echo(b, b"re:");

    for i in 0..20u8 {
        let resp = a.handle.send_request(b_peer, vec![i; 100]).await.unwrap();
        assert_eq!(&resp[..3], b"re:");
        assert_eq!(&resp[3..], &[i; 100][..]);
    }
    // A payload of exactly the limit passes.
    let resp = a
        .handle
        .send_request(b_peer, vec![9; MAX_FRAME_LEN - 3])
        .await
        .unwrap();
    assert_eq!(resp.len(), MAX_FRAME_LEN);
    assert_eq!(a.handle.stats().requests_sent, 21);
    assert_eq!(b_handle.stats().requests_received, 21);

    // Answering twice: the second answer is refused.
    let a_handle = a.handle.clone();
    let asker = tokio::spawn(async move {
        b_handle
            .send_request(a_handle.local_peer_id(), b"q".to_vec())
            .await
    });
    let Event::InboundRequest { request, bytes, .. } = a
        .wait_event(|e| matches!(e, Event::InboundRequest { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(bytes, b"q");
    a.handle.respond(request, b"a".to_vec()).await.unwrap();
    assert!(matches!(
        a.handle.respond(request, b"again".to_vec()).await,
        Err(CommandError::UnknownRequest { .. })
    ));
    assert_eq!(asker.await.unwrap().unwrap(), b"a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_request_times_out() {
    // The silent side would time out its inbound request after 10 s; the asker gives up first.
    let first = memory_config(PSK);
    let silent = start(first).await;
    let mut cfg = memory_config(PSK);
    cfg.request_timeout = Duration::from_millis(300);
    cfg.bootstrap.push(silent.p2p_addr());
    let asker = start(cfg).await;
    let r = asker
        .handle
        .send_request(silent.peer(), b"anyone?".to_vec())
        .await;
    assert!(matches!(r, Err(RequestError::Timeout)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_payloads_are_refused_before_sending() {
    let mut nodes = cluster(2, |_| None).await;
    let b = nodes.pop().unwrap();
    let a = nodes.pop().unwrap();
    let r = a
        .handle
        .send_request(b.peer(), vec![0; MAX_FRAME_LEN + 1])
        .await;
    assert!(matches!(r, Err(RequestError::TooLarge { .. })), "{r:?}");
    assert_eq!(a.handle.stats().requests_sent, 0);
    assert_eq!(b.handle.stats().requests_received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_loop_and_shutdown_fails_pending_requests() {
    let nodes = cluster(2, |_| None).await;
    let mut it = nodes.into_iter();
    let a = it.next().unwrap();
    let b = it.next().unwrap();
    // b never answers; a's request is pending when a shuts down.
    let a_handle = a.handle.clone();
    let b_peer = b.peer();
    let pending = tokio::spawn(async move { a_handle.send_request(b_peer, b"x".to_vec()).await });
    eventually("request sent", || async {
        a.handle.stats().requests_sent == 1
    })
    .await;
    a.handle.shutdown().await.unwrap();
    assert!(matches!(pending.await.unwrap(), Err(RequestError::Closed)));
    tokio::time::timeout(crate::harness::WAIT, a.task)
        .await
        .unwrap()
        .unwrap();

    let b_task = b.task;
    drop(b.handle);
    tokio::time::timeout(crate::harness::WAIT, b_task)
        .await
        .expect("loop ends when all handles are dropped")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_and_gossip_over_loopback_tcp() {
    let tcp = |bootstrap: Option<String>| {
        let mut cfg = Config::new(PSK)
            .with_transport(TransportKind::Tcp)
            .with_listen("/ip4/127.0.0.1/tcp/0".parse().unwrap());
        cfg.summary_min_interval = Duration::from_millis(50);
        if let Some(b) = bootstrap {
            cfg.bootstrap.push(b.parse().unwrap());
        }
        cfg
    };
    let server = start(tcp(None)).await;
    assert!(server.addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"));
    let mut client = start(tcp(Some(server.p2p_addr().to_string()))).await;
    let server_peer = server.peer();
    client
        .wait_event(|e| matches!(e, Event::PeerUp { peer } if *peer == server_peer))
        .await;
    let (server_handle, _t) = echo(server, b"tcp:");
    let resp = client
        .handle
        .send_request(server_peer, b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(resp, b"tcp:hello");

    server_handle.publish_summary(b"s1".to_vec()).await.unwrap();
    let ev = client
        .wait_event(|e| matches!(e, Event::SummaryReceived { .. }))
        .await;
    assert!(
        matches!(ev, Event::SummaryReceived { peer, summary, .. } if peer == server_peer && summary == b"s1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_persists_in_state_dir_and_corrupt_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || memory_config(PSK).with_identity(Identity::StateDir(dir.path().to_owned()));
    let first = start(cfg()).await;
    let id = first.peer();
    first.handle.shutdown().await.unwrap();
    let second = start(cfg()).await;
    assert_eq!(second.peer(), id, "peer id must survive a restart");
    second.handle.shutdown().await.unwrap();

    std::fs::write(dir.path().join(dvms_overlay::IDENTITY_FILE), b"garbage").unwrap();
    let err = Overlay::new(cfg()).unwrap_err();
    assert!(matches!(err, NewError::Identity(_)), "{err}");
}
