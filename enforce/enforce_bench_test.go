package enforce

import (
	"net/http"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/policy"
)

// BenchmarkRespond measures Respond per outcome, with the Response (and its
// maps) reused as an adapter would, and once with fresh maps.
func BenchmarkRespond(b *testing.B) {
	r := newResponder(b, Options{UpstreamHeaders: true, Realm: "vigil", ACRValues: "urn:example:mfa", MaxAge: 5 * time.Minute})
	quiet := newResponder(b, Options{})
	rl := gate.RateLimit{Limit: 10, Remaining: 3, Reset: 12 * time.Second, Window: time.Minute}
	for _, bc := range []struct {
		name string
		r    *Responder
		v    gate.Verdict
	}{
		{"allow/upstream=off", quiet, gate.Verdict{TokenID: tokenID, Risk: 1.5}},
		{"allow/upstream=on", r, gate.Verdict{TokenID: tokenID, Risk: 1.5}},
		{"allow/ratelimit", r, gate.Verdict{TokenID: tokenID, Risk: 4.5, Decided: policy.Throttle, RateLimit: rl}},
		{"allow/shadow", r, gate.Verdict{TokenID: tokenID, Risk: 11, Decided: policy.Block, Shadow: true}},
		{"throttle", r, gate.Verdict{TokenID: tokenID, Risk: 5, Decided: policy.Throttle, Level: policy.Throttle, Limited: true, RateLimit: rl, RetryAfter: 2500 * time.Millisecond}},
		{"step_up_auth/bearer", r, gate.Verdict{TokenID: tokenID, Risk: 8, Decided: policy.StepUp, Level: policy.StepUp}},
		{"step_up_auth/dpop", r, gate.Verdict{TokenID: tokenID, Kind: gate.DPoP, Risk: 8, Decided: policy.StepUp, Level: policy.StepUp}},
		{"block", r, gate.Verdict{TokenID: tokenID, Risk: 12, Decided: policy.Block, Level: policy.Block}},
		{"problem/invalid_token", r, gate.Verdict{Problem: "invalid_token"}},
		{"problem/unknown_code", r, gate.Verdict{Problem: "invalid_client", Kind: gate.DPoP}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var out gate.Response
			b.ReportAllocs()
			for b.Loop() {
				bc.r.Respond(&bc.v, &out)
			}
		})
	}
	b.Run("allow/upstream=on/fresh-maps", func(b *testing.B) {
		v := gate.Verdict{TokenID: tokenID, Risk: 1.5}
		b.ReportAllocs()
		for b.Loop() {
			var out gate.Response
			r.Respond(&v, &out)
			if out.Upstream == nil {
				b.Fatal()
			}
		}
	})
	b.Run("throttle/fresh-maps", func(b *testing.B) {
		v := gate.Verdict{TokenID: tokenID, Level: policy.Throttle, Limited: true, RateLimit: rl, RetryAfter: 2 * time.Second}
		b.ReportAllocs()
		for b.Loop() {
			out := gate.Response{Header: make(http.Header, 6)}
			r.Respond(&v, &out)
		}
	})
}
