package stricttoml

import (
	"reflect"
	"testing"
)

type doc struct {
	Name  string `toml:"name"`
	Inner struct {
		Size int `toml:"size"`
	} `toml:"inner"`
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name string
		src  string
		want []Problem
	}{
		{"valid", "name = \"a\"\n[inner]\nsize = 3\n", nil},
		{"unknown keys, all of them", "nme = \"a\"\n[inner]\nsise = 3\n", []Problem{
			{Key: "nme", Line: 1, Col: 1, Unknown: true},
			{Key: "inner.sise", Line: 3, Col: 1, Unknown: true},
		}},
	} {
		var d doc
		if got := Decode([]byte(c.src), &d); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	var d doc
	ps := Decode([]byte("[inner]\nsize = \"three\"\n"), &d)
	if len(ps) != 1 || ps[0].Unknown || ps[0].Key != "inner.size" || ps[0].Line != 2 || ps[0].Msg == "" {
		t.Errorf("wrong type: %+v, want one located problem at inner.size, line 2", ps)
	}
	ps = Decode([]byte("name = \n"), &d)
	if len(ps) != 1 || ps[0].Unknown || ps[0].Line != 1 || ps[0].Msg == "" {
		t.Errorf("syntax error: %+v, want one located problem on line 1", ps)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name = \"a\"\n[inner]\nsize = 3\n"))
	f.Add([]byte("nme = 1\n[inner]\nsise = [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		for _, p := range Decode(data, &d) {
			if !p.Unknown && p.Msg == "" {
				t.Fatalf("problem without a description: %+v", p)
			}
		}
	})
}
