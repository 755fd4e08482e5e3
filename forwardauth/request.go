package forwardauth

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/gate"
)

// The headers of the dialects. Canonical forms, read with http.Header.Get.
const (
	headerOriginalMethod  = "X-Original-Method"
	headerOriginalURI     = "X-Original-Uri"
	headerForwardedMethod = "X-Forwarded-Method"
	headerForwardedURI    = "X-Forwarded-Uri"
	headerForwardedHost   = "X-Forwarded-Host"
	headerForwardedProto  = "X-Forwarded-Proto"
	headerForwardedFor    = "X-Forwarded-For"
	headerRealIP          = "X-Real-Ip"
	headerRequestID       = "X-Request-Id"
)

// forwardingHeaders are the headers that claim something about the original
// request; from an untrusted peer their presence is counted.
var forwardingHeaders = [...]string{
	headerOriginalMethod, headerOriginalURI, headerForwardedMethod, headerForwardedURI,
	headerForwardedHost, headerForwardedFor, headerRealIP, "Forwarded",
}

const (
	maxMethodLen    = 64
	maxHostLen      = 300
	maxRequestIDLen = 128
)

// requestError is a request the Handler answers itself, with a 4xx.
type requestError struct {
	status int
	detail string // for the client and the log; never contains input
	config bool   // the gateway's configuration is the likely cause
}

// dialect names the headers a gateway writes the original request into.
type dialect struct {
	method, uri string
}

// request rebuilds the original request from r according to h's gateway.
func (h *Handler) request(r *http.Request) (*gate.Request, *requestError) {
	peer := PeerAddr(r)
	trusted := isTrusted(peer, h.trusted)
	req := &gate.Request{Header: r.Header}

	var method, uri, host, scheme string
	var d dialect
	switch h.gateway {
	case Nginx:
		d = dialect{method: headerOriginalMethod, uri: headerOriginalURI}
	case Forwarded:
		d = dialect{method: headerForwardedMethod, uri: headerForwardedURI}
	}

	switch {
	case h.gateway == Envoy:
		// Envoy sends the original request itself, behind path_prefix.
		method, host = r.Method, r.Host
		if trusted {
			scheme = r.Header.Get(headerForwardedProto)
		}
		var ok bool
		if uri, ok = stripPrefix(r.RequestURI, h.prefix); !ok {
			return nil, &requestError{http.StatusBadRequest, "the request path is outside the configured Envoy path_prefix", true}
		}
	case !trusted:
		method, uri, host = r.Method, r.RequestURI, r.Host
	default:
		method, uri, host = r.Header.Get(d.method), r.Header.Get(d.uri), r.Header.Get(headerForwardedHost)
		scheme = r.Header.Get(headerForwardedProto)
		if method == "" || uri == "" {
			return nil, &requestError{http.StatusBadRequest, fmt.Sprintf("the gateway sent no %s or %s", d.method, d.uri), true}
		}
	}

	if !trusted {
		// A certificate header counts too: only the gateway may write it.
		_, claimed := r.Header[h.certHeader]
		for _, name := range forwardingHeaders {
			if _, ok := r.Header[name]; ok {
				claimed = true
				break
			}
		}
		if claimed {
			h.n.forwardingIgnored.Add(1)
			h.warnIgnored(r)
		}
	}

	if !validMethod(method) {
		return nil, &requestError{http.StatusBadRequest, "the original method is not an HTTP method", false}
	}
	if len(uri) > h.maxURI {
		return nil, &requestError{http.StatusRequestURITooLong, "the original request target is too long", false}
	}
	uri, ok := requestTarget(uri)
	if !ok {
		return nil, &requestError{http.StatusBadRequest, "the original request target is not a URI", false}
	}
	if !validHost(host) {
		return nil, &requestError{http.StatusBadRequest, "the original host is not a host name", false}
	}
	req.Method, req.URI, req.Host = method, uri, host
	switch {
	case strings.EqualFold(scheme, "http"):
		req.Scheme = "http"
	case strings.EqualFold(scheme, "https"):
		req.Scheme = "https"
	case !trusted && r.TLS == nil:
		req.Scheme = "http"
	}

	if trusted {
		req.ClientIP = h.forwardedClient(r, peer)
		if id := r.Header.Get(headerRequestID); validRequestID(id) {
			req.RequestID = id
		}
		req.ClientCert = h.clientCert(r)
	} else {
		req.ClientIP = peer
	}
	if !req.ClientIP.IsValid() {
		h.n.clientUnknown.Add(1)
	}
	return req, nil
}

