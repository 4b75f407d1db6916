// engram-ops REST API from TypeScript with Node 20's built-in fetch.
// Reads ENGRAM_URL (default http://127.0.0.1:7432), ENGRAM_API_KEY
// (required) and ENGRAM_SPACE (default quickstart); exits non-zero on any
// unexpected answer.

// Node's globals, declared here instead of installing @types/node.
declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

type Json = any;

const URL = (process.env.ENGRAM_URL || "http://127.0.0.1:7432").replace(/\/+$/, "");
const KEY = process.env.ENGRAM_API_KEY || "";
const SPACE = process.env.ENGRAM_SPACE || "quickstart";

function fail(msg: string): never {
  console.error(msg);
  process.exit(1);
}

// call sends one request and returns the status and the decoded JSON body.
async function call(method: string, path: string, body?: Json, key = KEY): Promise<[number, Json]> {
  const headers: Record<string, string> = { "X-Memory-Space": SPACE };
  if (key) headers["Authorization"] = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(URL + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return [resp.status, await resp.json()];
}

// ok is call with the key, failing on anything but a 2xx answer.
async function ok(method: string, path: string, body?: Json): Promise<Json> {
  const [status, out] = await call(method, path, body);
  if (status >= 300) fail(`${method} ${path}: ${status} ${JSON.stringify(out)}`);
  return out;
}

async function main(): Promise<void> {
  if (!KEY) {
    fail("ENGRAM_API_KEY is not set: create a key with engram-ops apikey create and start the server with --set auth.mode=api_key");
  }

  // API key: a request without one is refused.
  let [status, out] = await call("GET", "/api/v1/spaces", undefined, "");
  console.log(`auth: without a key ${status} ${out.error.code}`);

  // Spaces: create (idempotent) the space every call below selects.
  await ok("POST", "/api/v1/spaces", { id: SPACE });
  console.log(`space: ${SPACE}`);

  // Remember with confidence and tags, then associate the two memories.
  for (const m of [
    { id: "mito", content: "The mitochondria is the powerhouse of the cell", confidence: 0.9, tags: ["biology", "cell"] },
    { id: "atp", content: "ATP carries chemical energy", confidence: 0.8, tags: ["biology"] },
  ]) {
    out = await ok("POST", "/api/v1/memories/remember", m);
    const c = out.storage_confidence;
    console.log(`remember: ${out.memory_id} confidence ${c.value} ${c.category}`);
  }
  await ok("POST", "/api/v1/associations", { from: "mito", to: "atp", weight: 0.9 });
  console.log("associate: mito -> atp");

  // Recall by a partial cue: vivid are direct matches, associated were
  // reached by spreading activation over the association.
  out = await ok("GET", "/api/v1/memories/recall?query=powerhouse&mode=hybrid&trace_activation=true");
  for (const m of out.memories.vivid) console.log(`vivid: ${m.id}`);
  for (const m of out.memories.associated) console.log(`associated: ${m.id} via ${m.path.join(" -> ")}`);

  // Episodes: who, what, when, where.
  out = await ok("POST", "/api/v1/episodes/remember", {
    id: "lab-day", when: "2026-03-01T09:30:00Z", what: "Measured the ATP output of mitochondria",
    where: "lab 4", who: ["Ana", "Ben"], importance: 0.7,
  });
  console.log(`episode: ${out.memory_id} confidence ${out.storage_confidence.value}`);

  // Batch import: memories and associations in one atomic write.
  out = await ok("POST", "/api/v1/memories/batch", {
    memories: [
      { id: "ribo", content: "Ribosomes build proteins" },
      { id: "dna", content: "The nucleus holds the DNA" },
      { id: "mrna", content: "mRNA carries the code from DNA to ribosomes" },
    ],
    associations: [{ from: "dna", to: "mrna", weight: 0.8 }, { from: "mrna", to: "ribo", weight: 0.8 }],
  });
  console.log(`batch: ${out.memory_ids.length} memories, ${out.associations} associations`);

  // Forget, then the memory is gone.
  out = await ok("DELETE", "/api/v1/memories/mito");
  const [goneStatus, gone] = await call("GET", "/api/v1/memories/mito");
  console.log(`forget: ${out.memory_id} ${out.status}, then ${goneStatus} ${gone.error.code}`);

  // Error handling: a bad request's error body names the problem.
  [status, out] = await call("POST", "/api/v1/memories/remember", { content: " " });
  console.log(`error: ${status} ${out.error.code}: ${out.error.message}`);

  // Spaces: list them with their counts.
  for (const s of (await ok("GET", "/api/v1/spaces")).spaces) {
    if (s.id === SPACE) console.log(`spaces: ${s.id} holds ${s.memories.total} memories`);
  }
  console.log("done");
}

main().catch((e) => fail(String(e)));
