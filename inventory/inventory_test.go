package inventory

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/policy"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func use(id string, at time.Time, mod ...func(*Use)) *Use {
	u := &Use{TokenID: id, ClientID: "chatsync", Kind: "bearer", Time: at.UnixNano(), Endpoint: "GET /v1/changes",
		ASN: 16509, Country: "US", Granted: "changes:read contacts:read admin:write", Used: "changes:read", Risk: 0.5}
	for _, f := range mod {
		f(u)
	}
	return u
}

func get(t *testing.T, inv Inventory, id string) Entry {
	t.Helper()
	e, ok, err := inv.Get(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("Get(%s) = ok %v, err %v", id, ok, err)
	}
	return e
}

func TestObserve(t *testing.T) {
	m, err := NewMemory(Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(use("tk_a", t0.Add(time.Minute)))
	m.Observe(use("tk_a", t0, func(u *Use) { // out of order: first seen moves back, latest values stay
		u.ClientID, u.Endpoint, u.ASN, u.Country, u.Used = "old", "POST /v1/export", 14061, "DE", "contacts:read"
		u.Risk, u.Level, u.Signal = 8, policy.StepUp, "new_network"
	}))
	m.Observe(use("tk_a", t0.Add(2*time.Minute), func(u *Use) { u.Binding, u.Granted = DPoP, "changes:read" }))
	m.Observe(use("tk_a", t0.Add(3*time.Minute), func(u *Use) { u.BindingFailure = "invalid_dpop_proof"; u.Level = policy.Block }))
	m.Observe(&Use{}) // no token id: ignored

	e := get(t, m, "tk_a")
	e.Sort()
	if e.Requests != 4 || !e.FirstSeen.Equal(t0) || !e.LastSeen.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("requests %d first %v last %v", e.Requests, e.FirstSeen, e.LastSeen)
	}
	if e.ClientID != "chatsync" || strings.Join(e.Granted, " ") != "admin:write changes:read contacts:read" {
		t.Errorf("client %q granted %q: want the latest request's", e.ClientID, e.Granted)
	}
	if e.MaxRisk != 8 || !e.MaxRiskAt.Equal(t0) {
		t.Errorf("max risk %v at %v", e.MaxRisk, e.MaxRiskAt)
	}
	if e.Decisions != (Decisions{Allow: 2, StepUp: 1, Block: 1}) {
		t.Errorf("decisions %+v", e.Decisions)
	}
	if len(e.Endpoints) != 2 || e.Endpoints[0].Value != "GET /v1/changes" || e.Endpoints[0].Requests != 3 {
		t.Errorf("endpoints %+v", e.Endpoints)
	}
	if len(e.ASNs) != 2 || e.ASNs[0].Value != "16509" || e.ASNs[1] != (Count{Value: "14061", Requests: 1, First: t0, Last: t0}) {
		t.Errorf("asns %+v", e.ASNs)
	}
	if b := e.Binding; b.Unbound != 2 || b.DPoP != 1 || b.Failures != 1 || b.LastFailure != "invalid_dpop_proof" || b.Status() != "mixed" {
		t.Errorf("binding %+v status %q", b, b.Status())
	}
	if len(e.History) != 2 || e.History[0].Signal != "new_network" || e.History[1].Level != policy.Block {
		t.Errorf("history %+v", e.History)
	}
}

func TestBounds(t *testing.T) {
	m, _ := NewMemory(Options{})
	for i := range 3 * MaxValues {
		m.Observe(use("tk_b", t0.Add(time.Duration(i)*time.Second), func(u *Use) {
			u.Endpoint = fmt.Sprintf("GET /v1/e%d", i)
			u.Level, u.Risk = policy.Throttle, float64(i)
		}))
	}
	e := get(t, m, "tk_b")
	if len(e.Endpoints) != MaxValues || e.Other.Endpoints != 2*MaxValues {
		t.Errorf("endpoints kept %d, other %d", len(e.Endpoints), e.Other.Endpoints)
	}
	if len(e.History) != MaxHistory || e.History[MaxHistory-1].Risk != float64(3*MaxValues-1) {
		t.Errorf("history %d entries, last %+v", len(e.History), e.History[len(e.History)-1])
	}
}

