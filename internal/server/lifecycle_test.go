package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/action"
	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/geoip/geoiptest"
	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/inventory"
)

// jwtFor is an access token as an IdP would issue it (vigil reads its
// claims; the API verifies it).
func jwtFor(sub, client, scope string) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": sub, "client_id": client, "scope": scope, "jti": "jti-" + sub})
	return enc([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." + enc(claims) + "." + enc([]byte("sig-"+sub))
}

// vigilCLI runs the vigil command in-process and returns its output.
func vigilCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(args, cli.IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		LookupEnv: func(string) (string, bool) { return "", false }})
	return out.String(), errb.String(), code
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// TestInventory: requests through forward-auth build the inventory; the
// admin API and `vigil tokens` show it (list, show, export, scopes,
// dormant, zones), and a request outside its client's network zone is
// refused by rule, named in the reasons.
func TestInventory(t *testing.T) {
	city, asn := geoiptest.Write(t, t.TempDir(),
		[]geoiptest.CityNet{{CIDR: "198.51.100.0/24", Country: "US", Lat: 40.7, Lon: -74}, {CIDR: "203.0.113.0/24", Country: "DE", Lat: 50.1, Lon: 8.7}},
		[]geoiptest.ASNNet{{CIDR: "198.51.100.0/24", ASN: 64500, Org: "Shop ISP"}, {CIDR: "203.0.113.0/24", ASN: 64501, Org: "Hosting"}})
	s, logs := newServer(t, `
geoip: {city_db: `+city+`, asn_db: `+asn+`}
lifecycle:
  scopes: {"GET /v1/orders": orders:read, "POST /v1/orders": orders:write}
  zones:
    - {name: shop-office, scope: client, subject: shop, effect: allow, cidrs: [198.51.100.0/24], action: block}
`, server.Options{})
	ls := run(t, s)
	base, admin := "http://"+ls.HTTP.String(), "http://"+ls.Admin.String()
	shop := jwtFor("svc-shop", "shop", "orders:read orders:write admin")
	crm := jwtFor("svc-crm", "crm", "contacts:read")
	for range 5 {
		if r := ask(t, base, shop, "okhttp/4.12.0", "198.51.100.7", "/v1/orders?page=2"); r.StatusCode != 200 {
			t.Fatalf("owner's request: %d", r.StatusCode)
		}
	}
	ask(t, base, crm, "curl/8.5.0", "203.0.113.9", "/v1/contacts")
	// The shop's token from outside the shop's zone: refused by rule.
	if r := ask(t, base, shop, "okhttp/4.12.0", "203.0.113.9", "/v1/orders"); r.StatusCode != 403 {
		t.Errorf("request outside the zone: %d, want 403", r.StatusCode)
	}

	var list server.TokenList
	if code := getJSON(t, admin+server.PathTokens+"?sort=requests", &list); code != 200 || list.Total != 2 {
		t.Fatalf("GET /v1/tokens: %d, %+v", code, list)
	}
	e := list.Entries[0]
	if e.ClientID != "shop" || e.Subject != "svc-shop" || e.Requests != 6 || e.Decisions.Block != 1 || e.Kind != "bearer" {
		t.Errorf("shop entry %+v", e)
	}
	if len(e.Used) != 1 || e.Used[0] != (inventory.Count{Value: "orders:read", Requests: 6, First: e.Used[0].First, Last: e.Used[0].Last}) {
		t.Errorf("scopes used %+v", e.Used)
	}
	if len(e.ASNs) != 2 || e.ASNs[0].Value != "64500" || e.ASNs[0].Requests != 5 || len(e.Countries) != 2 || e.Countries[1].Value != "DE" {
		t.Errorf("networks: ASNs %+v countries %+v", e.ASNs, e.Countries)
	}
	if len(e.History) != 1 || e.History[0].Signal != "network_zone" || e.Binding.Status() != "unbound" {
		t.Errorf("history %+v binding %+v", e.History, e.Binding)
	}
	id := e.TokenID
	var recent struct {
		Recent []struct {
			Reasons []struct{ Signal, Detail string } `json:"reasons"`
		} `json:"recent_decisions"`
	}
	getJSON(t, admin+server.PathCredentials+id, &recent)
	if len(recent.Recent) == 0 || len(recent.Recent[0].Reasons) == 0 || !strings.Contains(recent.Recent[0].Reasons[0].Detail, `"shop-office"`) {
		t.Errorf("the zone violation is not explained: %+v", recent)
	}

	out, errs, code := vigilCLI(t, "", "tokens", "list", "--admin", admin)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "GET /v1/orders") || !strings.Contains(out, "unbound") {
		t.Errorf("tokens list: %d\n%s%s", code, out, errs)
	}
	out, errs, code = vigilCLI(t, "", "tokens", "show", id, "--admin", admin)
	if code != 0 || !strings.Contains(out, "scopes granted  admin orders:read orders:write") || !strings.Contains(out, "network_zone") {
		t.Errorf("tokens show: %d\n%s%s", code, out, errs)
	}
	out, _, code = vigilCLI(t, "", "tokens", "export", "--admin", admin)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 3 || !slices.Equal(rows[0], inventory.CSVHeader) {
		t.Errorf("tokens export: %d %v\n%s", code, err, out)
	}
	out, _, code = vigilCLI(t, "", "tokens", "scopes", "--format", "json", "--admin", admin)
	var rep inventory.ScopeReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("tokens scopes: %d %v\n%s", code, err, out)
	}
	var shopScopes *inventory.CredentialScopes
	for i := range rep.Credentials {
		if rep.Credentials[i].TokenID == id {
			shopScopes = &rep.Credentials[i]
		}
	}
	if shopScopes == nil || strings.Join(shopScopes.Unused, " ") != "admin orders:write" {
		t.Errorf("unused scopes %+v", rep.Credentials)
	}
	out, _, code = vigilCLI(t, "", "tokens", "dormant", "--after", "1h", "--admin", admin)
	if code != 0 || !strings.Contains(out, "0 credentials unused for 1h0m0s or more") {
		t.Errorf("tokens dormant: %d\n%s", code, out)
	}
	out, errs, code = vigilCLI(t, "", "tokens", "zones", "--min-requests", "1", "--admin", admin)
	if code != 0 || !strings.Contains(out, "learned-client-shop") || !strings.Contains(out, "64500") {
		t.Errorf("tokens zones: %d\n%s%s", code, out, errs)
	}
	if code := getJSON(t, admin+server.PathTokens+"/tk_00000000000000000000000000000000", nil); code != 404 {
		t.Errorf("unknown credential: %d", code)
	}
	var top server.TokenList
	for _, q := range []string{"?sort=requests&limit=1", "?sort=token_id&limit=1"} {
		getJSON(t, admin+server.PathTokens+q, &top)
		want := list.Entries[0].TokenID
		if q == "?sort=token_id&limit=1" {
			want = min(list.Entries[0].TokenID, list.Entries[1].TokenID)
		}
		if top.Total != 2 || len(top.Entries) != 1 || top.Entries[0].TokenID != want {
			t.Errorf("%s: total %d, entries %+v", q, top.Total, top.Entries)
		}
	}
	if code := getJSON(t, admin+server.PathTokens+"?sort=nonsense", nil); code != 400 {
		t.Errorf("bad sort: %d", code)
	}
	if strings.Contains(logs.String(), shop) {
		t.Error("a raw token is in the logs")
	}
}

