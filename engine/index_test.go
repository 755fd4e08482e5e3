package engine

import (
	"math/rand/v2"
	"testing"
)

// TestIndexRemove: random inserts and removes, with hashes crowded into a
// few home slots so that probe runs wrap and overlap, against a map.
func TestIndexRemove(t *testing.T) {
	x := newIndex()
	defer x.release()
	model := map[uint64]uint32{}
	r := rand.New(rand.NewPCG(3, 4))
	var keys []uint64
	for step := range 40_000 {
		if len(keys) > 0 && r.IntN(3) == 0 {
			k := r.IntN(len(keys))
			h := keys[k]
			keys[k] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
			x.remove(h)
			delete(model, h)
		} else {
			h := r.Uint64()
			if r.IntN(2) == 0 {
				h = h&^0xffff | uint64(r.IntN(8)) | 0xfff0 // a few crowded home slots near the table's end
			}
			if _, ok := model[h]; ok || fixHash(h) != h {
				continue
			}
			x.insert(h, uint32(step))
			model[h] = uint32(step)
			keys = append(keys, h)
		}
		if step%4999 == 0 {
			for h, rec := range model {
				if got, ok := x.find(h); !ok || got != rec {
					t.Fatalf("step %d: find(%x) = %d, %v; want %d", step, h, got, ok, rec)
				}
			}
			if x.n != len(model) {
				t.Fatalf("step %d: n %d, model %d", step, x.n, len(model))
			}
		}
	}
	for _, h := range keys {
		x.remove(h)
	}
	for i, e := range x.slots {
		if e.h != 0 {
			t.Fatalf("slot %d still holds %x", i, e.h)
		}
	}
}
