package runbooks

import "testing"

func TestListGetSection(t *testing.T) {
	all := List()
	if len(all) == 0 {
		t.Fatal("no runbooks embedded")
	}
	rb, err := Get("serving")
	if err != nil {
		t.Fatal(err)
	}
	if rb.Title != "Serving engram-ops" {
		t.Fatalf("title %q", rb.Title)
	}
	s, ok := rb.Section("Stop")
	if !ok || s == "" || len(s) > len(rb.Body)/2 {
		t.Fatalf("section: %v %q", ok, s)
	}
	hs := rb.Headings()
	if len(hs) < 3 || hs[0] == rb.Title {
		t.Fatalf("headings %q", hs)
	}
	for _, h := range hs {
		if _, ok := rb.Section(h); !ok {
			t.Errorf("heading %q is not a section", h)
		}
	}
	if _, err := Get("nope"); err == nil {
		t.Fatal("unknown runbook found")
	}
	for _, r := range all {
		if r.Title == r.Name {
			t.Errorf("runbook %s has no '# ' title", r.Name)
		}
	}
}
