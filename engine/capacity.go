package engine

import (
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Bounded memory. Without a cap, every distinct credential gets a record,
// and anyone who can send requests can make up credentials: a flood of
// random tokens would grow the engine without end. With Options.MaxCredentials,
// the engine holds at most that many records, and decides who gets one by
// admission (TinyLFU, Einziger et al. 2017):
//
//   - While the engine is full, every request counts towards its credential's
//     frequency in a count-min sketch that ages (halves) as it fills.
//   - A credential without a record is compared with a victim: of eight
//     records sampled at random, the one of least value — its credential's
//     recent frequency, plus a bonus once its profile is established: above
//     any newcomer's frequency while it was used within the last day, half
//     that while it was used within the dormancy period (a quiet credential
//     keeps its history against one-off floods, but a newcomer seen often
//     can take its place), none after. Established profiles that stopped
//     being used therefore make room in the end: a table full of them does
//     not lock new credentials out.
//   - It is admitted, replacing the victim, only if it has been seen more
//     often recently than the victim is worth. Otherwise it is judged on an
//     empty profile that is not kept: a stream of one-off credentials never
//     displaces anything, while a new credential that keeps coming back
//     gets in within a few requests.
//
// Nothing of this runs until the engine is full.

const (
	sampleSize       = 8
	establishedBonus = 16 // above the sketch's largest count: an active established profile outranks any newcomer
	activeWithin     = 24 * 3600 * 1e9
	quietWithin      = 30 * 24 * 3600 * 1e9
	establishedAt    = 20 // events after which a profile counts as established for eviction
	sketchRows       = 4
	noRecord         = ^uint32(0) // lookupHash: judge on the scratch record
)

// sketch is a count-min sketch of 4-bit saturating counters (one byte each
// here: simplicity over half the memory), reset by halving.
type sketch struct {
	counts      []uint8
	mask        uint64
	adds, reset int
}

func newSketch(capacity int) sketch {
	w := 1 << bits.Len(uint(max(capacity, 64)-1)) // ≥ capacity, a power of two
	return sketch{counts: make([]uint8, sketchRows*w), mask: uint64(w - 1), reset: 10 * capacity}
}

func (s *sketch) slot(h uint64, row int) int {
	// Independent-enough positions per row from one 64-bit hash.
	x := (h ^ uint64(row)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	x ^= x >> 31
	return row*int(s.mask+1) + int(x&s.mask)
}

// add counts one occurrence of h.
func (s *sketch) add(h uint64) {
	for r := range sketchRows {
		if c := &s.counts[s.slot(h, r)]; *c < 15 {
			*c++
		}
	}
	if s.adds++; s.adds >= s.reset {
		for i := range s.counts {
			s.counts[i] >>= 1
		}
		s.adds /= 2
	}
}

// estimate returns h's recent frequency (an upper bound).
func (s *sketch) estimate(h uint64) int {
	m := uint8(15)
	for r := range sketchRows {
		m = min(m, s.counts[s.slot(h, r)])
	}
	return int(m)
}

// full reports whether the engine is at its cap.
func (e *Engine) full() bool { return e.opts.MaxCredentials > 0 && int(e.n) >= e.opts.MaxCredentials }

// admit decides whether the credential hashed h (sketch hash sh), which has
// no record, gets one, evicting a victim; it returns the record number or
// noRecord.
func (e *Engine) admit(h, sh uint64, now int64) uint32 {
	e.sk.add(sh)
	want := e.sk.estimate(sh)
	victim, worth := noRecord, 1<<30
	for range sampleSize {
		i := uint32(e.rng.next() % uint64(e.n))
		v := e.sk.estimate(e.owner(i).sk)
		if p := &e.record(i).prof; p.Events() >= establishedAt {
			switch idle := now - p.LastSeen(); {
			case idle < activeWithin:
				v += establishedBonus
			case idle < quietWithin:
				v += establishedBonus / 2
			}
		}
		if v < worth {
			victim, worth = i, v
		}
	}
	if want <= worth {
		e.rejected++
		return noRecord
	}
	e.index.remove(e.owner(victim).h)
	e.evictions++
	*e.record(victim) = Record{}
	e.index.insert(h, victim)
	e.setOwner(victim, owner{h: h, sk: sh})
	if e.st != nil {
		e.st.setKey(victim, h)
	}
	return victim
}

// owner identifies a record's credential: its index hash (keyed per
// process) and its sketch hash (a fixed function of the token id, so that
// admissions, and so decisions, are the same in every run; token ids are
// keyed fingerprints, which nobody can aim at a chosen sketch cell).
type owner struct{ h, sk uint64 }

func sketchHash(tokenID string) uint64 { return xxhash.Sum64String(tokenID) }

func (e *Engine) owner(i uint32) owner       { return e.owners[i>>pageBits][i&(1<<pageBits-1)] }
func (e *Engine) setOwner(i uint32, o owner) { e.owners[i>>pageBits][i&(1<<pageBits-1)] = o }

// splitmix is a small deterministic generator: the same events give the
// same evictions, so decisions stay reproducible.
type splitmix struct{ s uint64 }

func (r *splitmix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Evictions returns how many credentials lost their record to a more
// frequent one, and Rejected how many requests of credentials without a
// record were judged on an empty profile because the engine was full.
func (e *Engine) Evictions() uint64 { return e.evictions }

// Rejected: see Evictions.
func (e *Engine) Rejected() uint64 { return e.rejected }
