// Package placement places memory spaces on shards and routes to them: a
// placement file (TOML, strict) names each shard's primary and followers
// and maps spaces to shards; Render turns it into an HAProxy
// configuration and map file; Move copies a space from one server to
// another through the batch endpoint, holds its writes on the source for
// the switch, switches the router's map through HAProxy's runtime API and
// purges the source's copy. cmd/engram-ops is the command line over it
// (engram-ops placement haproxy, engram-ops space move).
package placement

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/internal/stricttoml"
)

// Placement is a placement file.
type Placement struct {
	// DefaultShard serves every space the file does not map.
	DefaultShard string            `toml:"default_shard"`
	Router       Router            `toml:"router"`
	Shards       []Shard           `toml:"shards"`
	Spaces       map[string]string `toml:"spaces"` // space → shard name
}

// Router is where HAProxy listens and keeps its runtime API and map.
type Router struct {
	// Listen is the address clients reach the router on (host:port).
	Listen string `toml:"listen"`
	// StatsSocket is the runtime API's address: an absolute Unix socket
	// path, or ipv4@HOST:PORT.
	StatsSocket string `toml:"stats_socket"`
	// MapFile is where HAProxy reads the space map; empty: spaces.map
	// beside the rendered configuration.
	MapFile string `toml:"map_file"`
}

// Shard is one primary and its followers.
type Shard struct {
	Name      string   `toml:"name"`
	Primary   string   `toml:"primary"`
	Followers []string `toml:"followers"`
}

// Shard returns the shard named name.
func (p *Placement) Shard(name string) (Shard, bool) {
	for _, s := range p.Shards {
		if s.Name == name {
			return s, true
		}
	}
	return Shard{}, false
}

// ShardOf is the shard that serves space (the default shard when the
// file does not map it).
func (p *Placement) ShardOf(space string) string {
	if s, ok := p.Spaces[space]; ok {
		return s
	}
	return p.DefaultShard
}

// ShardByURL finds the shard whose primary is u.
func (p *Placement) ShardByURL(u string) (Shard, bool) {
	for _, s := range p.Shards {
		if strings.TrimRight(s.Primary, "/") == strings.TrimRight(u, "/") {
			return s, true
		}
	}
	return Shard{}, false
}

// Limits of a placement file.
const (
	MaxFileBytes = 4 << 20
	MaxShards    = 1000
)

var shardName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Load reads and checks the placement file at path.
func Load(path string) (*Placement, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the placement file: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes a placement file strictly (unknown keys are errors) and
// checks every value; problems name name:line.
func Parse(data []byte, name string) (*Placement, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: the placement file is %d bytes; at most %d are read", name, len(data), MaxFileBytes)
	}
	var p Placement
	if ps := stricttoml.Decode(data, &p); ps != nil {
		return nil, decodeError(ps, name)
	}
	if err := p.check(data, name); err != nil {
		return nil, err
	}
	return &p, nil
}

func decodeError(ps []stricttoml.Problem, name string) error {
	errs := make([]error, 0, len(ps))
	for _, p := range ps {
		switch {
		case p.Unknown:
			errs = append(errs, fmt.Errorf("%s:%d:%d: unknown key %s (keys: default_shard, [router] listen/stats_socket/map_file, [[shards]] name/primary/followers, [spaces])",
				name, p.Line, p.Col, p.Key))
		case p.Line > 0:
			errs = append(errs, fmt.Errorf("%s:%d:%d: %s", name, p.Line, p.Col, p.Msg))
		default:
			errs = append(errs, fmt.Errorf("%s: %s", name, p.Msg))
		}
	}
	return errors.Join(errs...)
}

