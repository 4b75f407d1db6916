// Package s3 is the backup.ObjectStore for any S3-compatible server (AWS S3,
// MinIO, versitygw, Ceph RGW, …), the target written as s3://bucket/prefix.
//
// It owns the translation of the ObjectStore contract onto minio-go v7 and
// nothing else: no knowledge of snapshots or manifests. It imports package
// backup, the standard library and minio-go; nothing else in the module.
//
// Choices, and why:
//
//   - Put hands the caller's reader to minio-go unwrapped. minio-go picks its
//     fastest path from what the reader is (an io.ReaderAt such as *os.File is
//     uploaded in parallel parts straight from the file), so wrapping it would
//     cost throughput and add a copy. Objects up to PartSize go in one PUT;
//     larger ones, and every size -1 stream, go as a multipart upload that S3
//     makes visible only on completion. Either way a reader sees all or
//     nothing, and minio-go aborts a failed multipart upload itself.
//   - Retries are minio-go's (exponential backoff with jitter, 200 ms doubling
//     to a 1 s cap, on network errors, 5xx, throttling). They stop as soon as
//     the context is done. A request whose body cannot be rewound (a plain
//     io.Reader of at most PartSize) is sent once: retrying it would send a
//     truncated body.
//   - New checks, with one listing request, that the bucket exists and that
//     the credentials are accepted, so a misconfigured target fails at start
//     with an error that says which, rather than at the first backup.
//   - Keys follow the same rules as backup/file (CheckKey there; the
//     conformance suite holds both to them), so a layout valid on one target is
//     valid on the other. They are stored under Prefix + "/".
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/engram-ops/engram-ops/backup"
)

// DefaultPartSize is the multipart part size when Config.PartSize is zero.
// A size -1 stream holds one part in memory, and S3 allows 10,000 parts, so
// a stream may be up to 10,000 × PartSize (156 GiB at 16 MiB). Objects of
// known size get bigger parts when they need them.
const DefaultPartSize = 16 << 20

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

// Config describes an S3 target.
type Config struct {
	// Endpoint is host[:port], e.g. "s3.amazonaws.com" (the default when
	// empty) or "127.0.0.1:7070". A scheme ("https://…" or "http://…") is
	// accepted and then decides Secure.
	Endpoint string
	// Region, e.g. "us-east-1". Empty asks the server (one extra request).
	Region string
	// Bucket must exist already.
	Bucket string
	// Prefix is prepended (with a "/") to every key; leading and trailing
	// slashes are ignored. Empty stores keys at the top of the bucket.
	Prefix string
	// AccessKey and SecretKey sign requests (AWS signature v4).
	AccessKey, SecretKey string
	// Secure selects TLS.
	Secure bool
	// PathStyle forces http://endpoint/bucket/key addressing, which most
	// self-hosted servers need. Otherwise minio-go picks: virtual-host style
	// for AWS and Google endpoints, path style for the rest.
	PathStyle bool
	// PartSize is the multipart part size (minimum 5 MiB); 0 means
	// DefaultPartSize. A size -1 Put holds one part in memory.
	PartSize uint64
	// MaxRetries is how often a failed request is retried after the first
	// attempt, with exponential backoff. 0 means minio-go's default (9
	// retries, 10 attempts); a negative value disables retries.
	MaxRetries int
	// Transport replaces the HTTP transport (custom CA, proxies, test hooks).
	// Nil uses minio-go's default transport.
	Transport http.RoundTripper
}

// Store is a backup.ObjectStore in one S3 bucket under one prefix. It is safe
// for concurrent use.
type Store struct {
	client   *minio.Client
	core     minio.Core // same client; its GetObject reports a missing key at once
	bucket   string
	prefix   string // "" or ends with "/"
	partSize uint64
	region   string
	name     string
	probes   sync.Pool // *[]byte of partSize, for putStream
}

var _ backup.ConditionalStore = (*Store)(nil)

