package core

import "encoding/binary"

// Key layout. Every data key is prefixed by a one-byte family tag and its
// space; ids never contain 0x00 (validated), so 0x00 separates components and
// prefix scans per space or per memory are exact.
//
//	'F'                        format version of the data directory
//	'S' space                  SpaceInfo
//	'N' space                  next slot number of the space (uint32)
//	'M' space 0 id             memory record (codec.go), without its vector
//	'V' space 0 id             vector: float32 (warm) or int8+scale (cold)
//	'A' space 0 from 0 to      association weight/kind
//	'R' space 0 to 0 from      reverse association index (empty value)
//	'L' seq(8, big endian)     change-log entry
//	'C' source                 importer cursor
//	'Y' key                    system record (system.go)
const (
	famFormat   = 'F'
	famSpace    = 'S'
	famNextSlot = 'N'
	famMemory   = 'M'
	famVector   = 'V'
	famAssoc    = 'A'
	famReverse  = 'R'
	famLog      = 'L'
	famCursor   = 'C'
	famSystem   = 'Y'
)

func spaceKey(fam byte, space string) []byte {
	k := make([]byte, 0, 1+len(space))
	k = append(k, fam)
	return append(k, space...)
}

// memberKey builds fam space 0 a [0 b].
func memberKey(fam byte, space, a string, b ...string) []byte {
	n := 2 + len(space) + len(a)
	for _, s := range b {
		n += 1 + len(s)
	}
	return appendMemberKey(make([]byte, 0, n), fam, space, a, b...)
}

// appendMemberKey appends memberKey(fam, space, a, b...) to dst.
func appendMemberKey(dst []byte, fam byte, space, a string, b ...string) []byte {
	dst = append(dst, fam)
	dst = append(dst, space...)
	dst = append(dst, 0)
	dst = append(dst, a...)
	for _, s := range b {
		dst = append(dst, 0)
		dst = append(dst, s...)
	}
	return dst
}

// spacePrefix is fam space 0: every member key of the space.
func spacePrefix(fam byte, space string) []byte {
	k := spaceKey(fam, space)
	return append(k, 0)
}

// assocPrefix is every association leaving (fam 'A') or entering (fam 'R') id.
func assocPrefix(fam byte, space, id string) []byte {
	k := memberKey(fam, space, id)
	return append(k, 0)
}

func logKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = famLog
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// prefixEnd is the smallest key greater than every key with the prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// splitMember returns the components after fam space 0.
func splitMember(key []byte, spaceLen int) (a, b string) {
	rest := key[1+spaceLen+1:]
	for i, c := range rest {
		if c == 0 {
			return string(rest[:i]), string(rest[i+1:])
		}
	}
	return string(rest), ""
}
