"""engram-ops REST API from Python's standard library (urllib, json).

Reads ENGRAM_URL (default http://127.0.0.1:7432), ENGRAM_API_KEY (required)
and ENGRAM_SPACE (default quickstart); exits non-zero on any unexpected answer.
"""
import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("ENGRAM_URL", "http://127.0.0.1:7432").rstrip("/")
KEY = os.environ.get("ENGRAM_API_KEY", "")
SPACE = os.environ.get("ENGRAM_SPACE", "quickstart")


def call(method, path, body=None, key=KEY):
    """Sends one request; returns (status, decoded JSON body)."""
    headers = {"X-Memory-Space": SPACE}
    if key:
        headers["Authorization"] = "Bearer " + key
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:  # 4xx/5xx: the body is the error envelope
        return e.code, json.load(e)


def ok(method, path, body=None):
    status, out = call(method, path, body)
    if status >= 300:
        sys.exit(f"{method} {path}: {status} {json.dumps(out)}")
    return out


def main():
    if not KEY:
        sys.exit("ENGRAM_API_KEY is not set: create a key with engram-ops apikey create "
                 "and start the server with --set auth.mode=api_key")

    # API key: a request without one is refused.
    status, out = call("GET", "/api/v1/spaces", key="")
    print(f"auth: without a key {status} {out['error']['code']}")

    # Spaces: create (idempotent) the space every call below selects.
    ok("POST", "/api/v1/spaces", {"id": SPACE})
    print(f"space: {SPACE}")

    # Remember with confidence and tags, then associate the two memories.
    for mid, content, conf, tags in [
        ("mito", "The mitochondria is the powerhouse of the cell", 0.9, ["biology", "cell"]),
        ("atp", "ATP carries chemical energy", 0.8, ["biology"]),
    ]:
        out = ok("POST", "/api/v1/memories/remember",
                 {"id": mid, "content": content, "confidence": conf, "tags": tags})
        c = out["storage_confidence"]
        print(f"remember: {out['memory_id']} confidence {c['value']} {c['category']}")
    ok("POST", "/api/v1/associations", {"from": "mito", "to": "atp", "weight": 0.9})
    print("associate: mito -> atp")

    # Recall by a partial cue: vivid are direct matches, associated were
    # reached by spreading activation over the association.
    out = ok("GET", "/api/v1/memories/recall?query=powerhouse&mode=hybrid&trace_activation=true")
    for m in out["memories"]["vivid"]:
        print(f"vivid: {m['id']}")
    for m in out["memories"]["associated"]:
        print(f"associated: {m['id']} via {' -> '.join(m['path'])}")

    # Episodes: who, what, when, where.
    out = ok("POST", "/api/v1/episodes/remember", {
        "id": "lab-day", "when": "2026-03-01T09:30:00Z", "what": "Measured the ATP output of mitochondria",
        "where": "lab 4", "who": ["Ana", "Ben"], "importance": 0.7})
    print(f"episode: {out['memory_id']} confidence {out['storage_confidence']['value']}")

    # Batch import: memories and associations in one atomic write.
    out = ok("POST", "/api/v1/memories/batch", {
        "memories": [{"id": "ribo", "content": "Ribosomes build proteins"},
                     {"id": "dna", "content": "The nucleus holds the DNA"},
                     {"id": "mrna", "content": "mRNA carries the code from DNA to ribosomes"}],
        "associations": [{"from": "dna", "to": "mrna", "weight": 0.8}, {"from": "mrna", "to": "ribo", "weight": 0.8}]})
    print(f"batch: {len(out['memory_ids'])} memories, {out['associations']} associations")

    # Forget, then the memory is gone.
    out = ok("DELETE", "/api/v1/memories/mito")
    status, gone = call("GET", "/api/v1/memories/mito")
    print(f"forget: {out['memory_id']} {out['status']}, then {status} {gone['error']['code']}")

    # Error handling: a bad request's error body names the problem.
    status, out = call("POST", "/api/v1/memories/remember", {"content": " "})
    print(f"error: {status} {out['error']['code']}: {out['error']['message']}")

    # Spaces: list them with their counts.
    for s in ok("GET", "/api/v1/spaces")["spaces"]:
        if s["id"] == SPACE:
            print(f"spaces: {s['id']} holds {s['memories']['total']} memories")
    print("done")


if __name__ == "__main__":
    main()
