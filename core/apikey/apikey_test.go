package apikey_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/internal/testsupport"
)

var ctx = context.Background()

func reason(err error) apikey.Reason {
	var e *apikey.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func TestTokenFormat(t *testing.T) {
	s, err := apikey.Open(testsupport.OpenEngine(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	tok, k, err := s.Create(ctx, apikey.Spec{Name: "ci", Permissions: []apikey.Permission{apikey.Read}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, apikey.Prefix+k.ID+"_") || len(tok) != apikey.TokenLen || !apikey.Valid(tok) {
		t.Fatalf("token %q (key %s) is not engk_<id>_<secret><checksum>", tok, k.ID)
	}
	if strings.Contains(k.Hash, tok[len(apikey.Prefix)+13:len(tok)-6]) {
		t.Fatal("the record holds the secret")
	}
	// Every single-character change is caught by the checksum or the
	// alphabet, offline.
	for i := len(apikey.Prefix); i < len(tok); i++ {
		if tok[i] == '_' {
			continue
		}
		b := []byte(tok)
		b[i] = map[bool]byte{true: 'a', false: 'b'}[b[i] != 'a']
		if apikey.Valid(string(b)) {
			t.Fatalf("changed at %d, still valid: %s", i, b)
		}
	}
	for _, bad := range []string{"", "engk_", "Bearer " + tok, tok + "x", tok[:len(tok)-1], strings.Replace(tok, "engk_", "engx_", 1),
		strings.ToUpper(tok[:5]) + tok[5:]} {
		if _, _, err := apikey.Parse(bad); reason(err) != apikey.Malformed {
			t.Errorf("Parse(%q) = %v, want malformed", bad, err)
		}
	}
}

func TestVerifyRevokeRotateAndReopen(t *testing.T) {
	dir := t.TempDir()
	eng := testsupport.OpenEngine(t, dir)
	s, err := apikey.Open(eng)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	rw := []apikey.Permission{apikey.Write}
	tok, k, err := s.Create(ctx, apikey.Spec{Name: "app", Permissions: rw, Spaces: []string{"alpha"}, TTL: 90 * 24 * time.Hour, Rate: 5})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(tok)
	if err != nil || got.ID != k.ID || !got.Allows(apikey.Read) || got.Allows(apikey.Admin) || !got.InSpace("alpha") || got.InSpace("bravo") {
		t.Fatalf("verify: %+v %v", got, err)
	}
	// Same id, another secret (with a valid checksum): wrong_secret.
	other, _, _ := s.Create(ctx, apikey.Spec{Name: "other", Permissions: rw})
	forged := tok[:len(apikey.Prefix)+13] + other[len(apikey.Prefix)+13:len(other)-6]
	forged += apikey.Checksum(forged)
	if _, err := s.Verify(forged); reason(err) != apikey.WrongSecret {
		t.Fatalf("forged secret: %v", err)
	}
	unknown := apikey.Prefix + "ZZZZZZZZZZZZ" + other[len(apikey.Prefix)+12:len(other)-6]
	if _, err := s.Verify(unknown + apikey.Checksum(unknown)); reason(err) != apikey.UnknownKey {
		t.Fatalf("unknown id: %v", err)
	}

	// Rotation: both work during the overlap, then only the new one.
	newTok, nk, err := s.Rotate(ctx, k.ID, 24*time.Hour)
	if err != nil || nk.RotatedFrom != k.ID || nk.Name != "app" || nk.Rate != 5 || len(nk.Spaces) != 1 {
		t.Fatalf("rotate: %+v %v", nk, err)
	}
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("old key inside the overlap: %v", err)
	}
	now = now.Add(25 * time.Hour)
	if _, err := s.Verify(tok); reason(err) != apikey.Expired {
		t.Fatalf("old key after the overlap: %v", err)
	}
	if _, err := s.Verify(newTok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, nk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(newTok); reason(err) != apikey.Revoked {
		t.Fatalf("revoked: %v", err)
	}
	if _, err := s.Revoke(ctx, "nope"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if _, _, err := s.Create(ctx, apikey.Spec{Name: "x", Permissions: []apikey.Permission{apikey.Admin}, Spaces: []string{"alpha"}}); err == nil {
		t.Fatal("an admin key limited to spaces was created")
	}

	// Keys are engine records: they survive a reopen.
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	eng2 := testsupport.OpenEngine(t, dir)
	s2, err := apikey.Open(eng2)
	if err != nil {
		t.Fatal(err)
	}
	s2.SetClock(func() time.Time { return now })
	if s2.Len() != 3 {
		t.Fatalf("reopened store has %d keys, want 3", s2.Len())
	}
	if _, err := s2.Verify(newTok); reason(err) != apikey.Revoked {
		t.Fatalf("revocation lost on reopen: %v", err)
	}
	if _, err := s2.Verify(other); err != nil {
		t.Fatalf("key lost on reopen: %v", err)
	}
}

// A damaged key record is a refusal to open, never an open door.
func TestDamagedRecordRefusesToOpen(t *testing.T) {
	eng := testsupport.OpenEngine(t, t.TempDir())
	if _, err := eng.PutSystem(ctx, "apikey/x", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := apikey.Open(eng); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("open: %v", err)
	}
}

func TestParseTTLAndRate(t *testing.T) {
	if d, err := apikey.ParseTTL("90d"); err != nil || d != 90*24*time.Hour {
		t.Fatal(d, err)
	}
	if r, err := apikey.ParseRate("600/m"); err != nil || r != 10 {
		t.Fatal(r, err)
	}
	for _, bad := range []string{"0d", "-1h", "x", ""} {
		if _, err := apikey.ParseTTL(bad); err == nil {
			t.Errorf("ParseTTL(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"100", "0/s", "10/d", "x/s", "NaN/s"} {
		if _, err := apikey.ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts re-assembles into the
// same token.
func FuzzParse(f *testing.F) {
	f.Add("engk_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB000000")
	f.Add("engk_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := apikey.Parse(s)
		if err != nil {
			return
		}
		body := apikey.Prefix + id + "_" + secret
		if body+apikey.Checksum(body) != s {
			t.Fatalf("accepted %q but it re-assembles differently", s)
		}
	})
}
