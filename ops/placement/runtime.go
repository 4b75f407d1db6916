package placement

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// Runtime is HAProxy's runtime API on its stats socket (level admin).
type Runtime struct {
	// Addr is the stats socket: a Unix socket path, ipv4@HOST:PORT or
	// HOST:PORT.
	Addr    string
	Timeout time.Duration
}

// maxAnswer bounds one runtime API answer.
const maxAnswer = 16 << 20

// Command sends one command and returns HAProxy's answer (the socket
// answers one command per connection and closes it).
func (r Runtime) Command(ctx context.Context, cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\r\n;") {
		return "", fmt.Errorf("runtime API command %q holds a newline or ;", cmd)
	}
	network, addr := "unix", r.Addr
	if a, ok := strings.CutPrefix(addr, "ipv4@"); ok {
		network, addr = "tcp", a
	} else if !strings.HasPrefix(addr, "/") {
		network = "tcp"
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", fmt.Errorf("reach HAProxy's stats socket %s: %w", r.Addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("send %q to %s: %w", cmd, r.Addr, err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxAnswer))
	if err != nil {
		return "", fmt.Errorf("read the answer to %q from %s: %w", cmd, r.Addr, err)
	}
	return string(b), nil
}

// SetMap points key at value in the running HAProxy's map (set map, or
// add map when the key is not in it yet).
func (r Runtime) SetMap(ctx context.Context, mapPath, key, value string) error {
	ans, err := r.Command(ctx, fmt.Sprintf("set map %s %s %s", mapPath, key, value))
	if err != nil {
		return err
	}
	ans = strings.TrimSpace(ans)
	if strings.Contains(strings.ToLower(ans), "not found") && !strings.Contains(strings.ToLower(ans), "unknown map") {
		if ans, err = r.Command(ctx, fmt.Sprintf("add map %s %s %s", mapPath, key, value)); err != nil {
			return err
		}
		ans = strings.TrimSpace(ans)
	}
	if ans != "" {
		return fmt.Errorf("HAProxy refused to map %s to %s in %s: %s", key, value, mapPath, ans)
	}
	return nil
}

// GetMap is the value key has in the running HAProxy's map ("" when
// absent).
func (r Runtime) GetMap(ctx context.Context, mapPath, key string) (string, error) {
	ans, err := r.Command(ctx, fmt.Sprintf("show map %s", mapPath))
	if err != nil {
		return "", err
	}
	if strings.Contains(ans, "Unknown map") {
		return "", fmt.Errorf("HAProxy has no map %s: %s", mapPath, strings.TrimSpace(ans))
	}
	sc := bufio.NewScanner(strings.NewReader(ans))
	for sc.Scan() {
		// "0x55d1c2c0 key value"
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[1] == key {
			return f[2], nil
		}
	}
	return "", nil
}

// ReadMapFile reads a map file (space shard per line; # comments).
func ReadMapFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Fields(t)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: %q is not \"space shard\"", path, i+1, t)
		}
		out[f[0]] = f[1]
	}
	return out, nil
}

// UpdateMapFile sets space's shard in the map file at path (atomically),
// so a reload keeps what the runtime API switched.
func UpdateMapFile(path, space, shard string) error {
	m, err := ReadMapFile(path)
	if err != nil {
		return err
	}
	m[space] = shard
	return writeAtomic(path, MapFile(m))
}
