//go:build !amd64 && !arm64

package engine

import "unsafe"

// Without an assembly prefetch, ProcessBatch still gives the same verdicts;
// it only loses the overlap of cache misses.
func prefetchRecord(unsafe.Pointer) {}
func prefetchLine(unsafe.Pointer)   {}
func prefetchLineW(unsafe.Pointer)  {}
