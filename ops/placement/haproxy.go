package placement

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/engram-ops/engram-ops/ops/server"

	"github.com/engram-ops/engram-ops/ops/api"
)

// Route is one route of the server and whether it writes. Reads may go to
// a shard's followers; everything else goes to its primary.
type Route struct {
	Method, Path string
	Read         bool
}

// RenderOptions say where the rendered files go and what the server's
// routes are.
type RenderOptions struct {
	// Dir is the directory the files are written to; the map file's path
	// in the configuration is Router.MapFile, else Dir/spaces.map.
	Dir string
	// Source names the placement file in the configuration's header.
	Source string
	// Routes is the server's route table (server.Routes).
	Routes []Route
}

// Rendered is an HAProxy configuration and its map file.
type Rendered struct {
	Config  []byte
	Map     []byte
	MapPath string // the map file's path in Config
}

// MapPath is the map file's path the configuration names.
func (p *Placement) MapPath(dir string) (string, error) {
	if p.Router.MapFile != "" {
		return p.Router.MapFile, nil
	}
	abs, err := filepath.Abs(filepath.Join(dir, "spaces.map"))
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(abs, " \t\n\"'\\#") {
		return "", fmt.Errorf("the map file's path %q holds a space, quote, backslash or #: set router.map_file", abs)
	}
	return abs, nil
}

// BackendName is the HAProxy backend of a shard's primary (the map file's
// values are shard names; reads with staleness allowed go to
// BackendName(shard)+"_read").
func BackendName(shard string) string { return "shard_" + shard }

// Render renders HAProxy 2.6's configuration and map file for p.
func Render(p *Placement, o RenderOptions) (*Rendered, error) {
	mapPath, err := p.MapPath(o.Dir)
	if err != nil {
		return nil, err
	}
	reads, err := readRoutes(o.Routes)
	if err != nil {
		return nil, err
	}
	var cfg bytes.Buffer
	data := struct {
		P            *Placement
		Source       string
		MapPath      string
		Reads        []methodRoutes
		HeaderSpace  string
		HeaderStale  string
		StaleAllow   string
		DefaultSpace string
		Shards       []renderShard
	}{P: p, Source: o.Source, MapPath: mapPath, Reads: reads, HeaderSpace: api.HeaderSpace,
		HeaderStale: api.HeaderReadStale, StaleAllow: api.ReadStaleAllow, DefaultSpace: api.DefaultSpace}
	for _, s := range p.Shards {
		rs := renderShard{Name: s.Name, Backend: BackendName(s.Name), Primary: serverAddr(s.Primary)}
		for _, f := range s.Followers {
			rs.Followers = append(rs.Followers, serverAddr(f))
		}
		data.Shards = append(data.Shards, rs)
	}
	if err := haproxyTemplate.Execute(&cfg, data); err != nil {
		return nil, err
	}
	return &Rendered{Config: cfg.Bytes(), Map: MapFile(p.Spaces), MapPath: mapPath}, nil
}

// MapFile is the map file of spaces (space → shard), sorted.
func MapFile(spaces map[string]string) []byte {
	keys := make([]string, 0, len(spaces))
	for k := range spaces {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# space shard (engram-ops placement haproxy; engram-ops space move rewrites it)\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", k, spaces[k])
	}
	return b.Bytes()
}

type renderShard struct {
	Name, Backend, Primary string
	Followers              []string
}

