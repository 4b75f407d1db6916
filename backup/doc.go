// Package backup ships an engram-ops engine to an ObjectStore and restores
// it: content-addressed snapshots, continuous change-log shipping,
// point-in-time restore, verification and retention.
//
// # Layout under the target prefix (design brief §7)
//
//	files/<sha256>.zst[.age]   immutable engine files of snapshots, named by the
//	                           sha256 of their plain bytes, stored as zstd frames
//	                           (one per MiB, compressed only where that halves
//	                           it, see seal.go) and, when encryption is on,
//	                           age-encrypted. Shared by every snapshot that
//	                           contains the same file, so every snapshot after
//	                           the first is incremental.
//	snapshots/<id>.json        one manifest per snapshot (see Manifest), written
//	                           LAST: a snapshot whose upload was interrupted has
//	                           no manifest and is never listed.
//	segments/<first>-<last>.seg change-log segments, first and last sequence as
//	                           20 decimal digits (see Segment), so restore picks
//	                           the range it needs from the listing alone.
//	                           Generation 2 and later write
//	                           <first>-<last>.g<generation>.seg (see below).
//	head.json                  the newest change stored on the target (see Head):
//	                           overwritten by the shipper after every segment and
//	                           by a snapshot ahead of it, so that verify and
//	                           restore can tell the end of the archive from a
//	                           lost newest segment.
//	verify/last.json           the last `backup verify` result (see VerifyResult),
//	                           which a server's shipper exports as
//	                           engram_backup_last_verified_timestamp_seconds and
//	                           engram_backup_last_restore_drill_seconds.
//
// # Retention
//
// Archive.Prune applies a GFS policy (see Retention) and deletes, in this
// order, expired manifests, engine files no remaining manifest references,
// and segments whose changes all precede the oldest kept snapshot; an
// interrupted prune leaves every remaining snapshot restorable. A snapshot
// re-checks the files it reused after writing its manifest, so a concurrent
// prune cannot leave it pointing at a deleted file.
//
// # Index graphs
//
// A space's HNSW graph (index/<space>.graph) is derived data that every
// insert changes throughout, so a snapshot stores the previous snapshot's
// graph again (downloaded and checked, so the checkpoint holds what the
// manifest records) while the current one differs in size by at most 10%:
// a restored engine indexes the memories that graph lacks in the background,
// as after a crash, and searches them exactly meanwhile (reuseGraphs).
//
// Snapshot ids are <UTC time 20060102T150405Z>-<engine sequence, 20 digits>,
// so ids sort by time and name the sequence they contain.
//
// Manifests are plain JSON (they hold counts, checksums, fingerprints and the
// public recipient, never memory content) so that list, inspect and verify
// level 1 work without the private key. Segment headers (sequence and time
// range) are plain for the same reason; segment bodies and engine files are
// encrypted when encryption is configured.
//
// # Metadata integrity
//
// Engine files are named by their sha256 and segments end in a sha256 of
// their bytes. The metadata objects (manifests, head.json,
// verify/last.json) carry a "digest": "sha256:" + hex of SHA-256 over the
// object's compact encoding/json form with the digest field left out
// (jsonDigest), and must be stored byte for byte as this package encodes
// them; a reader re-encodes what it parsed and compares both, so one
// flipped bit anywhere in the object is reported (ErrCorrupt), even one
// JSON would decode the same. A manifest that fails is listed with its
// error, reported by verify level 1 and skipped by restore, which falls
// back to an older snapshot. Format-1 manifests and verify results, written
// before digests, are still read; verify warns about such manifests.
//
// What a manifest claims is cross-checked: its id names its Created time
// (to the second) and Sequence; sequence 0 has no LastChange and any other
// one has; LastChange is not after Created (format 2, whose writer
// ensures it); and, at verify level 2 and when restore picks it, the change
// at Sequence in the segment holding it (when the target still has one)
// was committed at LastChange. A segment's header times must equal its
// first and last change's (commit times are not monotonic, so nothing in
// between is checked). head.json must name a sequence the target holds,
// in a segment or a snapshot: verify level 1 reports the newest segments
// missing otherwise, and a restore to the newest state that ends short of
// it writes what the target holds and returns IncompleteRestoreError. A
// missing head.json is a problem on an archive with format-2 manifests
// (their writer keeps one) and a warning on an older archive.
//
// Encrypted archives get the same digests, not a signature or MAC: the
// writer holds only the age recipients (public keys), and whoever can write
// to the bucket can encrypt to them too, so no key the writer has could
// authenticate its metadata against them. The digests catch damage, not a
// forger with write access; bucket permissions (and object versioning or
// locking) are the defence against that.
//
// # Consistency
//
// A snapshot is a Pebble checkpoint (core.Engine.Checkpoint) containing
// every change up to its sequence S, uploaded as taken (its digest is
// computed on a hard-linked copy, so opening it cannot rewrite tables that
// the previous snapshot already stored). The shipper uploads changes S+1... as
// segments read from the engine's durable change log (ChangesSince), so the
// engine's own log is the outage buffer: nothing is lost while the target is
// down, and the shipper resumes from the highest segment name after a
// restart. Restore = newest snapshot at or before the target, then replay of
// segments (core.Engine.ApplyChanges, which refuses gaps and repeats) up to
// exactly the target sequence or time (a change whose commit time is after
// --to-time is not applied).
//
// # Followers
//
// A follower (follow.go, serve --follow) is a read-only engine kept
// current from the archive alone: SeedFollower restores the newest
// snapshot into an empty data directory, and a Follower polls head.json,
// the commit point, and applies the segments after its sequence up to the
// head through ApplyChanges, verified and decrypted as restore reads them.
// A gap, a damaged segment or a refused change stops it at that change; a
// head behind it (the archive replaced or rewound) stops it for good.
//
// # Content digest
//
// Manifest.ContentDigest is "sha256:" + hex of SHA-256 over, for every space
// in name order and every memory in id order (including cold ones), the
// length-prefixed (uvarint) space name, id and content followed by the
// embedding as little-endian float32 bits (cold memories contribute their
// dequantised vector). It is computed by opening the checkpoint with the
// engine; verify level 4 recomputes it on a restored copy.
//
// # Generations and fencing
//
// No two primaries may ever both append to one archive. The fence is the
// object store's conditional writes (ConditionalStore: S3's If-None-Match
// and If-Match; backup/file's hard-link create and flock'd
// compare-and-rename), applied to the one object every writer rewrites:
// head.json.
//
//   - head.json carries the generation (term) of the primary that writes
//     the archive and the history of generation starts (generation → first
//     sequence it owns). An archive without them is generation 1 from
//     sequence 1, and a generation-1 head is written as format 1, so such
//     archives stay readable by older binaries; a later generation's head
//     is format 2, which older binaries refuse as a newer format.
//   - A writer rewrites head.json only with If-Match on the version it last
//     read or wrote (If-None-Match when there was none), after checking
//     that the generation there is its own. Promote writes generation+1
//     from applied+1 the same way. So once a promotion is stored, the old
//     primary's next head write fails; it reads head.json again, sees the
//     later generation (FencedError) and stops shipping for good. A failed
//     condition whose stored head is byte for byte the one just sent is a
//     retried request whose first attempt landed, and counts as success;
//     any other change within the same generation is treated as fencing
//     too, since two writers of one generation cannot be told apart.
//   - Segments of generation 2 and later carry it in their key, so two
//     generations never write the same key, and are created with
//     If-None-Match. A segment is stored before the head write that
//     publishes it; the old primary's last segment (stored before its
//     failed head write) is an orphan.
//   - Readers never trust the listing alone: SelectSegments takes, for
//     each sequence range, only the segments of the generation that owns
//     it in head.json's history, and nothing past head.json's sequence
//     (which also keeps a follower from applying a segment a promotion is
//     about to orphan). Archive.Segments applies it, so restore, verify
//     and a follower get only those; StoredSegments is the raw listing,
//     from which prune deletes the segments no generation owns.
//   - A fenced writer's snapshot is refused before upload, and one whose
//     head write is fenced (the promotion landed during the upload)
//     deletes its manifest again. A snapshot reads head.json afresh for
//     its head write; a head write that failed without an answer is
//     remembered, and found stored later it is the writer's own, not
//     another writer's.
//   - A writer does not replace a head.json it cannot read, nor recreate
//     a missing one for a generation after the first: either could undo
//     the fence. Shipping then fails, saying so, until an operator
//     restores the record.
//   - A promoted data directory records its generation in
//     backup-generation.json (ReadGeneration), and its shipper writes as
//     that generation. Any other data directory writes generation 1, so an
//     old primary restarted after a promotion is fenced before it ships.
//
// A promotion of a follower that has not applied everything head.json
// names is refused (ErrNotCaughtUp): it would discard shipped changes. With
// Force it cuts the history where the follower is, and readers stop there.
//
// Everything here imports core, the standard library, klauspost/compress
// (zstd) and filippo.io/age; never Prometheus, net/http or cobra. Metrics
// are reported through the Observer interface (ops/metrics implements it).
package backup
