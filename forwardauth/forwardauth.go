package forwardauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/gate"
)

// Gateway is the dialect of the gateway in front of a Handler: which headers
// carry the original request and how a throttle is expressed. It is fixed
// per Handler, never read from the request: a gateway passes the client's
// own headers to the authorization server, so any forwarding header of
// another dialect, which that gateway does not overwrite, could be the
// client's forgery. To serve several kinds of gateways, mount one Handler
// per kind.
type Gateway uint8

const (
	// Forwarded is Traefik's ForwardAuth and Caddy's forward_auth (and
	// Authelia-style servers): the original request is in
	// X-Forwarded-Method, X-Forwarded-Uri and X-Forwarded-Host, the client
	// in X-Forwarded-For. vigil's status goes to the client as it is.
	Forwarded Gateway = iota
	// Nginx is nginx's auth_request: the original request is in
	// X-Original-Method, X-Original-URI and X-Forwarded-Host, the client in
	// X-Real-IP, then X-Forwarded-For. auth_request passes only 2xx, 401
	// and 403 on (anything else becomes 500), so every other status is sent
	// as 403 with X-Vigil-Status carrying it and, for a throttle (429),
	// X-Vigil-Decision: throttle; deploy/nginx/vigil.conf turns them back.
	Nginx
	// Envoy is Envoy's ext_authz filter with an http_service: Envoy sends
	// the original method, the original path after path_prefix
	// (Options.PathPrefix) and the original headers it is configured to
	// forward (authorization_request.allowed_headers); the client is in
	// X-Forwarded-For. Envoy treats only 200 as an allow, and an allow
	// lists in X-Envoy-Auth-Headers-To-Remove the X-Vigil-* headers that
	// Envoy must strip from the upstream request because vigil's answer
	// does not set them: Envoy's allowed_upstream_headers replaces only the
	// headers present in the answer. See deploy/envoy/envoy.yaml.
	Envoy
	numGateways
)

var gatewayNames = [numGateways]string{"forwarded", "nginx", "envoy"}

// String returns the gateway's name: forwarded, nginx or envoy.
func (g Gateway) String() string {
	if g < numGateways {
		return gatewayNames[g]
	}
	return fmt.Sprintf("gateway(%d)", uint8(g))
}

// ParseGateway parses a gateway name: forwarded (or traefik, caddy), nginx
// or envoy.
func ParseGateway(s string) (Gateway, error) {
	switch strings.ToLower(s) {
	case "forwarded", "traefik", "caddy":
		return Forwarded, nil
	case "nginx":
		return Nginx, nil
	case "envoy":
		return Envoy, nil
	}
	return Forwarded, fmt.Errorf("unknown gateway %q (want forwarded, traefik, caddy, nginx or envoy)", s)
}

// DefaultMaxURIBytes is the longest original request target accepted when
// Options.MaxURIBytes is 0; nginx's default request-line limit is 8 KiB.
const DefaultMaxURIBytes = 8192

// Options configures a Handler. The zero value is a Handler for Traefik or
// Caddy on the same host that fails closed.
type Options struct {
	// Gateway is the dialect of the gateway in front; the zero value is
	// Forwarded (Traefik, Caddy).
	Gateway Gateway
	// TrustedProxies are the peers (r.RemoteAddr) whose forwarding headers
	// are believed. Empty means DefaultTrustedProxies: loopback only. A
	// request from any other peer is judged as it arrived: its own method,
	// URI and host, the peer as the client, every forwarding header ignored
	// and counted in Stats.ForwardingIgnored. IPv4-mapped IPv6 prefixes
	// are unmapped.
	TrustedProxies []netip.Prefix
	// PathPrefix is Envoy's http_service.path_prefix, stripped from the
	// path Envoy sends. Only with Gateway Envoy; it starts with "/" and
	// does not end with one. A request outside it is answered 400.
	PathPrefix string
	// FailOpen answers 200 (with X-Vigil-Decision: unchecked for the
	// upstream) when the Checker returns an error; the default, false,
	// answers 503.
	FailOpen bool
	// MaxURIBytes bounds the original request target; longer ones are
	// answered 414. 0 means DefaultMaxURIBytes.
	MaxURIBytes int
	// CertHeader names the header in which the gateway passes the
	// client's TLS certificate (for certificate-bound tokens, RFC 8705),
	// written in CertFormat: Envoy's x-forwarded-client-cert (forwarded to
	// ext_authz through authorization_request.allowed_headers), nginx's
	// $ssl_client_escaped_cert set with proxy_set_header, Traefik's
	// X-Forwarded-Tls-Client-Cert. It is read only from TrustedProxies,
	// and the gateway must overwrite or remove a client's own copy. ""
	// reads none: gate.Request.ClientCert stays empty.
	CertHeader string
	CertFormat binding.CertFormat
}

