"""Debian's python3-grpcio calls a Marie gateway as Jina's Python client does: the client's entry
JinaRPC/Call (bidi stream) and JinaGatewayDryRunRPC/dry_run. usage: gateway_peer.py GENERATED HOST:PORT
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from google.protobuf import empty_pb2  # noqa: E402

import docarray_pb2  # noqa: E402
import jina_pb2  # noqa: E402

channel = grpc.insecure_channel(sys.argv[2])
grpc.channel_ready_future(channel).result(timeout=10)

call = channel.stream_stream("/jina.JinaRPC/Call", request_serializer=lambda m: m.SerializeToString(), response_deserializer=jina_pb2.DataRequestProto.FromString)


def request(i):
    req = jina_pb2.DataRequestProto()
    req.header.request_id = f"py-{i}"
    req.header.exec_endpoint = "/count"
    doc = docarray_pb2.DocProto()
    doc.data["id"].text = f"doc-{i}"
    doc.data["id"].type = "id"
    doc.data["text"].text = f"  Python Peer {i} "
    req.data.docs.docs.append(doc)
    return req


answers = list(call(iter([request(i) for i in range(3)]), timeout=20))
dry = channel.unary_unary("/jina.JinaGatewayDryRunRPC/dry_run", request_serializer=lambda m: m.SerializeToString(), response_deserializer=jina_pb2.StatusProto.FromString)(empty_pb2.Empty(), timeout=10)
print(json.dumps({
    "answers": sorted(
        [{"id": a.header.request_id, "text": a.data.docs.docs[0].data["text"].text, "routes": [r.executor for r in a.routes]} for a in answers],
        key=lambda x: x["id"],
    ),
    "dry_run": dry.code,
}))
