// Package deploy holds vigil's example gateway configurations, documented
// in place: nginx/vigil.conf (auth_request), caddy/Caddyfile (forward_auth)
// and traefik/dynamic.yml (ForwardAuth). They are embedded so that tests
// render and run the very files shipped (see forwardauth/gatewaytest).
package deploy

import (
	"embed"
	"io/fs"
)

//go:embed nginx/vigil.conf caddy/Caddyfile traefik/dynamic.yml
var files embed.FS

// FS returns the configuration files by their path under deploy/:
// "nginx/vigil.conf", "caddy/Caddyfile" and "traefik/dynamic.yml".
func FS() fs.FS { return files }
