//! Cross-adapter: an async-std client against a tokio server, and a tokio client
//! against an async-std server, over loopback TCP.

use grpc_sansio::channel::state::ConnectivityState;

#[test]
fn async_std_client_against_a_tokio_server() {
    // The tokio server runs on its own runtime's worker thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server: grpc_sansio_tokio::Server = grpc_sansio_adapter_tests::scenarios::echo_server();
    let serving = server.clone();
    rt.spawn(async move { serving.serve(listener).await });

    async_std::task::block_on(async {
        let channel = grpc_sansio_async_std::Channel::builder(format!("passthrough:///{addr}"))
            .connect()
            .await
            .expect("connects");
        assert_eq!(channel.state(false), ConnectivityState::Ready);
        grpc_sansio_adapter_tests::scenarios::four_call_kinds(&channel).await;
        grpc_sansio_adapter_tests::scenarios::errors_and_deadlines(&channel).await;
    });
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn tokio_client_against_an_async_std_server() {
    // The async-std server runs on async-std's global executor.
    let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server: grpc_sansio_async_std::Server = grpc_sansio_adapter_tests::scenarios::echo_server();
    let serving = server.clone();
    async_std::task::spawn(async move { serving.serve(listener).await });

    let channel = grpc_sansio_tokio::Channel::builder(format!("passthrough:///{addr}"))
        .connect()
        .await
        .expect("connects");
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    grpc_sansio_adapter_tests::scenarios::four_call_kinds(&channel).await;
    grpc_sansio_adapter_tests::scenarios::errors_and_deadlines(&channel).await;
    assert_eq!(server.connection_count(), 1);
}
