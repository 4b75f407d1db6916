package grpcserver

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	engramv1 "github.com/engram-ops/engram-ops/proto/engram/v1"
)

var update = flag.Bool("update", false, "rewrite the generated part of docs/grpc.md")

const (
	grpcDoc   = "../../docs/grpc.md"
	fieldsBeg = "<!-- fields:begin (generated: go test ./ops/grpcserver -run TestGRPCDocFields -update) -->\n"
	fieldsEnd = "<!-- fields:end -->\n"
)

// fieldTable renders every message of proto/engram/v1 with each field's
// number beside Engram's. The numbers are Engram's by construction (the
// .proto files copy them); the table is generated from the compiled
// descriptors, so it cannot drift from what the server decodes.
func fieldTable() string {
	var b strings.Builder
	b.WriteString("| message | field | type | Engram's number | ours |\n|---|---|---|---|---|\n")
	for _, fd := range []protoreflect.FileDescriptor{engramv1.File_engram_v1_memory_proto, engramv1.File_engram_v1_service_proto} {
		var walk func(ms protoreflect.MessageDescriptors, prefix string)
		walk = func(ms protoreflect.MessageDescriptors, prefix string) {
			for i := range ms.Len() {
				m := ms.Get(i)
				if m.IsMapEntry() {
					continue
				}
				name := prefix + string(m.Name())
				if m.Fields().Len() == 0 {
					fmt.Fprintf(&b, "| `%s` | (none) | | | |\n", name)
				}
				for j := range m.Fields().Len() {
					f := m.Fields().Get(j)
					fmt.Fprintf(&b, "| `%s` | `%s` | %s | %d | %d |\n", name, f.Name(), fieldType(f), f.Number(), f.Number())
				}
				walk(m.Messages(), name+".")
			}
		}
		walk(fd.Messages(), "")
	}
	return b.String()
}

func fieldType(f protoreflect.FieldDescriptor) string {
	if f.IsMap() {
		return "map<" + fieldType(f.MapKey()) + ", " + fieldType(f.MapValue()) + ">"
	}
	t := f.Kind().String()
	switch f.Kind() {
	case protoreflect.MessageKind:
		t = string(f.Message().FullName())
	case protoreflect.EnumKind:
		t = string(f.Enum().FullName())
	}
	if f.IsList() {
		t = "repeated " + t
	}
	if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
		t += " (oneof " + string(o.Name()) + ")"
	}
	return t
}

// TestGRPCDocFields: docs/grpc.md's field table is what the descriptors
// say; -update regenerates it.
func TestGRPCDocFields(t *testing.T) {
	raw, err := os.ReadFile(grpcDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, fieldsBeg), strings.Index(doc, fieldsEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", grpcDoc, fieldsBeg, fieldsEnd)
	}
	want := doc[:i+len(fieldsBeg)] + fieldTable() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(grpcDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's field table is stale: go test ./ops/grpcserver -run TestGRPCDocFields -update", grpcDoc)
}
