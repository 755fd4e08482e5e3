// Package enforce turns a verdict into what the client and the upstream are
// told: the status, the headers and the body of a denial, or the headers
// added to a request that goes upstream. It is the one place where vigil's
// decisions become HTTP; the adapters copy a gate.Response onto their
// protocol and add nothing of their own.
//
// What each verdict becomes:
//
//   - allow: 200. Upstream (with Options.UpstreamHeaders): X-Vigil-Decision
//     (the level the engine decided, which may be throttle when the request
//     fits its rate limit), X-Vigil-Risk (two decimals), X-Vigil-Token-Id,
//     and X-Vigil-Shadow: 1 in shadow mode. When the credential is
//     throttled (v.RateLimit.Limit > 0) and the request fits, the client is
//     told its limit with RateLimit-Policy and RateLimit.
//   - throttle, over the limit: 429 with Retry-After (whole seconds,
//     rounded up, at least 1: RFC 9110 §10.2.3), RateLimit-Policy,
//     RateLimit and an RFC 9457 problem.
//   - step_up_auth: 401 with an RFC 9470 §3 challenge (error
//     insufficient_user_authentication, acr_values, max_age) under the
//     Bearer scheme, or DPoP (with algs, RFC 9449 §7.1) when the request
//     presented a DPoP-bound token; and a problem.
//   - block: 403 with a problem that says nothing about why.
//   - a malformed credential (v.Problem, an RFC 6750 §3.1 error code): 400
//     for invalid_request, 403 for insufficient_scope, 401 otherwise, with
//     the code in WWW-Authenticate and a problem. A DPoP failure
//     (invalid_dpop_proof, use_dpop_nonce: RFC 9449 §7.1 and §9) carries
//     the server nonce in DPoP-Nonce when v.DPoPNonce is set; a
//     certificate-bound token (RFC 8705 §3) without its certificate is
//     invalid_token.
//
// Denials carry X-Vigil-Decision (throttle, step_up_auth or block) to the
// client as well: nginx's auth_request only passes 401 and 403 through, so
// its configuration maps a denial marked throttle to 429; the mark also
// tells any gateway vigil's denials from the upstream's own.
//
// The RateLimit fields follow draft-ietf-httpapi-ratelimit-headers-11 (May
// 2026), §3 and §4: one policy named "vigil" with q (the burst) and w (the
// time a whole burst takes to refill, whole seconds rounded up), and r (the
// requests available now) with t (whole seconds rounded up until the quota
// is whole again). On a 429, r is 0 and t is the Retry-After value, so the
// two fields name the same moment (§6: Retry-After SHOULD NOT be earlier
// than the end of the effective window).
//
// Problem bodies use the type about:blank with the status phrase as title
// (RFC 9457 §4.2.1). draft-ietf-httpapi-ratelimit-headers §5 proposes
// quota-exceeded and abnormal-usage-detected problem types, but IANA has
// not registered them yet.
package enforce

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/policy"
)

// Header names, in canonical form (http.Header keys are canonical:
// RateLimit-Policy is stored as Ratelimit-Policy).
const (
	hContentType     = "Content-Type"
	hRetryAfter      = "Retry-After"
	hRateLimit       = "Ratelimit"
	hRateLimitPolicy = "Ratelimit-Policy"
	hWWWAuthenticate = "Www-Authenticate"
	hDecision        = "X-Vigil-Decision"
	hRisk            = "X-Vigil-Risk"
	hTokenID         = "X-Vigil-Token-Id"
	hShadow          = "X-Vigil-Shadow"
	hDPoPNonce       = "Dpop-Nonce"

	// PolicyName names vigil's quota policy in RateLimit-Policy and
	// RateLimit.
	PolicyName = "vigil"

	// sfIntegerMax is the largest Integer a structured field can carry
	// (RFC 9651 §3.3.1).
	sfIntegerMax = 999_999_999_999_999
)

