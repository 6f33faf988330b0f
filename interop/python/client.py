"""The interop test client on grpcio (gRPC C-core), the interop peer of grpc-sansio.

Usage: client.py --server_host=H --server_port=P --test_case=CASE|all|a,b,c
Prints "CASE: PASS" or "CASE: FAIL: why" per case; exits 1 if any failed. The
generated stubs (testing_pb) must be on PYTHONPATH.
"""

import queue
import sys

import grpc

from server import ECHO_INITIAL, ECHO_TRAILING, parse_flags
from testing_pb import empty_pb2, messages_pb2, test_pb2_grpc

CASES = [
    "empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary",
    "client_streaming", "client_compressed_streaming", "server_streaming",
    "server_compressed_streaming", "ping_pong", "empty_stream", "cancel_after_begin",
    "cancel_after_first_response", "timeout_on_sleeping_server", "status_code_and_message",
    "special_status_message", "custom_metadata", "unimplemented_method",
    "unimplemented_service",
]
GZIP = grpc.Compression.Gzip
TIMEOUT = 20


class CaseFailed(Exception):
    pass


def check(cond, message):
    if not cond:
        raise CaseFailed(message)


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


def check_payload(what, p, size):
    check(p.body == b"\0" * size, f"{what}: payload of {len(p.body)} bytes, expected {size} zeros")


def expect_code(what, fn, code):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, f"{what}: failed with {e.code()} {e.details()!r}, expected {code}")
        return e
    raise CaseFailed(f"{what}: succeeded, expected {code}")


def large_request(**kw):
    return messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828), **kw)


def output_request(sizes, compressed=None, **kw):
    params = []
    for i, n in enumerate(sizes):
        p = messages_pb2.ResponseParameters(size=n)
        if compressed is not None:
            p.compressed.value = compressed[i]
        params.append(p)
    return messages_pb2.StreamingOutputCallRequest(response_parameters=params, **kw)


class Requests:
    """A request iterator fed from the test (for ping-pong style calls)."""

    def __init__(self):
        self.q = queue.Queue()

    def send(self, m):
        self.q.put(m)

    def close(self):
        self.q.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        m = self.q.get()
        if m is None:
            raise StopIteration
        return m


def input_reqs(sizes, expect=None):
    out = []
    for n in sizes:
        r = messages_pb2.StreamingInputCallRequest(payload=payload(n))
        if expect is not None:
            r.expect_compressed.value = expect
        out.append(r)
    return out


