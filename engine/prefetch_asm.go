//go:build amd64 || arm64

package engine

import "unsafe"

// Software prefetch: a hint that memory will be read soon. Unlike a load,
// it never stalls the processor waiting for the data. Go has no intrinsic
// for it, hence the two small assembly routines.

//go:noescape
func prefetchRecord(p unsafe.Pointer)

//go:noescape
func prefetchLine(p unsafe.Pointer)

//go:noescape
func prefetchLineW(p unsafe.Pointer)
