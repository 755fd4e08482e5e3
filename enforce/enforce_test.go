package enforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/policy"
)

const tokenID = "tk_5f2b9c0e4d7a41f8a3b6c2e9d0f1a7b4"

func newResponder(t testing.TB, o Options) *Responder {
	t.Helper()
	r, err := NewResponder(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func respond(r *Responder, v gate.Verdict) gate.Response {
	var out gate.Response
	r.Respond(&v, &out)
	return out
}

type problemDoc struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// checkProblem decodes out.Body as an RFC 9457 problem and checks it
// against out.Status.
func checkProblem(t *testing.T, out gate.Response) problemDoc {
	t.Helper()
	if ct := out.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemDoc
	dec := json.NewDecoder(strings.NewReader(string(out.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", out.Body, err)
	}
	if p.Type != "about:blank" || p.Status != out.Status || p.Title != http.StatusText(out.Status) || p.Detail == "" {
		t.Errorf("problem %+v for status %d", p, out.Status)
	}
	return p
}

func checkHeader(t *testing.T, what string, got http.Header, want map[string]string) {
	t.Helper()
	flat := map[string]string{}
	for k, vs := range got {
		if len(vs) != 1 {
			t.Errorf("%s %s: %d values %q, want 1", what, k, len(vs), vs)
		}
		flat[k] = strings.Join(vs, "|")
	}
	if want == nil {
		want = map[string]string{}
	}
	if !maps.Equal(flat, want) {
		t.Errorf("%s headers:\n got %q\nwant %q", what, flat, want)
	}
}

func TestAllow(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true})
	out := respond(r, gate.Verdict{TokenID: tokenID, Kind: gate.Bearer, Risk: 3.14159})
	if out.Status != 200 || out.Body != nil || !out.Allowed() {
		t.Fatalf("status %d body %q", out.Status, out.Body)
	}
	checkHeader(t, "client", out.Header, nil)
	checkHeader(t, "upstream", out.Upstream, map[string]string{
		"X-Vigil-Decision": "allow",
		"X-Vigil-Risk":     "3.14",
		"X-Vigil-Token-Id": tokenID,
	})
	if got := out.Upstream.Get("x-vigil-token-id"); got != tokenID {
		t.Errorf("Get(x-vigil-token-id) = %q", got)
	}

	t.Run("no upstream headers", func(t *testing.T) {
		out := respond(newResponder(t, Options{}), gate.Verdict{TokenID: tokenID, Risk: 1})
		if out.Status != 200 || out.Header == nil || out.Upstream == nil {
			t.Fatalf("%+v", out)
		}
		checkHeader(t, "client", out.Header, nil)
		checkHeader(t, "upstream", out.Upstream, nil)
	})
	t.Run("unsafe token id is left out", func(t *testing.T) {
		for _, id := range []string{"", "tk_1\r\nX-Evil: 1", "tk 1", "tk_\x00", "tk_é"} {
			out := respond(r, gate.Verdict{TokenID: id, Risk: 0.005})
			checkHeader(t, "upstream", out.Upstream, map[string]string{
				"X-Vigil-Decision": "allow",
				"X-Vigil-Risk":     "0.01",
			})
		}
	})
	t.Run("unknown decided level", func(t *testing.T) {
		out := respond(r, gate.Verdict{TokenID: tokenID, Decided: 42})
		if got := out.Upstream.Get("X-Vigil-Decision"); got != "unknown" || out.Status != 200 {
			t.Errorf("status %d, decision %q", out.Status, got)
		}
	})
}

func TestAllowWithinRateLimit(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true})
	v := gate.Verdict{
		TokenID: tokenID, Risk: 4.5, Decided: policy.Throttle, Level: policy.Allow,
		RateLimit: gate.RateLimit{Limit: 10, Remaining: 3, Reset: 11200 * time.Millisecond, Window: 60 * time.Second},
	}
	out := respond(r, v)
	if out.Status != 200 || out.Body != nil {
		t.Fatalf("status %d body %q", out.Status, out.Body)
	}
	checkHeader(t, "client", out.Header, map[string]string{
		"Ratelimit-Policy": `"vigil";q=10;w=60`,
		"Ratelimit":        `"vigil";r=3;t=12`,
	})
	checkHeader(t, "upstream", out.Upstream, map[string]string{
		"X-Vigil-Decision": "throttle",
		"X-Vigil-Risk":     "4.50",
		"X-Vigil-Token-Id": tokenID,
	})
	if out.Header.Get("RateLimit-Policy") == "" || out.Header.Get("RateLimit") == "" {
		t.Error("RateLimit fields not found by Get: keys not canonical")
	}

	// Level throttle without Limited is a request that fits: the same.
	v.Level = policy.Throttle
	if out2 := respond(r, v); !reflect.DeepEqual(out2, out) {
		t.Errorf("throttle, not limited:\n got %+v\nwant %+v", out2, out)
	}

	// Without upstream headers the client still learns its limit.
	out = respond(newResponder(t, Options{}), v)
	checkHeader(t, "client", out.Header, map[string]string{
		"Ratelimit-Policy": `"vigil";q=10;w=60`,
		"Ratelimit":        `"vigil";r=3;t=12`,
	})
	checkHeader(t, "upstream", out.Upstream, nil)
}

