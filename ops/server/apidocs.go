package server

import (
	"embed"
	"net/http"
	"path"

	"github.com/engram-ops/engram-ops/ops/api"
)

// The API browser at /docs: a small page of the project's own (HTML, a
// script and a style sheet embedded in the binary, nothing fetched from
// elsewhere) that reads the OpenAPI document and sends requests from the
// browser. Its Content-Security-Policy allows only this server's own
// scripts, styles and requests.

//go:embed apidocs/index.html apidocs/app.js apidocs/app.css
var apiDocsFiles embed.FS

// docsAssets maps the assets under /docs/ to their content types.
var docsAssets = map[string]string{
	"app.js":  "text/javascript; charset=utf-8",
	"app.css": "text/css; charset=utf-8",
}

const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) docsRoutes() {
	s.handle("GET "+api.PathOpenAPI, s.handleOpenAPI)
	s.handle("GET "+api.PathDocs, func(w http.ResponseWriter, r *http.Request) error {
		return s.docsFile(w, "index.html", "text/html; charset=utf-8")
	})
	s.handle("GET "+api.PathDocsAsset, func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("asset")
		ct, ok := docsAssets[name]
		if !ok {
			return httpErrorf(http.StatusNotFound, "NOT_FOUND", "the API browser has no asset %q; it has app.js and app.css", echo(name))
		}
		return s.docsFile(w, name, ct)
	})
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	doc, err := openAPIJSON()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(doc)
	return nil
}

func (s *Server) docsFile(w http.ResponseWriter, name, contentType string) error {
	b, err := apiDocsFiles.ReadFile(path.Join("apidocs", name))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
	return nil
}