// oauthServer is an authorization server's RFC 7009 revocation endpoint
// with client authentication, and a rotation webhook receiver that checks
// signatures.
type oauthServer struct {
	mu       sync.Mutex
	revoked  []string
	webhooks []action.Event
	badSigs  int
	// introspected counts introspection calls.
	introspected int
	srv          *httptest.Server
}

const (
	oauthSecret = "oauth-client-secret-for-vigil"
	hookKey     = "webhook-hmac-key-0123456789"
)

func newOAuthServer(t *testing.T) *oauthServer {
	o := &oauthServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		id, sec, ok := r.BasicAuth()
		if !ok || id != "vigil" || sec != oauthSecret {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		r.ParseForm()
		o.mu.Lock()
		o.revoked = append(o.revoked, r.PostForm.Get("token"))
		o.mu.Unlock()
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		id, sec, ok := r.BasicAuth()
		if !ok || id != "vigil" || sec != oauthSecret {
			w.WriteHeader(401)
			return
		}
		r.ParseForm()
		o.mu.Lock()
		o.introspected++
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.PostForm.Get("token") {
		case "opaque-live-token-1234567890":
			io.WriteString(w, `{"active":true,"client_id":"billing","sub":"svc-billing","scope":"invoices:read invoices:write"}`)
		default:
			io.WriteString(w, `{"active":false}`)
		}
	})
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := action.VerifySignature([]byte(hookKey), r.Header.Get("Vigil-Signature"), b, time.Now(), time.Minute); err != nil {
			o.mu.Lock()
			o.badSigs++
			o.mu.Unlock()
			w.WriteHeader(401)
			return
		}
		var ev action.Event
		json.Unmarshal(b, &ev)
		o.mu.Lock()
		o.webhooks = append(o.webhooks, ev)
		o.mu.Unlock()
	})
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