// Codes from RFC 6750 §3.1, RFC 9449 §7.1 and RFC 9470 §3 that vigil
// answers with precomputed responses.
const (
	CodeInvalidRequest       = "invalid_request"                  // 400 (RFC 6750 §3.1)
	CodeInvalidToken         = "invalid_token"                    // 401 (RFC 6750 §3.1)
	CodeInsufficientScope    = "insufficient_scope"               // 403 (RFC 6750 §3.1)
	CodeInvalidDPoPProof     = "invalid_dpop_proof"               // 401 (RFC 9449 §7.1)
	CodeUseDPoPNonce         = "use_dpop_nonce"                   // 401 with DPoP-Nonce (RFC 9449 §9)
	CodeInsufficientUserAuth = "insufficient_user_authentication" // 401, the step-up challenge (RFC 9470 §3)
)

// Responder builds responses from verdicts. It is read-only once built and
// safe for concurrent use.
type Responder struct {
	upstream bool

	decision        [policy.NumLevels][]string // X-Vigil-Decision values
	decisionUnknown []string
	one             []string // X-Vigil-Shadow
	problemJSON     []string // Content-Type

	throttleBody []byte
	stepUp       [2]denial // per scheme
	block        denial
	problems     map[string]*[2]denial // known codes, per scheme
	unknown      [2]denial             // a valid code vigil has no text for; challenge built per call
	prefix       [2]string             // `Bearer realm="…", ` up to the first parameter
	suffix       [2]string             // `, algs="…"` for DPoP
}

// Schemes, indexing the per-scheme tables.
const (
	bearer = iota
	dpop
)

// denial is a precomputed denial: status, challenge and body.
type denial struct {
	status    int
	challenge []string // WWW-Authenticate; nil for none
	decision  []string // X-Vigil-Decision; nil for none
	body      []byte
}

// NewResponder checks o and precomputes every constant header value and
// body.
func NewResponder(o Options) (*Responder, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	algs := o.DPoPAlgs
	if len(algs) == 0 {
		algs = DefaultDPoPAlgs()
	}
	r := &Responder{
		upstream:        o.UpstreamHeaders,
		decisionUnknown: []string{"unknown"},
		one:             []string{"1"},
		problemJSON:     []string{"application/problem+json"},
		problems:        make(map[string]*[2]denial),
	}
	for l := range policy.NumLevels {
		r.decision[l] = []string{l.String()}
	}
	realm := ""
	if o.Realm != "" {
		realm = "realm=" + quote(o.Realm) + ", "
	}
	r.prefix = [2]string{"Bearer " + realm, "DPoP " + realm}
	r.suffix = [2]string{"", ", algs=" + quote(strings.Join(algs, " "))}

	r.throttleBody = problemBody(http.StatusTooManyRequests,
		"This credential has sent more requests than it is allowed to at the moment: retry after the number of seconds in the Retry-After header, and slow down.")

	stepUpParams := `error="` + CodeInsufficientUserAuth + `", error_description="A stronger or more recent authentication is required"`
	if o.ACRValues != "" {
		stepUpParams += ", acr_values=" + quote(o.ACRValues)
	}
	if o.MaxAge > 0 {
		stepUpParams += `, max_age="` + strconv.FormatInt(int64(o.MaxAge/time.Second), 10) + `"`
	}
	stepUpBody := problemBody(http.StatusUnauthorized,
		"This request needs a stronger or more recent authentication: obtain an access token that meets the requirements of the WWW-Authenticate header, then retry.")
	for s := range 2 {
		r.stepUp[s] = denial{
			status:    http.StatusUnauthorized,
			challenge: []string{r.prefix[s] + stepUpParams + r.suffix[s]},
			decision:  r.decision[policy.StepUp],
			body:      stepUpBody,
		}
	}

	r.block = denial{
		status:   http.StatusForbidden,
		decision: r.decision[policy.Block],
		body:     problemBody(http.StatusForbidden, "The request was refused."),
	}

	for _, c := range []struct {
		code, description string
		status            int
	}{
		{CodeInvalidRequest, "The request's credential is malformed", http.StatusBadRequest},
		{CodeInvalidToken, "The access token is malformed, expired or otherwise invalid", http.StatusUnauthorized},
		{CodeInsufficientScope, "The access token does not grant the scope this request needs", http.StatusForbidden},
		{CodeInvalidDPoPProof, "The DPoP proof is missing or invalid", http.StatusUnauthorized},
		{CodeUseDPoPNonce, "The DPoP proof must carry the server nonce of the DPoP-Nonce header", http.StatusUnauthorized},
	} {
		body := problemBody(c.status, c.description+".")
		params := `error="` + c.code + `", error_description="` + c.description + `"`
		var d [2]denial
		for s := range 2 {
			d[s] = denial{status: c.status, challenge: []string{r.prefix[s] + params + r.suffix[s]}, body: body}
		}
		r.problems[c.code] = &d
	}
	unknownBody := problemBody(http.StatusUnauthorized, "The request's credential was rejected.")
	r.unknown = [2]denial{{status: http.StatusUnauthorized, body: unknownBody}, {status: http.StatusUnauthorized, body: unknownBody}}
	return r, nil
}

