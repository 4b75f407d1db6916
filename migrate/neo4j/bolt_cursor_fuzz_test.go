package neo4j

import (
	"testing"
	"unicode/utf8"
)

// FuzzDecodeCursor: any string decodes or fails without a panic, and what
// decodes encodes back to the same cursor; any phase and element id
// round-trip.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(phaseNodes, "4:c0ffee:17"), "5:c0ffee:0")
	f.Add(EncodeCursor(phaseRels, "5:x:1"), "")
	f.Add("neo1.", "x")
	f.Add("neo1.!!", "x")
	f.Add("neo1.bg", "x")
	f.Add("pg1.AA", "x")
	f.Fuzz(func(t *testing.T, c, eid string) {
		if phase, e, err := DecodeCursor(c); err == nil {
			if (phase != phaseNodes && phase != phaseRels) || e == "" {
				t.Fatalf("%q decoded to %q %q", c, phase, e)
			}
			if again := EncodeCursor(phase, e); again != c {
				t.Fatalf("%q decoded to %q %q, which encodes to %q", c, phase, e, again)
			}
		}
		if eid == "" || !utf8.ValidString(eid) {
			return
		}
		for _, p := range []byte{phaseNodes, phaseRels} {
			phase, e, err := DecodeCursor(EncodeCursor(p, eid))
			if err != nil || phase != p || e != eid {
				t.Fatalf("%q %q: decoded %q %q %v", p, eid, phase, e, err)
			}
		}
	})
}
