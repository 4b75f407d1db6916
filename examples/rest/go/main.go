// Command example calls engram-ops' REST API with Go's standard library
// (net/http, encoding/json).
//
// It reads ENGRAM_URL (default http://127.0.0.1:7432), ENGRAM_API_KEY
// (required) and ENGRAM_SPACE (default quickstart), and exits non-zero on
// any unexpected answer.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// obj is a decoded JSON object.
type obj = map[string]any

var (
	baseURL = strings.TrimRight(env("ENGRAM_URL", "http://127.0.0.1:7432"), "/")
	key     = os.Getenv("ENGRAM_API_KEY")
	space   = env("ENGRAM_SPACE", "quickstart")
	client  = &http.Client{Timeout: 10 * time.Second}
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// call sends one request and returns the status and the decoded JSON body.
func call(method, path string, body any, token string) (int, obj, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, baseURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Memory-Space", space)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out obj
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: %d, body is not JSON: %w", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out, nil
}

// ok is call with the key, failing on anything but a 2xx answer.
func ok(method, path string, body any) obj {
	status, out, err := call(method, path, body, key)
	if err != nil {
		fail(err)
	}
	if status >= 300 {
		b, _ := json.Marshal(out)
		fail(fmt.Errorf("%s %s: %d %s", method, path, status, b))
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// errCode returns the code of an error envelope.
func errCode(out obj) string {
	e, _ := out["error"].(obj)
	code, _ := e["code"].(string)
	return code
}

func main() {
	if key == "" {
		fail(fmt.Errorf("ENGRAM_API_KEY is not set: create a key with engram-ops apikey create " +
			"and start the server with --set auth.mode=api_key"))
	}

	// API key: a request without one is refused.
	status, out, err := call("GET", "/api/v1/spaces", nil, "")
	if err != nil {
		fail(err)
	}
	fmt.Printf("auth: without a key %d %s\n", status, errCode(out))

	// Spaces: create (idempotent) the space every call below selects.
	ok("POST", "/api/v1/spaces", obj{"id": space})
	fmt.Printf("space: %s\n", space)

	// Remember with confidence and tags, then associate the two memories.
	for _, m := range []obj{
		{"id": "mito", "content": "The mitochondria is the powerhouse of the cell", "confidence": 0.9, "tags": []string{"biology", "cell"}},
		{"id": "atp", "content": "ATP carries chemical energy", "confidence": 0.8, "tags": []string{"biology"}},
	} {
		out := ok("POST", "/api/v1/memories/remember", m)
		c := out["storage_confidence"].(obj)
		fmt.Printf("remember: %s confidence %v %s\n", out["memory_id"], c["value"], c["category"])
	}
	ok("POST", "/api/v1/associations", obj{"from": "mito", "to": "atp", "weight": 0.9})
	fmt.Println("associate: mito -> atp")

	// Recall by a partial cue: vivid are direct matches, associated were
	// reached by spreading activation over the association.
	out = ok("GET", "/api/v1/memories/recall?query=powerhouse&mode=hybrid&trace_activation=true", nil)
	groups := out["memories"].(obj)
	for _, m := range groups["vivid"].([]any) {
		fmt.Printf("vivid: %s\n", m.(obj)["id"])
	}
	for _, m := range groups["associated"].([]any) {
		var path []string
		for _, p := range m.(obj)["path"].([]any) {
			path = append(path, p.(string))
		}
		fmt.Printf("associated: %s via %s\n", m.(obj)["id"], strings.Join(path, " -> "))
	}

	// Episodes: who, what, when, where.
	out = ok("POST", "/api/v1/episodes/remember", obj{
		"id": "lab-day", "when": "2026-03-01T09:30:00Z", "what": "Measured the ATP output of mitochondria",
		"where": "lab 4", "who": []string{"Ana", "Ben"}, "importance": 0.7})
	fmt.Printf("episode: %s confidence %v\n", out["memory_id"], out["storage_confidence"].(obj)["value"])

	// Batch import: memories and associations in one atomic write.
	out = ok("POST", "/api/v1/memories/batch", obj{
		"memories": []obj{
			{"id": "ribo", "content": "Ribosomes build proteins"},
			{"id": "dna", "content": "The nucleus holds the DNA"},
			{"id": "mrna", "content": "mRNA carries the code from DNA to ribosomes"},
		},
		"associations": []obj{{"from": "dna", "to": "mrna", "weight": 0.8}, {"from": "mrna", "to": "ribo", "weight": 0.8}},
	})
	fmt.Printf("batch: %d memories, %v associations\n", len(out["memory_ids"].([]any)), out["associations"])

	// Forget, then the memory is gone.
	out = ok("DELETE", "/api/v1/memories/mito", nil)
	status, gone, err := call("GET", "/api/v1/memories/mito", nil, key)
	if err != nil {
		fail(err)
	}
	fmt.Printf("forget: %s %s, then %d %s\n", out["memory_id"], out["status"], status, errCode(gone))

	// Error handling: a bad request's error body names the problem.
	status, out, err = call("POST", "/api/v1/memories/remember", obj{"content": " "}, key)
	if err != nil {
		fail(err)
	}
	fmt.Printf("error: %d %s: %s\n", status, errCode(out), out["error"].(obj)["message"])

	// Spaces: list them with their counts.
	for _, s := range ok("GET", "/api/v1/spaces", nil)["spaces"].([]any) {
		if s := s.(obj); s["id"] == space {
			fmt.Printf("spaces: %s holds %v memories\n", s["id"], s["memories"].(obj)["total"])
		}
	}
	fmt.Println("done")
}