// problemBody returns an RFC 9457 problem object with the type about:blank.
func problemBody(status int, detail string) []byte {
	b, err := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(status), status, detail})
	if err != nil {
		panic(err) // a struct of strings and an int always marshals
	}
	return b
}

// Respond fills out with the response to v (which must not be nil). out's
// previous content is replaced: out.Header and out.Upstream are cleared and
// reused when they are not nil, and made otherwise, so that both are non-nil
// afterwards; pass the same Response again to avoid allocating maps.
//
// Constant header values and bodies are shared between calls and with the
// Responder: treat out.Body and the header value slices as read-only
// (Set, Add and Del on the headers are safe; writing into a value slice or
// the body is not). What is computed per call (risk, rate-limit values,
// Retry-After, a challenge for an error code vigil has no text for) costs
// two allocations: one string holding every value and one slice of them.
//
// Which rule applies, in order: shadow mode allows (vigil only observes);
// block (or a level vigil does not know) is 403; a malformed credential
// (v.Problem) is answered with its error; step_up_auth is 401; throttle is
// 429 when v.Limited and an allow otherwise.
func (r *Responder) Respond(v *gate.Verdict, out *gate.Response) {
	h := reset(&out.Header)
	up := reset(&out.Upstream)
	scheme := bearer
	if v.Kind == gate.DPoP {
		scheme = dpop
	}
	switch {
	case v.Shadow:
		r.allow(v, out, h, up)
	case v.Level >= policy.Block:
		r.deny(&r.block, out, h)
	case v.Problem != "":
		r.problem(v.Problem, scheme, out, h)
		if v.DPoPNonce != "" && isNonce(v.DPoPNonce) {
			h[hDPoPNonce] = []string{v.DPoPNonce}
		}
	case v.Level == policy.StepUp:
		r.deny(&r.stepUp[scheme], out, h)
	case v.Level == policy.Throttle && v.Limited:
		r.throttle(v, out, h)
	default:
		r.allow(v, out, h, up)
	}
}

func reset(h *http.Header) http.Header {
	if *h == nil {
		*h = make(http.Header, 6)
	} else {
		clear(*h)
	}
	return *h
}

func (r *Responder) deny(d *denial, out *gate.Response, h http.Header) {
	out.Status = d.status
	out.Body = d.body
	h[hContentType] = r.problemJSON
	if d.challenge != nil {
		h[hWWWAuthenticate] = d.challenge
	}
	if d.decision != nil {
		h[hDecision] = d.decision
	}
}

func (r *Responder) problem(code string, scheme int, out *gate.Response, h http.Header) {
	if d := r.problems[code]; d != nil {
		r.deny(&d[scheme], out, h)
		return
	}
	if !isErrorCode(code) {
		// Not a code RFC 6750 allows: never let it near a header.
		r.deny(&r.problems[CodeInvalidToken][scheme], out, h)
		return
	}
	r.deny(&r.unknown[scheme], out, h)
	h[hWWWAuthenticate] = []string{r.prefix[scheme] + `error="` + code + `"` + r.suffix[scheme]}
}

// values collects the header values computed for one response in one
// buffer, which becomes a single string.
type values struct {
	buf  []byte
	ends [maxValues]int
	n    int
}

const maxValues = 4

func (vs *values) mark() { vs.ends[vs.n] = len(vs.buf); vs.n++ }

