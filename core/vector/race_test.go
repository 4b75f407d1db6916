//go:build race

package vector

// raceEnabled shrinks the data sets of the heavy tests: the race detector
// instruments every load in Dot and makes them about fifty times slower.
const raceEnabled = true
