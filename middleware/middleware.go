// Package middleware embeds vigil in a Go service: a net/http middleware
// that asks a gate.Checker about every request before the handler runs,
// answers denials itself (429 with Retry-After, 401 step-up challenge, 403),
// and feeds the handler's status and response size back to the Checker, so
// volume and failure signals see them.
//
//	chk, _ := inline.New(...)            // or any gate.Checker
//	mux := http.NewServeMux()
//	http.ListenAndServe(addr, middleware.New(chk, middleware.Options{})(mux))
package middleware

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/forwardauth"
	"github.com/vigil-sec/vigil/gate"
)

// Options configure the middleware. The zero value trusts no forwarding
// header and fails closed.
type Options struct {
	// TrustedProxies are the peers whose X-Forwarded-For is believed. nil
	// trusts nobody: the service is the edge and the peer is the client.
	TrustedProxies []netip.Prefix
	// FailOpen lets a request through when the Checker cannot decide;
	// the default answers 503.
	FailOpen bool
	// Route returns the route template of a request (e.g. r.Pattern once a
	// ServeMux has routed it); nil derives it from the path.
	Route func(*http.Request) string
	// Log receives Checker failures; nil discards them.
	Log *slog.Logger
	// CertHeader names a header in which a TLS-terminating proxy in
	// TrustedProxies passes the client's certificate, in CertFormat, for
	// requests that come without one of their own on the connection
	// (forwardauth.Options.CertHeader). "" reads none: the client
	// certificate is the connection's (r.TLS.PeerCertificates[0]) or none.
	CertHeader string
	CertFormat binding.CertFormat
}

// New returns the middleware.
func New(c gate.Checker, o Options) func(http.Handler) http.Handler {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A request's slot is reused once its handler has returned: the
	// Checker fills the Result in place, reusing its header maps.
	slots := sync.Pool{New: func() any { return new(slot) }}
	certHeader := ""
	if o.CertHeader != "" {
		certHeader = http.CanonicalHeaderKey(o.CertHeader)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := slots.Get().(*slot)
			defer slots.Put(s)
			req, res := &s.req, &s.res
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			*req = gate.Request{
				Method:    r.Method,
				Scheme:    scheme,
				Host:      r.Host,
				URI:       r.RequestURI,
				ClientIP:  forwardauth.ClientIP(r, o.TrustedProxies),
				Header:    r.Header,
				RequestID: requestID(r.Header.Get("X-Request-Id")),
			}
			req.ClientCert = clientCert(r, certHeader, o.CertFormat, o.TrustedProxies, log)
			if req.URI == "" {
				req.URI = r.URL.RequestURI()
			}
			if o.Route != nil {
				req.Route = o.Route(r)
			}
			err := c.Check(r.Context(), req, res)
			req.Header = nil // the request is not the slot's to keep
			// Only vigil speaks in X-Vigil-* headers, whatever happens next.
			for k := range r.Header {
				if gate.Reserved(k) {
					delete(r.Header, k)
				}
			}
			if err != nil {
				if errors.Is(err, r.Context().Err()) {
					return // the client went away
				}
				log.Warn("vigil could not decide", "err", err, "fail_open", o.FailOpen)
				if !o.FailOpen {
					http.Error(w, "authorization service unavailable", http.StatusServiceUnavailable)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			resp := &res.Response
			h := w.Header()
			for k, vs := range resp.Header {
				h[k] = vs
			}
			if !resp.Allowed() {
				// vigil's own answer: not the upstream's, so not reported.
				w.WriteHeader(resp.Status)
				w.Write(resp.Body)
				return
			}
			for k, vs := range resp.Upstream {
				r.Header[k] = vs
			}
			cw := &s.cw
			*cw = counter{ResponseWriter: w}
			next.ServeHTTP(cw, r)
			if cw.status == 0 {
				cw.status = http.StatusOK
			}
			c.Report(res.Ticket, gate.Outcome{Status: cw.status, ResponseBytes: cw.bytes})
			cw.ResponseWriter = nil
		})
	}
}

// clientCert returns the thumbprint of the client's certificate: the TLS
// connection's, else, from a trusted proxy, the one in its certificate
// header; "" when there is none.
func clientCert(r *http.Request, header string, f binding.CertFormat, trusted []netip.Prefix, log *slog.Logger) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return binding.CertThumbprint(r.TLS.PeerCertificates[0].Raw)
	}
	if header == "" {
		return ""
	}
	vs := r.Header[header]
	if len(vs) == 0 {
		return ""
	}
	peer := forwardauth.PeerAddr(r)
	if !peer.IsValid() || !slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(peer) }) {
		return ""
	}
	v := vs[0]
	if len(vs) > 1 {
		if f != binding.CertXFCC {
			return ""
		}
		v = strings.Join(vs, ",")
	}
	tp, err := f.Thumbprint(v)
	if err != nil {
		log.Debug("client certificate header ignored", "header", header, "err", err)
		return ""
	}
	return tp
}

// requestID keeps a client's request id only if it is short printable
// ASCII: it is stored with the decision.
func requestID(s string) string {
	if len(s) > 128 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return ""
		}
	}
	return s
}

// slot is one request's scratch space.
type slot struct {
	req gate.Request
	res gate.Result
	cw  counter
}

// counter records the status and body size a handler writes. It unwraps to
// the ResponseWriter it wraps, so http.ResponseController reaches Flush,
// Hijack and deadlines.
type counter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (c *counter) WriteHeader(code int) {
	if c.status == 0 && code >= 200 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *counter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.bytes += int64(n)
	return n, err
}

// ReadFrom keeps io.Copy's fast path (sendfile) while counting.
func (c *counter) ReadFrom(r io.Reader) (int64, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := io.Copy(c.ResponseWriter, r)
	c.bytes += n
	return n, err
}

// Flush implements http.Flusher for streaming handlers.
func (c *counter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack implements http.Hijacker for upgrades (WebSocket).
func (c *counter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := c.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	return h.Hijack()
}

// Unwrap returns the wrapped ResponseWriter (http.ResponseController).
func (c *counter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
