//go:build race

package vector

// raceEnabled keeps the dot products in pure Go under the race detector: it
// does not see the assembly kernels' loads, so a caller writing to a vector
// the index holds would go unnoticed. Instrumented, every load in Dot is
// many times slower, so the heavy tests shrink their data sets.
const raceEnabled = true
