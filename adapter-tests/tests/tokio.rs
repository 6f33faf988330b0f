//! The adapter suite on tokio.

grpc_sansio_adapter_tests::suite!(grpc_sansio_tokio::Tokio);