func (o *Options) validate() error {
	var errs []error
	if o.Gateway >= numGateways {
		errs = append(errs, fmt.Errorf("gateway %d: want Forwarded, Nginx or Envoy", uint8(o.Gateway)))
	}
	for i, p := range o.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("trusted proxy %d: not a valid prefix", i))
		}
	}
	if o.PathPrefix != "" {
		switch {
		case o.Gateway != Envoy:
			errs = append(errs, fmt.Errorf("path prefix %q: only Envoy sends one (gateway is %v)", o.PathPrefix, o.Gateway))
		case o.PathPrefix[0] != '/' || strings.HasSuffix(o.PathPrefix, "/"):
			errs = append(errs, fmt.Errorf("path prefix %q: must start with / and not end with /", o.PathPrefix))
		case !validPath(o.PathPrefix):
			errs = append(errs, fmt.Errorf("path prefix %q: not a URI path", o.PathPrefix))
		}
	}
	if o.MaxURIBytes < 0 {
		errs = append(errs, fmt.Errorf("max URI bytes %d: must not be negative", o.MaxURIBytes))
	}
	if o.CertHeader != "" && !httpguts.ValidHeaderFieldName(o.CertHeader) {
		errs = append(errs, fmt.Errorf("certificate header %q: not a header name", o.CertHeader))
	}
	if _, err := binding.ParseCertFormat(o.CertFormat.String()); err != nil {
		errs = append(errs, fmt.Errorf("certificate header format %d: want CertXFCC, CertEscapedPEM or CertTraefik", uint8(o.CertFormat)))
	}
	return errors.Join(errs...)
}

// Stats counts what a Handler did since it was created.
type Stats struct {
	// Requests is every request served.
	Requests uint64
	// Allowed were answered 200: the gateway passes them upstream
	// (FailedOpen included).
	Allowed uint64
	// Denied were answered with anything else: the Checker's denials
	// (throttle, step-up, block, a 4xx about the request itself), and the
	// BadRequests and CheckErrors the Handler answered itself.
	// Requests = Allowed + Denied.
	Denied uint64
	// BadRequests were answered 4xx by the Handler without asking the
	// Checker: a trusted gateway sent no original method or URI, or one
	// that is not a method or a request target.
	BadRequests uint64
	// ForwardingIgnored came from an untrusted peer and carried forwarding
	// headers, which were ignored: forgeries, or a gateway missing from
	// TrustedProxies.
	ForwardingIgnored uint64
	// ForwardingMalformed came from a trusted peer with a malformed client
	// address (X-Real-IP, an X-Forwarded-For entry).
	ForwardingMalformed uint64
	// ClientUnknown went to the Checker without a client address: a trusted
	// peer sent no usable one.
	ClientUnknown uint64
	// CertMalformed came from a trusted peer with a certificate header
	// (Options.CertHeader) that is not a certificate in Options.CertFormat;
	// they went to the Checker without a client certificate.
	CertMalformed uint64
	// CheckErrors are the Checker's errors (and answers with an invalid
	// status).
	CheckErrors uint64
	// FailedOpen are the CheckErrors answered 200 because of FailOpen.
	FailedOpen uint64
}

type counters struct {
	requests, allowed, denied, badRequests atomic.Uint64
	forwardingIgnored, forwardingMalformed atomic.Uint64
	clientUnknown, checkErrors, failedOpen atomic.Uint64
	certMalformed                          atomic.Uint64
}

// Handler is the forward-auth endpoint: an http.Handler that rebuilds the
// original request from what the gateway sent, asks a gate.Checker, and
// answers in the gateway's dialect. It is safe for concurrent use.
type Handler struct {
	checker  gate.Checker
	gateway  Gateway
	trusted  []netip.Prefix
	prefix   string
	failOpen bool
	maxURI   int
	// certHeader is Options.CertHeader in canonical form.
	certHeader string
	certFormat binding.CertFormat
	log        *slog.Logger
	n          counters
	// lastIgnoredWarn (Unix ns) limits the warning about ignored
	// forwarding headers to one a minute.
	lastIgnoredWarn atomic.Int64
}

