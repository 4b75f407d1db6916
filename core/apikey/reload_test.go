package apikey_test

import (
	"context"
	"testing"

	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/internal/testsupport"
)

// A store sees keys written to its engine by others (a follower applying
// its primary's changes) once reloaded: new keys verify, revoked ones are
// refused.
func TestReloadSeesKeysWrittenElsewhere(t *testing.T) {
	ctx := context.Background()
	eng := testsupport.OpenEngine(t, t.TempDir())
	reader, err := apikey.Open(eng)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := apikey.Open(eng)
	if err != nil {
		t.Fatal(err)
	}
	token, k, err := writer.Create(ctx, apikey.Spec{Name: "app", Permissions: []apikey.Permission{apikey.Read}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Verify(token); err == nil {
		t.Fatal("a key verified before the reload that brings it")
	}
	if err := reader.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Verify(token); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	if _, err := writer.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := reader.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Verify(token); err == nil {
		t.Fatal("a revoked key still verifies after the reload")
	}
}
