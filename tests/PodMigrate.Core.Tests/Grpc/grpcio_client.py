"""A real gRPC peer (Debian's python3-grpcio) calling PodMigrate's test server over a unix socket.

Usage: /usr/bin/python3 grpcio_client.py SOCKET_PATH
Prints one JSON object with what each call saw; the C# test asserts it. No protoc: requests and replies are
google.protobuf wrappers (field 1) or hand-encoded bytes.
"""
import json
import sys

import grpc
from google.protobuf import wrappers_pb2

SERVICE = "/podmigrate.test.v1.TestService/"


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fail_request(code, message):
    """podmigrate.test.v1.FailRequest{code = 1, message = 2}."""
    text = message.encode("utf-8")
    return b"\x08" + varint(code) + b"\x12" + varint(len(text)) + text


def error_of(call):
    try:
        call()
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details()}
    return {"code": "OK", "details": ""}


def main():
    results = {}
    with grpc.insecure_channel("unix:" + sys.argv[1]) as channel:
        echo = channel.unary_unary(SERVICE + "Echo",
                                   request_serializer=wrappers_pb2.StringValue.SerializeToString,
                                   response_deserializer=wrappers_pb2.StringValue.FromString)
        reply, call = echo.with_call(wrappers_pb2.StringValue(value="héllo from grpcio"),
                                     metadata=[("x-request-id", "py-1")], timeout=10)
        results["echo"] = {"text": reply.value, "code": call.code().name,
                           "trailers": dict(call.trailing_metadata() or [])}

        count = channel.unary_stream(SERVICE + "Count",
                                     request_serializer=wrappers_pb2.Int32Value.SerializeToString,
                                     response_deserializer=wrappers_pb2.Int32Value.FromString)
        results["count"] = [m.value for m in count(wrappers_pb2.Int32Value(value=50), timeout=10)]

        fail = channel.unary_unary(SERVICE + "Fail", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        results["fail"] = error_of(lambda: fail(fail_request(5, "pod «web» 100% gone"), timeout=10))

        hang = channel.unary_unary(SERVICE + "Hang",
                                   request_serializer=wrappers_pb2.StringValue.SerializeToString,
                                   response_deserializer=wrappers_pb2.StringValue.FromString)
        results["deadline"] = error_of(lambda: hang(wrappers_pb2.StringValue(value="wait"), timeout=0.5))

        nope = channel.unary_unary(SERVICE + "Nope", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        results["unknown"] = error_of(lambda: nope(b"", timeout=10))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
