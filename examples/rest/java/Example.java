// engram-ops REST API from Java 17's HttpClient with Jackson (Debian's
// libjackson2-databind-java). Reads ENGRAM_URL (default
// http://127.0.0.1:7432), ENGRAM_API_KEY (required) and ENGRAM_SPACE
// (default quickstart); exits non-zero on any unexpected answer.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

public class Example {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    static final String URL = env("ENGRAM_URL", "http://127.0.0.1:7432").replaceAll("/+$", "");
    static final String KEY = env("ENGRAM_API_KEY", "");
    static final String SPACE = env("ENGRAM_SPACE", "quickstart");

    record Reply(int status, JsonNode body) {}

    static String env(String name, String def) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? def : v;
    }

    /** Sends one request; returns the status and the decoded JSON body. */
    static Reply call(String method, String path, Object body, String key) throws Exception {
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(URL + path))
                .timeout(Duration.ofSeconds(10))
                .header("X-Memory-Space", SPACE);
        if (!key.isEmpty()) {
            req.header("Authorization", "Bearer " + key);
        }
        if (body != null) {
            req.header("Content-Type", "application/json");
            req.method(method, HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
        } else {
            req.method(method, HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<byte[]> resp = HTTP.send(req.build(), HttpResponse.BodyHandlers.ofByteArray());
        return new Reply(resp.statusCode(), JSON.readTree(resp.body()));
    }

    /** call with the key, failing on anything but a 2xx answer. */
    static JsonNode ok(String method, String path, Object body) throws Exception {
        Reply r = call(method, path, body, KEY);
        if (r.status() >= 300) {
            fail(method + " " + path + ": " + r.status() + " " + r.body());
        }
        return r.body();
    }

    static void fail(String msg) {
        System.err.println(msg);
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        if (KEY.isEmpty()) {
            fail("ENGRAM_API_KEY is not set: create a key with engram-ops apikey create "
                    + "and start the server with --set auth.mode=api_key");
        }

        // API key: a request without one is refused.
        Reply r = call("GET", "/api/v1/spaces", null, "");
        System.out.printf("auth: without a key %d %s%n", r.status(), r.body().path("error").path("code").asText());

        // Spaces: create (idempotent) the space every call below selects.
        ok("POST", "/api/v1/spaces", Map.of("id", SPACE));
        System.out.println("space: " + SPACE);

        // Remember with confidence and tags, then associate the two memories.
        for (Map<String, Object> m : List.of(
                Map.of("id", "mito", "content", "The mitochondria is the powerhouse of the cell",
                        "confidence", 0.9, "tags", List.of("biology", "cell")),
                Map.of("id", "atp", "content", "ATP carries chemical energy",
                        "confidence", 0.8, "tags", List.of("biology")))) {
            JsonNode out = ok("POST", "/api/v1/memories/remember", m);
            JsonNode c = out.path("storage_confidence");
            System.out.printf("remember: %s confidence %s %s%n",
                    out.path("memory_id").asText(), c.path("value"), c.path("category").asText());
        }
        ok("POST", "/api/v1/associations", Map.of("from", "mito", "to", "atp", "weight", 0.9));
        System.out.println("associate: mito -> atp");

        // Recall by a partial cue: vivid are direct matches, associated were
        // reached by spreading activation over the association.
        JsonNode out = ok("GET", "/api/v1/memories/recall?query=powerhouse&mode=hybrid&trace_activation=true", null);
        for (JsonNode m : out.path("memories").path("vivid")) {
            System.out.println("vivid: " + m.path("id").asText());
        }
        for (JsonNode m : out.path("memories").path("associated")) {
            List<String> path = new ArrayList<>();
            m.path("path").forEach(p -> path.add(p.asText()));
            System.out.printf("associated: %s via %s%n", m.path("id").asText(), String.join(" -> ", path));
        }

        // Episodes: who, what, when, where.
        out = ok("POST", "/api/v1/episodes/remember", Map.of(
                "id", "lab-day", "when", "2026-03-01T09:30:00Z", "what", "Measured the ATP output of mitochondria",
                "where", "lab 4", "who", List.of("Ana", "Ben"), "importance", 0.7));
        System.out.printf("episode: %s confidence %s%n",
                out.path("memory_id").asText(), out.path("storage_confidence").path("value"));

        // Batch import: memories and associations in one atomic write.
        out = ok("POST", "/api/v1/memories/batch", Map.of(
                "memories", List.of(
                        Map.of("id", "ribo", "content", "Ribosomes build proteins"),
                        Map.of("id", "dna", "content", "The nucleus holds the DNA"),
                        Map.of("id", "mrna", "content", "mRNA carries the code from DNA to ribosomes")),
                "associations", List.of(
                        Map.of("from", "dna", "to", "mrna", "weight", 0.8),
                        Map.of("from", "mrna", "to", "ribo", "weight", 0.8))));
        System.out.printf("batch: %d memories, %s associations%n",
                out.path("memory_ids").size(), out.path("associations"));

        // Forget, then the memory is gone.
        out = ok("DELETE", "/api/v1/memories/mito", null);
        r = call("GET", "/api/v1/memories/mito", null, KEY);
        System.out.printf("forget: %s %s, then %d %s%n", out.path("memory_id").asText(), out.path("status").asText(),
                r.status(), r.body().path("error").path("code").asText());

        // Error handling: a bad request's error body names the problem.
        r = call("POST", "/api/v1/memories/remember", Map.of("content", " "), KEY);
        JsonNode e = r.body().path("error");
        System.out.printf("error: %d %s: %s%n", r.status(), e.path("code").asText(), e.path("message").asText());

        // Spaces: list them with their counts.
        for (JsonNode s : ok("GET", "/api/v1/spaces", null).path("spaces")) {
            if (s.path("id").asText().equals(SPACE)) {
                System.out.printf("spaces: %s holds %s memories%n", SPACE, s.path("memories").path("total"));
            }
        }
        System.out.println("done");
    }
}
