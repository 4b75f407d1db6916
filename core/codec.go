package core

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
	"unsafe"
)

// On-disk encodings. Every record starts with a version byte; decoders
// bounds-check every length against the remaining input and never trust a
// count, because these bytes also arrive from backups and change-log segments.

const (
	recordVersion = 1
	changeVersion = 1
	vecFloat32    = 1
	vecInt8       = 2
)

var errCorrupt = errors.New("corrupt record")

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)       { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i64(v int64)      { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) f64(v float64)    { e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.i64(math.MinInt64)
		return
	}
	e.i64(t.UnixNano())
}
func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}
func (e *encoder) f32s(v []float32) {
	e.uvarint(uint64(len(v)))
	for _, f := range v {
		e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(f))
	}
}

type decoder struct {
	b   []byte
	err error
	// alias makes strings share b's memory instead of copying it; only
	// for bytes that are never written again (the hot tier's chunks).
	alias bool
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) u8() uint8 {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i64() int64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return int64(v)
}

func (d *decoder) f64() float64 { return math.Float64frombits(uint64(d.i64())) }

func (d *decoder) time() time.Time {
	n := d.i64()
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// count reads a length and checks that at least min bytes per element remain.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)/max(min, 1)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count(1)
	var s string
	switch {
	case n == 0:
	case d.alias:
		s = unsafe.String(&d.b[0], n)
	default:
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *decoder) f32s() []float32 {
	n := d.count(4)
	if n == 0 {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
	}
	d.b = d.b[4*n:]
	return out
}

// record is a memory as stored under its 'M' key: the Memory fields (the
// vector lives under 'V') plus the slot number used by the ANN index.
type record struct {
	Memory
	slot uint32
}

func encodeMemoryFields(e *encoder, m *Memory) {
	e.str(m.Content)
	e.f64(m.Confidence)
	e.str(string(m.Type))
	e.strs(m.Tags)
	e.uvarint(uint64(len(m.Metadata)))
	for _, k := range sortedKeys(m.Metadata) {
		e.str(k)
		e.str(m.Metadata[k])
	}
	e.time(m.ObservedAt)
	e.time(m.StoredAt)
	e.time(m.LastAccess)
	e.uvarint(m.AccessCount)
	e.i64(int64(m.Stability))
	e.u8(uint8(m.Tier))
	e.uvarint(m.Seq)
	if ep := m.Episode; ep != nil {
		e.u8(1)
		e.time(ep.When)
		e.str(ep.What)
		e.str(ep.Where)
		e.strs(ep.Who)
		e.str(ep.Why)
		e.str(ep.How)
		encodeOptFloat(e, ep.EmotionalValence)
		encodeOptFloat(e, ep.Importance)
	} else {
		e.u8(0)
	}
}

func encodeOptFloat(e *encoder, f *float64) {
	if f == nil {
		e.u8(0)
		return
	}
	e.u8(1)
	e.f64(*f)
}

func decodeOptFloat(d *decoder) *float64 {
	if d.u8() == 0 {
		return nil
	}
	v := d.f64()
	return &v
}

func decodeMemoryFields(d *decoder, m *Memory) {
	m.Content = d.str()
	m.Confidence = d.f64()
	m.Type = MemoryType(d.str())
	m.Tags = d.strs()
	if n := d.count(2); n > 0 {
		m.Metadata = make(map[string]string, n)
		for i := 0; i < n; i++ {
			k := d.str()
			m.Metadata[k] = d.str()
		}
	}
	m.ObservedAt = d.time()
	m.StoredAt = d.time()
	m.LastAccess = d.time()
	m.AccessCount = d.uvarint()
	m.Stability = time.Duration(d.i64())
	m.Tier = Tier(d.u8())
	m.Seq = d.uvarint()
	switch d.u8() {
	case 0:
	case 1:
		ep := &Episode{}
		ep.When = d.time()
		ep.What = d.str()
		ep.Where = d.str()
		ep.Who = d.strs()
		ep.Why = d.str()
		ep.How = d.str()
		ep.EmotionalValence = decodeOptFloat(d)
		ep.Importance = decodeOptFloat(d)
		m.Episode = ep
	default:
		d.fail()
	}
	if m.Tier >= numTiers {
		d.fail()
	}
}

func encodeRecord(r *record) []byte {
	return appendRecord(make([]byte, 0, 64+len(r.Content)), r)
}

// appendRecord appends r's encoding to dst.
func appendRecord(dst []byte, r *record) []byte {
	e := encoder{b: dst}
	e.u8(recordVersion)
	e.uvarint(uint64(r.slot))
	encodeMemoryFields(&e, &r.Memory)
	return e.b
}

// decodeRecord decodes an 'M' value; space and id come from the key.
func decodeRecord(b []byte, space, id string) (*record, error) {
	r := &record{}
	if err := decodeRecordInto(b, space, id, r, false); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeRecordInto decodes an 'M' value into r, overwriting all of it; with
// alias its strings share b's memory (see decoder.alias).
func decodeRecordInto(b []byte, space, id string, r *record, alias bool) error {
	d := decoder{b: b, alias: alias}
	if v := d.u8(); v != recordVersion {
		if d.err == nil {
			return &Error{Kind: KindInternal, Code: "UNSUPPORTED_FORMAT", Message: "memory record version " + itoa(int(v)) + " is newer than this binary understands"}
		}
		return errCorrupt
	}
	*r = record{}
	slot := d.uvarint()
	if slot > math.MaxUint32 {
		d.fail()
	}
	r.slot = uint32(slot)
	r.Space, r.ID = space, id
	decodeMemoryFields(&d, &r.Memory)
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return errCorrupt
	}
	return nil
}

func encodeVector(v []float32) []byte {
	e := encoder{b: make([]byte, 0, 2+4*len(v)+4)}
	e.u8(vecFloat32)
	e.f32s(v)
	return e.b
}

func encodeQuantized(q []int8, scale float32) []byte {
	e := encoder{b: make([]byte, 0, 8+len(q))}
	e.u8(vecInt8)
	e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(scale))
	e.uvarint(uint64(len(q)))
	for _, x := range q {
		e.b = append(e.b, byte(x))
	}
	return e.b
}