// TestFloodKeepsEstablished: a flood of one-off credentials past
// MaxEntries evicts its own kind, not credentials in real use.
func TestFloodKeepsEstablished(t *testing.T) {
	m, _ := NewMemory(Options{MaxEntries: 6400})
	for i := range 640 {
		for j := range 20 {
			m.Observe(use(fmt.Sprintf("tk_real%d", i), t0.Add(time.Duration(j)*time.Minute)))
		}
	}
	for i := range 100_000 {
		m.Observe(use(fmt.Sprintf("tk_flood%d", i), t0))
	}
	kept := 0
	for i := range 640 {
		if _, ok, _ := m.Get(context.Background(), fmt.Sprintf("tk_real%d", i)); ok {
			kept++
		}
	}
	if kept != 640 {
		t.Errorf("kept %d of 640 established credentials", kept)
	}
	st := m.Stats()
	if st.Entries > 6400 || st.Evicted < 90_000 {
		t.Errorf("stats %+v", st)
	}
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.jsonl")
	m, err := NewMemory(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		m.Observe(use(fmt.Sprintf("tk_%d", i%7), t0.Add(time.Duration(i)*time.Minute), func(u *Use) {
			if i%3 == 0 {
				u.Level, u.Signal = policy.Throttle, "rate"
			}
		}))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2, err := NewMemory(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Collect(context.Background(), m)
	got, _ := Collect(context.Background(), m2)
	if fmt.Sprint(want) != fmt.Sprint(got) || len(got) != 7 {
		t.Errorf("reloaded inventory differs:\n%v\n%v", want, got)
	}
	// A bad line loses that line only, and says where it is.
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines[2] = `{"token_id": 12}`
	lines = append(lines, `{"requests": 3}`, "not json", strings.Repeat("x", maxLine+10))
	os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600)
	m3, err := NewMemory(Options{Path: path})
	if err == nil || m3 == nil {
		t.Fatalf("NewMemory on a damaged file: %v, %v", m3, err)
	}
	for _, want := range []string{"line 3: json", "line 8: no token_id", "line 9: invalid character", "line 10: longer than"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if st := m3.Stats(); st.Entries != 6 {
		t.Errorf("kept %d entries, want 6", st.Entries)
	}
}

func TestShared(t *testing.T) {
	sink, _ := NewMemory(Options{})
	a, err := NewShared(SharedOptions{Sink: sink, Every: time.Hour, Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewShared(SharedOptions{Sink: sink, Every: time.Hour})
	var wg sync.WaitGroup
	for r, inv := range []*Shared{a, b} {
		wg.Go(func() {
			for i := range 1000 {
				inv.Observe(use(fmt.Sprintf("tk_%d", i%10), t0.Add(time.Duration(2*i+r)*time.Second)))
			}
		})
	}
	wg.Wait()
	if _, ok, _ := a.Get(context.Background(), "tk_1"); ok {
		t.Error("an entry was in the sink before any merge")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := get(t, b, "tk_3")
	if e.Requests != 200 || !e.FirstSeen.Equal(t0.Add(6*time.Second)) || !e.LastSeen.Equal(t0.Add(1987*time.Second)) {
		t.Errorf("merged entry: requests %d first %v last %v", e.Requests, e.FirstSeen, e.LastSeen)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// partialSink applies each entry of a batch at most once, as the Redis
// sink does, and fails its first merges after applying part of them (a
// timeout after the server did the work).
type partialSink struct {
	*Memory
	failures int
	applied  map[string]bool // batch + token id
	batches  []string
}

func (f *partialSink) Merge(ctx context.Context, batch string, es []*Entry) error {
	f.batches = append(f.batches, batch)
	for i, e := range es {
		if f.failures > 0 && i == len(es)/2 {
			f.failures--
			return errors.New("i/o timeout")
		}
		if k := batch + "/" + e.TokenID; !f.applied[k] {
			f.applied[k] = true
			f.Memory.Merge(ctx, batch, []*Entry{e})
		}
	}
	return nil
}

// TestSharedRetries: merges that fail (after the sink applied part of
// them) are retried as they were, before newer ones; nothing is lost or
// counted twice.
func TestSharedRetries(t *testing.T) {
	mem, _ := NewMemory(Options{})
	sink := &partialSink{Memory: mem, failures: 2, applied: map[string]bool{}}
	s, _ := NewShared(SharedOptions{Sink: sink, Every: time.Hour, Batch: 4})
	defer s.Close()
	for i := range 10 {
		s.Observe(use(fmt.Sprint("tk_", i), t0))
	}
	if err := s.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "i/o timeout") {
		t.Fatalf("Flush = %v", err)
	}
	for i := range 10 {
		s.Observe(use(fmt.Sprint("tk_", i), t0.Add(time.Second)))
	}
	if err := s.Flush(context.Background()); err == nil {
		t.Fatal("the second failure was not reported")
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if e := get(t, mem, fmt.Sprint("tk_", i)); e.Requests != 2 {
			t.Errorf("tk_%d: %d requests, want 2", i, e.Requests)
		}
	}
	// The first batch was sent three times under one name, before the rest.
	if b := sink.batches; len(b) < 3 || b[0] != b[1] || b[1] != b[2] {
		t.Errorf("batches sent: %v", b)
	}
	if st := s.Stats(); st.FlushErrors != 2 || st.Lost != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReports(t *testing.T) {
	now := t0.Add(60 * 24 * time.Hour)
	m, _ := NewMemory(Options{})
	m.Observe(use("tk_old", t0))                                     // 60 days idle
	m.Observe(use("tk_new", now.Add(-time.Hour)))                    // active
	m.Observe(use("tk_mid", now.Add(-31*24*time.Hour)))              // 31 days
	m.Observe(use("tk_other", now, func(u *Use) { u.Granted = "" })) // scopes unknown
	m.Observe(use("tk_new", now.Add(-time.Minute), func(u *Use) { u.Used = "contacts:read" }))
	entries, err := Collect(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	d := FindDormant(entries, now, 30*24*time.Hour)
	if len(d) != 2 || d[0].TokenID != "tk_old" || d[0].IdleDays != 60 || d[1].TokenID != "tk_mid" {
		t.Errorf("dormant %+v", d)
	}
	rep := UnusedScopes(entries, now, 7*24*time.Hour)
	if len(rep.Credentials) != 3 {
		t.Fatalf("credentials %+v", rep.Credentials)
	}
	first := rep.Credentials[0] // the old ones: nothing used in the window
	if first.TokenID != "tk_mid" || len(first.Unused) != 3 {
		t.Errorf("first %+v", first)
	}
	var nw CredentialScopes
	for _, c := range rep.Credentials {
		if c.TokenID == "tk_new" {
			nw = c
		}
	}
	if strings.Join(nw.Unused, " ") != "admin:write" || len(nw.Used) != 2 || !nw.ObservedFrom.Equal(now.Add(-time.Hour)) {
		t.Errorf("tk_new %+v", nw)
	}
	if len(rep.Clients) != 1 || strings.Join(rep.Clients[0].Unused, " ") != "admin:write" || rep.Clients[0].Credentials != 3 {
		t.Errorf("clients %+v", rep.Clients)
	}
}

func TestCSV(t *testing.T) {
	m, _ := NewMemory(Options{})
	m.Observe(use("tk_a", t0, func(u *Use) { u.ClientID = "=HYPERLINK(\"http://evil\")" }))
	entries, _ := Collect(context.Background(), m)
	var buf bytes.Buffer
	if err := WriteCSV(&buf, entries); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 2 || len(rows[1]) != len(CSVHeader) {
		t.Fatalf("rows %v err %v", rows, err)
	}
	if rows[1][1] != `'=HYPERLINK("http://evil")` || rows[1][16] != "GET /v1/changes:1" || rows[1][19] != "unbound" {
		t.Errorf("row %q", rows[1])
	}
	buf.Reset()
	m.Observe(use("tk_b", t0, func(u *Use) { u.ClientID = "bad\x1b[31m" }))
	entries, _ = Collect(context.Background(), m)
	WriteTable(&buf, entries, t0.Add(time.Hour))
	if strings.Contains(buf.String(), "\x1b") || !strings.Contains(buf.String(), "bad?[31m") {
		t.Errorf("table:\n%s", buf.String())
	}
	buf.Reset()
	WriteEntry(&buf, entries[0], t0.Add(time.Hour))
	if !strings.Contains(buf.String(), "scopes granted  admin:write changes:read contacts:read") {
		t.Errorf("entry:\n%s", buf.String())
	}
}

func BenchmarkObserve(b *testing.B) {
	for _, n := range []int{1, 1000, 100_000} {
		b.Run(fmt.Sprint("credentials=", n), func(b *testing.B) {
			m, _ := NewMemory(Options{})
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("tk_%032x", i)
				m.Observe(use(ids[i], t0))
			}
			u := use("", t0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				u.TokenID = ids[i%n]
				u.Time = t0.Add(time.Duration(i) * time.Millisecond).UnixNano()
				m.Observe(u)
			}
		})
	}
}

func TestScopeMap(t *testing.T) {
	m, err := NewScopeMap(map[string]string{
		"GET /v1/contacts":  "contacts:read",
		"POST /v1/contacts": "contacts:write",
		"/v1/contacts/bulk": "contacts:admin",
		"/v1/":              "api",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/v1/contacts", "contacts:read"},
		{"GET", "/v1/contacts/42", "contacts:read"},
		{"POST", "/v1/contacts", "contacts:write"},
		{"DELETE", "/v1/contacts/42", "api"},
		{"GET", "/v1/contacts/bulk/7", "contacts:admin"},
		{"GET", "/v1/contacts-archive", "api"},
		{"GET", "/v2/x", ""},
	} {
		if got := m.Lookup(c.method, c.path); got != c.want {
			t.Errorf("Lookup(%s %s) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
	if (*ScopeMap)(nil).Lookup("GET", "/") != "" {
		t.Error("a nil map mapped something")
	}
	_, err = NewScopeMap(map[string]string{"get /x": "a", "GET x": "b", "/y": "two words", "/z": ""})
	for _, want := range []string{`"get /x": the method must be upper case`, `"GET x": want`, `"/y": scope "two words"`, `"/z": scope ""`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