// forwardedClient establishes the client address from the forwarding
// headers of a trusted peer. It is invalid when the peer sent none that is
// usable: the peer itself is a proxy, not the client.
func (h *Handler) forwardedClient(r *http.Request, peer netip.Addr) netip.Addr {
	var realIP netip.Addr
	if h.gateway == Nginx {
		if v, present := r.Header[headerRealIP]; present {
			a, ok := netip.Addr{}, len(v) == 1
			if ok {
				a, ok = parseForwardedAddr(strings.Trim(v[0], " \t"))
			}
			switch {
			case !ok:
				h.n.forwardingMalformed.Add(1)
			case !isTrusted(a, h.trusted):
				return a
			default:
				// nginx's own client is a trusted proxy (a load balancer
				// without the realip module): X-Forwarded-For says more.
				realIP = a
			}
		}
	}
	w := walkForwardedFor(peer, r.Header.Values(headerForwardedFor), h.trusted)
	if w.malformed {
		h.n.forwardingMalformed.Add(1)
	}
	if w.hops == 0 {
		return realIP
	}
	return w.addr
}

// clientCert returns the thumbprint of the certificate in a trusted peer's
// certificate header, or "" when there is none or it is malformed. Several
// XFCC lines are one list (the last element counts); several lines of
// another format are ambiguous, and refused.
func (h *Handler) clientCert(r *http.Request) string {
	if h.certHeader == "" {
		return ""
	}
	vs := r.Header[h.certHeader]
	if len(vs) == 0 {
		return ""
	}
	v := vs[0]
	if len(vs) > 1 {
		if h.certFormat != binding.CertXFCC {
			h.n.certMalformed.Add(1)
			return ""
		}
		v = strings.Join(vs, ",")
	}
	tp, err := h.certFormat.Thumbprint(v)
	if err != nil {
		h.n.certMalformed.Add(1)
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "client certificate header ignored",
			slog.String("header", h.certHeader), slog.Any("error", err))
		return ""
	}
	return tp
}

// stripPrefix removes Envoy's path_prefix from the request target.
func stripPrefix(uri, prefix string) (string, bool) {
	if prefix == "" {
		return uri, true
	}
	rest, ok := strings.CutPrefix(uri, prefix)
	if !ok {
		return "", false
	}
	switch {
	case rest == "":
		return "/", true
	case rest[0] == '?':
		return "/" + rest, true
	case rest[0] == '/':
		return rest, true
	}
	return "", false // "/authzfoo" is not under "/authz"
}

// validMethod reports whether m is an HTTP method: a token (RFC 9110 5.6.2)
// of reasonable length.
func validMethod(m string) bool {
	if m == "" || len(m) > maxMethodLen {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !isTokenChar(m[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// requestTarget checks an original request target and returns it in origin
// form. It accepts the origin form ("/path?query", left as received, not
// decoded: percent-encoding is the Checker's business), the asterisk form
// ("*") and the absolute form with an http or https scheme, which it reduces
// to the origin form. Spaces, control bytes and other forms are refused.
func requestTarget(s string) (string, bool) {
	if s == "*" {
		return s, true
	}
	if len(s) > 0 && s[0] != '/' {
		rest, ok := cutScheme(s)
		if !ok {
			return "", false
		}
		i := strings.IndexAny(rest, "/?")
		if i < 0 {
			return "/", validAuthority(rest)
		}
		if !validAuthority(rest[:i]) {
			return "", false
		}
		s = rest[i:]
		if s[0] == '?' {
			s = "/" + s
		}
	}
	return s, validPath(s)
}

func cutScheme(s string) (string, bool) {
	for _, scheme := range [...]string{"http://", "https://"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			return s[len(scheme):], true
		}
	}
	return "", false
}

// validPath reports whether s starts with "/" and holds no space or control
// byte. Bytes above 0x7f and "#" are accepted: nginx passes them on
// (X-Original-URI is the raw request line's target) and the Checker sees
// them as they came.
func validPath(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether h is empty or a host with an optional port:
// only the characters of RFC 3986's host and port (and "_", which real
// names carry), as gateways write it.
func validHost(h string) bool {
	if len(h) > maxHostLen {
		return false
	}
	return validAuthority(h) && !strings.ContainsRune(h, '@')
}

func validAuthority(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validRequestID reports whether id can serve as the gateway's request id:
// visible ASCII of reasonable length.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