func TestShadow(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true})
	for _, v := range []gate.Verdict{
		{TokenID: tokenID, Risk: 12, Decided: policy.Block, Level: policy.Allow, Shadow: true},
		// Whatever else the verdict says, shadow mode never denies nor
		// shows the client anything.
		{TokenID: tokenID, Risk: 12, Decided: policy.Block, Level: policy.Block, Shadow: true, Problem: "invalid_token",
			Limited: true, RateLimit: gate.RateLimit{Limit: 5, Window: time.Minute}, RetryAfter: time.Second},
	} {
		out := respond(r, v)
		if out.Status != 200 || out.Body != nil {
			t.Fatalf("status %d body %q", out.Status, out.Body)
		}
		checkHeader(t, "client", out.Header, nil)
		checkHeader(t, "upstream", out.Upstream, map[string]string{
			"X-Vigil-Decision": "block",
			"X-Vigil-Shadow":   "1",
			"X-Vigil-Risk":     "12.00",
			"X-Vigil-Token-Id": tokenID,
		})
	}
}

func TestThrottle(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true})
	rl := gate.RateLimit{Limit: 10, Remaining: 0, Reset: 50 * time.Second, Window: 60 * time.Second}
	for _, tc := range []struct {
		retry  time.Duration
		rl     gate.RateLimit
		header map[string]string
	}{
		{2100 * time.Millisecond, rl, map[string]string{"Retry-After": "3", "Ratelimit-Policy": `"vigil";q=10;w=60`, "Ratelimit": `"vigil";r=0;t=3`}},
		{2 * time.Second, rl, map[string]string{"Retry-After": "2", "Ratelimit-Policy": `"vigil";q=10;w=60`, "Ratelimit": `"vigil";r=0;t=2`}},
		{time.Nanosecond, rl, map[string]string{"Retry-After": "1", "Ratelimit-Policy": `"vigil";q=10;w=60`, "Ratelimit": `"vigil";r=0;t=1`}},
		{0, rl, map[string]string{"Retry-After": "1", "Ratelimit-Policy": `"vigil";q=10;w=60`, "Ratelimit": `"vigil";r=0;t=1`}},
		{-time.Second, rl, map[string]string{"Retry-After": "1", "Ratelimit-Policy": `"vigil";q=10;w=60`, "Ratelimit": `"vigil";r=0;t=1`}},
		// A sub-second window is a whole second; no window, no w.
		{time.Second, gate.RateLimit{Limit: 3, Window: 300 * time.Millisecond}, map[string]string{"Retry-After": "1", "Ratelimit-Policy": `"vigil";q=3;w=1`, "Ratelimit": `"vigil";r=0;t=1`}},
		{time.Second, gate.RateLimit{Limit: 3}, map[string]string{"Retry-After": "1", "Ratelimit-Policy": `"vigil";q=3`, "Ratelimit": `"vigil";r=0;t=1`}},
		// No limiter state: Retry-After alone.
		{90 * time.Second, gate.RateLimit{}, map[string]string{"Retry-After": "90"}},
	} {
		out := respond(r, gate.Verdict{
			TokenID: tokenID, Risk: 5, Decided: policy.Throttle, Level: policy.Throttle,
			Limited: true, RateLimit: tc.rl, RetryAfter: tc.retry,
		})
		if out.Status != http.StatusTooManyRequests || out.Allowed() {
			t.Fatalf("status %d", out.Status)
		}
		want := maps.Clone(tc.header)
		want["Content-Type"] = "application/problem+json"
		want["X-Vigil-Decision"] = "throttle"
		checkHeader(t, fmt.Sprintf("retry %v, %+v: client", tc.retry, tc.rl), out.Header, want)
		checkHeader(t, "upstream", out.Upstream, nil)
		checkProblem(t, out)
	}
}

