// Package inventorytest checks inventory sinks against the in-memory
// inventory: the same uses, observed through replicas that merge into the
// sink under test, must give the entries one Memory gives.
package inventorytest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/inventory"
	"github.com/vigil-sec/vigil/policy"
)

// Uses returns n uses of a few dozen credentials over a few clients:
// values past inventory.MaxValues, out-of-order times, non-allow decisions
// past MaxHistory, bindings and their failures. Times are distinct and
// whole microseconds (what a shared store keeps).
func Uses(n int, seed uint64) []inventory.Use {
	r := rand.New(rand.NewPCG(seed, 1))
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	out := make([]inventory.Use, n)
	for i := range out {
		cred := r.IntN(40)
		u := inventory.Use{
			TokenID:  fmt.Sprintf("tk_%02d", cred),
			ClientID: fmt.Sprintf("client%d", cred%4),
			Kind:     "bearer",
			// Mostly in order; one in ten up to an hour early.
			Time:     t0.Add(time.Duration(i)*time.Second - time.Duration(r.IntN(10)/9*r.IntN(3600))*time.Second + time.Duration(i)*time.Microsecond).UnixNano(),
			Endpoint: fmt.Sprintf("GET /v1/r%d", r.IntN(cred+3)),
			ASN:      uint32(16509 + r.IntN(3)),
			Country:  [...]string{"US", "DE", "BR"}[r.IntN(3)],
			Granted:  "read write admin",
			Used:     [...]string{"read", "write", ""}[r.IntN(3)],
			Risk:     float64(r.IntN(120)) / 10,
		}
		if cred%5 == 0 {
			u.Subject = fmt.Sprintf("user%d", cred)
		}
		switch {
		case u.Risk >= 10:
			u.Level, u.Signal = policy.Block, "travel, far"
		case u.Risk >= 7:
			u.Level, u.Signal = policy.StepUp, "new_network"
		case u.Risk >= 4:
			u.Level, u.Signal = policy.Throttle, "rate"
		}
		switch r.IntN(10) {
		case 0:
			u.Binding = inventory.DPoP
		case 1:
			u.Binding = inventory.MTLS
		case 2:
			u.BindingFailure = "invalid_dpop_proof"
		}
		out[i] = u
	}
	return out
}

// Replicas observes uses through n Shared inventories over sink, use i by
// replica i%n, each merging every batch uses, concurrently; then merges
// what is left (retrying a failed merge, as Shared's loop would at its next
// tick) and closes them.
func Replicas(t testing.TB, sink inventory.Sink, n, batch int, uses []inventory.Use) {
	t.Helper()
	var wg sync.WaitGroup
	for r := range n {
		s, err := inventory.NewShared(inventory.SharedOptions{Sink: sink, Every: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := r; i < len(uses); i += n {
				s.Observe(&uses[i])
				if (i/n)%batch == batch-1 {
					// A merge that fails (replicas racing on the same
					// credentials past the sink's patience) is kept and
					// retried by the next one, as Shared's own loop does.
					s.Flush(context.Background())
				}
			}
			var err error
			for range 100 {
				if err = s.Flush(context.Background()); err == nil {
					break
				}
			}
			if err != nil {
				t.Error(err)
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// Reference is what one Memory makes of uses.
func Reference(t testing.TB, uses []inventory.Use) []inventory.Entry {
	m, err := inventory.NewMemory(inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uses {
		m.Observe(&uses[i])
	}
	es, err := inventory.Collect(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// Equal fails t unless got and want hold the same entries. Value lists
// are compared in Sort order; a value past MaxValues may be another one
// when merges arrive in another order, so lists at the bound are compared
// by their total only. Histories are compared as the latest MaxHistory.
func Equal(t testing.TB, want, got []inventory.Entry) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := normal(want[i]), normal(got[i])
		wb, _ := json.Marshal(w)
		gb, _ := json.Marshal(g)
		if string(wb) != string(gb) {
			t.Fatalf("entry %s differs:\n got %s\nwant %s", want[i].TokenID, gb, wb)
		}
	}
}

func normal(e inventory.Entry) inventory.Entry {
	e = e.Clone()
	e.Sort()
	trunc := func(t *time.Time) { *t = t.Truncate(time.Microsecond) }
	trunc(&e.FirstSeen)
	trunc(&e.LastSeen)
	trunc(&e.MaxRiskAt)
	trunc(&e.Binding.LastFailureAt)
	for _, cs := range [...]*[]inventory.Count{&e.Used, &e.Endpoints, &e.ASNs, &e.Countries} {
		for i := range *cs {
			trunc(&(*cs)[i].First)
			trunc(&(*cs)[i].Last)
		}
	}
	for i := range e.History {
		trunc(&e.History[i].Time)
	}
	o := &e.Other
	for _, x := range [...]struct {
		cs    *[]inventory.Count
		other *uint64
	}{{&e.Used, &o.Used}, {&e.Endpoints, &o.Endpoints}, {&e.ASNs, &o.ASNs}, {&e.Countries, &o.Countries}} {
		if len(*x.cs) == inventory.MaxValues || *x.other > 0 {
			var total uint64
			for _, c := range *x.cs {
				total += c.Requests
			}
			*x.cs = []inventory.Count{{Value: "(at the bound)", Requests: total + *x.other}}
			*x.other = 0
		}
	}
	return e
}
