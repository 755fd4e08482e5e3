package forwardauth_test

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vigil-sec/vigil/deploy"
	"github.com/vigil-sec/vigil/forwardauth"
	"github.com/vigil-sec/vigil/gate"
)

// Debian has no Envoy, so TestThroughEnvoyModel puts a model of Envoy's
// HTTP ext_authz filter, configured by deploy/envoy/envoy.yaml, in front of
// the Handler. The model follows Envoy's source
// (source/extensions/filters/common/ext_authz/ext_authz_http_impl.cc and
// source/extensions/filters/http/ext_authz/ext_authz.cc): the check request
// carries the original method, path_prefix plus the original path, Host,
// and only the headers allowed_headers matches (and Authorization); any 5xx
// is an error; on a 200 the headers allowed_upstream_headers matches
// replace the request's, then those x-envoy-auth-headers-to-remove lists
// are removed.

// envoyHTTPConfig is what the model reads from deploy/envoy/envoy.yaml.
type envoyHTTPConfig struct {
	pathPrefix string
	allowed    []envoyPattern // authorization_request.allowed_headers
	upstream   []envoyPattern // authorization_response.allowed_upstream_headers
}

type envoyPattern struct {
	Exact  string `yaml:"exact"`
	Prefix string `yaml:"prefix"`
}

func matchAny(ps []envoyPattern, name string) bool {
	for _, p := range ps {
		if p.Exact != "" && name == p.Exact || p.Prefix != "" && strings.HasPrefix(name, p.Prefix) {
			return true
		}
	}
	return false
}