// sfItem matches one Item of RateLimit or RateLimit-Policy as vigil writes
// it: a String naming the policy, then Integer parameters (RFC 9651 §3.1.2,
// §3.3.1: at most 15 digits; draft-ietf-httpapi-ratelimit-headers-11 §3.1,
// §4.1).
var sfItem = regexp.MustCompile(`^"vigil"(;[a-z]+=(0|[1-9][0-9]{0,14}))+$`)

func TestRateLimitSyntax(t *testing.T) {
	r := newResponder(t, Options{})
	for _, rl := range []gate.RateLimit{
		{Limit: 1, Remaining: 0, Reset: time.Nanosecond, Window: time.Nanosecond},
		{Limit: 1 << 62, Remaining: 1 << 62, Reset: 1 << 62, Window: 1 << 62},
		{Limit: 5, Remaining: -3, Reset: -time.Second, Window: -time.Second},
	} {
		for _, limited := range []bool{false, true} {
			out := respond(r, gate.Verdict{Level: policy.Throttle, Limited: limited, RateLimit: rl, RetryAfter: 1 << 62})
			pol, cur := out.Header.Get("RateLimit-Policy"), out.Header.Get("RateLimit")
			if !sfItem.MatchString(pol) || !strings.Contains(pol, ";q=") || !sfItem.MatchString(cur) || !strings.Contains(cur, ";r=") {
				t.Errorf("%+v limited=%v: RateLimit-Policy %q, RateLimit %q", rl, limited, pol, cur)
			}
			if ra := out.Header.Get("Retry-After"); limited && !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(ra) {
				t.Errorf("Retry-After %q", ra)
			}
		}
	}
	out := respond(r, gate.Verdict{RateLimit: gate.RateLimit{Limit: 1 << 62, Remaining: -1, Reset: 1 << 62, Window: 1 << 62}})
	if got := out.Header.Get("RateLimit-Policy"); got != `"vigil";q=999999999999999;w=4611686019` {
		t.Errorf("clamped policy %q", got)
	}
	if got := out.Header.Get("RateLimit"); got != `"vigil";r=0;t=4611686019` {
		t.Errorf("clamped limit %q", got)
	}
}

const stepUpParams = `error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required"`

func TestStepUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		kind gate.Kind
		want string
	}{
		{"bare", Options{}, gate.Bearer, `Bearer ` + stepUpParams},
		{"all options", Options{Realm: `api "v1" \ prod`, ACRValues: "urn:example:mfa urn:example:hwk", MaxAge: 5 * time.Minute}, gate.Bearer,
			`Bearer realm="api \"v1\" \\ prod", ` + stepUpParams + `, acr_values="urn:example:mfa urn:example:hwk", max_age="300"`},
		{"api key", Options{ACRValues: "urn:example:mfa"}, gate.APIKey, `Bearer ` + stepUpParams + `, acr_values="urn:example:mfa"`},
		{"dpop", Options{}, gate.DPoP, `DPoP ` + stepUpParams + `, algs="ES256 PS256"`},
		{"dpop with options", Options{Realm: "vigil", MaxAge: time.Hour, DPoPAlgs: []string{"EdDSA", "ES384"}}, gate.DPoP,
			`DPoP realm="vigil", ` + stepUpParams + `, max_age="3600", algs="EdDSA ES384"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newResponder(t, tc.o)
			for _, decided := range []policy.Level{policy.StepUp, policy.Block} {
				out := respond(r, gate.Verdict{TokenID: tokenID, Kind: tc.kind, Risk: 8, Decided: decided, Level: policy.StepUp})
				if out.Status != http.StatusUnauthorized {
					t.Fatalf("status %d", out.Status)
				}
				checkHeader(t, "client", out.Header, map[string]string{
					"Www-Authenticate": tc.want,
					"Content-Type":     "application/problem+json",
					"X-Vigil-Decision": "step_up_auth",
				})
				checkHeader(t, "upstream", out.Upstream, nil)
				checkProblem(t, out)
				scheme, params := parseChallenge(t, out.Header.Get("WWW-Authenticate"))
				if want := map[gate.Kind]string{gate.DPoP: "DPoP"}[tc.kind]; want == "" && scheme != "Bearer" || want != "" && scheme != want {
					t.Errorf("scheme %q for kind %v", scheme, tc.kind)
				}
				if params["error"] != "insufficient_user_authentication" || params["realm"] != tc.o.Realm || params["acr_values"] != tc.o.ACRValues {
					t.Errorf("challenge params %q", params)
				}
			}
		})
	}
}

// parseChallenge parses a single challenge: scheme, one space, then
// auth-params (token "=" quoted-string or token) separated by ", ". It is
// strict on purpose: vigil writes exactly this form.
func parseChallenge(t testing.TB, s string) (string, map[string]string) {
	t.Helper()
	scheme, rest, ok := strings.Cut(s, " ")
	if !ok || !isToken(scheme) {
		t.Fatalf("challenge %q: no scheme", s)
	}
	params := map[string]string{}
	for i := 0; ; {
		j := strings.IndexByte(rest[i:], '=')
		if j <= 0 || !isToken(rest[i:i+j]) {
			t.Fatalf("challenge %q: bad parameter name at %d", s, i)
		}
		name := rest[i : i+j]
		i += j + 1
		var val strings.Builder
		if i < len(rest) && rest[i] == '"' {
			for i++; ; i++ {
				if i >= len(rest) {
					t.Fatalf("challenge %q: unterminated quoted-string", s)
				}
				c := rest[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' {
					i++
					if i >= len(rest) {
						t.Fatalf("challenge %q: dangling escape", s)
					}
					c = rest[i]
				}
				if c < 0x20 || c == 0x7f {
					t.Fatalf("challenge %q: control byte in quoted-string", s)
				}
				val.WriteByte(c)
			}
		} else {
			k := strings.IndexByte(rest[i:], ',')
			if k < 0 {
				k = len(rest) - i
			}
			if !isToken(rest[i : i+k]) {
				t.Fatalf("challenge %q: bad token value at %d", s, i)
			}
			val.WriteString(rest[i : i+k])
			i += k
		}
		if _, dup := params[name]; dup {
			t.Fatalf("challenge %q: %s twice", s, name)
		}
		params[name] = val.String()
		if i == len(rest) {
			return scheme, params
		}
		if !strings.HasPrefix(rest[i:], ", ") {
			t.Fatalf("challenge %q: want \", \" at %d", s, i)
		}
		i += 2
	}
}

func TestBlock(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true, Realm: "vigil", ACRValues: "urn:example:mfa"})
	for _, kind := range []gate.Kind{gate.Bearer, gate.DPoP, gate.APIKey, gate.Anonymous} {
		for _, level := range []policy.Level{policy.Block, 7, 255} {
			out := respond(r, gate.Verdict{TokenID: tokenID, Kind: kind, Risk: 14.25, Decided: policy.Block, Level: level})
			if out.Status != http.StatusForbidden {
				t.Fatalf("level %d: status %d", level, out.Status)
			}
			checkHeader(t, "client", out.Header, map[string]string{
				"Content-Type":     "application/problem+json",
				"X-Vigil-Decision": "block",
			})
			checkHeader(t, "upstream", out.Upstream, nil)
			checkProblem(t, out)
		}
	}
}

// TestBlockRevealsNothing: a 403 says nothing of what vigil knows: no token
// id, no risk, no reason, in the body or in any header.
func TestBlockRevealsNothing(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true})
	v := gate.Verdict{
		TokenID: tokenID, Kind: gate.Bearer, RequestID: "req-000812", Risk: 13.37,
		Decided: policy.Block, Level: policy.Block,
		Reasons: []decision.Reason{
			{Signal: "volume", Contribution: 4, Detail: "621.5 kB in one response, 1996× this credential's usual 310 B"},
			{Signal: "network", Contribution: 5, Detail: "AS64496 never seen for this credential"},
		},
		RateLimit: gate.RateLimit{Limit: 7, Remaining: 2, Reset: 33 * time.Second, Window: 77 * time.Second},
	}
	out := respond(r, v)
	var all strings.Builder
	all.Write(out.Body)
	for _, h := range []http.Header{out.Header, out.Upstream} {
		for k, vs := range h {
			all.WriteString("\n" + k + ": " + strings.Join(vs, ", "))
		}
	}
	text := strings.ToLower(all.String())
	for _, secret := range []string{
		tokenID, "tk_", "5f2b9c0e", "13.37", "13.4", "req-000812",
		"volume", "network", "621.5", "as64496", "never seen", "credential's usual",
		"risk", "reason", "signal", "score", "q=7", "r=2", "33", "77",
	} {
		if strings.Contains(text, strings.ToLower(secret)) {
			t.Errorf("403 response contains %q:\n%s", secret, all.String())
		}
	}
}

func TestProblem(t *testing.T) {
	r := newResponder(t, Options{Realm: "vigil", UpstreamHeaders: true})
	desc := map[string]string{
		"invalid_request":    "The request's credential is malformed",
		"invalid_token":      "The access token is malformed, expired or otherwise invalid",
		"insufficient_scope": "The access token does not grant the scope this request needs",
		"invalid_dpop_proof": "The DPoP proof is missing or invalid",
		"use_dpop_nonce":     "The DPoP proof must carry the server nonce of the DPoP-Nonce header",
	}
	for _, tc := range []struct {
		problem string
		kind    gate.Kind
		level   policy.Level
		status  int
		want    string
	}{
		{"invalid_token", gate.Bearer, policy.Allow, 401, `Bearer realm="vigil", error="invalid_token", error_description="` + desc["invalid_token"] + `"`},
		{"invalid_request", gate.Bearer, policy.Throttle, 400, `Bearer realm="vigil", error="invalid_request", error_description="` + desc["invalid_request"] + `"`},
		{"insufficient_scope", gate.Bearer, policy.StepUp, 403, `Bearer realm="vigil", error="insufficient_scope", error_description="` + desc["insufficient_scope"] + `"`},
		{"invalid_token", gate.DPoP, policy.Allow, 401, `DPoP realm="vigil", error="invalid_token", error_description="` + desc["invalid_token"] + `", algs="ES256 PS256"`},
		{"invalid_dpop_proof", gate.DPoP, policy.Allow, 401, `DPoP realm="vigil", error="invalid_dpop_proof", error_description="` + desc["invalid_dpop_proof"] + `", algs="ES256 PS256"`},
		{"use_dpop_nonce", gate.DPoP, policy.Allow, 401, `DPoP realm="vigil", error="use_dpop_nonce", error_description="` + desc["use_dpop_nonce"] + `", algs="ES256 PS256"`},
		// A code vigil has no text for: passed on, without a description.
		{"invalid_client", gate.DPoP, policy.Allow, 401, `DPoP realm="vigil", error="invalid_client", algs="ES256 PS256"`},
		// Not a valid code: never reaches a header.
		{"invalid_token\r\nSet-Cookie: x=1", gate.Bearer, policy.Allow, 401, `Bearer realm="vigil", error="invalid_token", error_description="` + desc["invalid_token"] + `"`},
		{`bad"code`, gate.Bearer, policy.Allow, 401, `Bearer realm="vigil", error="invalid_token", error_description="` + desc["invalid_token"] + `"`},
		{"two words", gate.Bearer, policy.Allow, 401, `Bearer realm="vigil", error="invalid_token", error_description="` + desc["invalid_token"] + `"`},
	} {
		out := respond(r, gate.Verdict{TokenID: tokenID, Kind: tc.kind, Problem: tc.problem, Level: tc.level, Decided: tc.level,
			Limited: true, RateLimit: gate.RateLimit{Limit: 4}})
		if out.Status != tc.status {
			t.Errorf("%q: status %d, want %d", tc.problem, out.Status, tc.status)
		}
		checkHeader(t, fmt.Sprintf("%q client", tc.problem), out.Header, map[string]string{
			"Www-Authenticate": tc.want,
			"Content-Type":     "application/problem+json",
		})
		checkHeader(t, "upstream", out.Upstream, nil)
		p := checkProblem(t, out)
		if d, ok := desc[tc.problem]; ok && p.Detail != d+"." {
			t.Errorf("%q: detail %q", tc.problem, p.Detail)
		}
		parseChallenge(t, out.Header.Get("WWW-Authenticate"))
	}

	// Block wins over a malformed credential.
	out := respond(r, gate.Verdict{Problem: "invalid_token", Level: policy.Block})
	if out.Status != 403 || out.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("block with a problem: %d %q", out.Status, out.Header)
	}
}