// methodRoutes are the read routes of one method as one path regex.
type methodRoutes struct {
	ACL, Methods, Regex string
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// pathRegex turns a ServeMux pattern's path into an anchored regex.
func pathRegex(path string) string {
	var b strings.Builder
	last := 0
	for _, m := range wildcard.FindAllStringIndex(path, -1) {
		b.WriteString(regexp.QuoteMeta(path[last:m[0]]))
		b.WriteString("[^/]+")
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(path[last:]))
	return b.String()
}

// readRoutes groups the read routes by method, refusing a table where a
// read pattern would also match a write route of the same method.
func readRoutes(routes []Route) ([]methodRoutes, error) {
	if len(routes) == 0 {
		return nil, fmt.Errorf("no routes to classify: the server's route table is empty")
	}
	byMethod := map[string][]string{}
	for _, r := range routes {
		if r.Read {
			byMethod[r.Method] = append(byMethod[r.Method], pathRegex(r.Path))
		}
	}
	methods := make([]string, 0, len(byMethod))
	for m := range byMethod {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	var out []methodRoutes
	for _, m := range methods {
		paths := byMethod[m]
		sort.Strings(paths)
		re := "^(" + strings.Join(paths, "|") + ")$"
		compiled := regexp.MustCompile(re)
		for _, r := range routes {
			if !r.Read && r.Method == m && compiled.MatchString(r.Path) {
				return nil, fmt.Errorf("the read routes of %s match the write route %s %s: reads could not be told from writes", m, r.Method, r.Path)
			}
		}
		methods := m
		if m == "GET" {
			methods = "GET HEAD" // ServeMux serves HEAD with GET's handler
		}
		out = append(out, methodRoutes{ACL: "read_" + strings.ToLower(m), Methods: methods, Regex: re})
	}
	return out, nil
}

var haproxyTemplate = template.Must(template.New("haproxy").Parse(`# HAProxy 2.6 configuration of the Engram router.
# Rendered by engram-ops placement haproxy{{with .Source}} from {{.}}{{end}}: edit the placement
# file and render again rather than editing this file.
global
    stats socket {{.P.Router.StatsSocket}} mode 600 level admin
    stats timeout 30s
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout queue 10s

frontend engram
    bind {{.P.Router.Listen}}
    # The body is buffered so its space field can route it (bodies larger
    # than tune.bufsize are routed by header or query only).
    option http-buffer-request
    # The space, in the server's order for writes: {{.HeaderSpace}} header, then the
    # body's memory_space_id, then its space, then ?space=, else "{{.DefaultSpace}}".
    # Later lines win, so the order below is the reverse.
    http-request set-var(txn.space) str({{.DefaultSpace}})
    http-request set-var(txn.space) url_param(space) if { url_param(space) -m len gt 0 }
    http-request set-var(txn.space) req.body,json_query('$.space') if { req.body,json_query('$.space') -m len gt 0 }
    http-request set-var(txn.space) req.body,json_query('$.memory_space_id') if { req.body,json_query('$.memory_space_id') -m len gt 0 }
    http-request set-var(txn.space) req.hdr({{.HeaderSpace}}) if { req.hdr({{.HeaderSpace}}) -m len gt 0 }
    # The shard: the map file (space → shard name), changed at run time
    # with "set map" on the stats socket (engram-ops space move).
    http-request set-var(txn.shard) var(txn.space),map({{.MapPath}},{{.P.DefaultShard}})
    # Reads (from the server's route table) may go to followers when the
    # client allows staleness; everything else goes to the primary.
{{- range .Reads}}
    acl {{.ACL}} path_reg '{{.Regex}}'
    http-request set-var(txn.read) bool(true) if { method {{.Methods}} } {{.ACL}}
{{- end}}
    acl stale_ok req.hdr({{.HeaderStale}}) -m str {{.StaleAllow}}
    use_backend shard_%[var(txn.shard)]_read if { var(txn.read) -m bool } stale_ok
    use_backend shard_%[var(txn.shard)]
    default_backend shard_{{.P.DefaultShard}}
{{range .Shards}}
backend {{.Backend}}
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    server primary {{.Primary}} check inter 1s fall 2 rise 1

backend {{.Backend}}_read
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
{{- range $i, $f := .Followers}}
    server follower{{$i}} {{$f}} check inter 1s fall 2 rise 1
{{- end}}
    server primary {{.Primary}} check inter 1s fall 2 rise 1{{if .Followers}} backup{{end}}
{{end -}}
`))

// ServerRoutes classifies the server's route table: read and public
// routes (and metrics) are reads; write and admin routes are not.
func ServerRoutes(table []server.RouteAccess) []Route {
	out := make([]Route, 0, len(table))
	for _, r := range table {
		read := r.Access == "read" || r.Access == "public" || r.Access == "metrics"
		out = append(out, Route{Method: r.Method, Path: r.Path, Read: read})
	}
	return out
}

// WriteFiles writes haproxy.cfg and spaces.map into dir (the map also at
// r.MapPath when that is elsewhere and its directory exists).
func WriteFiles(dir string, r *Rendered) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "haproxy.cfg"), r.Config); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "spaces.map"), r.Map)
}

// writeAtomic replaces path with b through a rename, so HAProxy never
// reads half a file.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