// New connects to the target and checks that the bucket exists and accepts
// the credentials. It makes one request (two when Region is empty).
func New(ctx context.Context, cfg Config) (*Store, error) {
	endpoint, secure, err := parseEndpoint(cfg.Endpoint, cfg.Secure)
	if err != nil {
		return nil, err
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket given")
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3: bucket %q: %w", cfg.Bucket, err)
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, errors.New("s3: an access key needs a secret key and the other way round; set both")
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < 5<<20 {
		return nil, fmt.Errorf("s3: part size %d is below S3's 5 MiB minimum", partSize)
	}
	attempts := 0 // minio-go's default
	switch {
	case cfg.MaxRetries < 0:
		attempts = 1
	case cfg.MaxRetries > 0:
		attempts = cfg.MaxRetries + 1
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   attempts,
		Transport:    cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint %q: %w", endpoint, err)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := backup.CheckKey(prefix); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		prefix += "/"
	}
	scheme := "http"
	if secure {
		scheme = "https"
	}
	s := &Store{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   cfg.Bucket,
		prefix:   prefix,
		partSize: partSize,
		region:   cfg.Region,
		name:     fmt.Sprintf("s3://%s/%s (%s://%s)", cfg.Bucket, strings.TrimSuffix(prefix, "/"), scheme, endpoint),
	}
	if err := s.check(ctx, cfg.AccessKey); err != nil {
		return nil, err
	}
	return s, nil
}

// parseEndpoint strips an optional scheme (which then decides TLS) and
// rejects anything that is more than host[:port].
func parseEndpoint(ep string, secure bool) (string, bool, error) {
	if ep == "" {
		return "s3.amazonaws.com", true, nil
	}
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			// Not %w: url.Error repeats the input, which may hold a password.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return "", false, fmt.Errorf("s3: endpoint: cannot parse it: %v", err)
		}
		switch u.Scheme {
		case "https":
			secure = true
		case "http":
			secure = false
		default:
			return "", false, fmt.Errorf("s3: endpoint %q: scheme must be http or https", ep)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", false, fmt.Errorf("s3: endpoint %q: give only scheme://host[:port]", u.Redacted())
		}
		ep = u.Host
	}
	if strings.Contains(ep, "@") {
		return "", false, errors.New("s3: endpoint: credentials do not belong in the endpoint; give host[:port] and set the keys")
	}
	if ep == "" || strings.ContainsAny(ep, "/?#") {
		return "", false, fmt.Errorf("s3: endpoint %q: give host[:port]", ep)
	}
	return ep, secure, nil
}

// check lists at most one key under the prefix: that needs the bucket to
// exist, the signature to verify and list permission, which backup needs.
func (s *Store) check(ctx context.Context, accessKey string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1}) {
		if obj.Err != nil {
			return s.explain(obj.Err, accessKey)
		}
		break
	}
	return nil
}

// explain turns the errors a misconfigured target produces into messages
// that name the fix. The secret key never appears in them.
func (s *Store) explain(err error, accessKey string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3: checking %s: %w", s, err)
	}
	code := minio.ToErrorResponse(err).Code
	if accessKey == "" && code == "AccessDenied" {
		return fmt.Errorf("s3: anonymous access to bucket %q was denied; set an access key and secret key: %w", s.bucket, err)
	}
	switch code {
	case minio.NoSuchBucket:
		return fmt.Errorf("s3: bucket %q does not exist at %s; create it first (the backup never creates buckets): %w", s.bucket, s.client.EndpointURL().Host, err)
	case "InvalidAccessKeyId", "XAdminUserNotFound": // the latter is versitygw's
		return fmt.Errorf("s3: the access key %q was rejected by %s (unknown access key id): %w", accessKey, s.client.EndpointURL().Host, err)
	case "SignatureDoesNotMatch":
		return fmt.Errorf("s3: the access key %q was rejected by %s: the secret key does not match it: %w", accessKey, s.client.EndpointURL().Host, err)
	case "AuthorizationHeaderMalformed", "InvalidRegion":
		return fmt.Errorf("s3: %s rejected the request's region %q; set the bucket's region: %w", s.client.EndpointURL().Host, s.region, err)
	case "AccessDenied":
		return fmt.Errorf("s3: the access key %q may not list bucket %q (access denied); backup needs list, read, write and delete on it: %w", accessKey, s.bucket, err)
	}
	return fmt.Errorf("s3: checking %s: %w", s, err)
}

// String names the target: s3://bucket/prefix (endpoint). No credentials.
func (s *Store) String() string { return s.name }

