//! One end-to-end suite for every adapter. Each test is an `async fn` generic over
//! [`TestRuntime`] (an adapter's [`Runtime`] plus what a test needs: run a future to
//! completion, bind a listener); [`suite!`] instantiates all of them as `#[test]`s for
//! one runtime. `tests/tokio.rs`, `tests/async_std.rs` and `tests/smol.rs` do that;
//! `tests/cross_runtime.rs` (an async-std client against a tokio server and the
//! reverse), `tests/async_std_extra.rs` (DNS through async-std, unix and abstract
//! sockets) and `tests/smol_extra.rs` (DNS through async-net) use the same
//! [`scenarios`].
//!
//! The tests use only the runtime-neutral API (`grpc_sansio_runtime`), the helpers
//! here and `futures-io` streams, so a test cannot pass on one runtime by leaning on
//! that runtime's own types.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{Either, select};
use grpc_sansio_runtime::Runtime;

pub mod e2e;
pub mod features;
pub mod proxy;
pub mod scenarios;
pub mod tls;

/// An adapter's runtime, as the suite drives it.
pub trait TestRuntime: Runtime {
    /// Runs `f` to completion on a fresh runtime (one per test).
    fn block_on<F: Future>(f: F) -> F::Output;

    /// Binds a TCP listener.
    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// The address `listener` is bound to.
    fn local_addr(listener: &Self::Listener) -> SocketAddr;
}

impl TestRuntime for grpc_sansio_tokio::Tokio {
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(f)
    }

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::bind(addr).await
    }

    fn local_addr(listener: &Self::Listener) -> SocketAddr {
        listener.local_addr().expect("a bound listener")
    }
}

impl TestRuntime for grpc_sansio_async_std::AsyncStd {
    fn block_on<F: Future>(f: F) -> F::Output {
        async_std::task::block_on(f)
    }

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        async_std::net::TcpListener::bind(addr).await
    }

    fn local_addr(listener: &Self::Listener) -> SocketAddr {
        listener.local_addr().expect("a bound listener")
    }
}

impl TestRuntime for grpc_sansio_async_std::Smol {
    fn block_on<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        async_net::TcpListener::bind(addr).await
    }

    fn local_addr(listener: &Self::Listener) -> SocketAddr {
        listener.local_addr().expect("a bound listener")
    }
}

/// A listener on a free loopback port, and its address.
pub async fn listen<R: TestRuntime>() -> (R::Listener, SocketAddr) {
    let listener = R::bind("127.0.0.1:0".parse().unwrap()).await.expect("bind");
    let addr = R::local_addr(&listener);
    (listener, addr)
}

/// The output of a spawned task, or that it was dropped before finishing.
pub struct JoinHandle<T>(futures_channel::oneshot::Receiver<T>);

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, futures_channel::oneshot::Canceled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Spawns `f` on the current runtime.
pub fn spawn<R: TestRuntime, T: Send + 'static>(
    f: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    let (tx, rx) = futures_channel::oneshot::channel();
    R::current().spawn(async move {
        let _ = tx.send(f.await);
    });
    JoinHandle(rx)
}

/// Sleeps for `d` on the runtime's clock.
pub async fn sleep<R: TestRuntime>(d: Duration) {
    let rt = R::current();
    rt.sleep_until(rt.now() + d).await;
}

/// The time ran out.
#[derive(Debug)]
pub struct Elapsed;

/// `f`, unless `d` passes first.
pub async fn timeout<R: TestRuntime, F: Future>(d: Duration, f: F) -> Result<F::Output, Elapsed> {
    let rt = R::current();
    let sleep = std::pin::pin!(rt.sleep_until(rt.now() + d));
    let f = std::pin::pin!(f);
    match select(f, sleep).await {
        Either::Left((out, _)) => Ok(out),
        Either::Right(_) => Err(Elapsed),
    }
}

/// Lets other tasks run once.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// A stream of `items`, for client-streaming calls.
pub fn stream_of<T: Send + Unpin + 'static>(
    items: Vec<T>,
) -> impl futures_core::Stream<Item = T> + Send {
    futures_util::stream::iter(items)
}

/// Instantiates every test of the suite as a `#[test]` on runtime `$rt`.
#[macro_export]
macro_rules! suite {
    ($rt:ty) => {
        $crate::suite!(@tests $rt;
            e2e::four_call_kinds_with_metadata,
            e2e::errors_deadlines_and_unknown_methods,
            e2e::dropping_a_stream_cancels_the_call_on_the_server,
            e2e::the_channel_reconnects_after_a_server_restart,
            e2e::goaway_during_a_stream_of_calls_fails_none,
            e2e::reconnect_attempts_follow_the_backoff,
            features::interceptors_add_metadata_refuse_calls_and_observe_outcomes,
            features::bearer_tokens_need_tls_unless_allowed,
            features::a_server_that_never_reads_makes_send_wait_with_bounded_memory,
            features::calls_on_a_failing_channel_report_the_connection_error,
            features::a_user_balancer_chosen_by_the_service_config_routes_the_calls,
            features::handlers_that_never_look_at_their_call_stop_when_the_connection_closes,
            features::channels_and_servers_move_between_threads,
            features::unary_calls_end_right_when_the_response_is_not_one_message,
            tls::unary_over_tls,
            tls::ca_from_file_and_authority_host,
            tls::alpn_h2_required,
            tls::mutual_tls,
            tls::wrong_ca,
            proxy::unary_through_proxy,
            proxy::proxy_refusal_is_unavailable,
            proxy::bytes_with_the_200_are_kept,
            proxy::no_proxy_bypasses,
            proxy::tls_inside_the_tunnel,
        );
    };
    (@tests $rt:ty; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                <$rt as $crate::TestRuntime>::block_on($crate::$module::$name::<$rt>());
            }
        )*
    };
}
