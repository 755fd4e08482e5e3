//go:build race

package replay_test

// raceEnabled: the race detector slows the pipeline's hand-offs tenfold,
// so the large tests shrink under it.
const raceEnabled = true
