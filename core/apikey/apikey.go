// Package apikey is engram-ops' API keys: the token format, generating and
// parsing tokens, and the key records, kept in the engine's system records
// (core.Engine.PutSystem) so they are written through the one commit path,
// survive kill -9 and travel in backups and point-in-time restores.
//
// A token is "engk_" + id (12 base62 characters) + "_" + secret (32 base62
// characters from crypto/rand, about 190 bits) + checksum (6 base62
// characters of the CRC-32 of everything before it). The prefix lets a
// secret scanner find a leaked token, and the checksum lets it tell a real
// token from a look-alike offline, without asking the server.
//
// Only the SHA-256 of the secret is stored. A slow password hash (bcrypt,
// argon2) defends low-entropy human passwords against guessing; a 190-bit
// random secret cannot be guessed, so a fast hash loses nothing and keeps
// verifying a request to a microsecond. Hashes are compared in constant
// time.
//
// Permissions nest: write includes read, admin includes write and read.
// A key limited to spaces reaches only those spaces; admin keys cover every
// space, since what admin routes do (keys, backups) is not per space.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// Prefix starts every token.
const Prefix = "engk_"

const (
	idLen       = 12
	secretLen   = 32
	checksumLen = 6
	// TokenLen is the length of every token.
	TokenLen = len(Prefix) + idLen + 1 + secretLen + checksumLen

	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

	// recordPrefix names the system records holding keys.
	recordPrefix = "apikey/"
)

// Permission is what a key may do.
type Permission string

const (
	Read  Permission = "read"
	Write Permission = "write"
	Admin Permission = "admin"
)

