// Package apijson is how the wire types of package api are written as JSON,
// by the server for its responses and by the client for its requests, so
// both sides write the same bytes.
package apijson

import (
	"bytes"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// EncodeOptions write what encoding/json writes: HTML- and JS-safe
// strings, invalid UTF-8 as U+FFFD, nil slices and maps as null, map keys
// sorted. (omitempty is only used on fields whose empty value v2 also
// omits; numbers and booleans use omitzero.)
var EncodeOptions = json.JoinOptions(
	jsontext.EscapeForHTML(true),
	jsontext.EscapeForJS(true),
	jsontext.AllowInvalidUTF8(true),
	json.FormatNilSliceAsNull(true),
	json.FormatNilMapAsNull(true),
	json.Deterministic(true),
)

// Encode appends v's JSON and a newline to buf, as encoding/json's Encoder
// writes it.
func Encode(buf *bytes.Buffer, v any) error {
	if err := json.MarshalWrite(buf, v, EncodeOptions); err != nil {
		return err
	}
	buf.WriteByte('\n')
	return nil
}
