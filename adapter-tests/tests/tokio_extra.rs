//! What the shared suite (`adapter-tests`) does not run on every runtime: scheduling
//! properties that only hold where the connection's tasks and the caller share one
//! thread, as on tokio's current-thread runtime.

use grpc_sansio_adapter_tests::TestRuntime;
use grpc_sansio_tokio::Tokio;

#[test]
fn a_streaming_caller_is_never_more_than_a_read_behind_the_reader() {
    Tokio::block_on(
        grpc_sansio_adapter_tests::e2e::a_streaming_caller_is_never_more_than_a_read_behind_the_reader::<Tokio>(),
    );
}
