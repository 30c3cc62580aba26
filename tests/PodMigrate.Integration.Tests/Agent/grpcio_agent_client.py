"""Debian's python3-grpcio (the C-core gRPC stack) as a client of the PodMigrate agent, over its unix socket.

Usage: /usr/bin/python3 grpcio_agent_client.py SOCKET_PATH
Prints one JSON object with what each call saw; the C# test asserts it. No protoc: requests are hand-encoded and
replies are read with a minimal protobuf field reader.
"""
import json
import sys

import grpc

SERVICE = "/podmigrate.agent.v1.AgentService/"


def varint(data, pos):
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data):
    """{field number: [values]} of a protobuf message: varints as ints, length-delimited as bytes."""
    out, pos = {}, 0
    while pos < len(data):
        key, pos = varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(data, pos)
        elif wire == 2:
            length, pos = varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        else:
            raise ValueError("wire type %d" % wire)
        out.setdefault(number, []).append(value)
    return out


def string(number, text):
    raw = text.encode("utf-8")
    return bytes([number << 3 | 2, len(raw)]) + raw


def error_of(call):
    try:
        call()
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details()}
    return {"code": "OK", "details": ""}


def main():
    identity = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
    results = {}
    with grpc.insecure_channel("unix:" + sys.argv[1]) as channel:
        info = fields(channel.unary_unary(SERVICE + "GetNodeInfo", **identity)(b"", timeout=30))
        # NodeInfo: node_name = 1, containerd_version = 3, criu_version_text = 6, codecs = 12
        results["info"] = {
            "node": info[1][0].decode(),
            "containerd": info[3][0].decode(),
            "criu": info[6][0].decode(),
            "codecs": [c.decode() for c in info.get(12, [])],
        }
        health = fields(channel.unary_unary(SERVICE + "Health", **identity)(b"", timeout=30))
        results["health"] = health.get(1, [0])[0]  # 1 = SERVING
        # InspectCheckpoint{checkpoint_id = 1} of an id that does not exist.
        inspect = channel.unary_unary(SERVICE + "InspectCheckpoint", **identity)
        results["inspect_missing"] = error_of(lambda: inspect(string(1, "ck-not-there"), timeout=30))
        # Checkpoint{container{pod{namespace, pod}}} of a pod that does not exist: a stream that ends in NOT_FOUND.
        pod = string(1, "pm-test") + string(2, "no-such-pod")
        selector = bytes([1 << 3 | 2, len(pod)]) + pod
        request = bytes([1 << 3 | 2, len(selector)]) + selector
        checkpoint = channel.unary_stream(SERVICE + "Checkpoint", **identity)
        results["checkpoint_missing"] = error_of(lambda: list(checkpoint(request, timeout=30)))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
