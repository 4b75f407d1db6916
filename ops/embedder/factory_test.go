package embedder

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/embed"
)

func coreErr(t *testing.T, err error, code string, subs ...string) {
	t.Helper()
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Kind != core.KindInvalid || ce.Code != code {
		t.Fatalf("err = %#v, want *core.Error invalid %s", err, code)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	noKey(t, err)
}

func TestFactoryHashOnly(t *testing.T) {
	fac := NewFactory(nil)
	e, err := fac("hash", 768)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.(*embed.Hashing); !ok || e.Dimension() != 768 || e.Fingerprint() != "hash-v1/768" {
		t.Fatalf("hash embedder: %T %d %q", e, e.Dimension(), e.Fingerprint())
	}
	_, err = fac("hash", 3)
	coreErr(t, err, "INVALID_DIMENSION", "3")
	_, err = fac("openai", 768)
	coreErr(t, err, "EMBEDDER_NOT_CONFIGURED", "openai embedder not configured: set [embedder.openai] base_url and model")
	_, err = fac("bert", 768)
	coreErr(t, err, "UNKNOWN_EMBEDDER", `"bert"`, "known: hash")
	_, err = fac(strings.Repeat("b", 5000), 768)
	coreErr(t, err, "UNKNOWN_EMBEDDER", "known: hash")
	if len(err.Error()) > 200 {
		t.Errorf("the error repeats a 5000-byte name: %d bytes", len(err.Error()))
	}
}

func TestFactoryOpenAI(t *testing.T) {
	f := newFake(t, 16)
	cfg := &OpenAIConfig{BaseURL: f.srv.URL, Model: "test-embed", APIKey: testKey, Dimension: 16}
	fac := NewFactory(cfg)
	cfg.Dimension = 99 // the factory copied the configuration

	e, err := fac("openai", 16)
	if err != nil {
		t.Fatal(err)
	}
	if e.Fingerprint() != "openai/test-embed/16" {
		t.Fatalf("fingerprint %q", e.Fingerprint())
	}
	vs, err := e.Embed(context.Background(), []string{"hello"})
	if err != nil || len(vs) != 1 || len(vs[0]) != 16 {
		t.Fatalf("embed: %v %v", vs, err)
	}
	if e2, _ := fac("openai", 16); e2 != e {
		t.Fatal("the OpenAI embedder should be shared")
	}
	_, err = fac("openai", 768)
	coreErr(t, err, "EMBEDDER_MISMATCH", "16", "768")
	_, err = fac("cohere", 16)
	coreErr(t, err, "UNKNOWN_EMBEDDER", "known: hash, openai")
	if _, err := fac("hash", 16); err != nil {
		t.Fatal(err)
	}

	bad := NewFactory(&OpenAIConfig{BaseURL: "not a url", Model: "m", APIKey: testKey, Dimension: 4})
	_, err = bad("openai", 4)
	coreErr(t, err, "EMBEDDER_NOT_CONFIGURED", "base URL")
}
