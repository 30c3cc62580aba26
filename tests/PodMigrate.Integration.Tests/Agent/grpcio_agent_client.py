"""Debian's python3-grpcio (the C-core gRPC stack) as a client of the PodMigrate agent, over its unix socket
or over TCP with mutual TLS.

Usage: /usr/bin/python3 grpcio_agent_client.py SOCKET_PATH
       /usr/bin/python3 grpcio_agent_client.py --tls TLS_DIR SERVER_NAME HOST:PORT
         (TLS_DIR holds tls.crt, tls.key, ca.crt; the agent's certificate must name SERVER_NAME)
Besides the agent's own API it calls the standard grpc.health.v1 Health/Check and lists the services through server
reflection (grpc_health / grpc_reflection are not packaged by Debian: those small messages are hand-encoded too).
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


def read(directory, name):
    with open(directory + "/" + name, "rb") as f:
        return f.read()


def open_channel(args):
    if args[0] != "--tls":
        return grpc.insecure_channel("unix:" + args[0]), None
    directory, server_name, target = args[1], args[2], args[3]
    options = [("grpc.ssl_target_name_override", server_name), ("grpc.default_authority", server_name)]
    mutual = grpc.ssl_channel_credentials(read(directory, "ca.crt"), read(directory, "tls.key"), read(directory, "tls.crt"))
    # The same CA but no client certificate: the agent must refuse it.
    anonymous = grpc.ssl_channel_credentials(read(directory, "ca.crt"))
    return grpc.secure_channel(target, mutual, options), grpc.secure_channel(target, anonymous, options)


def main():
    identity = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
    results = {}
    channel, anonymous = open_channel(sys.argv[1:])
    if anonymous is not None:
        with anonymous:
            results["without_client_certificate"] = error_of(lambda: anonymous.unary_unary(SERVICE + "Health", **identity)(b"", timeout=30))
    with channel:
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
        # grpc.health.v1.Health/Check{service = 1}: HealthCheckResponse{status = 1}, 1 = SERVING. "" is the server as a
        # whole (what a kubelet grpc: probe asks); a service nobody registered is NOT_FOUND.
        check = channel.unary_unary("/grpc.health.v1.Health/Check", **identity)
        results["grpc_health"] = fields(check(b"", timeout=30)).get(1, [0])[0]
        results["grpc_health_unknown_service"] = error_of(lambda: check(string(1, "no.such.Service"), timeout=30))
        results["reflection"] = list_services(channel, identity)
    print(json.dumps(results))


def list_services(channel, identity):
    """ServerReflectionInfo{list_services = 7}: the names in list_services_response (6) -> service (1) -> name (1)."""
    for version in ("v1", "v1alpha"):
        info = channel.stream_stream("/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version, **identity)
        try:
            replies = list(info(iter([string(7, "*")]), timeout=30))
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                continue
            raise
        names = []
        for reply in replies:
            for listed in fields(reply).get(6, []):
                names += [fields(service)[1][0].decode() for service in fields(listed).get(1, [])]
        return {"version": version, "services": sorted(names)}
    return {"version": "", "services": []}


if __name__ == "__main__":
    main()
