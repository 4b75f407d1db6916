package embedder

import (
	"strings"
	"sync"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/embed"
)

// NewFactory returns the embedder factory for core.Options.Embedders:
// "hash" is the built-in hashing embedder of any supported dimension, and
// "openai" the OpenAI-compatible embedder when openai is non-nil (its
// dimension must equal the requested one). The OpenAI embedder is built on
// first use and shared by every space, so they share one connection pool.
// Errors are *core.Error of kind invalid, as core's own factory returns.
func NewFactory(openai *OpenAIConfig) core.EmbedderFactory {
	var cfg *OpenAIConfig
	known := "hash"
	if openai != nil {
		c := *openai // later changes to the caller's struct do not leak in
		cfg = &c
		known = "hash, openai"
	}
	var (
		once   sync.Once
		oa     *OpenAI
		oaErr  error
		buildO = func() { oa, oaErr = NewOpenAI(*cfg) }
	)
	return func(name string, dim int) (core.Embedder, error) {
		switch name {
		case "hash":
			h, err := embed.NewHashing(dim)
			if err != nil {
				return nil, core.Errorf(core.KindInvalid, "INVALID_DIMENSION", "%v", err)
			}
			return h, nil
		case "openai":
			if cfg == nil {
				return nil, core.Errorf(core.KindInvalid, "EMBEDDER_NOT_CONFIGURED", "openai embedder not configured: set [embedder.openai] base_url and model")
			}
			once.Do(buildO)
			if oaErr != nil {
				return nil, core.Errorf(core.KindInvalid, "EMBEDDER_NOT_CONFIGURED", "%v", oaErr)
			}
			if dim != oa.Dimension() {
				return nil, core.Errorf(core.KindInvalid, "EMBEDDER_MISMATCH",
					"embedder \"openai\" (model %q) produces %d dimensions but %d were requested; use dimension %d or change [embedder.openai] dimension",
					oa.model, oa.Dimension(), dim, oa.Dimension()).WithDetails("embedder_dimension", oa.Dimension(), "requested_dimension", dim)
			}
			return oa, nil
		default:
			shown := name
			if len(shown) > 80 { // a client's name, repeated in a response
				shown = strings.ToValidUTF8(shown[:80], "") + "…"
			}
			return nil, core.Errorf(core.KindInvalid, "UNKNOWN_EMBEDDER", "embedder %q is not available; known: %s", shown, known)
		}
	}
}