// storedVector is a decoded 'V' value: full precision or quantised.
type storedVector struct {
	f32   []float32
	q     []int8
	scale float32
}

func (s storedVector) dim() int {
	if s.f32 != nil {
		return len(s.f32)
	}
	return len(s.q)
}

func decodeVector(b []byte) (storedVector, error) {
	d := decoder{b: b}
	var out storedVector
	switch d.u8() {
	case vecFloat32:
		out.f32 = d.f32s()
	case vecInt8:
		if len(d.b) < 4 {
			return out, errCorrupt
		}
		out.scale = math.Float32frombits(binary.LittleEndian.Uint32(d.b))
		d.b = d.b[4:]
		n := d.count(1)
		out.q = make([]int8, n)
		for i := range out.q {
			out.q[i] = int8(d.b[i])
		}
		d.b = d.b[n:]
	default:
		d.fail()
	}
	if d.err != nil || len(d.b) != 0 {
		return storedVector{}, errCorrupt
	}
	return out, nil
}

// EncodeChange encodes a change-log entry. Backup segments carry these bytes.
func EncodeChange(c *Change) []byte {
	e := encoder{b: make([]byte, 0, 128)}
	e.u8(changeVersion)
	e.uvarint(c.Seq)
	e.time(c.Time)
	e.u8(uint8(c.Op))
	e.str(c.Space)
	switch c.Op {
	case OpPutMemory:
		m := *c.Memory
		m.Seq = c.Seq // the version a memory carries is the change that wrote it
		e.str(m.ID)
		encodeMemoryFields(&e, &m)
		e.f32s(m.Embedding)
	case OpDeleteMemory:
		e.str(c.ID)
	case OpPutAssociation:
		a := c.Association
		e.str(a.From)
		e.str(a.To)
		e.f64(a.Weight)
		e.str(a.Kind)
	case OpCreateSpace:
		s := c.SpaceInfo
		e.str(s.Name)
		e.uvarint(uint64(s.Dimension))
		e.str(s.Embedder)
		e.str(s.Fingerprint)
		e.time(s.CreatedAt)
	case OpSetCursor:
		e.str(c.Cursor.Source)
		e.str(c.Cursor.Value)
	case OpSetSystem:
		e.str(c.System.Key)
		if c.System.Value == nil {
			e.u8(0)
		} else {
			e.u8(1)
			e.str(string(c.System.Value))
		}
	case OpTouch:
		e.uvarint(uint64(len(c.Touches)))
		for _, t := range c.Touches {
			e.str(t.ID)
			e.time(t.LastAccess)
			e.uvarint(t.AccessCount)
			e.i64(int64(t.Stability))
		}
	}
	return e.b
}

