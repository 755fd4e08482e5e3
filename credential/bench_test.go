package credential

import (
	"net/http"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/vigil-sec/vigil/gate"
)

// BenchmarkExtract measures one extraction per operation, reusing the
// Credential as a caller does, for the common request shapes.
func BenchmarkExtract(b *testing.B) {
	rs, ec := newRSASigner(b, "rsa-1"), newECSigner(b, "ec-1")
	file := writeJWKS(b, jwks(b, rs, ec))
	plain := newTest(b, Options{})
	vo := Options{JWT: JWTOptions{Verify: true, JWKSFile: file, Issuer: "https://idp.example", Audience: "https://api.example"}}
	verifying := newTest(b, vo)
	uncached := newTest(b, vo)
	uncached.jwt.cache = nil
	opaque := "Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a"
	sigv4 := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	jwtRS, jwtES := "Bearer "+rs.sign(b, claims(nil)), "Bearer "+ec.sign(b, claims(nil))
	for _, bc := range []struct {
		name string
		x    *Extractor
		h    gate.Headers
		want gate.Kind
	}{
		{"opaque_bearer/MapHeaders", plain, gate.MapHeaders{"authorization": opaque, "user-agent": "okhttp/4.12"}, gate.Bearer},
		{"opaque_bearer/http.Header", plain, http.Header{"Authorization": {opaque}, "User-Agent": {"okhttp/4.12"}}, gate.Bearer},
		{"api_key_header/MapHeaders", plain, gate.MapHeaders{"x-api-key": "sk_live_51H8xKqLkdIwHu7ixZ", "user-agent": "okhttp/4.12"}, gate.APIKey},
		{"api_key_header/http.Header", plain, http.Header{"X-Api-Key": {"sk_live_51H8xKqLkdIwHu7ixZ"}}, gate.APIKey},
		{"anonymous/MapHeaders", plain, gate.MapHeaders{"user-agent": "okhttp/4.12"}, gate.Anonymous},
		{"basic/MapHeaders", plain, gate.MapHeaders{"authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "user-agent": "okhttp/4.12"}, gate.APIKey},
		{"sigv4_then_api_key/MapHeaders", plain, gate.MapHeaders{"authorization": sigv4, "x-api-key": "sk_live_51H8xKqLkdIwHu7ixZ"}, gate.APIKey},
		{"jwt_unverified/ES256", plain, gate.MapHeaders{"authorization": jwtES}, gate.Bearer},
		{"jwt_verified/RS256", verifying, gate.MapHeaders{"authorization": jwtRS}, gate.Bearer},
		{"jwt_verified/ES256", verifying, gate.MapHeaders{"authorization": jwtES}, gate.Bearer},
		{"jwt_verified_uncached/RS256", uncached, gate.MapHeaders{"authorization": jwtRS}, gate.Bearer},
		{"jwt_verified_uncached/ES256", uncached, gate.MapHeaders{"authorization": jwtES}, gate.Bearer},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var c Credential
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.x.Extract(bc.h, "/v1/contacts?page=2", &c); err != nil || c.Kind != bc.want {
					b.Fatalf("%v %v", c.Kind, err)
				}
				c.Secret.Wipe()
			}
		})
	}
}

// BenchmarkReadClaims compares reading a JWT's claims by hand (what
// Extract does) with jwx's jwt.ParseInsecure, the measurement behind
// reading them by hand.
func BenchmarkReadClaims(b *testing.B) {
	tok := []byte(newECSigner(b, "ec-1").sign(b, claims(nil)))
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		var scratch []byte
		for b.Loop() {
			var c Claims
			var p payload
			var ok bool
			if ok, scratch = readJWT(tok, scratch, &c, &p); !ok {
				b.Fatal("not read")
			}
		}
	})
	b.Run("jwx_ParseInsecure", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jwt.ParseInsecure(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
