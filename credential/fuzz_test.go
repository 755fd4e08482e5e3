package credential

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/gate"
)

// fuzzExtractors returns an unverifying Extractor and one verifying
// against a JWKS file, both reading API keys from X-API-Key and the query
// parameters api_key and key, and the seeds: a valid JWT among them.
func fuzzExtractors(f *testing.F) (xs []*Extractor, jwt string) {
	s := newECSigner(f, "k1")
	jwt = s.sign(f, claims(nil))
	o := Options{APIKeyQuery: []string{"api_key", "key"}, MaxLength: 512}
	plain := newTest(f, o)
	o.JWT = JWTOptions{Verify: true, JWKSFile: writeJWKS(f, jwks(f, s)), Refresh: DefaultRefresh}
	verifying := newTest(f, o)
	return []*Extractor{plain, verifying}, jwt
}

var fuzzFields = []string{"Authorization", "header:x-api-key", "query:api_key", "query:key"}

// checkFuzz checks what Extract did with input, a value of the field.
func checkFuzz(t *testing.T, x *Extractor, input string, c *Credential, err error, decoded bool) {
	t.Helper()
	allowed := allowedMessages(x.maxLen, fuzzFields...)
	checkError(t, err, c, allowed)
	if err != nil {
		// The fixed messages hold no input; say so explicitly for inputs
		// that cannot be fixed words.
		if len(input) >= 12 && !anyContains(allowed, input) && strings.Contains(err.Error(), input) {
			t.Fatalf("error %q contains the input", err)
		}
		return
	}
	if c.Kind == gate.Anonymous {
		if c.Secret != nil || c.Source != "" {
			t.Fatalf("anonymous with a secret or a source")
		}
		return
	}
	if len(c.Secret) == 0 || len(c.Secret) > x.maxLen {
		t.Fatalf("secret of %d bytes (max %d)", len(c.Secret), x.maxLen)
	}
	if !decoded && !strings.Contains(input, string(c.Secret)) {
		t.Fatalf("the secret is not part of the input")
	}
	if c.Claims.Verified && x.jwt == nil {
		t.Fatalf("claims verified without verification")
	}
}

func anyContains(m map[string]bool, s string) bool {
	for k := range m {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func FuzzExtractAuthorization(f *testing.F) {
	xs, jwt := fuzzExtractors(f)
	for _, s := range []string{
		"Bearer abc", "bearer abc==", "DPoP abc", "Bearer " + jwt, "DPoP " + jwt, "Bearer " + tamper(f, jwt),
		"Basic dXNlcjpw", "Bearer", "Bearer a b", " Bearer\tabc ", "Bearer eyJ.eyJ.x", "Bearer eyJhbGciOiJub25lIn0.e30.",
		"Bearer " + strings.Repeat("a", 513), "Bearer é",
		"Basic dXNlcjpwYXNz", "basic a==", "Basic " + strings.Repeat("a", 513), "Basic a, Bearer b",
		"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=5d67",
		"Token xyz", `Digest username="a, b", realm="r\"", nc=01`, "Token a, Bearer b", "Token a b", "Token ,", `Custom k="`,
		"sk_live_abc", "sk_live_0123456789abcdef", "@@@ ###", "Token x\x00", "Token é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, x := range xs {
			for _, h := range []gate.Headers{gate.MapHeaders{"authorization": v}, http.Header{"Authorization": {v}}} {
				var c Credential
				err := x.Extract(h, "/", &c)
				checkFuzz(t, x, v, &c, err, false)
				if err == nil {
					checkAuthorizationKind(t, v, &c)
				}
			}
		}
	})
}

func FuzzExtractAPIKeyHeader(f *testing.F) {
	xs, jwt := fuzzExtractors(f)
	for _, s := range []string{"key-123", " key ", "a,b", "a b", "k\x00", "kéy", jwt, strings.Repeat("k", 513), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, x := range xs {
			for _, h := range []gate.Headers{gate.MapHeaders{"x-api-key": v}, http.Header{"X-Api-Key": {v}}} {
				var c Credential
				err := x.Extract(h, "/", &c)
				checkFuzz(t, x, v, &c, err, false)
				if err == nil && c.Kind != gate.Anonymous && (c.Kind != gate.APIKey || c.Source != "header:x-api-key" || c.Claims.JWT) {
					t.Fatalf("X-API-Key %q read as %v from %s", v, c.Kind, c.Source)
				}
			}
		}
	})
}

func FuzzExtractURI(f *testing.F) {
	xs, _ := fuzzExtractors(f)
	for _, s := range []string{
		"/v1?api_key=abc", "/?key=a%2Bb&api_key=x", "/?api_key=a&api_key=b", "/?api_key=%zz", "/?api_key=",
		"/?api%5Fkey=x", "/#?api_key=x", "/?a=1&&api_key=x=y", "http://h/p?key=+", "/?api_key=" + strings.Repeat("%41", 600),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		for _, x := range xs {
			var c Credential
			err := x.Extract(gate.MapHeaders{}, uri, &c)
			checkFuzz(t, x, uri, &c, err, true)
			if err == nil && c.Kind != gate.Anonymous && c.Kind != gate.APIKey {
				t.Fatalf("query read as %v", c.Kind)
			}
		}
	})
}

// checkAuthorizationKind checks that Authorization v, accepted, was read
// according to its scheme: Bearer, DPoP or Basic as such, any other only if
// it is a token followed by credentials, as Anonymous.
func checkAuthorizationKind(t *testing.T, v string, c *Credential) {
	t.Helper()
	v = strings.Trim(v, " \t")
	if v == "" {
		if c.Kind != gate.Anonymous {
			t.Fatalf("empty Authorization read as %v", c.Kind)
		}
		return
	}
	scheme, rest := splitScheme(v)
	var want gate.Kind
	var source string
	switch strings.ToLower(scheme) {
	case "bearer":
		want, source = gate.Bearer, "authorization"
	case "dpop":
		want, source = gate.DPoP, "authorization"
	case "basic":
		want, source = gate.APIKey, "authorization:basic"
	default:
		if rest == "" && len(scheme) >= minRawKey && isToken68(scheme) {
			// A raw key as the whole value.
			want, source, rest = gate.APIKey, sourceRaw, scheme
			break
		}
		if !isToken(scheme) || rest == "" || strings.ContainsFunc(rest, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			t.Fatalf("malformed Authorization %q accepted", v)
		}
		want = gate.Anonymous
	}
	if c.Kind != want || c.Source != source {
		t.Fatalf("Authorization %q read as %v from %q, want %v from %q", v, c.Kind, c.Source, want, source)
	}
	if want != gate.Anonymous && string(c.Secret) != rest {
		t.Fatalf("Authorization %q: secret is not the token", v)
	}
}
