package forwardauth

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/policy"
)

// Headers vigil writes for gateways.
const (
	// headerDecision is the decision's name, for the upstream on an allow
	// and, with the Nginx gateway, the marker of a throttle on a 403.
	headerDecision = "X-Vigil-Decision"
	// headerStatus carries the status a Nginx gateway could not pass on.
	headerStatus = "X-Vigil-Status"
	// headerEnvoyRemove lists, on an allow in the Envoy dialect, the
	// request headers Envoy's HTTP ext_authz filter removes before the
	// request goes upstream: comma-separated, after it has set the
	// allowed_upstream_headers of the answer.
	headerEnvoyRemove = "X-Envoy-Auth-Headers-To-Remove"
)

// upstreamHeaders are the headers vigil may set on the upstream request
// (gate.Response.Upstream). In the Envoy dialect, any of them that an allow
// does not set is always listed for removal, so that a client's copy does
// not pass even when Envoy was not configured to forward X-Vigil-* headers
// to vigil.
var upstreamHeaders = [...]string{headerDecision, "X-Vigil-Risk", "X-Vigil-Token-Id"}

// hopHeaders are never copied from a Response: net/http writes framing
// itself, and a Checker's stale Content-Length would corrupt the answer.
var hopHeaders = [...]string{"Connection", "Content-Length", "Keep-Alive", "Transfer-Encoding", "Te", "Trailer", "Upgrade"}

// write sends resp in h's dialect. in is the request's header; v is nil
// for answers the Handler makes without a verdict.
func (h *Handler) write(w http.ResponseWriter, in http.Header, resp *gate.Response, v *gate.Verdict) {
	out := w.Header()
	copyHeader(out, resp.Header)
	if resp.Allowed() {
		// Gateways copy chosen headers of the 200 onto the upstream
		// request (Traefik authResponseHeaders, Caddy copy_headers, nginx
		// auth_request_set); the upstream's take precedence.
		for k, vs := range resp.Upstream {
			out[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
		}
		deleteHop(out)
		if h.gateway == Envoy {
			envoyRemoveForged(out, in)
		}
		h.n.allowed.Add(1)
		// Envoy allows only on 200 exactly; gateways ignore the body.
		w.WriteHeader(http.StatusOK)
		return
	}
	h.n.denied.Add(1)
	deleteHop(out)
	status := resp.Status
	if status == http.StatusTooManyRequests && out.Get("Retry-After") == "" && v != nil && v.RetryAfter > 0 {
		out.Set("Retry-After", strconv.FormatInt(ceilSeconds(v.RetryAfter), 10))
	}
	if h.gateway == Nginx {
		status = nginxStatus(out, status, v)
	}
	if len(resp.Body) > 0 && out.Get("Content-Type") == "" {
		out.Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(status)
	if len(resp.Body) > 0 {
		_, _ = w.Write(resp.Body) // the gateway went away; nothing to do
	}
}

// nginxStatus maps a denial to what auth_request passes on: 401 and 403 as
// they are, every other status as 403 with X-Vigil-Status, and a throttle
// (429) with X-Vigil-Decision: throttle. nginx 1.22 copies only the first
// WWW-Authenticate of a 401, so several challenges are joined into one
// field (RFC 9110 allows a list of challenges).
func nginxStatus(out http.Header, status int, v *gate.Verdict) int {
	switch status {
	case http.StatusUnauthorized:
		if vs := out.Values("Www-Authenticate"); len(vs) > 1 {
			out.Set("Www-Authenticate", strings.Join(vs, ", "))
		}
		return status
	case http.StatusForbidden:
		if out.Get(headerDecision) == "" && v != nil {
			out.Set(headerDecision, v.Level.String())
		}
		return status
	}
	out.Set(headerStatus, strconv.Itoa(status))
	switch {
	case status == http.StatusTooManyRequests:
		out.Set(headerDecision, policy.Throttle.String())
	case out.Get(headerDecision) == "" && v != nil:
		out.Set(headerDecision, v.Level.String())
	}
	return http.StatusForbidden
}

// envoyRemoveForged lists in out's X-Envoy-Auth-Headers-To-Remove the
// X-Vigil-* headers the upstream request must not carry: those of in (the
// client's, as Envoy forwarded them) and the upstreamHeaders, less those out
// sets. Envoy's allowed_upstream_headers only replaces the headers present
// in the answer, so without this a client's own X-Vigil-Token-Id would reach
// the upstream with an anonymous request, and every X-Vigil-* header would
// with upstream headers turned off. The headers out sets are not listed:
// Envoy removes after it sets, and would remove vigil's own. The names,
// with any the Checker listed, go lower-case and sorted in one field.
func envoyRemoveForged(out, in http.Header) {
	var names []string
	for _, v := range out.Values(headerEnvoyRemove) {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				names = append(names, strings.ToLower(name))
			}
		}
	}
	add := func(k string) {
		if !gate.Reserved(k) {
			return
		}
		if _, set := out[http.CanonicalHeaderKey(k)]; !set {
			names = append(names, strings.ToLower(k))
		}
	}
	for _, k := range upstreamHeaders {
		add(k)
	}
	for k := range in {
		add(k)
	}
	out.Del(headerEnvoyRemove)
	if len(names) > 0 {
		slices.Sort(names)
		out.Set(headerEnvoyRemove, strings.Join(slices.Compact(names), ", "))
	}
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		k = http.CanonicalHeaderKey(k)
		dst[k] = append(dst[k], vs...)
	}
}

func deleteHop(h http.Header) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

func ceilSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}

// problem is an RFC 9457 problem answer made by the Handler itself.
func problem(status int, detail string) gate.Response {
	body, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(status), status, detail}) // cannot fail: strings and an int
	return gate.Response{
		Status: status,
		Header: http.Header{"Content-Type": {"application/problem+json"}},
		Body:   body,
	}
}
