// Package vector owns approximate-nearest-neighbour search over embeddings:
// an HNSW graph index (Malkov & Yashunin) with tombstone deletes, filtered
// search and a compact persisted graph format, plus the vector math the
// recall path needs (dot product, normalisation, brute-force top-k and int8
// quantisation for the cold tier).
//
// Similarity is cosine computed as a dot product, so callers normalise
// vectors first (see Normalize). The index keeps vectors by reference and
// persists only its graph; the caller stores the vectors and hands them back
// when the graph is read.
//
// The package imports only the Go standard library.
package vector
