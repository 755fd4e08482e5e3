package deploy

import (
	"encoding/json"
	"io/fs"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/extauthz"
)

// The Envoy examples are checked in two ways, as no Envoy runs here (Debian
// has no package). The bootstrap is parsed strictly into the fields below,
// named as in Envoy's v3 API. The ext_authz configurations, which are what
// vigil depends on, are parsed with Envoy's own API definitions
// (go-control-plane), refusing unknown fields, and validated against the
// API's constraints. (Envoy's other definitions need a module this module
// does not require.)

type envoyBootstrap struct {
	StaticResources struct {
		Listeners []struct {
			Name         string       `yaml:"name"`
			Address      envoyAddress `yaml:"address"`
			FilterChains []struct {
				Filters []struct {
					Name        string   `yaml:"name"`
					TypedConfig envoyHCM `yaml:"typed_config"`
				} `yaml:"filters"`
			} `yaml:"filter_chains"`
		} `yaml:"listeners"`
		Clusters []envoyCluster `yaml:"clusters"`
	} `yaml:"static_resources"`
}

type envoyAddress struct {
	SocketAddress struct {
		Address   string `yaml:"address"`
		PortValue uint16 `yaml:"port_value"`
	} `yaml:"socket_address"`
}

type envoyHCM struct {
	Type             string `yaml:"@type"`
	StatPrefix       string `yaml:"stat_prefix"`
	UseRemoteAddress bool   `yaml:"use_remote_address"`
	RouteConfig      struct {
		Name         string `yaml:"name"`
		VirtualHosts []struct {
			Name    string   `yaml:"name"`
			Domains []string `yaml:"domains"`
			Routes  []struct {
				Match struct {
					Prefix string `yaml:"prefix"`
				} `yaml:"match"`
				Route struct {
					Cluster string `yaml:"cluster"`
				} `yaml:"route"`
				TypedPerFilterConfig map[string]yaml.Node `yaml:"typed_per_filter_config"`
			} `yaml:"routes"`
		} `yaml:"virtual_hosts"`
	} `yaml:"route_config"`
	HTTPFilters []struct {
		Name        string    `yaml:"name"`
		TypedConfig yaml.Node `yaml:"typed_config"`
	} `yaml:"http_filters"`
}

type envoyCluster struct {
	Name                          string `yaml:"name"`
	Type                          string `yaml:"type"`
	ConnectTimeout                string `yaml:"connect_timeout"`
	TypedExtensionProtocolOptions map[string]struct {
		Type               string `yaml:"@type"`
		ExplicitHTTPConfig struct {
			HTTP2ProtocolOptions *struct{} `yaml:"http2_protocol_options"`
		} `yaml:"explicit_http_config"`
	} `yaml:"typed_extension_protocol_options"`
	HealthChecks []struct {
		Timeout            string `yaml:"timeout"`
		Interval           string `yaml:"interval"`
		UnhealthyThreshold int    `yaml:"unhealthy_threshold"`
		HealthyThreshold   int    `yaml:"healthy_threshold"`
		HTTPHealthCheck    *struct {
			Path string `yaml:"path"`
		} `yaml:"http_health_check"`
		GRPCHealthCheck *struct{} `yaml:"grpc_health_check"`
	} `yaml:"health_checks"`
	LoadAssignment struct {
		ClusterName string `yaml:"cluster_name"`
		Endpoints   []struct {
			LbEndpoints []struct {
				Endpoint struct {
					Address envoyAddress `yaml:"address"`
				} `yaml:"endpoint"`
			} `yaml:"lb_endpoints"`
		} `yaml:"endpoints"`
	} `yaml:"load_assignment"`
}

