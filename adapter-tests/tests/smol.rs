//! The adapter suite on smol (`smol::block_on`, `smol::spawn`, async-net sockets).

grpc_sansio_adapter_tests::suite!(grpc_sansio_async_std::Smol);
