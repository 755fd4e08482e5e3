package extauthz

import (
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"golang.org/x/net/http/httpguts"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-sec/vigil/binding"
	"github.com/vigil-sec/vigil/gate"
)

// request fills r from the CheckRequest's attributes and returns the
// request's headers.
func (s *Server) request(a *authv3.AttributeContext, h *authv3.AttributeContext_HttpRequest, r *gate.Request) gate.MapHeaders {
	hdr := gate.MapHeaders(h.GetHeaders())
	if len(hdr) == 0 {
		if hm := h.GetHeaderMap(); hm != nil {
			hdr = fromHeaderMap(hm)
		}
	}
	r.Header = hdr
	r.Method = h.GetMethod()
	if r.Method == "" {
		r.Method = hdr[":method"]
	}
	r.URI = h.GetPath()
	if r.URI == "" {
		r.URI = hdr[":path"]
	}
	r.Host = h.GetHost()
	if r.Host == "" {
		if r.Host = hdr[":authority"]; r.Host == "" {
			r.Host = hdr["host"]
		}
	}
	r.Scheme = h.GetScheme()
	r.RequestID = h.GetId()
	r.ClientIP = clientIP(a.GetSource())
	r.ClientCert = s.clientCert(a.GetSource())
	r.Time = requestTime(a.GetRequest().GetTime())
	if ext := a.GetContextExtensions(); len(ext) > 0 {
		r.Route = ext[s.routeKey]
	}
	return hdr
}

// fromHeaderMap builds the lower-case header map Envoy sends in `headers`
// from the raw header list it sends with encode_raw_headers.
func fromHeaderMap(hm *corev3.HeaderMap) gate.MapHeaders {
	list := hm.GetHeaders()
	m := make(gate.MapHeaders, len(list))
	for _, hv := range list {
		k := hv.GetKey()
		if k == "" {
			continue
		}
		if !isLower(k) {
			k = strings.ToLower(k)
		}
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		if old, ok := m[k]; ok {
			v = old + "," + v
		}
		m[k] = v
	}
	return m
}

// clientIP returns the IP of the source's socket address, unmapped and
// without zone, or the invalid Addr when the source has none.
func clientIP(p *authv3.AttributeContext_Peer) netip.Addr {
	sa := p.GetAddress().GetSocketAddress()
	if sa == nil {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap().WithZone("")
}

// clientCert returns the thumbprint of the downstream client's certificate,
// which Envoy sends, URL-escaped PEM, in attributes.source.certificate
// when the ext_authz filter has include_peer_certificate: true; "" when it
// sent none or one that is not a certificate.
func (s *Server) clientCert(p *authv3.AttributeContext_Peer) string {
	v := p.GetCertificate()
	if v == "" {
		return ""
	}
	tp, err := binding.ParseEscapedPEM(v)
	if err != nil {
		s.badCerts.Add(1)
		if ok, n := s.certLog.allow(); ok {
			s.log.Warn("extauthz: attributes.source.certificate is not a URL-escaped PEM certificate; judged as without one",
				"err", err, "suppressed", n)
		}
		return ""
	}
	return tp
}

// requestTime returns ts when it is set and valid, else now.
func requestTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) || ts.CheckValid() != nil {
		return time.Now()
	}
	return ts.AsTime()
}

// allowReply holds an allow's messages in one allocation.
type allowReply struct {
	resp   authv3.CheckResponse
	status rpcstatus.Status
	ok     authv3.CheckResponse_OkResponse
	http   authv3.OkHttpResponse
}

// allow builds an OK CheckResponse carrying resp's headers; hdr are the
// request's headers, searched for forged reserved ones.
func (s *Server) allow(resp *gate.Response, hdr gate.MapHeaders) *authv3.CheckResponse {
	a := new(allowReply)
	a.http.Headers = s.headerOptions(resp.Upstream)
	a.http.ResponseHeadersToAdd = s.headerOptions(resp.Header)
	a.http.HeadersToRemove = s.forged(hdr, a.http.Headers)
	a.ok.OkResponse = &a.http
	a.resp.Status = &a.status // code 0: OK
	a.resp.HttpResponse = &a.ok
	return &a.resp
}

