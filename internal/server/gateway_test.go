package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/forwardauth/gatewaytest"
	"github.com/vigil-sec/vigil/internal/server"
)

// TestThroughGateways drives vigil's real decision engine through Debian's
// nginx (auth_request, deploy/nginx/vigil.conf) and Caddy (forward_auth,
// deploy/caddy/Caddyfile): the owner's requests reach the API with vigil's
// headers; the same token from another client is throttled (429 with
// Retry-After), stepped up (401 with an RFC 9470 challenge) and blocked
// (403), end to end.
func TestThroughGateways(t *testing.T) {
	for _, gw := range []struct {
		name  string
		start func(t *testing.T, vigil, api string) *gatewaytest.Gateway
	}{
		{"nginx", func(t *testing.T, vigil, api string) *gatewaytest.Gateway {
			return gatewaytest.StartNginx(t, func(listen string) string { return gatewaytest.NginxSite(t, listen, vigil, api) })
		}},
		{"caddy", func(t *testing.T, vigil, api string) *gatewaytest.Gateway {
			return gatewaytest.StartCaddy(t, func(listen string) string { return gatewaytest.CaddySite(t, listen, vigil, api) })
		}},
	} {
		t.Run(gw.name, func(t *testing.T) {
			var mu sync.Mutex
			var upstream []http.Header
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				upstream = append(upstream, r.Header.Clone())
				mu.Unlock()
				io.WriteString(w, `{"ok":true}`)
			}))
			defer api.Close()
			s, _ := newServer(t, "", server.Options{})
			ls := run(t, s)
			g := gw.start(t, ls.HTTP.String(), strings.TrimPrefix(api.URL, "http://"))

			call := func(ua, path string) *http.Response {
				req, _ := http.NewRequest("GET", g.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+secret)
				req.Header.Set("User-Agent", ua)
				req.Header.Set("X-Vigil-Decision", "forged")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}
			for i := range 25 {
				if r := call("okhttp/4.12.0", "/v1/orders"); r.StatusCode != 200 {
					t.Fatalf("owner request %d: %d\n%s", i, r.StatusCode, g.Log())
				}
			}
			mu.Lock()
			last := upstream[len(upstream)-1]
			mu.Unlock()
			if last.Get("X-Vigil-Decision") != "allow" || !strings.HasPrefix(last.Get("X-Vigil-Token-Id"), "tk_") || len(last.Values("X-Vigil-Decision")) != 1 {
				t.Errorf("upstream headers: %v", last)
			}
			got := map[int]http.Header{}
			for i := range 12 {
				r := call("curl/8.5.0", fmt.Sprintf("/v1/admin/area-%c", 'a'+i))
				if _, ok := got[r.StatusCode]; !ok {
					got[r.StatusCode] = r.Header
				}
			}
			if h, ok := got[429]; !ok || h.Get("Retry-After") == "" {
				t.Errorf("throttle: %v", got)
			}
			if h, ok := got[401]; !ok || !strings.Contains(h.Get("WWW-Authenticate"), `error="insufficient_user_authentication"`) {
				t.Errorf("step-up: %v", got)
			}
			if _, ok := got[403]; !ok {
				t.Errorf("block: %v", got)
			}
			if r := call("okhttp/4.12.0", "/v1/orders"); r.StatusCode != 200 {
				t.Errorf("owner after the attack: %d", r.StatusCode)
			}
		})
	}
}
