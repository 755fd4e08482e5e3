// Package extauthz is vigil's Envoy external authorization adapter: a gRPC
// server for envoy.service.auth.v3.Authorization/Check that translates each
// CheckRequest into a gate.Request, asks a gate.Checker, and translates the
// gate.Result back into a CheckResponse. It holds no policy of its own.
//
// # Request
//
// From attributes.request.http: method, path (the request target with its
// query, undecoded) as URI, host, id as RequestID, and the headers. Envoy
// sends the headers either as the lower-cased `headers` map (values of a
// repeated header joined with ",") or, with encode_raw_headers, as
// `header_map`; the adapter reads the map when it is non-empty and otherwise
// builds the same map from header_map (raw_value preferred, keys
// lower-cased, repeated keys joined with "," as Envoy does). The client
// address is attributes.source.address.socket_address: Envoy has already
// applied its own X-Forwarded-For trust settings to it, so the adapter never
// reads forwarding headers. IPv4-mapped IPv6 addresses are unmapped and zones
// dropped, so a dual-stack listener gives the same key as an IPv4 one; a pipe
// (Unix socket) or internal source has no IP and gives an invalid ClientIP.
// Time is attributes.request.time when it is set and valid, else the time
// the CheckRequest arrived. Route is the context_extensions entry named by
// Options.RouteKey, which an operator sets per route in Envoy's
// configuration (clients cannot set it). ClientCert is the thumbprint of
// attributes.source.certificate, the URL-escaped PEM of the downstream
// client's TLS certificate, which Envoy sends with the filter's
// include_peer_certificate: true (for certificate-bound tokens, RFC 8705);
// one that is not a certificate is counted (Stats.BadCertificates) and the
// request judged without one.
//
// A CheckRequest without attributes.request.http is not an HTTP request:
// Envoy's HTTP filter always sends it, so its absence means the network
// (L4) ext_authz filter or a client that is not Envoy. The adapter answers
// it without asking the Checker: a denial, gRPC INVALID_ARGUMENT with HTTP
// 400, counted as malformed. Scoring it instead would key an anonymous
// profile on a bare address with nothing to judge, and teach it nothing
// useful; failing closed and loudly makes the misconfiguration visible.
//
// # Response
//
// An allowed request (Response.Allowed) gets status OK and an OkHttpResponse
// whose headers are Response.Upstream and whose response_headers_to_add are
// Response.Header. The first value of each header is sent with append action
// OVERWRITE_IF_EXISTS_OR_ADD and further values with APPEND_IF_EXISTS_OR_ADD,
// so vigil's header replaces any header of that name the client sent.
// Headers with the reserved prefix (Options.ReservedPrefix, "x-vigil-") that
// the client sent and the Checker did not set are listed in
// headers_to_remove, so the upstream never sees a forged x-vigil-* header,
// whatever the verdict chose to send.
//
// A denial gets a DeniedHttpResponse with the HTTP status, Response.Header
// and Response.Body, and gRPC status UNAUTHENTICATED for 401 and
// PERMISSION_DENIED otherwise (the message is the verdict's Problem or
// level). Envoy allows a request when the CheckResponse status is OK and
// denies it for any other code; the HTTP status is what the client sees.
// The status is passed through even when Envoy's StatusCode enum does not
// name it (451, say): proto3 enums are open and Envoy uses the number.
//
// Headers from the Checker whose name or value is not valid HTTP (a CR or
// LF in a value, a space in a name) are dropped and counted, since Envoy
// would fail the request on them; bytes that are not UTF-8, which a protobuf
// string cannot carry, become "!" as in Envoy's own header map.
//
// When the Checker cannot decide (an error, no result, or a Response whose
// status is neither 2xx nor 3xx–5xx), the adapter counts it and, following
// Options.FailOpen, allows the request (stripping reserved headers) or
// denies it with HTTP 503 and gRPC UNAVAILABLE. It does not use
// CheckResponse.error_response: that would hand the decision to Envoy's own
// failure_mode_allow, and vigil's option is the one that decides.
//
// Check never returns a gRPC error: every outcome is a CheckResponse, so
// Envoy's failure_mode_allow only ever applies when vigil is unreachable.
//
// ext_authz does not see the upstream's answer, so the adapter never calls
// Checker.Report.
//
// # Envoy configuration
//
// The filter, with vigil as a gRPC cluster (HTTP/2) named vigil:
//
//	http_filters:
//	- name: envoy.filters.http.ext_authz
//	  typed_config:
//	    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
//	    transport_api_version: V3
//	    grpc_service: {envoy_grpc: {cluster_name: vigil}, timeout: 0.25s}
//	    failure_mode_allow: false  # only applies when vigil is unreachable
//
// and, per route, the route template vigil keys endpoints on:
//
//	typed_per_filter_config:
//	  envoy.filters.http.ext_authz:
//	    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
//	    check_settings: {context_extensions: {vigil_route: "/v1/customers/{id}"}}
//
// Envoy health-checks the cluster with grpc_health_check: {} against the
// health service Register installs; Server.Drain turns it NOT_SERVING.
package extauthz