// slices returns the values, and then tail if it is not empty, as
// one-element slices sharing one backing array with no spare capacity, so
// that an Add to one of them cannot write into the next. (tail is not kept
// in values: escape analysis would then move the buffer to the heap.)
func (vs *values) slices(tail string) [maxValues][]string {
	var out [maxValues][]string
	s := string(vs.buf)
	n := vs.n
	if tail != "" {
		n++
	}
	all := make([]string, n)
	start := 0
	for i := range vs.n {
		all[i] = s[start:vs.ends[i]]
		start = vs.ends[i]
	}
	if tail != "" {
		all[vs.n] = tail
	}
	for i := range n {
		out[i] = all[i : i+1 : i+1]
	}
	return out
}

func (r *Responder) throttle(v *gate.Verdict, out *gate.Response, h http.Header) {
	out.Status = http.StatusTooManyRequests
	out.Body = r.throttleBody
	h[hContentType] = r.problemJSON
	h[hDecision] = r.decision[policy.Throttle]

	var scratch [96]byte
	vs := values{buf: scratch[:0]}
	retry := max(ceilSeconds(v.RetryAfter), 1)
	vs.buf = strconv.AppendInt(vs.buf, retry, 10)
	vs.mark()
	if v.RateLimit.Limit > 0 {
		vs.buf = appendPolicy(vs.buf, &v.RateLimit)
		vs.mark()
		vs.buf = appendLimit(vs.buf, 0, retry)
		vs.mark()
	}
	s := vs.slices("")
	h[hRetryAfter] = s[0]
	if v.RateLimit.Limit > 0 {
		h[hRateLimitPolicy] = s[1]
		h[hRateLimit] = s[2]
	}
}

func (r *Responder) allow(v *gate.Verdict, out *gate.Response, h, up http.Header) {
	out.Status = http.StatusOK
	out.Body = nil
	limited := v.RateLimit.Limit > 0 && !v.Shadow // shadow mode is invisible to clients
	if !r.upstream && !limited {
		return
	}
	var scratch [128]byte
	vs := values{buf: scratch[:0]}
	if limited {
		vs.buf = appendPolicy(vs.buf, &v.RateLimit)
		vs.mark()
		vs.buf = appendLimit(vs.buf, int64(v.RateLimit.Remaining), ceilSeconds(v.RateLimit.Reset))
		vs.mark()
	}
	token := ""
	if r.upstream {
		vs.buf = strconv.AppendFloat(vs.buf, v.Risk, 'f', 2, 64)
		vs.mark()
		if isVisible(v.TokenID) {
			token = v.TokenID
		}
	}
	s := vs.slices(token)
	i := 0
	if limited {
		h[hRateLimitPolicy] = s[0]
		h[hRateLimit] = s[1]
		i = 2
	}
	if r.upstream {
		if v.Decided < policy.NumLevels {
			up[hDecision] = r.decision[v.Decided]
		} else {
			up[hDecision] = r.decisionUnknown
		}
		if v.Shadow {
			up[hShadow] = r.one
		}
		up[hRisk] = s[i]
		if token != "" {
			up[hTokenID] = s[i+1]
		}
	}
}

// appendPolicy appends a RateLimit-Policy item: "vigil";q=<limit>;w=<window>.
func appendPolicy(b []byte, rl *gate.RateLimit) []byte {
	b = append(b, `"`+PolicyName+`";q=`...)
	b = strconv.AppendInt(b, clampSF(int64(rl.Limit)), 10)
	if rl.Window > 0 {
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, clampSF(max(ceilSeconds(rl.Window), 1)), 10)
	}
	return b
}

// appendLimit appends a RateLimit item: "vigil";r=<remaining>;t=<seconds>.
func appendLimit(b []byte, remaining, seconds int64) []byte {
	b = append(b, `"`+PolicyName+`";r=`...)
	b = strconv.AppendInt(b, clampSF(remaining), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, clampSF(seconds), 10)
}

// ceilSeconds returns d in whole seconds, rounded up; 0 for d ≤ 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

func clampSF(n int64) int64 { return min(max(n, 0), sfIntegerMax) }

// isNonce reports whether s can be a DPoP-Nonce value: RFC 9449 §8.1's
// 1*NQCHAR (%x21 / %x23-5B / %x5D-7E), of reasonable length.
func isNonce(s string) bool {
	if len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return s != ""
}

// isVisible reports whether s is a non-empty run of visible ASCII (what a
// token id is), safe as a header value as it is.
func isVisible(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
