package deploy

import (
	"io/fs"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vigil-sec/vigil/config"
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

// TestListenPorts: no example's gateway listens on a port vigil's default
// configuration uses (serve.listen, grpc_listen, admin_listen) or on the
// examples' upstream: run as written on one host, they would collide.
func TestListenPorts(t *testing.T) {
	def := config.Default().Serve
	taken := map[string]string{"8081": "the example upstream"}
	for what, addr := range map[string]string{"serve.listen": def.Listen, "serve.grpc_listen": def.GRPCListen, "serve.admin_listen": def.AdminListen} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s %q: %v", what, addr, err)
		}
		taken[port] = "vigil's " + what
	}
	check := func(file, port string) {
		t.Helper()
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			t.Errorf("%s: listen port %q", file, port)
		} else if who, ok := taken[port]; ok {
			t.Errorf("%s listens on %s, %s", file, port, who)
		}
	}
	for file, re := range map[string]*regexp.Regexp{
		"nginx/vigil.conf": regexp.MustCompile(`(?m)^\s*listen\s+(?:\S*:)?(\d+)\b`),
		"caddy/Caddyfile":  regexp.MustCompile(`(?m)^https?://[^\s{]*:(\d+)\s*\{`),
		// The entry point is in a comment (static configuration).
		"traefik/dynamic.yml": regexp.MustCompile(`(?m)^#\s+address:\s*"[^"]*:(\d+)"`),
	} {
		b, err := fs.ReadFile(FS(), file)
		if err != nil {
			t.Fatal(err)
		}
		ms := re.FindAllStringSubmatch(string(b), -1)
		if len(ms) == 0 {
			t.Errorf("%s: no listen address found", file)
		}
		for _, m := range ms {
			check(file, m[1])
		}
	}
	for _, file := range []string{"envoy/envoy.yaml", "envoy/envoy-grpc.yaml"} {
		check(file, strconv.Itoa(int(loadEnvoy(t, file).port)))
	}
}