const (
	typeHCM         = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	typeRouter      = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	typeHTTPOptions = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// envoyExample is what both examples share: one listener whose connection
// manager runs ext_authz, then the router.
type envoyExample struct {
	name     string
	port     uint16
	hcm      envoyHCM
	authz    *extauthzv3.ExtAuthz
	clusters map[string]envoyCluster
}

func loadEnvoy(t *testing.T, name string) envoyExample {
	t.Helper()
	b, err := fs.ReadFile(FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	var bs envoyBootstrap
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&bs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ls := bs.StaticResources.Listeners
	if len(ls) != 1 || len(ls[0].FilterChains) != 1 || len(ls[0].FilterChains[0].Filters) != 1 {
		t.Fatalf("%s: want one listener with one filter chain of one filter", name)
	}
	f := ls[0].FilterChains[0].Filters[0]
	e := envoyExample{name: name, port: ls[0].Address.SocketAddress.PortValue, hcm: f.TypedConfig, clusters: map[string]envoyCluster{}}
	if f.Name != "envoy.filters.network.http_connection_manager" || e.hcm.Type != typeHCM {
		t.Fatalf("%s: the filter is %s (%s), want the HTTP connection manager", name, f.Name, e.hcm.Type)
	}
	for _, c := range bs.StaticResources.Clusters {
		if c.LoadAssignment.ClusterName != c.Name {
			t.Errorf("%s: cluster %s: load_assignment.cluster_name %q", name, c.Name, c.LoadAssignment.ClusterName)
		}
		e.clusters[c.Name] = c
	}
	fs := e.hcm.HTTPFilters
	if len(fs) != 2 || fs[0].Name != "envoy.filters.http.ext_authz" || fs[1].Name != "envoy.filters.http.router" {
		t.Fatalf("%s: http_filters must be ext_authz, then the router", name)
	}
	e.authz = typedConfig(t, name, &fs[0].TypedConfig, new(extauthzv3.ExtAuthz))
	if typ := typeURL(t, &fs[1].TypedConfig); typ != typeRouter {
		t.Errorf("%s: the router's typed_config is %s", name, typ)
	}
	if vh := e.hcm.RouteConfig.VirtualHosts; len(vh) != 1 || len(vh[0].Routes) == 0 {
		t.Fatalf("%s: want one virtual host with routes", name)
	}
	for _, r := range e.hcm.RouteConfig.VirtualHosts[0].Routes {
		if _, ok := e.clusters[r.Route.Cluster]; !ok {
			t.Errorf("%s: a route goes to cluster %q, which is not defined", name, r.Route.Cluster)
		}
	}
	// The client's address: only with use_remote_address does Envoy append
	// the peer to X-Forwarded-For (HTTP service) and send it as the source
	// (gRPC); without it a client's own X-Forwarded-For is believed.
	if !e.hcm.UseRemoteAddress {
		t.Errorf("%s: use_remote_address is not true", name)
	}
	if e.authz.GetTransportApiVersion().String() != "V3" || e.authz.GetFailureModeAllow() || e.authz.GetStatusOnError().GetCode() != typev3.StatusCode_ServiceUnavailable {
		t.Errorf("%s: want transport_api_version V3, failure_mode_allow false and status_on_error 503", name)
	}
	return e
}

func typeURL(t *testing.T, n *yaml.Node) string {
	t.Helper()
	var v struct {
		Type string `yaml:"@type"`
	}
	_ = n.Decode(&v) // other fields are someone else's
	return v.Type
}

// typedConfig parses a typed_config with Envoy's definition of m: its @type
// must be m's, unknown fields are refused, and the API's constraints are
// checked.
func typedConfig[M interface {
	proto.Message
	ValidateAll() error
}](t *testing.T, file string, n *yaml.Node, m M) M {
	t.Helper()
	want := "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
	var doc map[string]any
	if err := n.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if doc["@type"] != want {
		t.Fatalf("%s: typed_config @type %v, want %s", file, doc["@type"], want)
	}
	delete(doc, "@type")
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		t.Fatalf("%s: %s: %v", file, want, err)
	}
	if err := m.ValidateAll(); err != nil {
		t.Fatalf("%s: %s: %v", file, want, err)
	}
	return m
}

// endpoint returns the only endpoint of a cluster as host:port.
func (e envoyExample) endpoint(t *testing.T, cluster string) string {
	t.Helper()
	c, ok := e.clusters[cluster]
	if !ok || len(c.LoadAssignment.Endpoints) != 1 || len(c.LoadAssignment.Endpoints[0].LbEndpoints) != 1 {
		t.Fatalf("%s: cluster %q: want one endpoint", e.name, cluster)
	}
	sa := c.LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress
	return net.JoinHostPort(sa.Address, strconv.Itoa(int(sa.PortValue)))
}

// patterns returns a ListStringMatcher's patterns as "exact:name" or
// "prefix:name", and fails on other kinds.
func patterns(t *testing.T, l *matcherv3.ListStringMatcher) []string {
	t.Helper()
	var out []string
	for _, p := range l.GetPatterns() {
		switch {
		case p.GetExact() != "":
			out = append(out, "exact:"+p.GetExact())
		case p.GetPrefix() != "":
			out = append(out, "prefix:"+p.GetPrefix())
		default:
			t.Errorf("unexpected pattern %v", p)
		}
	}
	return out
}

func wantPatterns(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s lacks %s (has %q)", what, w, got)
		}
	}
}

