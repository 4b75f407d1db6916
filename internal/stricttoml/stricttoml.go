// Package stricttoml decodes TOML files in which an unknown key is an
// error, and reports every problem the decoder found with its position, so
// each file format (configuration, placement, load-test scenario, migration
// mapping) words its errors its own way from the same facts.
package stricttoml

import (
	"bytes"
	"errors"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Problem is one thing wrong with a TOML document.
type Problem struct {
	Key       string // dotted key; "" for a syntax error outside any key
	Line, Col int    // 1-based; 0 when the decoder gave no position
	Unknown   bool   // the key is not part of the format
	Msg       string // the decoder's description (for anything but Unknown)
}

// Decode decodes data into v, refusing keys v has no field for. It returns
// nil or every problem found: all unknown keys at once, or the one decoding
// error.
func Decode(data []byte, v any) []Problem {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) {
		ps := make([]Problem, 0, len(sm.Errors))
		for i := range sm.Errors {
			e := &sm.Errors[i]
			row, col := e.Position()
			ps = append(ps, Problem{Key: strings.Join(e.Key(), "."), Line: row, Col: col, Unknown: true})
		}
		return ps
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return []Problem{{Key: strings.Join(de.Key(), "."), Line: row, Col: col, Msg: de.Error()}}
	}
	return []Problem{{Msg: err.Error()}}
}