// forged returns the names of the request's headers that have the reserved
// prefix and are not among set, which overwrite their namesakes.
func (s *Server) forged(hdr gate.MapHeaders, set []*corev3.HeaderValueOption) []string {
	var out []string
next:
	for k := range hdr {
		if len(k) < len(s.prefix) || !strings.EqualFold(k[:len(s.prefix)], s.prefix) {
			continue
		}
		for _, o := range set {
			if strings.EqualFold(o.GetHeader().GetKey(), k) {
				continue next
			}
		}
		out = append(out, k)
	}
	return out
}

// headerValue is a HeaderValueOption and its HeaderValue, allocated together.
type headerValue struct {
	opt corev3.HeaderValueOption
	val corev3.HeaderValue
}

// headerOptions translates h to header mutations: the first value of a name
// overwrites any header of that name, the others are added after it. A name
// or value that is not valid in HTTP is dropped (Envoy would fail the
// request), and bytes that are not UTF-8 (which a protobuf string cannot
// carry) become "!", as Envoy does.
func (s *Server) headerOptions(h http.Header) []*corev3.HeaderValueOption {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	if n == 0 {
		return nil
	}
	block := make([]headerValue, n)
	out := make([]*corev3.HeaderValueOption, 0, n)
	i := 0
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			s.invalidHeader(k)
			continue
		}
		name := s.names.lower(k)
		first := true
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				s.invalidHeader(k)
				continue
			}
			e := &block[i]
			i++
			e.val.Key = name
			e.val.Value = validUTF8(v, "!")
			e.opt.Header = &e.val
			if first {
				first = false
				e.opt.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			} else {
				e.opt.AppendAction = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
			out = append(out, &e.opt)
		}
	}
	return out
}

// validUTF8 returns s with each run of bytes that are not UTF-8 replaced by
// r; s itself when it is valid.
func validUTF8(s, r string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, r)
}

// denyReply holds a denial's messages in one allocation.
type denyReply struct {
	resp   authv3.CheckResponse
	status rpcstatus.Status
	denied authv3.CheckResponse_DeniedResponse
	http   authv3.DeniedHttpResponse
	code   typev3.HttpStatus
}

// newDeny builds a denial with the gRPC code c, message msg and HTTP status.
func newDeny(c codes.Code, msg string, httpStatus int) *denyReply {
	d := new(denyReply)
	d.status.Code = int32(c)
	d.status.Message = msg
	d.code.Code = typev3.StatusCode(httpStatus)
	d.http.Status = &d.code
	d.denied.DeniedResponse = &d.http
	d.resp.Status = &d.status
	d.resp.HttpResponse = &d.denied
	return d
}

// deny translates the Checker's denial.
func (s *Server) deny(res *gate.Result) *authv3.CheckResponse {
	resp := &res.Response
	c := codes.PermissionDenied
	if resp.Status == http.StatusUnauthorized {
		c = codes.Unauthenticated
	}
	msg := res.Verdict.Problem
	if msg == "" {
		msg = res.Verdict.Level.String()
	}
	d := newDeny(c, validUTF8(msg, "\uFFFD"), resp.Status)
	d.http.Headers = s.headerOptions(resp.Header)
	if len(resp.Body) > 0 {
		d.http.Body = validUTF8(string(resp.Body), "\uFFFD")
	}
	return &d.resp
}

// malformedResponse answers a CheckRequest that is not an HTTP request.
func malformedResponse() *authv3.CheckResponse {
	return &newDeny(codes.InvalidArgument, "no attributes.request.http in CheckRequest", http.StatusBadRequest).resp
}

// unavailableResponse answers, failing closed, a request vigil could not
// decide.
func unavailableResponse() *authv3.CheckResponse {
	return &newDeny(codes.Unavailable, "vigil could not decide", http.StatusServiceUnavailable).resp
}