// warnIgnored logs, at most once a minute, that forwarding headers from an
// untrusted peer were ignored: either forgeries, or a gateway missing from
// the trusted proxies — then every request looks as if it came from the
// gateway itself, and the operator needs to hear it.
func (h *Handler) warnIgnored(r *http.Request) {
	now := time.Now().UnixNano()
	last := h.lastIgnoredWarn.Load()
	if now-last < int64(time.Minute) || !h.lastIgnoredWarn.CompareAndSwap(last, now) {
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "forwarding headers from an untrusted peer ignored; if this peer is your gateway, add it to the trusted proxies",
		slog.String("peer", PeerAddr(r).String()), slog.Uint64("ignored_so_far", h.n.forwardingIgnored.Load()))
}

// Interface guard.
var _ http.Handler = (*Handler)(nil)

// New returns a Handler that asks c about every request. log may be nil.
func New(c gate.Checker, o Options, log *slog.Logger) (*Handler, error) {
	if c == nil {
		return nil, errors.New("forwardauth: nil Checker")
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("forwardauth: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		checker:    c,
		gateway:    o.Gateway,
		trusted:    normalizePrefixes(o.TrustedProxies),
		prefix:     o.PathPrefix,
		failOpen:   o.FailOpen,
		maxURI:     o.MaxURIBytes,
		certHeader: http.CanonicalHeaderKey(o.CertHeader),
		certFormat: o.CertFormat,
		log:        log.With(slog.String("gateway", o.Gateway.String())),
	}
	if len(h.trusted) == 0 {
		h.trusted = DefaultTrustedProxies()
	}
	if h.maxURI == 0 {
		h.maxURI = DefaultMaxURIBytes
	}
	return h, nil
}

// normalizePrefixes copies ps, masked, with IPv4-mapped IPv6 prefixes
// turned into IPv4 ones so that they match the unmapped addresses compared
// with them.
func normalizePrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

// Stats returns the Handler's counters.
func (h *Handler) Stats() Stats {
	return Stats{
		Requests:            h.n.requests.Load(),
		Allowed:             h.n.allowed.Load(),
		Denied:              h.n.denied.Load(),
		BadRequests:         h.n.badRequests.Load(),
		ForwardingIgnored:   h.n.forwardingIgnored.Load(),
		ForwardingMalformed: h.n.forwardingMalformed.Load(),
		ClientUnknown:       h.n.clientUnknown.Load(),
		CertMalformed:       h.n.certMalformed.Load(),
		CheckErrors:         h.n.checkErrors.Load(),
		FailedOpen:          h.n.failedOpen.Load(),
	}
}

// ServeHTTP answers one forward-auth request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.n.requests.Add(1)
	req, perr := h.request(r)
	if perr != nil {
		h.n.badRequests.Add(1)
		level := slog.LevelDebug
		if perr.config {
			level = slog.LevelWarn
		}
		h.log.LogAttrs(r.Context(), level, "forward-auth request rejected",
			slog.Int("status", perr.status), slog.String("reason", perr.detail),
			slog.String("peer", PeerAddr(r).String()))
		resp := problem(perr.status, perr.detail)
		h.write(w, r.Header, &resp, nil)
		return
	}
	res := new(gate.Result)
	err := h.checker.Check(r.Context(), req, res)
	if err == nil && !validStatus(res.Response.Status) {
		err = fmt.Errorf("checker answered status %d", res.Response.Status)
	}
	if err != nil {
		h.checkFailed(w, r, err)
		return
	}
	h.write(w, r.Header, &res.Response, &res.Verdict)
}

func (h *Handler) checkFailed(w http.ResponseWriter, r *http.Request, err error) {
	h.n.checkErrors.Add(1)
	level := slog.LevelWarn
	if r.Context().Err() != nil {
		level = slog.LevelDebug // the gateway gave up; nobody reads the answer
	}
	h.log.LogAttrs(r.Context(), level, "check failed",
		slog.Bool("fail_open", h.failOpen), slog.Any("error", err))
	if h.failOpen {
		h.n.failedOpen.Add(1)
		resp := gate.Response{Status: http.StatusOK, Upstream: http.Header{headerDecision: {"unchecked"}}}
		h.write(w, r.Header, &resp, nil)
		return
	}
	resp := problem(http.StatusServiceUnavailable, "vigil could not decide about this request")
	h.write(w, r.Header, &resp, nil)
}

func validStatus(s int) bool { return s >= 200 && s <= 599 }