func (p Permission) rank() int {
	switch p {
	case Read:
		return 1
	case Write:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// ParsePermissions parses "read,write,admin" (any non-empty subset).
func ParsePermissions(s string) ([]Permission, error) {
	var out []Permission
	for _, f := range strings.Split(s, ",") {
		p := Permission(strings.TrimSpace(strings.ToLower(f)))
		if p == "" {
			continue
		}
		if p.rank() == 0 {
			return nil, fmt.Errorf("permission %q is not one of read, write, admin", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("at least one permission is required: read, write or admin")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rank() < out[j].rank() })
	return out, nil
}

// Reason says why a token was refused; its string is the reason label of
// engram_auth_failures_total.
type Reason string

const (
	Missing     Reason = "missing"
	Malformed   Reason = "malformed"
	UnknownKey  Reason = "unknown_key"
	WrongSecret Reason = "wrong_secret"
	Expired     Reason = "expired"
	Revoked     Reason = "revoked"
	WrongSpace  Reason = "wrong_space"
	Forbidden   Reason = "forbidden"
)

// Reasons lists every Reason.
var Reasons = []Reason{Missing, Malformed, UnknownKey, WrongSecret, Expired, Revoked, WrongSpace, Forbidden}

// Error is a refused token or request.
type Error struct {
	Reason  Reason
	Message string
}

func (e *Error) Error() string { return e.Message }

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// Parse splits a token into its id and secret, checking prefix, length,
// alphabet and checksum. It reads untrusted bytes and never panics.
func Parse(token string) (id, secret string, err error) {
	if !strings.HasPrefix(token, Prefix) {
		return "", "", refuse(Malformed, "the API key does not start with %q", Prefix)
	}
	if len(token) != TokenLen {
		return "", "", refuse(Malformed, "the API key is %d characters; engram-ops keys are %d", len(token), TokenLen)
	}
	rest := token[len(Prefix):]
	if rest[idLen] != '_' {
		return "", "", refuse(Malformed, "the API key has no '_' after its id")
	}
	id, body := rest[:idLen], rest[idLen+1:]
	for _, part := range []string{id, body} {
		for i := 0; i < len(part); i++ {
			if strings.IndexByte(base62, part[i]) < 0 {
				return "", "", refuse(Malformed, "the API key holds a character outside [0-9A-Za-z]")
			}
		}
	}
	secret, sum := body[:secretLen], body[secretLen:]
	if Checksum(token[:len(token)-checksumLen]) != sum {
		return "", "", refuse(Malformed, "the API key's checksum does not match (a mistyped or truncated key)")
	}
	return id, secret, nil
}

// Valid reports whether s is a well-formed token with a correct checksum:
// what a secret scanner checks offline.
func Valid(s string) bool {
	_, _, err := Parse(s)
	return err == nil
}

// Checksum is the 6 base62 characters of the CRC-32 (IEEE) of s that end
// a token whose other characters are s.
func Checksum(s string) string {
	v := uint64(crc32.ChecksumIEEE([]byte(s)))
	var b [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		b[i] = base62[v%62]
		v /= 62
	}
	return string(b[:])
}

// randomBase62 returns n base62 characters from crypto/rand, unbiased
// (bytes of 248 and above are redrawn).
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		_, _ = rand.Read(buf) // never fails (crypto/rand)
		for _, c := range buf {
			if c < 248 && len(out) < n {
				out = append(out, base62[c%62])
			}
		}
	}
	return string(out)
}

func newToken() (id, secret, token string) {
	id, secret = randomBase62(idLen), randomBase62(secretLen)
	t := Prefix + id + "_" + secret
	return id, secret, t + Checksum(t)
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Key is a stored key record (never the secret).
type Key struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Hash        string       `json:"sha256"`
	Permissions []Permission `json:"permissions"`
	// Spaces limits the key to these spaces; empty means every space.
	Spaces []string `json:"spaces,omitempty"`
	// Rate is requests per second the key may make (0: unlimited).
	Rate    float64   `json:"rate,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	Revoked time.Time `json:"revoked,omitzero"`
	// RotatedFrom is the key this one replaced.
	RotatedFrom string `json:"rotated_from,omitempty"`
}

// Allows reports whether the key has permission p.
func (k *Key) Allows(p Permission) bool {
	for _, have := range k.Permissions {
		if have.rank() >= p.rank() {
			return true
		}
	}
	return false
}

// AllSpaces reports whether the key reaches every space.
func (k *Key) AllSpaces() bool { return len(k.Spaces) == 0 }

// InSpace reports whether the key reaches space.
func (k *Key) InSpace(space string) bool { return k.AllSpaces() || slices.Contains(k.Spaces, space) }

// State is "active", "expired" or "revoked" at now.
func (k *Key) State(now time.Time) string {
	switch {
	case !k.Revoked.IsZero():
		return "revoked"
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		return "expired"
	}
	return "active"
}

// Backend is where keys are kept: *core.Engine.
type Backend interface {
	PutSystem(ctx context.Context, key string, value []byte) (uint64, error)
	SystemRecords(prefix string) ([]core.SystemRecord, error)
}

var _ Backend = (*core.Engine)(nil)

// Store is the keys of one engine, held in memory so that verifying a
// request reads no disk; every change goes to the backend first and then
// to memory, so a revoke takes effect on the next request.
type Store struct {
	be  Backend
	now func() time.Time

	mu   sync.RWMutex
	keys map[string]*Key
	wmu  sync.Mutex // serialises changes
}

// Open loads the keys of be. An unreadable or undecodable record is an
// error: a server must not start with keys it cannot check.
func Open(be Backend) (*Store, error) {
	s := &Store{be: be, now: time.Now}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the keys from the backend again, for a follower whose
// engine applied key changes made on its primary. A failure keeps the
// keys held before.
func (s *Store) Reload() error {
	recs, err := s.be.SystemRecords(recordPrefix)
	if err != nil {
		return fmt.Errorf("read the API keys: %w", err)
	}
	keys := make(map[string]*Key, len(recs))
	for _, r := range recs {
		k := new(Key)
		if err := json.Unmarshal(r.Value, k); err != nil || k.ID == "" || r.Key != recordPrefix+k.ID {
			return fmt.Errorf("the API key record %q is damaged (%v); restore the data directory from a backup or revoke every key and create new ones", r.Key, err)
		}
		keys[k.ID] = k
	}
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
	return nil
}

// SetClock replaces time.Now (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Len is the number of keys stored (any state).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys)
}

// Spec describes a key to create.
type Spec struct {
	Name        string
	Permissions []Permission
	Spaces      []string
	TTL         time.Duration // 0: never expires
	Rate        float64       // requests per second; 0: unlimited
}

func (sp *Spec) validate() error {
	var errs []error
	if n := strings.TrimSpace(sp.Name); n == "" || len(n) > 128 {
		errs = append(errs, errors.New("a key needs a name of 1..128 characters (--name), saying who or what uses it"))
	}
	if len(sp.Permissions) == 0 {
		errs = append(errs, errors.New("at least one permission is required: read, write or admin"))
	}
	for _, p := range sp.Permissions {
		if p.rank() == 0 {
			errs = append(errs, fmt.Errorf("permission %q is not one of read, write, admin", p))
		}
	}
	if slices.Contains(sp.Permissions, Admin) && len(sp.Spaces) > 0 {
		errs = append(errs, errors.New("an admin key covers every space (keys and backups are not per space): drop --spaces, or give the key read,write"))
	}
	for _, space := range sp.Spaces {
		if err := core.ValidateSpaceName(space); err != nil {
			errs = append(errs, fmt.Errorf("space %q: %w", space, err))
		}
	}
	if sp.TTL < 0 {
		errs = append(errs, fmt.Errorf("expiry %s is negative", sp.TTL))
	}
	if sp.Rate < 0 || math.IsNaN(sp.Rate) || math.IsInf(sp.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate %v must be a positive number of requests per second", sp.Rate))
	}
	return errors.Join(errs...)
}

// Create stores a new key and returns its token, which exists nowhere
// else: the caller shows it once.
func (s *Store) Create(ctx context.Context, spec Spec) (string, Key, error) {
	if err := spec.validate(); err != nil {
		return "", Key{}, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.create(ctx, spec, "")
}

func (s *Store) create(ctx context.Context, spec Spec, from string) (string, Key, error) {
	id, secret, token := newToken()
	now := s.now().UTC().Truncate(time.Second)
	k := &Key{ID: id, Name: strings.TrimSpace(spec.Name), Hash: hashSecret(secret), Permissions: spec.Permissions,
		Spaces: spec.Spaces, Rate: spec.Rate, Created: now, RotatedFrom: from}
	if spec.TTL > 0 {
		k.Expires = now.Add(spec.TTL)
	}
	if err := s.put(ctx, k); err != nil {
		return "", Key{}, err
	}
	return token, *k, nil
}

func (s *Store) put(ctx context.Context, k *Key) error {
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	if _, err := s.be.PutSystem(ctx, recordPrefix+k.ID, b); err != nil {
		return fmt.Errorf("store API key %s: %w", k.ID, err)
	}
	s.mu.Lock()
	s.keys[k.ID] = k
	s.mu.Unlock()
	return nil
}

// List returns every key, oldest first.
func (s *Store) List() []Key {
	s.mu.RLock()
	out := make([]Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, *k)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Get returns the key id.
func (s *Store) Get(id string) (Key, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[id]
	if !ok {
		return Key{}, false
	}
	return *k, true
}

// ErrNotFound is returned for an unknown key id.
var ErrNotFound = errors.New("no API key has this id (see: engram-ops apikey list)")

// Revoke revokes key id at once. Revoking a revoked key is not an error.
func (s *Store) Revoke(ctx context.Context, id string) (Key, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	k, ok := s.Get(id)
	if !ok {
		return Key{}, fmt.Errorf("API key %q: %w", id, ErrNotFound)
	}
	if k.Revoked.IsZero() {
		k.Revoked = s.now().UTC().Truncate(time.Second)
		if err := s.put(ctx, &k); err != nil {
			return Key{}, err
		}
	}
	return k, nil
}

// Rotate creates a key like id (name, permissions, spaces, rate, the same
// lifetime from now) and lets id expire after overlap, so clients can move
// to the new token meanwhile. It returns the new token and key.
func (s *Store) Rotate(ctx context.Context, id string, overlap time.Duration) (string, Key, error) {
	if overlap < 0 {
		return "", Key{}, fmt.Errorf("overlap %s is negative", overlap)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, ok := s.Get(id)
	if !ok {
		return "", Key{}, fmt.Errorf("API key %q: %w", id, ErrNotFound)
	}
	now := s.now()
	if st := old.State(now); st != "active" {
		return "", Key{}, fmt.Errorf("API key %s is %s; create a new key instead of rotating it", id, st)
	}
	spec := Spec{Name: old.Name, Permissions: old.Permissions, Spaces: old.Spaces, Rate: old.Rate}
	if !old.Expires.IsZero() {
		spec.TTL = old.Expires.Sub(old.Created)
	}
	token, k, err := s.create(ctx, spec, old.ID)
	if err != nil {
		return "", Key{}, err
	}
	end := now.UTC().Add(overlap).Truncate(time.Second)
	if old.Expires.IsZero() || end.Before(old.Expires) {
		old.Expires = end
		if err := s.put(ctx, &old); err != nil {
			return "", Key{}, fmt.Errorf("the new key %s is stored, but the old key's overlap was not set: %w", k.ID, err)
		}
	}
	return token, k, nil
}

// Verify checks token and returns its key, or an *Error with the reason.
// It reads no disk.
func (s *Store) Verify(token string) (*Key, error) {
	id, secret, err := Parse(token)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	k := s.keys[id]
	s.mu.RUnlock()
	if k == nil {
		return nil, refuse(UnknownKey, "the API key %s is not known to this server", id)
	}
	h := sha256.Sum256([]byte(secret))
	want, err := hex.DecodeString(k.Hash)
	if err != nil || subtle.ConstantTimeCompare(h[:], want) != 1 {
		return nil, refuse(WrongSecret, "the API key %s has a wrong secret", id)
	}
	switch k.State(s.now()) {
	case "revoked":
		return nil, refuse(Revoked, "the API key %s was revoked", id)
	case "expired":
		return nil, refuse(Expired, "the API key %s expired at %s", id, k.Expires.Format(time.RFC3339))
	}
	return k, nil
}

// ParseTTL parses an expiry such as "90d", "12h" or "30m" (a Go duration,
// or whole days with d).
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 36500 {
			return 0, fmt.Errorf("expiry %q: want a number of days such as 90d (1..36500)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("expiry %q: want a duration such as 90d, 12h or 30m", s)
	}
	return d, nil
}

// ParseRate parses a rate such as "100/s", "600/m" or "1000/h" into
// requests per second.
func ParseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if !ok || err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("rate %q: want requests per second, minute or hour, e.g. 100/s, 600/m", s)
	}
	switch strings.TrimSpace(unit) {
	case "s":
		return v, nil
	case "m":
		return v / 60, nil
	case "h":
		return v / 3600, nil
	}
	return 0, fmt.Errorf("rate %q: the unit must be s, m or h, e.g. 100/s", s)
}

// FormatRate is the inverse of ParseRate for display ("" when unlimited).
func FormatRate(r float64) string {
	switch {
	case r <= 0:
		return ""
	case r >= 1:
		return strconv.FormatFloat(r, 'g', 6, 64) + "/s"
	case r*60 >= 1:
		return strconv.FormatFloat(r*60, 'g', 6, 64) + "/m"
	}
	return strconv.FormatFloat(r*3600, 'g', 6, 64) + "/h"
}
