package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// Codec compresses and, when recipients are configured, encrypts (age)
// what is stored: segment bodies with zstd, engine files as zstd frames
// compressed only where that pays (see seal.go). With identities it opens
// what is read back. The zero value is not usable; build one with NewCodec.
type Codec struct {
	recipients []age.Recipient
	names      []string
	identities []age.Identity
	enc        *zstd.Encoder // segments
	fileEnc    *zstd.Encoder // engine-file chunks (seal.go): EncodeAll from every sealer at once
	dec        *zstd.Decoder
}

// ErrNoIdentity is wrapped when an encrypted object is read without a key.
var ErrNoIdentity = errors.New("backup is encrypted and no identity was given")

// NewCodec builds a codec. recipients are age public keys ("age1...");
// an unparsable one is a refusal, never a silent plaintext upload.
// identities decrypt on read (restore, verify); they may be nil.
func NewCodec(recipients []string, identities []age.Identity) (*Codec, error) {
	c := &Codec{identities: identities}
	for _, r := range recipients {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		rec, err := age.ParseX25519Recipient(r)
		if err != nil {
			return nil, fmt.Errorf("encryption recipient %q is unusable: %v. Try: an age X25519 public key (age1...) as printed by age-keygen -y", r, err)
		}
		c.recipients = append(c.recipients, rec)
		c.names = append(c.names, rec.String())
	}
	var err error
	if c.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1)); err != nil {
		return nil, err
	}
	if c.fileEnc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0))); err != nil {
		return nil, err
	}
	if c.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxSegmentPlain)); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseRecipientsFile reads age recipients, one per line ('#' comments allowed).
func ParseRecipientsFile(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, errors.New("recipients file holds no recipient. Try: age-keygen -y key.txt > recipients.txt")
	}
	return out, nil
}

// ParseIdentities reads an age identity file (as written by age-keygen).
func ParseIdentities(r io.Reader) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(r)
	if err != nil {
		return nil, fmt.Errorf("identity file is unusable: %v. Try: the file written by age-keygen", err)
	}
	return ids, nil
}

// Encrypted reports whether the codec encrypts what it stores.
func (c *Codec) Encrypted() bool { return len(c.recipients) > 0 }

func (c *Codec) encryption() Encrypt {
	if !c.Encrypted() {
		return Encrypt{Scheme: "none"}
	}
	return Encrypt{Scheme: "age", Recipients: append([]string(nil), c.names...)}
}

// sealBytes compresses then (optionally) encrypts b.
func (c *Codec) sealBytes(b []byte) ([]byte, error) {
	z := c.enc.EncodeAll(b, nil)
	if !c.Encrypted() {
		return z, nil
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, c.recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if _, err := w.Write(z); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// openBytes reverses sealBytes for an object recorded with encryption enc.
func (c *Codec) openBytes(b []byte, enc Encrypt, limit int64) ([]byte, error) {
	r, err := c.decrypt(bytes.NewReader(b), enc)
	if err != nil {
		return nil, err
	}
	z, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt: %v", ErrCorrupt, err)
	}
	out, err := c.dec.DecodeAll(z, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("%w: decompressed size %d exceeds %d", ErrCorrupt, len(out), limit)
	}
	return out, nil
}

func (c *Codec) decrypt(r io.Reader, enc Encrypt) (io.Reader, error) {
	switch enc.Scheme {
	case "none", "":
		return r, nil
	case "age":
		if len(c.identities) == 0 {
			return nil, fmt.Errorf("%w (recipient %s). Try: --identity-file with the matching age key", ErrNoIdentity, strings.Join(enc.Recipients, ", "))
		}
		d, err := age.Decrypt(r, c.identities...)
		if err != nil {
			var nm *age.NoIdentityMatchError
			if errors.As(err, &nm) {
				return nil, fmt.Errorf("%w: none of the given identities matches recipient %s. Try: the identity file of that key", ErrNoIdentity, strings.Join(enc.Recipients, ", "))
			}
			return nil, fmt.Errorf("%w: decrypt: %v", ErrCorrupt, err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: unknown encryption scheme %q", ErrCorrupt, enc.Scheme)
}

// encrypter wraps w so that what is written is age-encrypted, when the
// codec encrypts; otherwise it returns w with a Close that does nothing.
func (c *Codec) encrypter(w io.Writer) (io.WriteCloser, error) {
	if !c.Encrypted() {
		return nopCloser{w}, nil
	}
	aw, err := age.Encrypt(w, c.recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return aw, nil
}

// openReader opens a stored engine file (see seal.go) for reading.
func (c *Codec) openReader(r io.Reader, enc Encrypt) (io.ReadCloser, error) {
	d, err := c.decrypt(r, enc)
	if err != nil {
		return nil, err
	}
	zr, err := zstd.NewReader(d, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	return zr.IOReadCloser(), nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
