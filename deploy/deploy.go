// Package deploy holds vigil's example gateway configurations, documented
// in place: nginx/vigil.conf (auth_request), caddy/Caddyfile (forward_auth),
// traefik/dynamic.yml (ForwardAuth), and envoy/envoy.yaml and
// envoy/envoy-grpc.yaml (ext_authz with an HTTP or a gRPC authorization
// service). They are embedded so that tests render and run the very files
// shipped (see forwardauth/gatewaytest).
package deploy

import (
	"embed"
	"io/fs"
)

//go:embed nginx/vigil.conf caddy/Caddyfile traefik/dynamic.yml envoy/envoy.yaml envoy/envoy-grpc.yaml
var files embed.FS

// FS returns the configuration files by their path under deploy/:
// "nginx/vigil.conf", "caddy/Caddyfile", "traefik/dynamic.yml",
// "envoy/envoy.yaml" and "envoy/envoy-grpc.yaml".
func FS() fs.FS { return files }
