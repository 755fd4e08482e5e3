// Package forwardauth is vigil's forward-auth endpoint: an http.Handler that
// a gateway asks about every request before it goes upstream — nginx's
// auth_request, Traefik's ForwardAuth, Caddy's forward_auth and Envoy's
// ext_authz filter with an HTTP authorization service. It rebuilds the
// original request as a gate.Request, asks a gate.Checker and answers in the
// gateway's dialect. It holds no policy: every decision is the Checker's.
//
// # What the gateway sends
//
// The gateway sends its own request to vigil and describes the original one
// in headers; which headers depends on the gateway (Options.Gateway):
//
//	            method              target              host              client
//	Forwarded   X-Forwarded-Method  X-Forwarded-Uri     X-Forwarded-Host  X-Forwarded-For
//	Nginx       X-Original-Method   X-Original-URI      X-Forwarded-Host  X-Real-IP, X-Forwarded-For
//	Envoy       the request's own   path - PathPrefix   Host              X-Forwarded-For
//
// The original request's other headers (Authorization, API keys, DPoP,
// User-Agent) are copied by the gateways onto the request to vigil, so the
// gate.Request's Header is the request's own. Envoy copies only those its
// allowed_headers name (deploy/envoy/envoy.yaml lists what vigil reads).
//
// # Whom to believe
//
// Forwarding headers are believed only from a trusted peer
// (Options.TrustedProxies; loopback by default). From any other peer they
// are ignored and counted, the request is judged as it arrived and the peer
// is the client. X-Forwarded-For is walked from the right, skipping trusted
// addresses, and the first untrusted one is the client: see ClientIP.
//
// The dialect is fixed per Handler and never guessed from the headers
// present, because gateways pass the client's own headers on to vigil:
// nginx overwrites X-Original-URI but passes a client's X-Forwarded-Uri,
// Traefik and Caddy the reverse. Reading both would let a client describe
// a request it did not make.
//
// # What the gateway is told
//
// An allow is a 200 whose headers carry the Response's Upstream headers
// (X-Vigil-Decision, X-Vigil-Risk, X-Vigil-Token-Id), for the gateway to
// copy onto the upstream request, and the Response's client headers. The
// gateway must also keep a client's own copies of those headers from the
// upstream when vigil's answer lacks one (an anonymous request has no
// X-Vigil-Token-Id): the nginx and Caddy configurations in deploy/ do it,
// Traefik does it for its authResponseHeaders, and for Envoy, whose
// allowed_upstream_headers replaces only the headers present, the Envoy
// dialect lists in X-Envoy-Auth-Headers-To-Remove every X-Vigil-* header
// its answer does not set (vigil's names and the client's), which Envoy's
// HTTP ext_authz filter removes from the upstream request. A
// denial is the Response as it is — status, headers, body — which Traefik,
// Caddy and Envoy relay to the client. nginx's auth_request relays only
// 401 (with WWW-Authenticate) and 403 and turns anything else into 500, so
// the Nginx dialect sends other statuses as 403 with X-Vigil-Status and
// X-Vigil-Decision, and deploy/nginx/vigil.conf rebuilds the 429 or 503.
//
// Malformed input from a trusted gateway — no original method or URI, or
// one that is not a method or a request target — is answered 400 (414 for
// a target longer than Options.MaxURIBytes) with a problem body that never
// echoes the input; malformed client addresses are skipped and counted. A
// Checker error is a 503, or a 200 with X-Vigil-Decision: unchecked when
// Options.FailOpen is set.
//
// The Handler does not bound the size of the request's headers: the
// http.Server does (MaxHeaderBytes; 1 MiB by default, answered 431).
package forwardauth