// TestDPoPNonce: a DPoP failure carries the server nonce (RFC 9449 §8,
// §9) in DPoP-Nonce; a nonce that could break the header is dropped, and
// no other answer carries one.
func TestDPoPNonce(t *testing.T) {
	r := newResponder(t, Options{})
	const nonce = "AAAAAAAcnVI6ZsXg2V1yZx0nKkTHGmr3"
	out := respond(r, gate.Verdict{TokenID: tokenID, Kind: gate.DPoP, Problem: CodeUseDPoPNonce, Level: policy.StepUp, DPoPNonce: nonce})
	if out.Status != 401 || out.Header.Get("DPoP-Nonce") != nonce ||
		!strings.HasPrefix(out.Header.Get("WWW-Authenticate"), `DPoP error="use_dpop_nonce"`) {
		t.Errorf("use_dpop_nonce: %d %q", out.Status, out.Header)
	}
	out = respond(r, gate.Verdict{Kind: gate.DPoP, Problem: CodeInvalidDPoPProof, Level: policy.StepUp, DPoPNonce: nonce})
	if out.Header.Get("DPoP-Nonce") != nonce {
		t.Errorf("invalid_dpop_proof without the nonce: %q", out.Header)
	}
	for _, bad := range []string{"a b", `a"b`, "a\\b", "a\r\nSet-Cookie: x", strings.Repeat("a", 300)} {
		out = respond(r, gate.Verdict{Kind: gate.DPoP, Problem: CodeUseDPoPNonce, Level: policy.StepUp, DPoPNonce: bad})
		if _, ok := out.Header["Dpop-Nonce"]; ok {
			t.Errorf("nonce %q sent", bad)
		}
	}
	for _, v := range []gate.Verdict{
		{Kind: gate.DPoP, Level: policy.Block, Problem: CodeUseDPoPNonce, DPoPNonce: nonce},
		{Kind: gate.DPoP, Level: policy.Allow, DPoPNonce: nonce},
	} {
		if out := respond(r, v); out.Header.Get("DPoP-Nonce") != "" {
			t.Errorf("%+v: nonce sent with %d", v, out.Status)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want []string
	}{
		{Options{Realm: "api\r\nSet-Cookie: a=b"}, []string{"Realm: byte 3", "0x0d"}},
		{Options{Realm: "caf\xc3\xa9"}, []string{"Realm: byte 3"}},
		{Options{Realm: "a\tb"}, []string{"Realm: byte 1"}},
		{Options{ACRValues: "urn:a\nurn:b"}, []string{"ACRValues: byte 5"}},
		{Options{ACRValues: " urn:a"}, []string{"ACRValues \" urn:a\": values must be separated by single spaces"}},
		{Options{ACRValues: "urn:a  urn:b"}, []string{"ACRValues"}},
		{Options{ACRValues: "urn:a "}, []string{"ACRValues"}},
		{Options{MaxAge: -time.Second}, []string{"MaxAge -1s: must not be negative"}},
		{Options{MaxAge: 1500 * time.Millisecond}, []string{"MaxAge 1.5s: must be a whole number of seconds"}},
		{Options{DPoPAlgs: []string{"ES256", "none"}}, []string{`DPoPAlgs[1] "none": DPoP proofs need an asymmetric`}},
		{Options{DPoPAlgs: []string{"HS256"}}, []string{`DPoPAlgs[0] "HS256"`}},
		{Options{DPoPAlgs: []string{"ES256 PS256"}}, []string{`DPoPAlgs[0] "ES256 PS256": not a JWS algorithm name`}},
		{Options{DPoPAlgs: []string{`ES256"`}}, []string{`DPoPAlgs[0]`}},
		{Options{DPoPAlgs: []string{""}}, []string{`DPoPAlgs[0] ""`}},
		{Options{DPoPAlgs: []string{"ES256", "ES256"}}, []string{`DPoPAlgs[1] "ES256": listed twice`}},
		{Options{Realm: "a\nb", MaxAge: -1, DPoPAlgs: []string{"none"}}, []string{"Realm:", "MaxAge", "DPoPAlgs[0]"}},
	} {
		_, err := NewResponder(tc.o)
		if err == nil || !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: err %v, want ErrOptions", tc.o, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not mention %q", tc.o, err, w)
			}
		}
		if strings.ContainsAny(err.Error(), "\r") {
			t.Errorf("error echoes a CR: %q", err)
		}
	}
	for _, o := range []Options{
		{},
		{Realm: `a "quoted" \ realm`, ACRValues: "urn:a urn:b", MaxAge: time.Hour, UpstreamHeaders: true, DPoPAlgs: []string{"ES256", "EdDSA", "Ed25519", "RS256"}},
		{DPoPAlgs: []string{}},
	} {
		if _, err := NewResponder(o); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestMapsReused(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true})
	h, up := http.Header{"Stale": {"x"}}, http.Header{"X-Vigil-Risk": {"99"}, "Other": {"y"}}
	out := gate.Response{Status: 500, Header: h, Upstream: up, Body: []byte("old")}
	r.Respond(&gate.Verdict{TokenID: tokenID, Risk: 1}, &out)
	if reflect.ValueOf(out.Header).UnsafePointer() != reflect.ValueOf(h).UnsafePointer() ||
		reflect.ValueOf(out.Upstream).UnsafePointer() != reflect.ValueOf(up).UnsafePointer() {
		t.Error("maps not reused")
	}
	checkHeader(t, "client", h, nil)
	checkHeader(t, "upstream", up, map[string]string{"X-Vigil-Decision": "allow", "X-Vigil-Risk": "1.00", "X-Vigil-Token-Id": tokenID})
	if out.Status != 200 || out.Body != nil {
		t.Errorf("status %d body %q", out.Status, out.Body)
	}
	// A denial into the same Response clears the upstream headers.
	r.Respond(&gate.Verdict{Level: policy.Block}, &out)
	checkHeader(t, "upstream", up, nil)
}

