//! Our smol client against our smol server (smol's executor, async-net's sockets):
//! unary and bidi calls, with metadata.

use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio_async_std::smol::{Channel, Server};

#[test]
fn unary_and_bidi_on_smol() {
    smol::block_on(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server: Server = grpc_sansio_adapter_tests::scenarios::echo_server();
        let serving = server.clone();
        let task = smol::spawn(async move { serving.serve(listener).await });

        let channel = Channel::builder(format!("passthrough:///{addr}"))
            .connect()
            .await
            .expect("connects");
        assert_eq!(channel.state(false), ConnectivityState::Ready);
        grpc_sansio_adapter_tests::scenarios::unary_with_metadata(&channel).await;
        grpc_sansio_adapter_tests::scenarios::bidi_echo(&channel).await;
        // A `dns:` target resolves through async-net, and a deadline runs on async-io.
        let channel = Channel::builder(format!("dns:///localhost:{}", addr.port()))
            .connect_lazy()
            .unwrap();
        grpc_sansio_adapter_tests::scenarios::errors_and_deadlines(&channel).await;

        // The accept loop ends on shutdown.
        server.shutdown();
        smol::future::or(async { task.await.unwrap() }, async {
            smol::Timer::after(std::time::Duration::from_secs(5)).await;
            panic!("serve did not return after shutdown");
        })
        .await;
    });
}