// check validates the decoded values; data locates them.
func (p *Placement) check(data []byte, name string) error {
	var errs []error
	bad := func(table string, index int, key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, keyLine(data, table, index, key), displayKey(table, index, key), fmt.Sprintf(format, args...)))
	}
	if len(p.Shards) == 0 {
		errs = append(errs, fmt.Errorf("%s: no shards: add a [[shards]] table with a name and a primary", name))
	}
	if len(p.Shards) > MaxShards {
		bad("shards", -1, "", "%d shards; at most %d", len(p.Shards), MaxShards)
	}
	seen := map[string]bool{}
	urls := map[string]string{}
	for i, s := range p.Shards {
		switch {
		case !shardName.MatchString(s.Name):
			bad("shards", i, "name", "%q must be 1-63 characters of [a-z0-9_-], starting with a letter or digit", s.Name)
		case seen[s.Name]:
			bad("shards", i, "name", "shard %q is named twice", s.Name)
		}
		seen[s.Name] = true
		if err := checkServerURL(s.Primary); err != nil {
			bad("shards", i, "primary", "%v", err)
		} else if other, dup := urls[normURL(s.Primary)]; dup {
			bad("shards", i, "primary", "%s is already a server of shard %q", s.Primary, other)
		} else {
			urls[normURL(s.Primary)] = s.Name
		}
		for _, f := range s.Followers {
			if err := checkServerURL(f); err != nil {
				bad("shards", i, "followers", "%v", err)
			} else if other, dup := urls[normURL(f)]; dup {
				bad("shards", i, "followers", "%s is already a server of shard %q", f, other)
			} else {
				urls[normURL(f)] = s.Name
			}
		}
	}
	switch {
	case p.DefaultShard == "":
		errs = append(errs, fmt.Errorf("%s: default_shard is missing: name the shard that serves spaces the file does not map", name))
	case !seen[p.DefaultShard]:
		bad("", -1, "default_shard", "no shard is named %q", p.DefaultShard)
	}
	spaces := make([]string, 0, len(p.Spaces))
	for sp := range p.Spaces {
		spaces = append(spaces, sp)
	}
	sort.Strings(spaces)
	for _, sp := range spaces {
		if err := core.ValidateSpaceName(sp); err != nil {
			bad("spaces", -1, sp, "%v", err)
		} else if !seen[p.Spaces[sp]] {
			bad("spaces", -1, sp, "no shard is named %q", p.Spaces[sp])
		}
	}
	r := p.Router
	if _, port, err := net.SplitHostPort(r.Listen); err != nil || port == "" || strings.ContainsAny(r.Listen, " \t\r\n\"'\\#") {
		bad("router", -1, "listen", "%q must be HOST:PORT (e.g. 127.0.0.1:7400)", r.Listen)
	}
	if err := checkSocket(r.StatsSocket); err != nil {
		bad("router", -1, "stats_socket", "%v", err)
	}
	if r.MapFile != "" && (!filepath.IsAbs(r.MapFile) || strings.ContainsAny(r.MapFile, " \t\n\"'\\#")) {
		bad("router", -1, "map_file", "%q must be an absolute path without spaces, quotes, backslashes or #", r.MapFile)
	}
	return errors.Join(errs...)
}

// checkServerURL accepts http://HOST:PORT (HAProxy speaks plain HTTP to
// the servers it renders).
func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("%q: the router reaches servers over http:// only (TLS to the servers is not rendered)", s)
	}
	if u.Hostname() == "" || u.Port() == "" || strings.ContainsAny(u.Host, " \t\"'\\#") {
		return fmt.Errorf("%q must name a host and a port: http://HOST:PORT", s)
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not 1-65535", s, u.Port())
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q must be just http://HOST:PORT (no path, query or user)", s)
	}
	return nil
}

func normURL(s string) string {
	u, _ := url.Parse(s)
	return strings.ToLower(u.Host)
}

// serverAddr is the HOST:PORT of a checked server URL.
func serverAddr(s string) string {
	u, _ := url.Parse(s)
	return u.Host
}

func checkSocket(s string) error {
	if addr, ok := strings.CutPrefix(s, "ipv4@"); ok {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return fmt.Errorf("%q must be ipv4@HOST:PORT", s)
		}
		return nil
	}
	if !filepath.IsAbs(s) || strings.ContainsAny(s, " \t\n\"'\\#") {
		return fmt.Errorf("%q must be an absolute Unix socket path (without spaces, quotes, backslashes or #) or ipv4@HOST:PORT", s)
	}
	return nil
}

func displayKey(table string, index int, key string) string {
	switch {
	case table == "":
		return key
	case index >= 0:
		return fmt.Sprintf("%s[%d].%s", table, index, key)
	case key == "":
		return table
	}
	return table + "." + key
}

// keyLine finds the line that sets key in [table] (index ≥ 0: the
// index-th [[table]]), or the table's header line when the key is not
// written; 0 when neither is found.
func keyLine(data []byte, table string, index int, key string) int {
	cur, n, header := "", -1, 0
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if h, ok := strings.CutPrefix(t, "[["); ok {
			cur = strings.TrimSpace(strings.SplitN(h, "]]", 2)[0])
			if cur == table {
				n++
				if n == index {
					header = i + 1
				}
			}
			continue
		}
		if h, ok := strings.CutPrefix(t, "["); ok {
			cur = strings.TrimSpace(strings.SplitN(h, "]", 2)[0])
			if cur == table && index < 0 {
				header = i + 1
			}
			continue
		}
		if cur != table || (index >= 0 && n != index) {
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok && strings.Trim(strings.TrimSpace(k), `"'`) == key {
			return i + 1
		}
	}
	return header
}