// TestSharedValuesAreSafeToAdd: header values share backing arrays (with
// each other, and constant ones with the Responder); Add must not reach
// across.
func TestSharedValuesAreSafeToAdd(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true})
	v := gate.Verdict{TokenID: tokenID, Risk: 2, Decided: policy.Throttle,
		RateLimit: gate.RateLimit{Limit: 10, Remaining: 3, Reset: time.Second, Window: time.Minute}}
	out := respond(r, v)
	for _, h := range []http.Header{out.Header, out.Upstream} {
		for k, vs := range h {
			if cap(vs) != 1 {
				t.Errorf("%s: cap %d", k, cap(vs))
			}
			h.Add(k, "added")
		}
	}
	again := respond(r, v)
	checkHeader(t, "client", again.Header, map[string]string{"Ratelimit-Policy": `"vigil";q=10;w=60`, "Ratelimit": `"vigil";r=3;t=1`})
	checkHeader(t, "upstream", again.Upstream, map[string]string{"X-Vigil-Decision": "throttle", "X-Vigil-Risk": "2.00", "X-Vigil-Token-Id": tokenID})
	if want := []string{`"vigil";r=3;t=1`, "added"}; !slices.Equal(out.Header["Ratelimit"], want) {
		t.Errorf("after Add: %q", out.Header["Ratelimit"])
	}
}

