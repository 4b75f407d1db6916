// Package target turns a backup target URL into a backup.ObjectStore:
//
//	file:///abs/dir        a local or mounted directory (backup/file)
//	s3://bucket[/prefix]   an S3-compatible bucket (backup/s3)
//
// It exists so that package backup need not import its implementations
// (they import backup for ObjectInfo and ErrNotFound): callers that open a
// target by URL (cmd, ops) import this package; backup itself sees only the
// ObjectStore interface. An explicit switch here beats init-time scheme
// registration: the accepted forms are all in one place.
//
// S3 connection settings come from Options, then from the environment:
//
//	ENGRAM_S3_ENDPOINT           host[:port] or http(s)://host[:port]; default s3.amazonaws.com
//	ENGRAM_S3_REGION             else AWS_REGION, else asked of the server
//	ENGRAM_S3_ACCESS_KEY_ID      else AWS_ACCESS_KEY_ID
//	ENGRAM_S3_SECRET_ACCESS_KEY  else AWS_SECRET_ACCESS_KEY
//	ENGRAM_S3_INSECURE=1         plain HTTP instead of TLS
//	ENGRAM_S3_PATH_STYLE=1       http://endpoint/bucket/key addressing
//
// Credentials are never accepted inside the URL: URLs end up in logs, metric
// labels and shell history.
package target

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/file"
	"github.com/engram-ops/engram-ops/backup/s3"
)

// Forms lists the accepted target URLs, for help texts and error messages.
const Forms = "file:///absolute/dir or s3://bucket[/prefix]"

// Options are the S3 connection settings that flags or a config file give.
// A zero field is filled from the environment (see the package doc).
type Options struct {
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string
	Insecure  bool // plain HTTP
	PathStyle bool
}

// Open parses rawURL and opens the store it names. For s3 it checks the
// bucket and credentials (see s3.New). getenv reads the environment; nil
// means os.Getenv.
func Open(ctx context.Context, rawURL string, opts Options, getenv func(string) string) (backup.ObjectStore, error) {
	t, err := parse(rawURL, opts, getenv)
	if err != nil {
		return nil, err
	}
	if t.dir != "" {
		return file.New(t.dir)
	}
	return s3.New(ctx, t.s3)
}

// parsed is what a URL resolves to: a directory or an S3 configuration.
type parsed struct {
	dir string
	s3  s3.Config
}

func unsupported(rawURL string) error {
	return fmt.Errorf("unsupported backup target %q: use %s", rawURL, Forms)
}

func parse(rawURL string, opts Options, getenv func(string) string) (parsed, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return parsed{}, unsupported(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL; keep it out in case it carries a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return parsed{}, fmt.Errorf("backup target: cannot parse the URL (%v); use %s", err, Forms)
	}
	if u.User != nil {
		return parsed{}, fmt.Errorf("backup target %s: credentials in the URL are not accepted (they would end up in logs); "+
			"set ENGRAM_S3_ACCESS_KEY_ID and ENGRAM_S3_SECRET_ACCESS_KEY instead", redacted(u))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return parsed{}, fmt.Errorf("backup target %q: query parameters and fragments are not supported; "+
			"S3 settings come from flags or ENGRAM_S3_* variables", rawURL)
	}
	switch strings.ToLower(scheme) {
	case "file":
		return parseFile(rawURL, u)
	case "s3":
		return parseS3(rawURL, u, opts, getenv)
	}
	return parsed{}, unsupported(rawURL)
}

// redacted prints a URL without its userinfo at all (url.Redacted keeps the
// user name, which for S3 would be the access key).
func redacted(u *url.URL) string {
	v := *u
	v.User = nil
	return v.String()
}

func parseFile(rawURL string, u *url.URL) (parsed, error) {
	if u.Host != "" && u.Host != "localhost" {
		return parsed{}, fmt.Errorf("backup target %q: a file URL needs an absolute path after three slashes (file:///var/backups/engram); "+
			"%q was read as a host name", rawURL, u.Host)
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return parsed{}, fmt.Errorf("backup target %q: the directory must be an absolute path, as in file:///var/backups/engram", rawURL)
	}
	return parsed{dir: filepath.Clean(u.Path)}, nil
}

func parseS3(rawURL string, u *url.URL, opts Options, getenv func(string) string) (parsed, error) {
	if u.Host == "" {
		return parsed{}, fmt.Errorf("backup target %q: no bucket; use s3://bucket[/prefix]", rawURL)
	}
	if u.Port() != "" {
		return parsed{}, fmt.Errorf("backup target %q: the part after s3:// is the bucket, not a server; "+
			"set the server with ENGRAM_S3_ENDPOINT (or its flag) and use s3://bucket[/prefix]", rawURL)
	}
	first := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	insecure, err := envBool(getenv, "ENGRAM_S3_INSECURE", opts.Insecure)
	if err != nil {
		return parsed{}, err
	}
	pathStyle, err := envBool(getenv, "ENGRAM_S3_PATH_STYLE", opts.PathStyle)
	if err != nil {
		return parsed{}, err
	}
	cfg := s3.Config{
		Endpoint:  first(opts.Endpoint, getenv("ENGRAM_S3_ENDPOINT")),
		Region:    first(opts.Region, getenv("ENGRAM_S3_REGION"), getenv("AWS_REGION")),
		Bucket:    u.Host,
		Prefix:    strings.Trim(u.Path, "/"),
		AccessKey: first(opts.AccessKey, getenv("ENGRAM_S3_ACCESS_KEY_ID"), getenv("AWS_ACCESS_KEY_ID")),
		SecretKey: first(opts.SecretKey, getenv("ENGRAM_S3_SECRET_ACCESS_KEY"), getenv("AWS_SECRET_ACCESS_KEY")),
		Secure:    !insecure,
		PathStyle: pathStyle,
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		missing := "ENGRAM_S3_ACCESS_KEY_ID (or AWS_ACCESS_KEY_ID)"
		if cfg.AccessKey != "" {
			missing = "ENGRAM_S3_SECRET_ACCESS_KEY (or AWS_SECRET_ACCESS_KEY)"
		}
		return parsed{}, fmt.Errorf("backup target %s: no S3 credentials: set %s, or pass them as flags", rawURL, missing)
	}
	return parsed{s3: cfg}, nil
}

// envBool returns set if the caller set the option, else the variable
// ("1", "true", "yes" / "0", "false", "no", or empty).
func envBool(getenv func(string) string, name string, set bool) (bool, error) {
	if set {
		return true, nil
	}
	v := strings.TrimSpace(getenv(name))
	switch strings.ToLower(v) {
	case "":
		return false, nil
	case "yes", "on":
		return true, nil
	case "no", "off":
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want 1 or 0", name, v)
	}
	return b, nil
}