// DecodeChange decodes bytes produced by EncodeChange. It never panics on
// arbitrary input.
func DecodeChange(b []byte) (Change, error) {
	d := decoder{b: b}
	var c Change
	if v := d.u8(); v != changeVersion {
		if d.err == nil {
			return c, &Error{Kind: KindInvalid, Code: "UNSUPPORTED_FORMAT", Message: "change-log entry version " + itoa(int(v)) + " is newer than this binary understands (supported: 1)"}
		}
		return c, errCorrupt
	}
	c.Seq = d.uvarint()
	c.Time = d.time()
	c.Op = ChangeOp(d.u8())
	c.Space = d.str()
	switch c.Op {
	case OpPutMemory:
		m := &Memory{Space: c.Space}
		m.ID = d.str()
		decodeMemoryFields(&d, m)
		m.Embedding = d.f32s()
		m.Seq = c.Seq
		c.Memory = m
	case OpDeleteMemory:
		c.ID = d.str()
	case OpPutAssociation:
		a := &Association{}
		a.From = d.str()
		a.To = d.str()
		a.Weight = d.f64()
		a.Kind = d.str()
		c.Association = a
	case OpCreateSpace:
		s := &SpaceInfo{}
		s.Name = d.str()
		dim := d.uvarint()
		if dim > 1<<16 {
			d.fail()
		}
		s.Dimension = int(dim)
		s.Embedder = d.str()
		s.Fingerprint = d.str()
		s.CreatedAt = d.time()
		c.SpaceInfo = s
	case OpSetCursor:
		cur := &Cursor{}
		cur.Source = d.str()
		cur.Value = d.str()
		c.Cursor = cur
	case OpSetSystem:
		r := &SystemRecord{Key: d.str()}
		switch d.u8() {
		case 0:
		case 1:
			r.Value = []byte(d.str())
		default:
			d.fail()
		}
		c.System = r
	case OpTouch:
		n := d.count(10)
		c.Touches = make([]Touch, n)
		for i := range c.Touches {
			t := &c.Touches[i]
			t.ID = d.str()
			t.LastAccess = d.time()
			t.AccessCount = d.uvarint()
			t.Stability = time.Duration(d.i64())
		}
	default:
		d.fail()
	}
	if d.err != nil {
		return Change{}, d.err
	}
	if len(d.b) != 0 {
		return Change{}, errCorrupt
	}
	return c, nil
}

func encodeAssoc(weight float64, kind string, created time.Time) []byte {
	e := encoder{}
	e.u8(1)
	e.f64(weight)
	e.str(kind)
	e.time(created)
	return e.b
}

func decodeAssoc(b []byte) (weight float64, kind string, err error) {
	d := decoder{b: b}
	if d.u8() != 1 {
		return 0, "", errCorrupt
	}
	weight = d.f64()
	kind = d.str()
	d.time()
	if d.err != nil {
		return 0, "", d.err
	}
	return weight, kind, nil
}
