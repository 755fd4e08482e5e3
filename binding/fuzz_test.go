package binding_test

import (
	"errors"
	"testing"

	"github.com/vigil-sec/vigil/binding"
)

// FuzzVerify: any DPoP header value is refused with an RFC 9449 error
// (or accepted as a valid proof), never a panic.
func FuzzVerify(f *testing.F) {
	s := newSigner(&testing.T{}, "ES256")
	f.Add(s.proof(&testing.T{}, claimsFor(token, "seed"), nil))
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA")
	f.Add("...")
	f.Add("")
	v, err := binding.NewVerifier(binding.DPoPOptions{Replay: &binding.MemoryReplay{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		_, err := v.Verify(proof, binding.Request{Method: "GET", URL: "https://api.example.com/v1/orders", AccessToken: []byte(token)})
		var e *binding.Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("not an RFC 9449 error: %v", err)
		}
	})
}
