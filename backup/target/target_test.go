package target

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/engram-ops/engram-ops/backup/file"
	"github.com/engram-ops/engram-ops/backup/s3"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var creds = map[string]string{"ENGRAM_S3_ACCESS_KEY_ID": "AKID", "ENGRAM_S3_SECRET_ACCESS_KEY": "sekrit"}

func TestParseFile(t *testing.T) {
	for in, want := range map[string]string{
		"file:///var/backups/engram":    "/var/backups/engram",
		"file:///var/backups/engram/":   "/var/backups/engram",
		"file://localhost/srv/b":        "/srv/b",
		"file:///tmp/with%20space/x/..": "/tmp/with space",
	} {
		got, err := parse(in, Options{}, env(nil))
		if err != nil || got.dir != want {
			t.Errorf("parse(%q) = %+v, %v; want dir %q", in, got, err, want)
		}
	}
}

func TestParseS3(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  string
		opts Options
		env  map[string]string
		want s3.Config
	}{
		{
			name: "defaults: AWS endpoint, TLS, virtual-host style",
			url:  "s3://my-bucket/engram/prod",
			env:  creds,
			want: s3.Config{Bucket: "my-bucket", Prefix: "engram/prod", AccessKey: "AKID", SecretKey: "sekrit", Secure: true},
		},
		{
			name: "everything from ENGRAM_S3_*",
			url:  "s3://b-1/",
			env: map[string]string{
				"ENGRAM_S3_ENDPOINT": "127.0.0.1:7070", "ENGRAM_S3_REGION": "eu-west-3",
				"ENGRAM_S3_ACCESS_KEY_ID": "K", "ENGRAM_S3_SECRET_ACCESS_KEY": "S",
				"ENGRAM_S3_INSECURE": "1", "ENGRAM_S3_PATH_STYLE": "true",
				"AWS_ACCESS_KEY_ID": "ignored", "AWS_SECRET_ACCESS_KEY": "ignored", "AWS_REGION": "ignored",
			},
			want: s3.Config{Endpoint: "127.0.0.1:7070", Region: "eu-west-3", Bucket: "b-1", AccessKey: "K", SecretKey: "S", PathStyle: true},
		},
		{
			name: "AWS_* fallbacks",
			url:  "s3://bkt",
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_REGION": "us-west-2"},
			want: s3.Config{Region: "us-west-2", Bucket: "bkt", AccessKey: "AK", SecretKey: "SK", Secure: true},
		},
		{
			name: "options beat the environment",
			url:  "s3://bkt/p",
			opts: Options{Endpoint: "minio:9000", Region: "r1", AccessKey: "OK", SecretKey: "OS", Insecure: true, PathStyle: true},
			env:  map[string]string{"ENGRAM_S3_ENDPOINT": "other:1", "ENGRAM_S3_ACCESS_KEY_ID": "EK", "ENGRAM_S3_SECRET_ACCESS_KEY": "ES", "ENGRAM_S3_INSECURE": "0"},
			want: s3.Config{Endpoint: "minio:9000", Region: "r1", Bucket: "bkt", Prefix: "p", AccessKey: "OK", SecretKey: "OS", PathStyle: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.url, tc.opts, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if got.dir != "" || got.s3 != tc.want {
				t.Fatalf("parse(%q) =\n %+v\nwant\n %+v", tc.url, got.s3, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		env  map[string]string
		want string
	}{
		{"/var/backups", creds, Forms},
		{"backups", creds, Forms},
		{"gs://bucket/x", creds, Forms},
		{"http://host/x", creds, Forms},
		{"file://relative/dir", nil, "absolute path after three slashes"},
		{"file://", nil, "absolute path"},
		{"s3://", creds, "no bucket"},
		{"s3://127.0.0.1:7070/bucket", creds, "ENGRAM_S3_ENDPOINT"},
		{"s3://bucket/p?region=x", creds, "query parameters"},
		{"s3://bucket", nil, "ENGRAM_S3_ACCESS_KEY_ID"},
		{"s3://bucket", map[string]string{"AWS_ACCESS_KEY_ID": "x"}, "ENGRAM_S3_SECRET_ACCESS_KEY"},
		{"s3://bucket", map[string]string{"ENGRAM_S3_ACCESS_KEY_ID": "k", "ENGRAM_S3_SECRET_ACCESS_KEY": "s", "ENGRAM_S3_INSECURE": "maybe"}, "ENGRAM_S3_INSECURE"},
	} {
		_, err := parse(tc.url, Options{}, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse(%q) = %v, want an error containing %q", tc.url, err, tc.want)
		}
	}
}

// TestNoSecretsInErrors: a URL carrying credentials is refused, and the
// refusal does not repeat them.
func TestNoSecretsInErrors(t *testing.T) {
	for _, u := range []string{"s3://AKIAXXXX:topsecret@bucket/p", "file://user:topsecret@/x", "s3://AKIAXXXX:top%zzsecret@bucket"} {
		_, err := parse(u, Options{}, env(creds))
		if err == nil {
			t.Fatalf("parse(%q) accepted credentials in the URL", u)
		}
		if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "AKIAXXXX") {
			t.Fatalf("error repeats the credentials: %v", err)
		}
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(t.Context(), "file://"+filepath.ToSlash(dir), Options{}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*file.Store); !ok {
		t.Fatalf("Open(file://…) returned %T", st)
	}
	if err := st.Put(t.Context(), "x/y", strings.NewReader("hi"), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x", "y")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), "file://"+filepath.ToSlash(dir)+"/missing", Options{}, env(nil)); err == nil || !strings.Contains(err.Error(), "create it first") {
		t.Fatalf("Open of a missing directory = %v", err)
	}
}

// TestOpenS3 opens the test server (scripts/test.sh) by URL, configured the
// way an operator would: through ENGRAM_S3_* variables.
func TestOpenS3(t *testing.T) {
	ep := os.Getenv("ENGRAM_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("ENGRAM_TEST_S3_ENDPOINT is unset: no S3 server to test against (scripts/test.sh starts one)")
	}
	vars := map[string]string{
		"ENGRAM_S3_ENDPOINT":          "http://" + ep,
		"ENGRAM_S3_REGION":            "us-east-1",
		"ENGRAM_S3_ACCESS_KEY_ID":     os.Getenv("ENGRAM_TEST_S3_ACCESS_KEY"),
		"ENGRAM_S3_SECRET_ACCESS_KEY": os.Getenv("ENGRAM_TEST_S3_SECRET_KEY"),
		"ENGRAM_S3_PATH_STYLE":        "1",
	}
	bucket := os.Getenv("ENGRAM_TEST_S3_BUCKET")
	st, err := Open(t.Context(), "s3://"+bucket+"/target-test", Options{}, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://" + bucket + "/target-test (http://" + ep + ")"; st.String() != want {
		t.Fatalf("String() = %q, want %q", st.String(), want)
	}
	if _, err := st.List(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), "s3://no-such-bucket-engram/x", Options{}, env(vars))
	if err == nil || !strings.Contains(err.Error(), "create it first") {
		t.Fatalf("Open of a missing bucket = %v", err)
	}
}
