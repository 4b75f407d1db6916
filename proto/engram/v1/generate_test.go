package engramv1

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// protocVersion is the generated files' line naming the protoc that ran,
// which differs between machines without changing the code.
var protocVersion = regexp.MustCompile(`(?m)^//\s+protoc\s+.*$`)

// TestGeneratedCodeUpToDate regenerates the Go code from the .proto files
// into a temporary directory and compares it with the committed files, so
// a .proto edited without `make proto` fails here.
func TestGeneratedCodeUpToDate(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Skip("protoc not installed (apt-get install protobuf-compiler; scripts/test.sh installs it)")
	}
	if testing.Short() {
		t.Skip("regeneration runs go run of the plugins: not in -short")
	}
	out := t.TempDir()
	cmd := exec.Command("../../../scripts/protogen.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/protogen.sh: %v\n%s", err, b)
	}
	for _, f := range []string{"memory.pb.go", "service.pb.go", "service_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(out, "engram", "v1", f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(protocVersion.ReplaceAll(got, nil), protocVersion.ReplaceAll(want, nil)) {
			t.Errorf("%s is not what the .proto files generate: run make proto and commit the result", f)
		}
	}
}