func (o *oauthServer) wait(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		o.mu.Lock()
		ok := done()
		o.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newLifecycleServer(t *testing.T, yaml string) (*server.Server, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig+yaml), "lifecycle.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := env(map[string]string{"VIGIL_FINGERPRINT_KEY": "0123456789abcdef0123456789abcdef", "OAUTH_SECRET": oauthSecret, "HOOK_KEY": hookKey})
	s, err := server.New(context.Background(), cfg, e, slog.New(slog.NewTextHandler(&logs, nil)), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, &logs
}

// TestAutomatedResponse: a credential blocked inline (here: outside its
// network zone) is revoked at once: denylisted on every replica, revoked
// at the IdP with RFC 7009 (the raw token, kept in memory for this only),
// and a signed webhook asks for its rotation; the audit log records each
// step and never the token. An operator revokes another with `vigil
// tokens revoke --token-stdin`; a repeat is not run twice.
func TestAutomatedResponse(t *testing.T) {
	o := newOAuthServer(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	s, logs := newLifecycleServer(t, fmt.Sprintf(`
lifecycle:
  zones:
    - {name: shop-office, scope: client, subject: shop, effect: allow, cidrs: [198.51.100.0/24], action: block}
  response:
    on_block: true
    steps: [denylist, revoke, webhook]
    audit_log: %q
    oauth: {revocation_url: %q, client_id: vigil, client_secret_env: OAUTH_SECRET}
    webhook: {url: %q, secret_env: HOOK_KEY}
`, audit, o.srv.URL+"/revoke", o.srv.URL+"/hook"))
	ls := run(t, s)
	base, admin := "http://"+ls.HTTP.String(), "http://"+ls.Admin.String()
	stolen := jwtFor("svc-shop", "shop", "orders:read")
	if r := ask(t, base, stolen, "python-requests/2.32", "203.0.113.9", "/v1/orders"); r.StatusCode != 403 {
		t.Fatalf("request outside the zone: %d", r.StatusCode)
	}
	o.wait(t, "revocation and webhook", func() bool { return len(o.revoked) == 1 && len(o.webhooks) == 1 })
	if o.revoked[0] != stolen {
		t.Error("the IdP was not sent the credential")
	}
	id := o.webhooks[0].TokenID
	if o.webhooks[0].Type != action.EventRevoke || !strings.HasPrefix(id, "tk_") || o.webhooks[0].ClientID != "shop" || o.badSigs != 0 {
		t.Errorf("webhook %+v, bad signatures %d", o.webhooks[0], o.badSigs)
	}
	// Denylisted: refused from the owner's own network now too.
	deadline := time.Now().Add(20 * time.Second)
	for ask(t, base, stolen, "okhttp/4.12.0", "198.51.100.7", "/v1/orders").StatusCode != 403 {
		if time.Now().After(deadline) {
			t.Fatal("the credential was not denylisted")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// An operator revokes another credential, giving its raw token on stdin.
	other := jwtFor("svc-crm", "crm", "contacts:read")
	ask(t, base, other, "curl/8.5.0", "198.51.100.8", "/v1/contacts")
	var list server.TokenList
	getJSON(t, admin+server.PathTokens+"?client_id=crm", &list)
	if len(list.Entries) != 1 {
		t.Fatalf("crm entries %+v", list)
	}
	crmID := list.Entries[0].TokenID
	out, errs, code := vigilCLI(t, other+"\n", "tokens", "revoke", crmID, "--reason", "leaked in a CI log", "--by", "alice",
		"--steps", "revoke,webhook", "--token-stdin", "--admin", admin)
	if code != 0 || !strings.Contains(out, "act_") {
		t.Fatalf("tokens revoke: %d\n%s%s", code, out, errs)
	}
	o.wait(t, "the operator's revocation", func() bool { return len(o.revoked) == 2 && len(o.webhooks) == 2 })
	if o.revoked[1] != other {
		t.Error("the IdP was not sent the operator's credential")
	}
	out, _, _ = vigilCLI(t, other+"\n", "tokens", "revoke", crmID, "--reason", "again", "--steps", "revoke,webhook", "--token-stdin", "--admin", admin)
	if !strings.Contains(out, "already requested") {
		t.Errorf("a repeated revocation was not recognized: %s", out)
	}
	// A token whose fingerprint is not the id is refused.
	_, errs, code = vigilCLI(t, "not-the-token\n", "tokens", "revoke", crmID, "--reason", "x", "--steps", "revoke", "--token-stdin", "--admin", admin)
	if code == 0 || !strings.Contains(errs, "fingerprint is not this token_id") {
		t.Errorf("mismatched token: %d %s", code, errs)
	}
	out, _, code = vigilCLI(t, "", "tokens", "actions", "--admin", admin)
	if code != 0 || !strings.Contains(out, "steps succeeded 5, failed 0") {
		t.Errorf("tokens actions: %d\n%s", code, out)
	}

	b, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	var succeeded []string
	action.ReadAudit(bytes.NewReader(b), func(r action.Record) error {
		if r.Outcome == "succeeded" {
			succeeded = append(succeeded, r.Trigger+"/"+r.Step)
		}
		return nil
	})
	slices.Sort(succeeded)
	if want := []string{"operator/revoke", "operator/webhook", "policy/denylist", "policy/revoke", "policy/webhook"}; !slices.Equal(succeeded, want) {
		t.Errorf("audit log succeeded steps %v, want %v", succeeded, want)
	}
	for _, tok := range []string{stolen, other} {
		if bytes.Contains(b, []byte(tok)) || strings.Contains(logs.String(), tok) {
			t.Error("a raw token is in the audit log or the logs")
		}
	}
}

// TestDormantRevoked: a credential the inventory last saw 60 days ago is
// denylisted and reported to the webhook as dormant when vigil starts
// (lifecycle.dormancy.revoke), once.
func TestDormantRevoked(t *testing.T) {
	o := newOAuthServer(t)
	dir := t.TempDir()
	old := inventory.Entry{TokenID: "tk_0123456789abcdef0123456789abcdef", ClientID: "legacy-ci", Requests: 40,
		FirstSeen: time.Now().Add(-400 * 24 * time.Hour), LastSeen: time.Now().Add(-60 * 24 * time.Hour)}
	recent := old
	recent.TokenID, recent.LastSeen = "tk_fedcba9876543210fedcba9876543210", time.Now().Add(-time.Hour)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.Encode(old)
	enc.Encode(recent)
	os.WriteFile(filepath.Join(dir, "inventory.jsonl"), buf.Bytes(), 0o600)
	s, _ := newLifecycleServer(t, fmt.Sprintf(`
profile: {data_dir: %q}
lifecycle:
  dormancy: {revoke: true}
  response:
    steps: [denylist, webhook]
    audit_log: %q
    webhook: {url: %q, secret_env: HOOK_KEY}
`, dir, filepath.Join(dir, "audit.jsonl"), o.srv.URL+"/hook"))
	ls := run(t, s)
	o.wait(t, "the dormant credential's webhook", func() bool { return len(o.webhooks) == 1 })
	if w := o.webhooks[0]; w.TokenID != old.TokenID || w.Type != action.EventDormant || !strings.Contains(w.Reason, "unused for 60 days") {
		t.Errorf("webhook %+v", w)
	}
	var ds []struct {
		TokenID string `json:"token_id"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(ds) == 0 && time.Now().Before(deadline) {
		getJSON(t, "http://"+ls.Admin.String()+server.PathDenylist, &ds)
		time.Sleep(10 * time.Millisecond)
	}
	if len(ds) != 1 || ds[0].TokenID != old.TokenID {
		t.Errorf("denylist %+v", ds)
	}
}

// TestIntrospection: opaque tokens are introspected (RFC 7662) once per
// cache period; an active one is judged with the client and scopes the
// IdP gives (the inventory shows them), an inactive one is refused 401
// invalid_token.
func TestIntrospection(t *testing.T) {
	o := newOAuthServer(t)
	s, logs := newLifecycleServer(t, fmt.Sprintf(`
lifecycle:
  response:
    oauth: {introspection_url: %q, introspect: true, client_id: vigil, client_secret_env: OAUTH_SECRET}
`, o.srv.URL+"/introspect"))
	ls := run(t, s)
	base, admin := "http://"+ls.HTTP.String(), "http://"+ls.Admin.String()
	for range 3 {
		if r := ask(t, base, "opaque-live-token-1234567890", "okhttp/4.12.0", "198.51.100.7", "/v1/invoices"); r.StatusCode != 200 {
			t.Fatalf("active token: %d", r.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", base+server.PathForwardAuth, nil)
	req.Header.Set("Authorization", "Bearer revoked-token-0987654321")
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Uri", "/v1/invoices")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("inactive token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	var list server.TokenList
	getJSON(t, admin+server.PathTokens+"?client_id=billing", &list)
	if len(list.Entries) != 1 || list.Entries[0].Subject != "svc-billing" || strings.Join(list.Entries[0].Granted, " ") != "invoices:read invoices:write" {
		t.Errorf("introspected entry %+v", list)
	}
	o.mu.Lock()
	n := o.introspected
	o.mu.Unlock()
	if n != 2 {
		t.Errorf("%d introspection calls, want 2 (one per token, cached)", n)
	}
	if strings.Contains(logs.String(), "opaque-live-token") {
		t.Error("a raw token is in the logs")
	}
}

// TestZoneProposalFirstDays: with days, only the networks a credential
// used in its first days make its proposed zone.
func TestZoneProposalFirstDays(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := inventory.Entry{TokenID: "tk_a", ClientID: "shop", FirstSeen: t0, Requests: 100,
		ASNs: []inventory.Count{{Value: "64500", Requests: 90, First: t0}, {Value: "64666", Requests: 10, First: t0.Add(40 * 24 * time.Hour)}}}
	all := server.Observed([]inventory.Entry{e}, 0)
	early := server.Observed([]inventory.Entry{e}, 7*24*time.Hour)
	if len(all) != 4 || len(early) != 2 || early[0].ASN != 64500 || early[1].ASN != 64500 {
		t.Errorf("all %+v\nearly %+v", all, early)
	}
}
