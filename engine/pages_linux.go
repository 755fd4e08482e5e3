package engine

import (
	"syscall"
	"unsafe"
)

// newPage returns a page of 4096 zeroed records (2 MiB). On Linux it is
// mapped outside the Go heap and advised to use a transparent huge page:
// one TLB entry then covers 4096 credentials instead of eight, which saves
// a page walk on most events once profiles outgrow the cache. Records hold
// no Go pointers, so the garbage collector need not see them. Pages live as
// long as the process's engines; Engine.Close returns them.
func newPage() ([]record, func()) {
	const size = (1 << pageBits) * int(unsafe.Sizeof(record{}))
	const huge = 2 << 20
	// Map twice the size so a 2 MiB-aligned range fits inside.
	mem, err := syscall.Mmap(-1, 0, size+huge, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]record, 1<<pageBits), func() {}
	}
	off := 0
	if rem := uintptr(unsafe.Pointer(&mem[0])) % huge; rem != 0 {
		off = int(huge - rem)
	}
	aligned := mem[off : off+size]
	_ = syscall.Madvise(aligned, 14) // MADV_HUGEPAGE; only a hint
	recs := unsafe.Slice((*record)(unsafe.Pointer(&aligned[0])), 1<<pageBits)
	return recs, func() { _ = syscall.Munmap(mem) }
}
