//! The adapter suite on async-std.

grpc_sansio_adapter_tests::suite!(grpc_sansio_async_std::AsyncStd);
