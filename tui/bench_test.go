package tui

import (
	"bytes"
	"fmt"
	"io"

	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serverText is a /metrics answer shaped like the server's with spaces
// spaces, every operation used in every space (the server's 13 buckets),
// plus the engine and process families of a live scrape. n varies the
// counts so successive scrapes differ.
func serverText(spaces, n int) []byte {
	var b bytes.Buffer
	b.Write(fixture{spaces: spaces - 1}.text())
	les := []string{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"}
	b.WriteString("# TYPE engram_memory_operation_duration_seconds histogram\n")
	for s := 0; s < spaces-1; s++ {
		for _, op := range Operations {
			for i, le := range les {
				fmt.Fprintf(&b, "engram_memory_operation_duration_seconds_bucket{operation=%q,space=\"tenant-%02d\",le=%q} %d\n", op, s, le, (i+1)*n*(s+1))
			}
			fmt.Fprintf(&b, "engram_memory_operation_duration_seconds_sum{operation=%q,space=\"tenant-%02d\"} %g\n", op, s, float64(n))
			fmt.Fprintf(&b, "engram_memory_operation_duration_seconds_count{operation=%q,space=\"tenant-%02d\"} %d\n", op, s, len(les)*n*(s+1))
		}
	}
	// go_* and process_* as a live server exports them (about 60 lines).
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "# TYPE go_metric_%d gauge\ngo_metric_%d %d\n", i, i, n*i)
	}
	return mergeFamilies(b.Bytes())
}

// mergeFamilies puts the extra histogram series next to the fixture's:
// the text format wants a family's lines together.
func mergeFamilies(b []byte) []byte {
	p := expfmt.NewTextParser(model.UTF8Validation)
	lines := strings.Split(string(b), "\n")
	var head, hist, tail []string
	seen := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "# TYPE engram_memory_operation_duration_seconds"):
			seen = true
		case strings.HasPrefix(l, "engram_memory_operation_duration_seconds"):
			hist = append(hist, l)
		case !seen:
			head = append(head, l)
		default:
			tail = append(tail, l)
		}
	}
	out := strings.Join(head, "\n") + "\n# TYPE engram_memory_operation_duration_seconds histogram\n" + strings.Join(hist, "\n") + "\n" + strings.Join(tail, "\n")
	if _, err := p.TextToMetricFamilies(strings.NewReader(out)); err != nil {
		panic(err)
	}
	return []byte(out)
}

// BenchmarkScrapeRender is one poll cycle of a server with 50 spaces:
// parse /metrics, compute the snapshot and alerts, draw the board at
// 160×50, with the answer in text and in delimited protobuf (what the
// board asks for). parse_only (parsing the same answer) is each format's
// reference.
func BenchmarkScrapeRender(b *testing.B) {
	text := [2][]byte{serverText(50, 1), serverText(50, 2)}
	formats := []struct {
		name   string
		bodies [2]Exposition
	}{
		{"text", [2]Exposition{{Body: text[0]}, {Body: text[1]}}},
		{"protobuf", [2]Exposition{
			{Body: protoOf(text[0]), ContentType: protoContentType},
			{Body: protoOf(text[1]), ContentType: protoContentType},
		}},
	}
	for _, f := range formats {
		b.Logf("%s /metrics of %d bytes", f.name, len(f.bodies[0].Body))
		b.Run(f.name+"/parse_only", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := parseMetrics(f.bodies[i%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.name+"/scrape_render", func(b *testing.B) {
			src := &fakeSource{health: healthy()}
			s := NewScraper(src, nil, mustRules(b))
			m := New(staticPoller{}, Config{Styles: NewStyles(io.Discard, false)})
			m.width, m.height = 160, 50
			at := t0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				at = at.Add(2 * time.Second)
				snap := s.Observe(at, src.health, nil, f.bodies[i%2], nil)
				if len(snap.Spaces) != 50 {
					b.Fatalf("%d spaces", len(snap.Spaces))
				}
				m.Update(snapshotMsg{snap})
				if m.View() == "" {
					b.Fatal("empty view")
				}
			}
		})
	}
}
