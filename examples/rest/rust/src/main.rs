//! engram-ops REST API from Rust with ureq and serde_json.
//!
//! Reads ENGRAM_URL (default http://127.0.0.1:7432), ENGRAM_API_KEY
//! (required) and ENGRAM_SPACE (default quickstart); exits non-zero on any
//! unexpected answer.

use serde_json::{json, Value};
use std::env;
use std::process::exit;
use std::time::Duration;

struct Client {
    agent: ureq::Agent,
    url: String,
    key: String,
    space: String,
}

impl Client {
    /// Sends one request; returns the status and the decoded JSON body.
    fn call(&self, method: &str, path: &str, body: Option<Value>, key: &str) -> (u16, Value) {
        let mut req = self
            .agent
            .request(method, &format!("{}{}", self.url, path))
            .set("X-Memory-Space", &self.space);
        if !key.is_empty() {
            req = req.set("Authorization", &format!("Bearer {key}"));
        }
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        // 4xx/5xx arrive as Error::Status: the body is the error envelope.
        let resp = match res {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => fail(&format!("{method} {path}: {e}")),
        };
        let status = resp.status();
        match resp.into_json::<Value>() {
            Ok(v) => (status, v),
            Err(e) => fail(&format!("{method} {path}: {status}, body is not JSON: {e}")),
        }
    }

    /// call with the key, failing on anything but a 2xx answer.
    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, out) = self.call(method, path, body, &self.key);
        if status >= 300 {
            fail(&format!("{method} {path}: {status} {out}"));
        }
        out
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    exit(1)
}

fn main() {
    let key = env::var("ENGRAM_API_KEY").unwrap_or_default();
    if key.is_empty() {
        fail("ENGRAM_API_KEY is not set: create a key with engram-ops apikey create and start the server with --set auth.mode=api_key");
    }
    let c = Client {
        agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build(),
        url: env::var("ENGRAM_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:7432".into())
            .trim_end_matches('/')
            .into(),
        key,
        space: env::var("ENGRAM_SPACE").unwrap_or_else(|_| "quickstart".into()),
    };

    // API key: a request without one is refused.
    let (status, out) = c.call("GET", "/api/v1/spaces", None, "");
    println!("auth: without a key {status} {}", out["error"]["code"].as_str().unwrap_or(""));

    // Spaces: create (idempotent) the space every call below selects.
    c.ok("POST", "/api/v1/spaces", Some(json!({"id": c.space})));
    println!("space: {}", c.space);

    // Remember with confidence and tags, then associate the two memories.
    for m in [
        json!({"id": "mito", "content": "The mitochondria is the powerhouse of the cell", "confidence": 0.9, "tags": ["biology", "cell"]}),
        json!({"id": "atp", "content": "ATP carries chemical energy", "confidence": 0.8, "tags": ["biology"]}),
    ] {
        let out = c.ok("POST", "/api/v1/memories/remember", Some(m));
        let conf = &out["storage_confidence"];
        println!(
            "remember: {} confidence {} {}",
            out["memory_id"].as_str().unwrap_or(""),
            conf["value"],
            conf["category"].as_str().unwrap_or("")
        );
    }
    c.ok("POST", "/api/v1/associations", Some(json!({"from": "mito", "to": "atp", "weight": 0.9})));
    println!("associate: mito -> atp");

    // Recall by a partial cue: vivid are direct matches, associated were
    // reached by spreading activation over the association.
    let out = c.ok("GET", "/api/v1/memories/recall?query=powerhouse&mode=hybrid&trace_activation=true", None);
    let none = Vec::new();
    for m in out["memories"]["vivid"].as_array().unwrap_or(&none) {
        println!("vivid: {}", m["id"].as_str().unwrap_or(""));
    }
    for m in out["memories"]["associated"].as_array().unwrap_or(&none) {
        let path: Vec<&str> = m["path"].as_array().unwrap_or(&none).iter().filter_map(Value::as_str).collect();
        println!("associated: {} via {}", m["id"].as_str().unwrap_or(""), path.join(" -> "));
    }

    // Episodes: who, what, when, where.
    let out = c.ok(
        "POST",
        "/api/v1/episodes/remember",
        Some(json!({"id": "lab-day", "when": "2026-03-01T09:30:00Z", "what": "Measured the ATP output of mitochondria",
            "where": "lab 4", "who": ["Ana", "Ben"], "importance": 0.7})),
    );
    println!(
        "episode: {} confidence {}",
        out["memory_id"].as_str().unwrap_or(""),
        out["storage_confidence"]["value"]
    );

    // Batch import: memories and associations in one atomic write.
    let out = c.ok(
        "POST",
        "/api/v1/memories/batch",
        Some(json!({
            "memories": [
                {"id": "ribo", "content": "Ribosomes build proteins"},
                {"id": "dna", "content": "The nucleus holds the DNA"},
                {"id": "mrna", "content": "mRNA carries the code from DNA to ribosomes"}
            ],
            "associations": [{"from": "dna", "to": "mrna", "weight": 0.8}, {"from": "mrna", "to": "ribo", "weight": 0.8}]
        })),
    );
    println!(
        "batch: {} memories, {} associations",
        out["memory_ids"].as_array().map_or(0, Vec::len),
        out["associations"]
    );

    // Forget, then the memory is gone.
    let out = c.ok("DELETE", "/api/v1/memories/mito", None);
    let (status, gone) = c.call("GET", "/api/v1/memories/mito", None, &c.key);
    println!(
        "forget: {} {}, then {status} {}",
        out["memory_id"].as_str().unwrap_or(""),
        out["status"].as_str().unwrap_or(""),
        gone["error"]["code"].as_str().unwrap_or("")
    );

    // Error handling: a bad request's error body names the problem.
    let (status, out) = c.call("POST", "/api/v1/memories/remember", Some(json!({"content": " "})), &c.key);
    println!(
        "error: {status} {}: {}",
        out["error"]["code"].as_str().unwrap_or(""),
        out["error"]["message"].as_str().unwrap_or("")
    );

    // Spaces: list them with their counts.
    for s in c.ok("GET", "/api/v1/spaces", None)["spaces"].as_array().unwrap_or(&none) {
        if s["id"] == c.space.as_str() {
            println!("spaces: {} holds {} memories", c.space, s["memories"]["total"]);
        }
    }
    println!("done");
}