// TestEnvoyHTTP checks envoy/envoy.yaml: ext_authz with an HTTP service at
// vigil's default decision listener and path prefix, forwarding the
// headers vigil reads and passing on those vigil sends.
func TestEnvoyHTTP(t *testing.T) {
	e := loadEnvoy(t, "envoy/envoy.yaml")
	def := config.Default()
	hs := e.authz.GetHttpService()
	if hs == nil {
		t.Fatal("envoy.yaml: no http_service")
	}
	if got := hs.GetPathPrefix(); got != def.Serve.ExtAuthzHTTPPrefix {
		t.Errorf("path_prefix %q, want vigil's serve.ext_authz_http_prefix %q", got, def.Serve.ExtAuthzHTTPPrefix)
	}
	if got := hs.GetServerUri().GetUri(); got != "http://"+def.Serve.Listen {
		t.Errorf("server_uri.uri %q, want http://%s (serve.listen)", got, def.Serve.Listen)
	}
	if got := e.endpoint(t, hs.GetServerUri().GetCluster()); got != def.Serve.Listen {
		t.Errorf("the server_uri cluster goes to %s, want vigil's serve.listen %s", got, def.Serve.Listen)
	}
	if hc := e.clusters[hs.GetServerUri().GetCluster()].HealthChecks; len(hc) != 1 || hc[0].HTTPHealthCheck == nil || hc[0].HTTPHealthCheck.Path != "/readyz" {
		t.Errorf("vigil's cluster is not health-checked on /readyz")
	}

	want := []string{
		"exact:authorization", "exact:dpop", "exact:user-agent", "exact:x-request-id", "exact:x-forwarded-for",
		// vigil can have the client's X-Vigil-* headers removed only if
		// it sees them.
		"prefix:x-vigil-",
	}
	for _, h := range def.Credentials.APIKeyHeaders {
		want = append(want, "exact:"+strings.ToLower(h))
	}
	wantPatterns(t, "authorization_request.allowed_headers", patterns(t, hs.GetAuthorizationRequest().GetAllowedHeaders()), want...) //nolint:staticcheck // deprecated for ExtAuthz.allowed_headers, which older Envoys lack
	ar := hs.GetAuthorizationResponse()
	upstream := patterns(t, ar.GetAllowedUpstreamHeaders())
	wantPatterns(t, "allowed_upstream_headers", upstream, "exact:x-vigil-decision", "exact:x-vigil-risk", "exact:x-vigil-token-id")
	wantPatterns(t, "allowed_client_headers", patterns(t, ar.GetAllowedClientHeaders()),
		"exact:retry-after", "exact:ratelimit", "exact:ratelimit-policy", "exact:www-authenticate", "exact:content-type")
	wantPatterns(t, "allowed_client_headers_on_success", patterns(t, ar.GetAllowedClientHeadersOnSuccess()),
		"exact:ratelimit", "exact:ratelimit-policy")
	for _, p := range upstream {
		if !strings.HasPrefix(p, "exact:x-vigil-") {
			t.Errorf("allowed_upstream_headers has %s: only vigil's X-Vigil-* headers belong there", p)
		}
	}
}

// TestEnvoyGRPC checks envoy/envoy-grpc.yaml: ext_authz with a gRPC service
// at vigil's default gRPC listener, over HTTP/2, with a route template in
// context_extensions.
func TestEnvoyGRPC(t *testing.T) {
	e := loadEnvoy(t, "envoy/envoy-grpc.yaml")
	gs := e.authz.GetGrpcService()
	cluster := gs.GetEnvoyGrpc().GetClusterName()
	if cluster == "" || gs.GetTimeout() == nil {
		t.Fatal("envoy-grpc.yaml: no grpc_service.envoy_grpc with a timeout")
	}
	if got, want := e.endpoint(t, cluster), config.Default().Serve.GRPCListen; got != want {
		t.Errorf("the grpc_service cluster goes to %s, want vigil's serve.grpc_listen %s", got, want)
	}
	c := e.clusters[cluster]
	po, ok := c.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok || po.Type != typeHTTPOptions || po.ExplicitHTTPConfig.HTTP2ProtocolOptions == nil {
		t.Errorf("cluster %s does not speak HTTP/2", cluster)
	}
	if hc := c.HealthChecks; len(hc) != 1 || hc[0].GRPCHealthCheck == nil {
		t.Errorf("cluster %s is not gRPC-health-checked", cluster)
	}
	templates := 0
	for _, r := range e.hcm.RouteConfig.VirtualHosts[0].Routes {
		if n, ok := r.TypedPerFilterConfig["envoy.filters.http.ext_authz"]; ok {
			per := typedConfig(t, e.name, &n, new(extauthzv3.ExtAuthzPerRoute))
			if per.GetCheckSettings().GetContextExtensions()[extauthz.DefaultRouteKey] != "" {
				templates++
			}
		}
	}
	if templates == 0 {
		t.Errorf("no route sets context_extensions %s", extauthz.DefaultRouteKey)
	}
}
