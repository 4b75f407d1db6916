package postgres

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeCursor: any string decodes or fails without a panic, and what
// decodes encodes back to the same cursor; any table and key round-trip.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor("users", []string{"17"}), "likes", "8\x001")
	f.Add(EncodeCursor("posts.posts_parent_id_fkey", []string{""}), "a", "")
	f.Add("pg1.", "t", "k")
	f.Add("pg1.!!", "t", "k")
	f.Add("v1;x;y", "", "")
	f.Fuzz(func(t *testing.T, c, object, key string) {
		if obj, k, err := DecodeCursor(c); err == nil {
			if obj == "" || len(k) == 0 {
				t.Fatalf("%q decoded to %q %q", c, obj, k)
			}
			if again := EncodeCursor(obj, k); again != c {
				t.Fatalf("%q decoded to %q %q, which encodes to %q", c, obj, k, again)
			}
		}
		if object == "" || strings.ContainsRune(object, 0) || !utf8.ValidString(object) || !utf8.ValidString(key) {
			return
		}
		parts := strings.Split(key, "\x00")
		obj, k, err := DecodeCursor(EncodeCursor(object, parts))
		if err != nil || obj != object || !slices.Equal(k, parts) {
			t.Fatalf("%q %q: decoded %q %q %v", object, parts, obj, k, err)
		}
	})
}
