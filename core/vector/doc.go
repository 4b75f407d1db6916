// Package vector owns approximate-nearest-neighbour search over embeddings:
// an HNSW graph index (Malkov & Yashunin) with tombstone deletes, filtered
// search and a compact persisted graph format, plus the vector math the
// recall path needs (dot product, normalisation, brute-force top-k and int8
// quantisation for the cold tier). On amd64 CPUs with AVX2 and FMA the dot
// products run in assembly; elsewhere, and under the race detector, they
// run in pure Go.
//
// Similarity is cosine computed as a dot product, so callers normalise
// vectors first (see Normalize). The index keeps vectors by reference and
// persists only its graph; the caller stores the vectors and hands them back
// when the graph is read.
//
// Besides the standard library the package imports only golang.org/x/sys/cpu,
// to detect AVX2 and FMA.
package vector
