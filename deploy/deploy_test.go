package deploy

import (
	"io/fs"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestTraefik checks the Traefik example, which no test runs (Debian has no
// Traefik package): it parses, strictly, into the fields Traefik reads, and
// says what vigil needs.
func TestTraefik(t *testing.T) {
	b, err := fs.ReadFile(FS(), "traefik/dynamic.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		HTTP struct {
			Middlewares map[string]struct {
				ForwardAuth struct {
					Address             string   `yaml:"address"`
					TrustForwardHeader  bool     `yaml:"trustForwardHeader"`
					AuthResponseHeaders []string `yaml:"authResponseHeaders"`
				} `yaml:"forwardAuth"`
			} `yaml:"middlewares"`
			Routers map[string]struct {
				EntryPoints []string `yaml:"entryPoints"`
				Rule        string   `yaml:"rule"`
				Middlewares []string `yaml:"middlewares"`
				Service     string   `yaml:"service"`
			} `yaml:"routers"`
			Services map[string]struct {
				LoadBalancer struct {
					Servers []struct {
						URL string `yaml:"url"`
					} `yaml:"servers"`
				} `yaml:"loadBalancer"`
			} `yaml:"services"`
		} `yaml:"http"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("traefik/dynamic.yml: %v", err)
	}
	fa := c.HTTP.Middlewares["vigil"].ForwardAuth
	if !strings.HasPrefix(fa.Address, "http://") || !fa.TrustForwardHeader {
		t.Errorf("forwardAuth %+v", fa)
	}
	for _, h := range []string{"X-Vigil-Decision", "X-Vigil-Risk", "X-Vigil-Token-Id"} {
		if !slices.Contains(fa.AuthResponseHeaders, h) {
			t.Errorf("authResponseHeaders lacks %s", h)
		}
	}
	r := c.HTTP.Routers["api"]
	if !slices.Contains(r.Middlewares, "vigil") || len(c.HTTP.Services[r.Service].LoadBalancer.Servers) == 0 {
		t.Errorf("router %+v does not use the middleware and a service", r)
	}
}