func readEnvoyHTTPConfig(t *testing.T) envoyHTTPConfig {
	t.Helper()
	b, err := fs.ReadFile(deploy.FS(), "envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type list struct {
		Patterns []envoyPattern `yaml:"patterns"`
	}
	var doc struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []struct {
						TypedConfig struct {
							HTTPFilters []struct {
								TypedConfig struct {
									HTTPService struct {
										PathPrefix           string `yaml:"path_prefix"`
										AuthorizationRequest struct {
											AllowedHeaders list `yaml:"allowed_headers"`
										} `yaml:"authorization_request"`
										AuthorizationResponse struct {
											AllowedUpstreamHeaders list `yaml:"allowed_upstream_headers"`
										} `yaml:"authorization_response"`
									} `yaml:"http_service"`
								} `yaml:"typed_config"`
							} `yaml:"http_filters"`
						} `yaml:"typed_config"`
					} `yaml:"filters"`
				} `yaml:"filter_chains"`
			} `yaml:"listeners"`
		} `yaml:"static_resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	hs := doc.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.HTTPFilters[0].TypedConfig.HTTPService
	c := envoyHTTPConfig{
		pathPrefix: hs.PathPrefix,
		allowed:    hs.AuthorizationRequest.AllowedHeaders.Patterns,
		upstream:   hs.AuthorizationResponse.AllowedUpstreamHeaders.Patterns,
	}
	if c.pathPrefix == "" || len(c.allowed) == 0 || len(c.upstream) == 0 {
		t.Fatalf("envoy.yaml: no http_service with path_prefix and header lists: %+v", c)
	}
	return c
}

// envoyModel is the ext_authz filter's part in one request.
type envoyModel struct {
	cfg   envoyHTTPConfig
	vigil string // URL of the Handler
}

// check asks vigil about a client request with header h, as the filter
// would, and returns the status the filter decides on (200: to the
// upstream) and, for a 200, the headers the upstream request carries.
func (m envoyModel) check(t *testing.T, method, uri string, h http.Header) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, m.vigil+m.cfg.pathPrefix+uri, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.example.com"
	for k, vs := range h {
		if k := strings.ToLower(k); k == "authorization" || matchAny(m.cfg.allowed, k) {
			req.Header[http.CanonicalHeaderKey(k)] = vs
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		return http.StatusServiceUnavailable, nil // status_on_error
	case resp.StatusCode != http.StatusOK:
		return resp.StatusCode, nil
	}
	var remove []string
	for _, v := range resp.Header.Values("X-Envoy-Auth-Headers-To-Remove") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				remove = append(remove, strings.ToLower(name))
			}
		}
	}
	resp.Header.Del("X-Envoy-Auth-Headers-To-Remove")
	up := h.Clone()
	for k, vs := range resp.Header {
		if matchAny(m.cfg.upstream, strings.ToLower(k)) {
			up[k] = vs // setCopy: replaces the client's
		}
	}
	for _, k := range remove {
		up.Del(k)
	}
	return http.StatusOK, up
}

// silentChecker answers like pathChecker, without upstream headers for
// /allow/silent (enforce.upstream_headers: false).
type silentChecker struct{ *pathChecker }

func (c silentChecker) Check(ctx context.Context, r *gate.Request, res *gate.Result) error {
	err := c.pathChecker.Check(ctx, r, res)
	if err == nil && strings.HasPrefix(r.URI, "/allow/silent") {
		res.Response.Upstream = nil
	}
	return err
}

// TestThroughEnvoyModel: behind Envoy's HTTP ext_authz filter as
// deploy/envoy/envoy.yaml configures it, no X-Vigil-* header the client
// forged reaches the upstream, whether or not vigil's answer carries one of
// that name.
func TestThroughEnvoyModel(t *testing.T) {
	cfg := readEnvoyHTTPConfig(t)
	// The model needs X-Test-Case to reach the Checker, which records by it.
	cfg.allowed = append(cfg.allowed, envoyPattern{Exact: "x-test-case"})
	chk := newPathChecker()
	h, err := forwardauth.New(silentChecker{chk}, forwardauth.Options{
		Gateway:        forwardauth.Envoy,
		PathPrefix:     cfg.pathPrefix,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vigil := httptest.NewServer(h)
	defer vigil.Close()
	envoy := envoyModel{cfg: cfg, vigil: vigil.URL}

	for _, c := range []struct {
		testCase, uri string
		want          map[string]string // the X-Vigil-* headers upstream
	}{
		{"allow", "/allow?page=2", map[string]string{"X-Vigil-Decision": "allow", "X-Vigil-Risk": "1.5", "X-Vigil-Token-Id": "tk_test"}},
		{"anonymous", "/allow/anonymous", map[string]string{"X-Vigil-Decision": "allow", "X-Vigil-Risk": "1.5"}},
		{"silent", "/allow/silent", map[string]string{}},
	} {
		hdr := forgeries.Clone()
		hdr.Set("Authorization", "Bearer t0k3n-"+c.testCase)
		hdr.Set("User-Agent", "vigil-gateway-test/1")
		hdr.Set("X-Test-Case", c.testCase)
		// use_remote_address: Envoy appends its peer, the client.
		hdr.Set("X-Forwarded-For", hdr.Get("X-Forwarded-For")+", "+clientAddr.String())
		st, up := envoy.check(t, http.MethodGet, c.uri, hdr)
		if st != http.StatusOK {
			t.Fatalf("%s: Envoy decided %d, want 200", c.testCase, st)
		}
		got := map[string]string{}
		for k, vs := range up {
			if strings.HasPrefix(k, "X-Vigil-") {
				got[k] = strings.Join(vs, ",")
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: upstream saw %q, want %q", c.testCase, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: upstream saw %s %q, want %q", c.testCase, k, got[k], v)
			}
		}
		seen := chk.request(t, c.testCase)
		if seen.Method != http.MethodGet || seen.URI != c.uri || seen.Host != "api.example.com" || seen.ClientIP != clientAddr {
			t.Errorf("%s: the Checker saw %s %s (host %q) from %v", c.testCase, seen.Method, seen.URI, seen.Host, seen.ClientIP)
		}
		if a := seen.Header.Get("Authorization"); a != "Bearer t0k3n-"+c.testCase {
			t.Errorf("%s: the Checker saw Authorization %q", c.testCase, a)
		}
	}
	for _, c := range []struct {
		uri  string
		want int
	}{{"/throttle", http.StatusTooManyRequests}, {"/stepup/1", http.StatusUnauthorized}, {"/block", http.StatusForbidden}, {"/error", http.StatusServiceUnavailable}} {
		if st, _ := envoy.check(t, http.MethodPost, c.uri, forgeries.Clone()); st != c.want {
			t.Errorf("%s: Envoy decided %d, want %d", c.uri, st, c.want)
		}
	}
}