def run_case(case, stub, channel):
    if case == "empty_unary":
        check(stub.EmptyCall(empty_pb2.Empty(), timeout=TIMEOUT) == empty_pb2.Empty(), "not empty")
    elif case == "large_unary":
        check_payload("UnaryCall", stub.UnaryCall(large_request(), timeout=TIMEOUT).payload, 314159)
    elif case == "client_compressed_unary":
        probe = large_request(expect_compressed=messages_pb2.BoolValue(value=True))
        expect_code("UnaryCall probe", lambda: stub.UnaryCall(probe, timeout=TIMEOUT),
                    grpc.StatusCode.INVALID_ARGUMENT)
        r = stub.UnaryCall(probe, compression=GZIP, timeout=TIMEOUT)
        check_payload("UnaryCall (gzip)", r.payload, 314159)
        plain = large_request(expect_compressed=messages_pb2.BoolValue(value=False))
        check_payload("UnaryCall (plain)", stub.UnaryCall(plain, timeout=TIMEOUT).payload, 314159)
    elif case == "server_compressed_unary":
        for value in (True, False):
            r = stub.UnaryCall(large_request(response_compressed=messages_pb2.BoolValue(value=value)),
                               timeout=TIMEOUT)
            check_payload(f"UnaryCall (response_compressed={value})", r.payload, 314159)
    elif case == "client_streaming":
        r = stub.StreamingInputCall(iter(input_reqs([27182, 8, 1828, 45904])), timeout=TIMEOUT)
        check(r.aggregated_payload_size == 74922, f"aggregated {r.aggregated_payload_size}")
    elif case == "client_compressed_streaming":
        expect_code("StreamingInputCall probe",
                    lambda: stub.StreamingInputCall(iter(input_reqs([27182], True)), timeout=TIMEOUT),
                    grpc.StatusCode.INVALID_ARGUMENT)
        reqs = input_reqs([27182], True) + input_reqs([45904], False)
        r = stub.StreamingInputCall(iter(reqs), compression=GZIP, timeout=TIMEOUT)
        check(r.aggregated_payload_size == 73086, f"aggregated {r.aggregated_payload_size}")
    elif case in ("server_streaming", "server_compressed_streaming"):
        if case == "server_streaming":
            sizes, compressed = [31415, 9, 2653, 58979], None
        else:
            sizes, compressed = [31415, 92653], [True, False]
        got = list(stub.StreamingOutputCall(output_request(sizes, compressed), timeout=TIMEOUT))
        check(len(got) == len(sizes), f"{len(got)} responses, expected {len(sizes)}")
        for i, (m, n) in enumerate(zip(got, sizes)):
            check_payload(f"response {i}", m.payload, n)
    elif case == "ping_pong":
        reqs = Requests()
        call = stub.FullDuplexCall(reqs, timeout=TIMEOUT)
        for i, (resp, req) in enumerate([(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]):
            reqs.send(output_request([resp], payload=payload(req)))
            check_payload(f"response {i}", next(call).payload, resp)
        reqs.close()
        check(list(call) == [], "more responses than requests")
    elif case == "empty_stream":
        check(list(stub.FullDuplexCall(iter([]), timeout=TIMEOUT)) == [], "got responses")
    elif case == "cancel_after_begin":
        reqs = Requests()
        fut = stub.StreamingInputCall.future(reqs, timeout=TIMEOUT)
        fut.cancel()
        check(fut.code() == grpc.StatusCode.CANCELLED, f"status {fut.code()}, expected CANCELLED")
        reqs.close()
    elif case == "cancel_after_first_response":
        reqs = Requests()
        call = stub.FullDuplexCall(reqs, timeout=TIMEOUT)
        reqs.send(output_request([31415], payload=payload(27182)))
        check_payload("response", next(call).payload, 31415)
        call.cancel()
        check(call.code() == grpc.StatusCode.CANCELLED, f"status {call.code()}, expected CANCELLED")
        reqs.close()
    elif case == "timeout_on_sleeping_server":
        reqs = Requests()
        reqs.send(messages_pb2.StreamingOutputCallRequest(payload=payload(27182)))
        expect_code("FullDuplexCall (1 ms deadline)",
                    lambda: list(stub.FullDuplexCall(reqs, timeout=0.001)),
                    grpc.StatusCode.DEADLINE_EXCEEDED)
        reqs.close()
    elif case in ("status_code_and_message", "special_status_message"):
        message = ("test status message" if case == "status_code_and_message" else
                   "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001F608\t\n")
        status = messages_pb2.EchoStatus(code=2, message=message)
        e = expect_code("UnaryCall",
                        lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status),
                                               timeout=TIMEOUT),
                        grpc.StatusCode.UNKNOWN)
        check(e.details() == message, f"UnaryCall: message {e.details()!r}, expected {message!r}")
        if case == "status_code_and_message":
            e = expect_code("FullDuplexCall",
                            lambda: list(stub.FullDuplexCall(
                                iter([messages_pb2.StreamingOutputCallRequest(response_status=status)]),
                                timeout=TIMEOUT)),
                            grpc.StatusCode.UNKNOWN)
            check(e.details() == message, f"FullDuplexCall: message {e.details()!r}")
    elif case == "custom_metadata":
        md = [(ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\xab\xab\xab")]

        def check_echo(what, initial, trailing):
            initial, trailing = dict(initial or []), dict(trailing or [])
            check(initial.get(ECHO_INITIAL) == "test_initial_metadata_value",
                  f"{what}: headers {ECHO_INITIAL} = {initial.get(ECHO_INITIAL)!r}")
            check(trailing.get(ECHO_TRAILING) == b"\xab\xab\xab",
                  f"{what}: trailers {ECHO_TRAILING} = {trailing.get(ECHO_TRAILING)!r}")

        r, call = stub.UnaryCall.with_call(large_request(), metadata=md, timeout=TIMEOUT)
        check_payload("UnaryCall", r.payload, 314159)
        check_echo("UnaryCall", call.initial_metadata(), call.trailing_metadata())
        call = stub.FullDuplexCall(iter([output_request([314159], payload=payload(271828))]),
                                   metadata=md, timeout=TIMEOUT)
        got = list(call)
        check(len(got) == 1, f"FullDuplexCall: {len(got)} responses")
        check_payload("FullDuplexCall", got[0].payload, 314159)
        check_echo("FullDuplexCall", call.initial_metadata(), call.trailing_metadata())
    elif case in ("unimplemented_method", "unimplemented_service"):
        path = ("/grpc.testing.TestService/UnimplementedCall" if case == "unimplemented_method"
                else "/grpc.testing.UnimplementedService/UnimplementedCall")
        method = channel.unary_unary(path, request_serializer=empty_pb2.Empty.SerializeToString,
                                     response_deserializer=empty_pb2.Empty.FromString)
        expect_code(case, lambda: method(empty_pb2.Empty(), timeout=TIMEOUT),
                    grpc.StatusCode.UNIMPLEMENTED)
    else:
        raise CaseFailed(f"unknown test case {case!r}")


def main():
    flags = parse_flags(sys.argv[1:], {"server_host", "server_port", "test_case", "use_tls",
                                       "use_test_ca", "ca_file", "server_host_override"})
    if flags.get("use_tls", "false") != "false":
        sys.exit("TLS not supported by this peer")
    target = f"{flags.get('server_host', 'localhost')}:{flags['server_port']}"
    cases = flags.get("test_case", "large_unary")
    cases = CASES if cases == "all" else cases.split(",")
    failed = 0
    with grpc.insecure_channel(target) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        for case in cases:
            try:
                run_case(case, stub, channel)
                print(f"{case}: PASS", flush=True)
            except (CaseFailed, grpc.RpcError, StopIteration) as e:
                detail = (f"{e.code()} {e.details()!r}" if isinstance(e, grpc.RpcError)
                          else str(e) or type(e).__name__)
                print(f"{case}: FAIL: {detail}", flush=True)
                failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
