//! Our smol client against our smol server (smol's executor, async-net's sockets):
//! unary and bidi calls, with metadata.

#![cfg(feature = "smol")]

mod common;

use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio_async_std::smol::{Channel, Server};

#[test]
fn unary_and_bidi_on_smol() {
    smol::block_on(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server: Server = common::echo_server();
        let serving = server.clone();
        let task = smol::spawn(async move { serving.serve(listener).await });

        let channel = Channel::builder(format!("passthrough:///{addr}"))
            .connect()
            .await
            .expect("connects");
        assert_eq!(channel.state(false), ConnectivityState::Ready);
        common::unary_with_metadata(&channel).await;
        common::bidi_echo(&channel).await;
        // A `dns:` target resolves through async-net, and a deadline runs on async-io.
        let channel = Channel::builder(format!("dns:///localhost:{}", addr.port()))
            .connect_lazy()
            .unwrap();
        common::errors_and_deadlines(&channel).await;

        // The accept loop ends on shutdown.
        server.shutdown();
        smol::future::or(async { task.await.unwrap() }, async {
            smol::Timer::after(std::time::Duration::from_secs(5)).await;
            panic!("serve did not return after shutdown");
        })
        .await;
    });
}
