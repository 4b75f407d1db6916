package backup

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	// MaxKeyLen is the longest object key accepted, in bytes (S3's limit).
	MaxKeyLen = 1024
	// MaxKeySegmentLen is NAME_MAX on the common Linux filesystems.
	MaxKeySegmentLen = 255
)

// CheckKey reports whether key is acceptable as an object key, and why not.
// Every ObjectStore in this module applies the same rules (the conformance
// suite checks it), so a layout that works on one target works on all.
func CheckKey(key string) error {
	if key == "" {
		return errors.New("invalid key: empty")
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("invalid key %.40q…: %d bytes, the limit is %d", key, len(key), MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("invalid key %q: not valid UTF-8", key)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("invalid key %q: backslashes and NUL bytes are not allowed", key)
	}
	if key[0] == '/' {
		return fmt.Errorf("invalid key %q: must be relative (no leading slash)", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("invalid key %q: empty path segment (double or trailing slash)", key)
		case seg == "." || seg == "..":
			return fmt.Errorf("invalid key %q: %q segments are not allowed", key, seg)
		case len(seg) > MaxKeySegmentLen:
			return fmt.Errorf("invalid key %.40q…: a segment is longer than %d bytes", key, MaxKeySegmentLen)
		}
	}
	return nil
}