func TestAllocs(t *testing.T) {
	r := newResponder(t, Options{UpstreamHeaders: true, Realm: "vigil", ACRValues: "urn:example:mfa", MaxAge: time.Minute})
	quiet := newResponder(t, Options{})
	rl := gate.RateLimit{Limit: 10, Remaining: 3, Reset: 12 * time.Second, Window: time.Minute}
	for _, tc := range []struct {
		name string
		r    *Responder
		v    gate.Verdict
		want float64
	}{
		{"allow without upstream headers", quiet, gate.Verdict{TokenID: tokenID, Risk: 1}, 0},
		{"allow", r, gate.Verdict{TokenID: tokenID, Risk: 1}, 2},
		{"allow within rate limit", r, gate.Verdict{TokenID: tokenID, Risk: 5, Decided: policy.Throttle, RateLimit: rl}, 2},
		{"throttle", r, gate.Verdict{TokenID: tokenID, Risk: 5, Level: policy.Throttle, Limited: true, RateLimit: rl, RetryAfter: 3 * time.Second}, 2},
		{"step_up_auth", r, gate.Verdict{TokenID: tokenID, Risk: 8, Level: policy.StepUp}, 0},
		{"step_up_auth dpop", r, gate.Verdict{TokenID: tokenID, Kind: gate.DPoP, Risk: 8, Level: policy.StepUp}, 0},
		{"block", r, gate.Verdict{TokenID: tokenID, Risk: 12, Level: policy.Block}, 0},
		{"invalid_token", r, gate.Verdict{Problem: "invalid_token"}, 0},
		{"unknown code", r, gate.Verdict{Problem: "invalid_client", Kind: gate.DPoP}, 2},
		{"use_dpop_nonce with a nonce", r, gate.Verdict{Problem: "use_dpop_nonce", Kind: gate.DPoP, DPoPNonce: "AAAAAAAcnVI6ZsXg2V1yZx0nKkTHGmr3"}, 1},
	} {
		var out gate.Response
		r := tc.r
		r.Respond(&tc.v, &out)
		if n := testing.AllocsPerRun(200, func() { r.Respond(&tc.v, &out) }); n != tc.want {
			t.Errorf("%s: %v allocs with reused maps, want %v", tc.name, n, tc.want)
		}
	}
}

