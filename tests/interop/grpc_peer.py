"""An independent gRPC peer: Debian's python3-grpcio and python3-protobuf, with message classes that
protoc generates from this repository's protos. It calls a running `marie executor` serving the
conformance ReferenceExecutor the way Python Marie/Jina gateways and clients do, and prints what it
saw as JSON for the test to check.

usage: grpc_peer.py GENERATED_DIR HOST:PORT
"""
import importlib.util
import json
import os
import struct
import sys
import time

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from google.protobuf import empty_pb2, json_format  # noqa: E402

import docarray_pb2  # noqa: E402
import jina_pb2  # noqa: E402


def load(name, path):
    # grpc/health/v1/health_pb2.py would shadow grpcio's own `grpc` package if imported as such.
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


health_pb2 = load("marie_health_pb2", os.path.join(sys.argv[1], "grpc", "health", "v1", "health_pb2.py"))
# The reflection proto is the one @grpc/reflection ships (not a second committed copy).
reflection = load(
    "marie_reflection_pb2", os.path.join(sys.argv[1], "grpc", "reflection", "v1alpha", "reflection_pb2.py")
)

target = sys.argv[2]
# Options Jina's own clients set: keepalive pings while idle, no message size caps.
options = [
    ("grpc.keepalive_time_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
]
channel = grpc.insecure_channel(target, options=options)
grpc.channel_ready_future(channel).result(timeout=10)


def unary(path, request, response_type):
    call = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response_type.FromString)
    response, rpc = call.with_call(request, timeout=10)
    trailing = {k: v for k, v in (rpc.trailing_metadata() or ())}
    return response, trailing


def text_doc(doc_id, text):
    doc = docarray_pb2.DocProto()
    doc.data["id"].text = doc_id
    doc.data["id"].type = "id"
    doc.data["text"].text = text
    return doc


out = {}

health, _ = unary("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(service=""), health_pb2.HealthCheckResponse)
out["health"] = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)

stream = channel.stream_stream(
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    request_serializer=lambda m: m.SerializeToString(),
    response_deserializer=reflection.ServerReflectionResponse.FromString,
)
answers = list(stream(iter([reflection.ServerReflectionRequest(list_services="*")]), timeout=10))
out["services"] = sorted(s.name for s in answers[0].list_services_response.service)

req = jina_pb2.DataRequestProto()
req.header.request_id = "py-1"
req.header.exec_endpoint = "/length"
req.parameters.update({"ref": {"scoped": True}})
req.data.docs.docs.extend([text_doc("a" * 32, "hello"), text_doc("b" * 32, "marie")])
res, trailing = unary("/jina.JinaSingleDataRequestRPC/process_single_data", req, jina_pb2.DataRequestProto)
out["length"] = {
    "request_id": res.header.request_id,
    "status": res.header.status.code,
    "routes": [r.executor for r in res.routes],
    "docs": [
        {
            "id": d.data["id"].text,
            "id_type": d.data["id"].type,
            "text": d.data["text"].text,
            "length": d.data["length"].integer,
            "length_kind": d.data["length"].WhichOneof("content"),
        }
        for d in res.data.docs.docs
    ],
    "is_error": trailing.get("is-error"),
}

# docs_bytes instead of docs, and a float32 tensor as raw little-endian bytes.
tensor_req = jina_pb2.DataRequestProto()
tensor_req.header.request_id = "py-2"
tensor_req.header.exec_endpoint = "/tensor"
doc = docarray_pb2.DocProto()
doc.data["tensor"].ndarray.dense.buffer = struct.pack("<6f", *[0.5, 1.5, -2.0, 3.25, 4.0, 5.5])
doc.data["tensor"].ndarray.dense.shape.extend([2, 3])
doc.data["tensor"].ndarray.dense.dtype = "<f4"
doc.data["tensor"].type = "ndarray"
tensor_req.data.docs_bytes = docarray_pb2.DocListProto(docs=[doc]).SerializeToString()
res, _ = unary("/jina.JinaSingleDataRequestRPC/process_single_data", tensor_req, jina_pb2.DataRequestProto)
back = res.data.docs.docs[0]
dense = back.data["tensor"].ndarray.dense
out["tensor"] = {
    "status": res.header.status.code,
    "note": back.data["note"].text,
    "values": list(struct.unpack("<6f", dense.buffer)),
    "shape": list(dense.shape),
    "dtype": dense.dtype,
    "type": back.data["tensor"].type,
}

err_req = jina_pb2.DataRequestProto()
err_req.header.request_id = "py-3"
err_req.header.exec_endpoint = "/fail"
err_req.data.docs.docs.extend([text_doc("c" * 32, "x")])
res, trailing = unary("/jina.JinaSingleDataRequestRPC/process_single_data", err_req, jina_pb2.DataRequestProto)
out["error"] = {
    "code": res.header.status.code,
    "description": res.header.status.description,
    "name": res.header.status.exception.name,
    "args": list(res.header.status.exception.args),
    "executor": res.header.status.exception.executor,
    "has_stack": len(res.header.status.exception.stacks) > 1,
    "is_error": trailing.get("is-error"),
}

endpoints, _ = unary("/jina.JinaDiscoverEndpointsRPC/endpoint_discovery", empty_pb2.Empty(), jina_pb2.EndpointsProto)
schemas = json_format.MessageToDict(endpoints.schemas)
out["discovery"] = {
    "endpoints": list(endpoints.endpoints),
    "length_output": schemas["/length"]["output"]["name"],
    "length_required": schemas["/length"]["output"]["model"]["required"],
    "typed_parameters": schemas["/typed"]["parameters"]["model"]["required"],
}

# Stay idle while the channel pings every second, then call again: the server must not hang up.
time.sleep(3)
res, _ = unary("/jina.JinaSingleDataRequestRPC/process_single_data", req, jina_pb2.DataRequestProto)
out["after_idle"] = res.header.status.code
out["channel_state_ok"] = True

print(json.dumps(out))
