// engram-ops' gRPC API from TypeScript with @grpc/grpc-js, the service
// loaded at run time from proto/engram/v1 with @grpc/proto-loader.
// Reads ENGRAM_GRPC_ADDR (default 127.0.0.1:50051), ENGRAM_API_KEY (a write
// key, when auth.mode = "api_key") and ENGRAM_SPACE (default
// example-grpc-typescript); exits non-zero on any unexpected answer.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

// Node's globals, declared here instead of installing @types/node.
declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

type Json = any;

const ADDR = process.env.ENGRAM_GRPC_ADDR || "127.0.0.1:50051";
const KEY = process.env.ENGRAM_API_KEY || "";
const SPACE = process.env.ENGRAM_SPACE || "example-grpc-typescript";
const PROTO = new URL("../../../../proto", import.meta.url).pathname; // from build/main.js

// keepCase: fields keep their .proto names; enums travel as their names.
const def = protoLoader.loadSync(["engram/v1/service.proto"], { includeDirs: [PROTO], keepCase: true, enums: String });
const Service = (grpc.loadPackageDefinition(def) as Json).engram.v1.EngramService;
const client: Json = new Service(ADDR, grpc.credentials.createInsecure());

// The API key travels in the authorization metadata, as over REST.
const md = new grpc.Metadata();
if (KEY) md.set("authorization", `Bearer ${KEY}`);
const deadline = () => ({ deadline: Date.now() + 30_000 });

// call makes one unary call with the key.
function call(method: string, req: Json): Promise<Json> {
  return new Promise((resolve, reject) =>
    client[method](req, md, deadline(), (err: grpc.ServiceError | null, res: Json) => (err ? reject(err) : resolve(res))),
  );
}

// codeName turns INVALID_ARGUMENT into InvalidArgument, as Go's codes.Code prints it.
function codeName(code: grpc.status): string {
  return grpc.status[code].split("_").map((w) => w[0] + w.slice(1).toLowerCase()).join("");
}

async function main(): Promise<void> {
  // Remember with a confidence and tags, in a space of our own.
  for (const [id, content, value, tags] of [
    ["deploy-failed", "the deploy of the billing service failed because the disk was full", 0.9, ["ops", "incident"]],
    ["disk-alert", "an alert fires when a data disk is above 90 percent", 0.8, ["ops"]],
  ] as const) {
    const res = await call("Remember", { memory_space_id: SPACE, memory: { id, content, tags, confidence: { value } } });
    console.log(`remembered ${res.memory_id} (confidence ${res.storage_confidence.value.toFixed(2)})`);
  }

  // An episode: what happened, when, where, who.
  const now = Date.now();
  const ep = await call("Experience", {
    memory_space_id: SPACE,
    episode: {
      id: "postmortem", what: "postmortem meeting about the billing outage", when: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 },
      where_location: "room 4", who: ["ana", "bo"], importance: 0.7,
    },
  });
  console.log(`experienced ${ep.episode_id}`);

  // An association, so that spreading activation can reach the alert.
  await call("Associate", {
    memory_space_id: SPACE, source_memory: "deploy-failed", target_memory: "disk-alert",
    strength: 0.8, association_type: "ASSOCIATION_TYPE_CAUSAL",
  });
  console.log("associated deploy-failed -> disk-alert");

  // Recall by a partial cue with spreading activation: direct matches,
  // then memories reached through associations.
  const rec = await call("Recall", {
    memory_space_id: SPACE, trace_activation: true,
    cue: { spread_activation: true, semantic: { query: "billing deploy failed" } },
  });
  const counts = { vivid: 0, associated: 0 };
  rec.memories.forEach((m: Json, i: number) => {
    const kind = i < rec.traces.length && rec.traces[i].activation_path.length > 1 ? "associated" : "vivid";
    counts[kind]++;
    console.log(`  ${kind.padEnd(10)} ${m.id} (${m.confidence.value.toFixed(2)})`);
  });
  console.log(`recall: ${counts.vivid} vivid, ${counts.associated} associated`);

  // A batch over one stream: one answer per memory, in order.
  const n = await new Promise<number>((resolve, reject) => {
    let got = 0;
    const stream = client.StreamingRemember(md, deadline());
    stream.on("data", () => got++);
    stream.on("error", reject);
    stream.on("end", () => resolve(got));
    for (let i = 0; i < 3; i++) {
      stream.write({ memory_space_id: SPACE, memory: { id: `batch-${i}`, content: `imported note number ${i}` } });
    }
    stream.end();
  });
  console.log(`batch: ${n} remembered`);

  // Forget one memory.
  await call("Forget", { memory_space_id: SPACE, memory_id: "batch-0" });
  console.log("forgot batch-0");

  // A bad request: the status carries REST's error code and message.
  try {
    await call("Remember", { memory_space_id: SPACE, memory: { content: " " } });
  } catch (err) {
    const e = err as grpc.ServiceError;
    console.log(`refused: ${codeName(e.code)} ${e.details}`);
    return;
  }
  throw new Error("Remember of blank content: accepted, want INVALID_ARGUMENT");
}

main().then(
  () => client.close(),
  (err: Json) => {
    console.error(`error: ${err.code !== undefined ? grpc.status[err.code] + " " + err.details : err}`);
    process.exit(1);
  },
);
