"""grpc.testing.TestService on grpcio (gRPC C-core), the interop peer of grpc-sansio.

Usage: server.py --port=PORT (0 picks a free port). Prints "listening on PORT" once
serving. The generated stubs (testing_pb) must be on PYTHONPATH.
"""

import sys
import time
from concurrent import futures

import grpc

from testing_pb import empty_pb2, messages_pb2, test_pb2_grpc

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
CODES = {c.value[0]: c for c in grpc.StatusCode}


def parse_flags(argv, known):
    flags = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            sys.exit(f"unexpected argument {arg!r}")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            i += 1
            value = argv[i] if i < len(argv) else sys.exit(f"--{name} needs a value")
        if name not in known:
            sys.exit(f"unknown flag --{name}")
        flags[name] = value
        i += 1
    return flags


def echo_metadata(context):
    """Echoes the test metadata: initial now, trailing with the status."""
    initial, trailing = [], []
    for key, value in context.invocation_metadata():
        if key == ECHO_INITIAL:
            initial.append((key, value))
        elif key == ECHO_TRAILING:
            trailing.append((key, value))
    if initial:
        context.send_initial_metadata(initial)
    if trailing:
        context.set_trailing_metadata(trailing)


def check_compressed(expect, context):
    """The `expect_compressed` check is not implemented: grpcio's server API does not
    tell whether a request came compressed (C-core strips `grpc-encoding` from the
    invocation metadata), so the compression probes cannot be answered here."""
    del expect, context


def requested_status(status, context):
    """Ends the call with the status the request asked for; True if it did."""
    if status.code != 0:
        context.set_code(CODES.get(status.code, grpc.StatusCode.UNKNOWN))
        context.set_details(status.message)
        return True
    return False


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        echo_metadata(context)
        check_compressed(request.expect_compressed, context)
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        if requested_status(request.response_status, context):
            return messages_pb2.SimpleResponse()
        return messages_pb2.SimpleResponse(payload=payload(request.response_size))

    def _respond(self, request, context):
        if requested_status(request.response_status, context):
            return False
        if any(p.compressed.value for p in request.response_parameters):
            context.set_compression(grpc.Compression.Gzip)
        for params in request.response_parameters:
            if params.interval_us:
                time.sleep(params.interval_us / 1e6)
            if params.HasField("compressed") and not params.compressed.value:
                context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(payload=payload(params.size))
        return True

    def StreamingOutputCall(self, request, context):
        echo_metadata(context)
        yield from self._respond(request, context)

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = 0
        for request in request_iterator:
            check_compressed(request.expect_compressed, context)
            total += len(request.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        for request in request_iterator:
            ok = yield from self._respond(request, context)
            if ok is False:
                return

    def HalfDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        requests = list(request_iterator)
        for request in requests:
            ok = yield from self._respond(request, context)
            if ok is False:
                return

    def UnimplementedCall(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "UnimplementedCall is not implemented")


def main():
    flags = parse_flags(sys.argv[1:], {"port", "use_tls", "tls_cert_file", "tls_key_file"})
    if flags.get("use_tls", "false") != "false":
        sys.exit("TLS not supported by this peer")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    port = server.add_insecure_port(f"127.0.0.1:{int(flags.get('port', '0'))}")
    server.start()
    print(f"listening on {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
