package engine

// index maps a credential's 64-bit keyed hash to its record number. It is
// hand-written rather than a Go map because ProcessBatch needs to know
// where an entry lives before looking it up, to load that memory early:
// with linear probing, the entry is (almost always) in the cache line at
// slot(h). Load factor stays at or below 1/2.
type index struct {
	slots []entry
	free  func()
	mask  uint64
	n     int
}

type entry struct {
	h   uint64 // 0 marks an empty slot; hashes of 0 are stored as 1
	rec uint32
}

func newIndex() index {
	const initial = 1 << 10
	slots, free := newSlots(initial)
	return index{slots: slots, free: free, mask: initial - 1}
}

// release returns the index's memory.
func (x *index) release() { x.free() }

func fixHash(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// slotAddr returns the entry where a search for h starts.
func (x *index) slotAddr(h uint64) *entry { return &x.slots[fixHash(h)&x.mask] }

// find returns h's record number, or false.
func (x *index) find(h uint64) (uint32, bool) {
	h = fixHash(h)
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		e := &x.slots[i]
		if e.h == h {
			return e.rec, true
		}
		if e.h == 0 {
			return 0, false
		}
	}
}

// insert adds h → rec; h must not be present.
func (x *index) insert(h uint64, rec uint32) {
	if (x.n+1)*2 > len(x.slots) {
		x.grow()
	}
	h = fixHash(h)
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		if e := &x.slots[i]; e.h == 0 {
			*e = entry{h: h, rec: rec}
			x.n++
			return
		}
	}
}

// remove deletes h, which must be present, shifting later entries of its
// probe run back so that no search stops early (no tombstones).
func (x *index) remove(h uint64) {
	h = fixHash(h)
	i := h & x.mask
	for x.slots[i].h != h {
		i = (i + 1) & x.mask
	}
	for {
		x.slots[i] = entry{}
		j := i
		for {
			j = (j + 1) & x.mask
			e := x.slots[j]
			if e.h == 0 {
				x.n--
				return
			}
			// e may move to the hole at i if its home slot is not in (i, j].
			home := e.h & x.mask
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				x.slots[i] = e
				i = j
				break
			}
		}
	}
}

func (x *index) grow() {
	old, oldFree := x.slots, x.free
	x.slots, x.free = newSlots(len(old) * 2)
	x.mask = uint64(len(x.slots) - 1)
	x.n = 0
	for _, e := range old {
		if e.h != 0 {
			x.insert(e.h, e.rec)
		}
	}
	oldFree()
}
