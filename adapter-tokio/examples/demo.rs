//! The tokio adapter end to end on loopback, against an embedded server: unary and
//! server-streaming calls, then the server stops and comes back, and the channel's
//! trace shows what seed 004 describes — READY → IDLE on the loss, CONNECTING →
//! TRANSIENT_FAILURE while the server is down, retries after each backoff, READY again.
//!
//! Run with `cargo run -p grpc-sansio-tokio --example demo`. Exits non-zero if any
//! outcome differs from what is expected.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use grpc_sansio::channel::backoff::BackoffConfig;
use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio_tokio::{
    BytesCodec, CallOptions, Channel, Code, Incoming, Outgoing, Reply, Request, Server,
};
use tokio::net::TcpListener;

fn echo_server() -> Server {
    Server::builder()
        .unary::<BytesCodec, _, _>("/demo.Echo/Unary", |req: Request<Bytes>| async move {
            let upper = req.message.to_ascii_uppercase();
            Ok(Reply::new(Bytes::from(upper)))
        })
        .streaming::<BytesCodec, _, _>(
            "/demo.Echo/Count",
            |mut incoming: Incoming<BytesCodec>, mut out: Outgoing<BytesCodec>| async move {
                let n: usize = incoming
                    .message()
                    .await?
                    .and_then(|m| std::str::from_utf8(&m).ok()?.parse().ok())
                    .unwrap_or(0);
                for i in 1..=n {
                    out.send(Bytes::from(format!("{i} of {n}"))).await?;
                }
                Ok(())
            },
        )
        .build()
}

async fn serve(addr: SocketAddr) -> Result<(Server, SocketAddr), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let server = echo_server();
    let serving = server.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    Ok((server, addr))
}

fn check(ok: bool, what: &str) -> Result<(), Box<dyn std::error::Error>> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected outcome: {what}").into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The channel's trace events are `tracing` events: print them as they happen.
    // Times are seconds since start, to show the backoff between attempts.
    tracing_subscriber::fmt()
        .with_target(false)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_level(false)
        .with_ansi(false)
        .init();

    let (server, addr) = serve("127.0.0.1:0".parse()?).await?;
    println!("server listening on {addr}");
    // A short backoff so the demo takes seconds, not minutes.
    let channel = Channel::builder(format!("dns:///{addr}"))
        .backoff(BackoffConfig {
            base_delay: Duration::from_millis(250),
            multiplier: 1.6,
            jitter: 0.2,
            max_delay: Duration::from_secs(2),
        })
        .connect()
        .await?;

    let reply = channel
        .unary::<BytesCodec>(
            "/demo.Echo/Unary",
            Bytes::from_static(b"hello, sans-io"),
            CallOptions::new(),
        )
        .await?;
    println!("unary reply: {}", String::from_utf8_lossy(&reply.message));
    check(reply.message == "HELLO, SANS-IO", "unary reply")?;

    let mut stream = channel
        .server_streaming::<BytesCodec>(
            "/demo.Echo/Count",
            Bytes::from_static(b"3"),
            CallOptions::new(),
        )
        .await?;
    let mut count = 0;
    while let Some(m) = stream.message().await? {
        println!("stream message: {}", String::from_utf8_lossy(&m));
        count += 1;
    }
    check(count == 3, "three streamed messages")?;

    println!("-- stopping the server");
    server.shutdown();
    let state = channel
        .wait_for_state_change(ConnectivityState::Ready)
        .await;
    check(
        state == ConnectivityState::Idle,
        "IDLE after the server left",
    )?;
    // Give the listener task time to drop its socket.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let err = channel
        .unary::<BytesCodec>(
            "/demo.Echo/Unary",
            Bytes::from_static(b"anyone?"),
            CallOptions::new(),
        )
        .await
        .expect_err("no server");
    println!("fail-fast call while down: {} ({})", err.code, err.message);
    check(err.code == Code::Unavailable, "UNAVAILABLE while down")?;

    // Let a few backoff rounds go by, then bring the server back on the same port.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    println!("-- restarting the server");
    let (_server, _) = serve(addr).await?;
    let reply = channel
        .unary::<BytesCodec>(
            "/demo.Echo/Unary",
            Bytes::from_static(b"welcome back"),
            CallOptions::new()
                .wait_for_ready(true)
                .timeout(Duration::from_secs(10)),
        )
        .await?;
    println!(
        "wait-for-ready reply: {}",
        String::from_utf8_lossy(&reply.message)
    );
    check(reply.message == "WELCOME BACK", "reply after the restart")?;
    check(
        channel.state(false) == ConnectivityState::Ready,
        "READY at the end",
    )?;
    println!("all outcomes as expected");
    Ok(())
}
