package server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// CORS for browser clients, off until cors.allowed_origins is set. It runs
// before authentication: a preflight carries no key. A preflight (OPTIONS
// with Origin and Access-Control-Request-Method) from an allowed origin
// asking for allowed methods and headers is answered 204 with the CORS
// headers; any other preflight is refused with 403 CORS_ORIGIN_NOT_ALLOWED.
// Other requests from an allowed origin get Access-Control-Allow-Origin;
// from another origin they are served without it, so the browser withholds
// the answer from the page. Every answer says Vary: Origin.

// corsPolicy is the [cors] section, ready for lookups.
type corsPolicy struct {
	on      bool
	any     bool
	origins map[string]bool
	methods string
	headers map[string]bool
	hdrList string
	maxAge  string
}

func (s *Server) setupCORS() {
	c := s.cfg.CORS
	p := &s.corsPolicy
	p.on = len(c.AllowedOrigins) > 0
	p.origins = map[string]bool{}
	for _, o := range c.AllowedOrigins {
		p.any = p.any || o == "*"
		p.origins[o] = true
	}
	p.methods = strings.Join(c.AllowedMethods, ", ")
	p.headers = map[string]bool{}
	for _, h := range c.AllowedHeaders {
		p.headers[strings.ToLower(h)] = true
	}
	p.hdrList = strings.Join(c.AllowedHeaders, ", ")
	p.maxAge = strconv.Itoa(int(c.MaxAge.Seconds()))
}

func (p *corsPolicy) allows(origin string) bool { return p.any || p.origins[origin] }

// cors applies the policy to r; it reports true when it answered r (a
// preflight) and nothing else must be written.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	p := &s.corsPolicy
	if !p.on {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	method := r.Header.Get("Access-Control-Request-Method")
	if r.Method != http.MethodOptions || method == "" {
		if p.allows(origin) {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate, Allow")
		}
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if err := p.preflight(origin, method, r.Header.Values("Access-Control-Request-Headers")); err != nil {
		s.writeError(w, r, err)
		return true
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", p.methods)
	if p.hdrList != "" {
		h.Set("Access-Control-Allow-Headers", p.hdrList)
	}
	h.Set("Access-Control-Max-Age", p.maxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}

// preflight says why a preflight is refused (nil: allowed).
func (p *corsPolicy) preflight(origin, method string, reqHeaders []string) error {
	if !p.allows(origin) {
		return corsRefusal("origin %q is not in cors.allowed_origins", echo(origin))
	}
	if !slices.Contains(strings.Split(p.methods, ", "), method) {
		return corsRefusal("method %s is not in cors.allowed_methods (%s)", echo(method), p.methods)
	}
	for _, line := range reqHeaders {
		for _, name := range strings.Split(line, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "" && !p.headers[name] {
				return corsRefusal("request header %s is not in cors.allowed_headers (%s)", echo(name), p.hdrList)
			}
		}
	}
	return nil
}

func corsRefusal(format string, args ...any) error {
	e := httpErrorf(http.StatusForbidden, "CORS_ORIGIN_NOT_ALLOWED", "CORS preflight refused: "+format, args...)
	return e
}