func (s *Store) object(key string) (string, error) {
	if err := backup.CheckKey(key); err != nil {
		return "", err
	}
	// S3's 1024-byte limit is on the whole object name, prefix included.
	if len(s.prefix)+len(key) > 1024 {
		return "", fmt.Errorf("invalid key %.40q…: with the prefix %q it is %d bytes, S3's limit is 1024", key, s.prefix, len(s.prefix)+len(key))
	}
	return s.prefix + key, nil
}

// Put uploads r under key. See the package doc for how atomicity holds.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if size < -1 {
		return fmt.Errorf("put %s: invalid size %d", key, size)
	}
	// A reader that knows its length (bytes.Reader, strings.Reader,
	// bytes.Buffer) can be checked before anything is sent.
	if l, ok := r.(interface{ Len() int }); ok && size >= 0 && int64(l.Len()) != size {
		return fmt.Errorf("put %s: reader holds %d bytes, not the declared %d", key, l.Len(), size)
	}
	if size < 0 {
		return s.putStream(ctx, key, obj, r)
	}
	// minio-go's parallel multipart path reads an io.ReaderAt from offset 0
	// whatever was read from it before; anchor it at the current position
	// (a SectionReader is still a ReaderAt, so the fast path stays).
	if ra, ok := r.(io.ReaderAt); ok && size > 0 {
		if sk, ok := r.(io.Seeker); ok {
			off, err := sk.Seek(0, io.SeekCurrent)
			if err != nil {
				return fmt.Errorf("put %s: %w", key, err)
			}
			if off != 0 {
				r = io.NewSectionReader(ra, off, size)
			}
		}
	}
	partSize := s.partSize
	if size > int64(partSize)*maxParts {
		partSize = 0 // minio-go then picks parts big enough for maxParts
	}
	return s.put(ctx, key, obj, r, size, partSize)
}

func (s *Store) put(ctx context.Context, key, obj string, r io.Reader, size int64, partSize uint64) error {
	_, err := s.client.PutObject(ctx, s.bucket, obj, r, size, minio.PutObjectOptions{
		PartSize:    partSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return fmt.Errorf("put %s to %s: %w", key, s, err)
	}
	return nil
}

// PutIfAbsent uploads r under key with If-None-Match: *, so the server
// refuses it (412) when the key exists.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (string, error) {
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	return s.putConditional(ctx, key, r, size, opts)
}

// PutIfMatch uploads r under key with If-Match: "tag", so the server
// refuses it (412, or 404 for a missing key) unless the stored version has
// that ETag.
func (s *Store) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, tag string) (string, error) {
	if tag == "" || tag == "*" {
		return "", fmt.Errorf("put %s: PutIfMatch needs a version tag, got %q", key, tag)
	}
	opts := minio.PutObjectOptions{}
	opts.SetMatchETag(tag)
	return s.putConditional(ctx, key, r, size, opts)
}

// putConditional sends one PUT (a multipart upload would move the condition
// to its completion, which not every server checks) and maps a failed
// condition onto backup.ErrPrecondition.
func (s *Store) putConditional(ctx context.Context, key string, r io.Reader, size int64, opts minio.PutObjectOptions) (string, error) {
	obj, err := s.object(key)
	if err != nil {
		return "", err
	}
	if size < 0 {
		return "", fmt.Errorf("put %s: a conditional put needs the object's size", key)
	}
	opts.ContentType = "application/octet-stream"
	opts.DisableMultipart = true
	info, err := s.client.PutObject(ctx, s.bucket, obj, r, size, opts)
	if err != nil {
		resp := minio.ToErrorResponse(err)
		// A missing key fails If-Match with 404 NoSuchKey; a racing
		// conditional write gets 409 ConditionalRequestConflict on AWS.
		if resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed" ||
			resp.Code == minio.NoSuchKey || resp.Code == "ConditionalRequestConflict" {
			return "", fmt.Errorf("put %s to %s: %w: %w", key, s, backup.ErrPrecondition, err)
		}
		return "", fmt.Errorf("put %s to %s: %w", key, s, err)
	}
	if info.ETag == "" {
		return "", fmt.Errorf("put %s to %s: the server returned no ETag, which conditional writes need", key, s)
	}
	return strings.Trim(info.ETag, `"`), nil
}

