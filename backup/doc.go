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
// # Content digest
//
// Manifest.ContentDigest is "sha256:" + hex of SHA-256 over, for every space
// in name order and every memory in id order (including cold ones), the
// length-prefixed (uvarint) space name, id and content followed by the
// embedding as little-endian float32 bits (cold memories contribute their
// dequantised vector). It is computed by opening the checkpoint with the
// engine; verify level 4 recomputes it on a restored copy.
//
// Everything here imports core, the standard library, klauspost/compress
// (zstd) and filippo.io/age; never Prometheus, net/http or cobra. Metrics
// are reported through the Observer interface (ops/metrics implements it).
package backup
