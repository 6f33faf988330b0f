//! What the shared suite (`adapter-tests`) does not cover on async-std: a `dns:`
//! target resolved through async-std's resolver, and unix and abstract sockets.

use async_std::net::TcpListener;
use async_std::task::block_on;
use grpc_sansio_async_std::{Channel, Server};

/// Serves [`grpc_sansio_adapter_tests::scenarios::echo_server`] on a fresh loopback port; returns it and the port's
/// address.
async fn start() -> (Server, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server: Server = grpc_sansio_adapter_tests::scenarios::echo_server();
    let serving = server.clone();
    async_std::task::spawn(async move { serving.serve(listener).await });
    (server, addr)
}

#[test]
fn status_codes_and_deadlines() {
    block_on(async {
        let (_server, addr) = start().await;
        // A `dns:` target: the name goes through AsyncStd::lookup.
        let port = addr.rsplit_once(':').unwrap().1;
        let channel = Channel::builder(format!("dns:///localhost:{port}"))
            .connect_lazy()
            .unwrap();
        grpc_sansio_adapter_tests::scenarios::errors_and_deadlines(&channel).await;
    });
}

/// Accepts unix connections on `listener` and serves each on `server`.
async fn serve_unix(server: Server, listener: async_io::Async<std::os::unix::net::UnixListener>) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        server.serve_connection(grpc_sansio_async_std::io(stream));
    }
}

#[test]
fn unix_and_abstract_sockets() {
    block_on(async {
        let path = std::env::temp_dir().join(format!("gs-async-std-e2e-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = async_io::Async::<std::os::unix::net::UnixListener>::bind(&path).unwrap();
        let server: Server = grpc_sansio_adapter_tests::scenarios::echo_server();
        let serving = async_std::task::spawn(serve_unix(server.clone(), listener));
        let channel = Channel::builder(format!("unix://{}", path.display()))
            .connect()
            .await
            .expect("connects over the unix socket");
        grpc_sansio_adapter_tests::scenarios::four_call_kinds(&channel).await;
        serving.cancel().await;
        std::fs::remove_file(&path).unwrap();

        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("gs-async-std-e2e-{}", std::process::id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
            let listener = async_io::Async::new(listener).unwrap();
            async_std::task::spawn(serve_unix(server, listener));
            let channel = Channel::builder(format!("unix-abstract:{name}"))
                .connect()
                .await
                .expect("connects over the abstract socket");
            grpc_sansio_adapter_tests::scenarios::unary_with_metadata(&channel).await;
            grpc_sansio_adapter_tests::scenarios::bidi_echo(&channel).await;
        }
    });
}