// GetTagged opens the object under key and returns its ETag.
func (s *Store) GetTagged(ctx context.Context, key string) (io.ReadCloser, string, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, "", err
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, obj, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", s.wrap("get", key, err)
	}
	if info.ETag == "" {
		body.Close()
		return nil, "", fmt.Errorf("get %s from %s: the server returned no ETag, which conditional writes need", key, s)
	}
	return body, strings.Trim(info.ETag, `"`), nil
}

// putStream uploads a reader of unknown length. It reads up to one part
// first: a stream that ends within it (a manifest, a small change-log
// segment) goes as one retryable PUT of known size instead of a three-request
// multipart upload with a fresh PartSize buffer. A longer one continues as a
// multipart upload of the probe followed by the rest of the stream.
func (s *Store) putStream(ctx context.Context, key, obj string, r io.Reader) error {
	buf := s.probeBuf()
	defer s.probes.Put(buf)
	n, err := io.ReadFull(r, *buf)
	var next [1]byte // one byte past a full probe tells "exactly one part" from "more"
	m := 0
	if err == nil {
		m, err = io.ReadFull(r, next[:])
		if err == io.ErrUnexpectedEOF || (err == nil && m == 0) {
			err = io.EOF
		}
		if m == 1 {
			err = nil
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("put %s: %w", key, cerr)
	}
	switch err {
	case io.EOF, io.ErrUnexpectedEOF:
		return s.put(ctx, key, obj, bytes.NewReader((*buf)[:n]), int64(n), s.partSize)
	case nil:
		rest := io.MultiReader(bytes.NewReader(*buf), bytes.NewReader(next[:m]), r)
		return s.put(ctx, key, obj, rest, -1, s.partSize)
	default:
		return fmt.Errorf("put %s: reading: %w", key, err)
	}
}

func (s *Store) probeBuf() *[]byte {
	if b, ok := s.probes.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, s.partSize)
	return &b
}

// Get opens the object under key. The GET is sent before Get returns, so a
// missing key is reported here, not at the first Read.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, err
	}
	body, _, _, err := s.core.GetObject(ctx, s.bucket, obj, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return body, nil
}

// Stat returns the size and modification time of the object under key.
func (s *Store) Stat(ctx context.Context, key string) (backup.ObjectInfo, error) {
	obj, err := s.object(key)
	if err != nil {
		return backup.ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		return backup.ObjectInfo{}, s.wrap("stat", key, err)
	}
	return backup.ObjectInfo{Key: key, Size: info.Size, Modified: info.LastModified}, nil
}

// wrap maps a missing object onto backup.ErrNotFound, keeping minio-go's
// error in the chain.
func (s *Store) wrap(op, key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, "NotFound":
		return fmt.Errorf("%s %s: %w: %w", op, key, backup.ErrNotFound, err)
	case minio.NoSuchBucket:
		return fmt.Errorf("%s %s: bucket %q does not exist at %s: %w", op, key, s.bucket, s.client.EndpointURL().Host, err)
	}
	return fmt.Errorf("%s %s from %s: %w", op, key, s, err)
}

// List returns every object whose key starts with prefix, sorted by key.
// minio-go follows the continuation tokens (1000 keys a page).
func (s *Store) List(ctx context.Context, prefix string) ([]backup.ObjectInfo, error) {
	if strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "\\\x00") {
		return nil, fmt.Errorf("invalid list prefix %q", prefix)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []backup.ObjectInfo
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, s.wrap("list", prefix, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		// Keys another tool wrote (such as "dir/" markers) are not ours.
		if backup.CheckKey(key) != nil {
			continue
		}
		out = append(out, backup.ObjectInfo{Key: key, Size: obj.Size, Modified: obj.LastModified})
	}
	// S3 returns keys in byte order already; some compatible servers do not.
	slices.SortFunc(out, func(a, b backup.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes the object under key; a missing key is not an error (S3
// answers 204 either way). In a versioned bucket this adds a delete marker.
func (s *Store) Delete(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, obj, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil
		}
		return fmt.Errorf("delete %s from %s: %w", key, s, err)
	}
	return nil
}
