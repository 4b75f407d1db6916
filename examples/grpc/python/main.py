"""engram-ops' gRPC API from Python with Debian's python3-grpcio.

The stubs are generated at run time from proto/engram/v1 into a temporary
directory with python3-grpc-tools, so they always match the .proto files.
Reads ENGRAM_GRPC_ADDR (default 127.0.0.1:50051), ENGRAM_API_KEY (a write
key, when auth.mode = "api_key") and ENGRAM_SPACE (default
example-grpc-python); exits non-zero on any unexpected answer.
"""
import importlib
import os
import sys
import tempfile

import grpc
import grpc_tools
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_tools import protoc

ADDR = os.environ.get("ENGRAM_GRPC_ADDR", "127.0.0.1:50051")
KEY = os.environ.get("ENGRAM_API_KEY", "")
SPACE = os.environ.get("ENGRAM_SPACE", "example-grpc-python")
PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto")


def load_stubs(out):
    """Generates the engram.v1 modules into out and imports them."""
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")  # google/protobuf/*.proto
    files = [os.path.join(PROTO, "engram", "v1", f) for f in ("memory.proto", "service.proto")]
    if protoc.main(["protoc", "-I" + PROTO, "-I" + wkt, "--python_out=" + out, "--grpc_python_out=" + out] + files) != 0:
        sys.exit(f"grpc_tools.protoc could not generate the stubs from {PROTO}")
    sys.path.insert(0, out)
    return (importlib.import_module("engram.v1.memory_pb2"), importlib.import_module("engram.v1.service_pb2"),
            importlib.import_module("engram.v1.service_pb2_grpc"))


def code_name(code):
    """INVALID_ARGUMENT -> InvalidArgument, as Go's codes.Code prints it."""
    return "".join(w.capitalize() for w in code.name.split("_"))


def main():
    with tempfile.TemporaryDirectory() as out:
        run(*load_stubs(out))


def run(pb, svc, svc_grpc):
    with grpc.insecure_channel(ADDR) as channel:
        calls(pb, svc, svc_grpc.EngramServiceStub(channel))


def calls(pb, svc, stub):
    # The API key travels in the authorization metadata, as over REST.
    md = [("authorization", "Bearer " + KEY)] if KEY else []
    opts = {"metadata": md, "timeout": 30}

    # Remember with a confidence and tags, in a space of our own.
    for mid, content, conf, tags in [
        ("deploy-failed", "the deploy of the billing service failed because the disk was full", 0.9, ["ops", "incident"]),
        ("disk-alert", "an alert fires when a data disk is above 90 percent", 0.8, ["ops"]),
    ]:
        res = stub.Remember(svc.RememberRequest(memory_space_id=SPACE, memory=pb.Memory(
            id=mid, content=content, tags=tags, confidence=pb.Confidence(value=conf))), **opts)
        print(f"remembered {res.memory_id} (confidence {res.storage_confidence.value:.2f})")

    # An episode: what happened, when, where, who.
    when = Timestamp()
    when.GetCurrentTime()
    ep = stub.Experience(svc.ExperienceRequest(memory_space_id=SPACE, episode=pb.Episode(
        id="postmortem", what="postmortem meeting about the billing outage", when=when,
        where_location="room 4", who=["ana", "bo"], importance=0.7)), **opts)
    print(f"experienced {ep.episode_id}")

    # An association, so that spreading activation can reach the alert.
    stub.Associate(svc.AssociateRequest(memory_space_id=SPACE, source_memory="deploy-failed", target_memory="disk-alert",
                                        strength=0.8, association_type=svc.ASSOCIATION_TYPE_CAUSAL), **opts)
    print("associated deploy-failed -> disk-alert")

    # Recall by a partial cue with spreading activation: direct matches,
    # then memories reached through associations.
    rec = stub.Recall(svc.RecallRequest(memory_space_id=SPACE, trace_activation=True, cue=pb.Cue(
        spread_activation=True, semantic=pb.SemanticCue(query="billing deploy failed"))), **opts)
    counts = {"vivid": 0, "associated": 0}
    for i, m in enumerate(rec.memories):
        kind = "associated" if i < len(rec.traces) and len(rec.traces[i].activation_path) > 1 else "vivid"
        counts[kind] += 1
        print(f"  {kind:<10} {m.id} ({m.confidence.value:.2f})")
    print(f"recall: {counts['vivid']} vivid, {counts['associated']} associated")

    # A batch over one stream: one answer per memory, in order.
    batch = (svc.RememberRequest(memory_space_id=SPACE, memory=pb.Memory(id=f"batch-{i}", content=f"imported note number {i}"))
             for i in range(3))
    n = sum(1 for _ in stub.StreamingRemember(batch, **opts))
    print(f"batch: {n} remembered")

    # Forget one memory.
    stub.Forget(svc.ForgetRequest(memory_space_id=SPACE, memory_id="batch-0"), **opts)
    print("forgot batch-0")

    # A bad request: the status carries REST's error code and message.
    try:
        stub.Remember(svc.RememberRequest(memory_space_id=SPACE, memory=pb.Memory(content=" ")), **opts)
        sys.exit("Remember of blank content: accepted, want INVALID_ARGUMENT")
    except grpc.RpcError as e:
        print(f"refused: {code_name(e.code())} {e.details()}")


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as e:
        sys.exit(f"error: {e.code().name} {e.details()}")