// FuzzRespond: whatever the verdict, every header value is free of control
// characters, challenges parse, the status is one vigil uses, and a denial's
// body is a problem with that status.
func FuzzRespond(f *testing.F) {
	f.Add(tokenID, "", 3.5, uint8(0), uint8(1), false, false, 10, 3, int64(time.Second), int64(time.Minute), int64(0), "")
	f.Add("tk_\r\n", "invalid_token\n", -1.0, uint8(1), uint8(2), false, true, -5, -5, int64(-1), int64(-1), int64(-1), "n\r\nx")
	f.Add("", "x\"y", 1e300, uint8(2), uint8(2), true, true, 1<<40, 1<<40, int64(1<<62), int64(1<<62), int64(1<<62), `"`)
	f.Add(tokenID, "use_dpop_nonce", 7.0, uint8(3), uint8(2), false, false, 0, 0, int64(0), int64(0), int64(0), "AAAAAAAcnVI6ZsXg2V1yZx0nKkTHGmr3")
	r := newResponder(f, Options{UpstreamHeaders: true, Realm: `r"\`, ACRValues: "urn:a", MaxAge: time.Second})
	f.Fuzz(func(t *testing.T, token, problem string, risk float64, level, kind uint8, shadow, limited bool,
		limit, remaining int, reset, window, retry int64, nonce string) {
		v := gate.Verdict{
			TokenID: token, Kind: gate.Kind(kind % 5), Risk: risk, Decided: policy.Level(level), Level: policy.Level(level),
			Shadow: shadow, Limited: limited, Problem: problem, RetryAfter: time.Duration(retry), DPoPNonce: nonce,
			RateLimit: gate.RateLimit{Limit: limit, Remaining: remaining, Reset: time.Duration(reset), Window: time.Duration(window)},
		}
		out := respond(r, v)
		for _, h := range []http.Header{out.Header, out.Upstream} {
			for k, vs := range h {
				for _, s := range vs {
					if strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 || c >= 0x7f }) {
						t.Fatalf("%s: unsafe value %q", k, s)
					}
				}
			}
		}
		if c := out.Header.Get("WWW-Authenticate"); c != "" {
			parseChallenge(t, c)
		}
		switch out.Status {
		case 200:
			if out.Body != nil || out.Header.Get("Content-Type") != "" {
				t.Fatalf("allow with a body: %+v", out)
			}
		case 400, 401, 403, 429:
			var p problemDoc
			if err := json.Unmarshal(out.Body, &p); err != nil || p.Status != out.Status {
				t.Fatalf("body %q: %v", out.Body, err)
			}
			if len(out.Upstream) != 0 {
				t.Fatalf("denial with upstream headers %q", out.Upstream)
			}
		default:
			t.Fatalf("status %d", out.Status)
		}
	})
}
