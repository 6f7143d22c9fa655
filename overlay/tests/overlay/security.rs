//! Private network: a host without the pre-shared key cannot connect.

use dvms_overlay::{Psk, RequestError};

use crate::harness::{PSK, echo, memory_config, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_with_wrong_psk_cannot_connect_but_right_psk_can() {
    let server = start(memory_config(PSK)).await;
    let server_addr = server.p2p_addr();
    let server_peer = server.peer();
    let (server_handle, _t) = echo(server, b"");

    let intruder = start(memory_config(Psk::new([0x43; 32]))).await;
    intruder.handle.dial(server_addr.clone()).await.unwrap();
    let r = intruder
        .handle
        .send_request(server_peer, b"let me in".to_vec())
        .await;
    assert!(matches!(r, Err(RequestError::Unreachable)), "{r:?}");
    assert_eq!(server_handle.stats().requests_received, 0);

    // Control: the same steps with the right key succeed.
    let member = start(memory_config(PSK)).await;
    member.handle.dial(server_addr).await.unwrap();
    let r = member
        .handle
        .send_request(server_peer, b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(r, b"hello");
    assert!(
        server_handle
            .candidates(server_handle.local_key(), [], 10)
            .await
            .unwrap()
            .iter()
            .all(|c| c.peer != intruder.peer()),
        "intruder must not be known"
    );
}
