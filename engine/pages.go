package engine

import "unsafe"

// newPage returns a page of 4096 zeroed records (2 MiB) and its free func.
func newPage() ([]Record, func()) {
	b, free := allocHuge((1 << pageBits) * int(unsafe.Sizeof(Record{})))
	return unsafe.Slice((*Record)(unsafe.Pointer(unsafe.SliceData(b))), 1<<pageBits), free
}

// newSlots returns n zeroed index entries and their free func. Small
// tables stay on the Go heap.
func newSlots(n int) ([]entry, func()) {
	size := n * int(unsafe.Sizeof(entry{}))
	if size < 1<<20 {
		return make([]entry, n), func() {}
	}
	b, free := allocHuge(size)
	return unsafe.Slice((*entry)(unsafe.Pointer(unsafe.SliceData(b))), n), free
}
