package credential

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/gate"
)

// newTest returns an Extractor for o, closed at the end of the test.
func newTest(t testing.TB, o Options) *Extractor {
	t.Helper()
	x, err := New(context.Background(), o, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return x
}

// headerSets returns the same headers as an http.Header and as the
// lower-cased gate.MapHeaders Envoy sends.
func headerSets(hdr map[string]string) map[string]gate.Headers {
	h := http.Header{}
	m := gate.MapHeaders{}
	for k, v := range hdr {
		h.Set(k, v)
		m[strings.ToLower(k)] = v
	}
	return map[string]gate.Headers{"http.Header": h, "MapHeaders": m}
}

type extractCase struct {
	name    string
	opts    Options
	hdr     map[string]string
	uri     string
	kind    gate.Kind
	secret  string
	source  string
	problem string // "" for no error
	field   string
}

func TestExtract(t *testing.T) {
	long := strings.Repeat("a", DefaultMaxLength)
	query := Options{APIKeyQuery: []string{"api_key", "key"}}
	sigv4 := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	cases := []extractCase{
		{name: "nothing", uri: "/v1/users?api_key=abc", kind: gate.Anonymous},
		{name: "unrelated headers", hdr: map[string]string{"User-Agent": "curl/8", "X-Api": "k"}, kind: gate.Anonymous},

		// Authorization: Bearer and DPoP.
		{name: "bearer", hdr: map[string]string{"Authorization": "Bearer abc123"}, kind: gate.Bearer, secret: "abc123", source: "authorization"},
		{name: "bearer lower-case scheme", hdr: map[string]string{"Authorization": "bearer abc123"}, kind: gate.Bearer, secret: "abc123", source: "authorization"},
		{name: "bearer upper-case scheme", hdr: map[string]string{"Authorization": "BEARER abc123"}, kind: gate.Bearer, secret: "abc123", source: "authorization"},
		{name: "dpop", hdr: map[string]string{"Authorization": "DPoP abc123"}, kind: gate.DPoP, secret: "abc123", source: "authorization"},
		{name: "dpop mixed case", hdr: map[string]string{"Authorization": "dPOp abc123"}, kind: gate.DPoP, secret: "abc123", source: "authorization"},
		{name: "spaces and tabs around", hdr: map[string]string{"Authorization": " \tBearer  \t abc123 \t"}, kind: gate.Bearer, secret: "abc123", source: "authorization"},
		{name: "token68 alphabet and padding", hdr: map[string]string{"Authorization": "Bearer aZ09-._~+/=="}, kind: gate.Bearer, secret: "aZ09-._~+/==", source: "authorization"},
		{name: "longest accepted", hdr: map[string]string{"Authorization": "Bearer " + long}, kind: gate.Bearer, secret: long, source: "authorization"},
		{name: "JWT-shaped but not a JWT is opaque", hdr: map[string]string{"Authorization": "Bearer eyJhbGci.eyJzdWIi.c2ln"}, kind: gate.Bearer, secret: "eyJhbGci.eyJzdWIi.c2ln", source: "authorization"},

		// Authorization: Basic, a credential read as an API key.
		{name: "basic", hdr: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, kind: gate.APIKey, secret: "dXNlcjpwYXNz", source: "authorization:basic"},
		{name: "raw key as the whole Authorization value", hdr: map[string]string{"Authorization": "sk_live_0123456789abcdef"}, kind: gate.APIKey, secret: "sk_live_0123456789abcdef", source: "authorization:raw"},
		{name: "a short bare word is not a raw key", hdr: map[string]string{"Authorization": "Negotiate"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "basic lower-case scheme, padding", hdr: map[string]string{"Authorization": "basic  dXNlcjpw=="}, kind: gate.APIKey, secret: "dXNlcjpw==", source: "authorization:basic"},
		{name: "basic is not read as a JWT", hdr: map[string]string{"Authorization": "Basic eyJhbGci.eyJzdWIi.c2ln"}, kind: gate.APIKey, secret: "eyJhbGci.eyJzdWIi.c2ln", source: "authorization:basic"},
		{name: "basic wins over an API key", hdr: map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": "key-123"}, kind: gate.APIKey, secret: "dXNlcjpwYXNz", source: "authorization:basic"},
		{name: "basic longest accepted", hdr: map[string]string{"Authorization": "Basic " + long}, kind: gate.APIKey, secret: long, source: "authorization:basic"},
		{name: "basic without token", hdr: map[string]string{"Authorization": "Basic "}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "basic over-long", hdr: map[string]string{"Authorization": "Basic " + long + "a"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "basic not token68", hdr: map[string]string{"Authorization": "Basic dXNl cjpw"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "basic joined with a second credential", hdr: map[string]string{"Authorization": "Basic dXNlcjpw, Bearer abc"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "basic control character", hdr: map[string]string{"Authorization": "Basic dXNl\x00cjpw"}, problem: ProblemInvalidRequest, field: "Authorization"},

		// Authorization: other schemes hold no credential vigil reads; the
		// API-key headers and query parameters are looked at instead.
		{name: "aws sigv4", hdr: map[string]string{"Authorization": sigv4}, kind: gate.Anonymous},
		{name: "aws sigv4 with an API key", opts: query, hdr: map[string]string{"Authorization": sigv4, "X-API-Key": "key-123"}, uri: "/?api_key=qk1",
			kind: gate.APIKey, secret: "key-123", source: "header:x-api-key"},
		{name: "token scheme with a query API key", opts: query, hdr: map[string]string{"Authorization": "Token xyz"}, uri: "/?api_key=qk1", kind: gate.APIKey, secret: "qk1", source: "query:api_key"},
		{name: "token scheme", hdr: map[string]string{"Authorization": "Token xyz"}, kind: gate.Anonymous},
		{name: "token68 with non-token characters", hdr: map[string]string{"Authorization": "NTLM TlRMTVNTUAABAAAAB4IIog+/=="}, kind: gate.Anonymous},
		{name: "digest", hdr: map[string]string{"Authorization": `Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", ` +
			`algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", ` +
			`qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`}, kind: gate.Anonymous},
		{name: "quoted comma and escaped quote", hdr: map[string]string{"Authorization": `Custom realm="a, \"b\", c" , k = v`}, kind: gate.Anonymous},
		{name: "scheme with tchars, tab", hdr: map[string]string{"Authorization": "X-Vendor.v1!\tk=v"}, kind: gate.Anonymous},
		{name: "non-ASCII in a parameter", hdr: map[string]string{"Authorization": `Digest username="é", realm="r"`}, kind: gate.Anonymous},

		// Authorization: malformed.
		{name: "raw key without scheme", hdr: map[string]string{"Authorization": "sk_live_abcdef"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "raw key without scheme, wins over an API key", hdr: map[string]string{"Authorization": "sk_live_abcdef", "X-API-Key": "key-123"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "scheme not a token", hdr: map[string]string{"Authorization": "Tok/en xyz"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "scheme not a token, quoted", hdr: map[string]string{"Authorization": `"Token" xyz`}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "garbage", hdr: map[string]string{"Authorization": "@@@ ###"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme, control character", hdr: map[string]string{"Authorization": "Token xy\x00z"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme, DEL", hdr: map[string]string{"Authorization": "Token xyz\x7f"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme, newline", hdr: map[string]string{"Authorization": "Token xyz\r\nX-Admin: 1"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme, two words", hdr: map[string]string{"Authorization": "Token abc def"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme, word after a comma", hdr: map[string]string{"Authorization": "Token abc, def"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme, only commas", hdr: map[string]string{"Authorization": "Token , ,"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme, unclosed quote", hdr: map[string]string{"Authorization": `Custom realm="abc, k=v`}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme joined with Bearer", hdr: map[string]string{"Authorization": "Token abc, Bearer def"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "sigv4 joined with Bearer", hdr: map[string]string{"Authorization": sigv4 + ",Bearer def"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "other scheme joined, wins over an API key", hdr: map[string]string{"Authorization": "Token abc, Bearer def", "X-API-Key": "key-123"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "scheme prefix only", hdr: map[string]string{"Authorization": "Bearerabc"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "no token", hdr: map[string]string{"Authorization": "Bearer"}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "no token, trailing space", hdr: map[string]string{"Authorization": "Bearer   "}, problem: ProblemInvalidRequest, field: "Authorization"},
		{name: "space inside token", hdr: map[string]string{"Authorization": "Bearer abc def"}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "two credentials", hdr: map[string]string{"Authorization": "Bearer abc, Bearer def"}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "equals inside", hdr: map[string]string{"Authorization": "Bearer ab=c"}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "padding only", hdr: map[string]string{"Authorization": "Bearer =="}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "quote", hdr: map[string]string{"Authorization": `Bearer "abc"`}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "non-ASCII", hdr: map[string]string{"Authorization": "Bearer abcé"}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "control character", hdr: map[string]string{"Authorization": "Bearer abc\x00def"}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "auth-params", hdr: map[string]string{"Authorization": `Bearer realm="x"`}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "over-long", hdr: map[string]string{"Authorization": "Bearer " + long + "a"}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "over-long with a smaller maximum", opts: Options{MaxLength: 8}, hdr: map[string]string{"Authorization": "Bearer 123456789"}, problem: ProblemInvalidToken, field: "Authorization"},
		{name: "malformed Authorization wins over an API key", hdr: map[string]string{"Authorization": "Bearer", "X-API-Key": "key1"}, problem: ProblemInvalidRequest, field: "Authorization"},

		// API-key headers.
		{name: "api key", hdr: map[string]string{"X-API-Key": "key-123"}, kind: gate.APIKey, secret: "key-123", source: "header:x-api-key"},
		{name: "api key trimmed", hdr: map[string]string{"X-API-Key": "  key-123\t"}, kind: gate.APIKey, secret: "key-123", source: "header:x-api-key"},
		{name: "api key any visible ASCII", hdr: map[string]string{"X-API-Key": `k!"#$%&'()*+-./:;<=>?@[\]^_{|}~`}, kind: gate.APIKey, secret: `k!"#$%&'()*+-./:;<=>?@[\]^_{|}~`, source: "header:x-api-key"},
		{name: "whitespace-only Authorization is absent", hdr: map[string]string{"Authorization": "  ", "X-API-Key": "key-123"}, kind: gate.APIKey, secret: "key-123", source: "header:x-api-key"},
		{name: "Authorization wins over an API key", hdr: map[string]string{"Authorization": "Bearer tok", "X-API-Key": "key-123"}, kind: gate.Bearer, secret: "tok", source: "authorization"},
		{name: "api key with space", hdr: map[string]string{"X-API-Key": "key 123"}, problem: ProblemInvalidToken, field: "header:x-api-key"},
		{name: "api key joined twice", hdr: map[string]string{"X-API-Key": "key1,key2"}, problem: ProblemInvalidToken, field: "header:x-api-key"},
		{name: "api key non-ASCII", hdr: map[string]string{"X-API-Key": "kéy"}, problem: ProblemInvalidToken, field: "header:x-api-key"},
		{name: "api key DEL", hdr: map[string]string{"X-API-Key": "key\x7f"}, problem: ProblemInvalidToken, field: "header:x-api-key"},
		{name: "api key over-long", hdr: map[string]string{"X-API-Key": long + "k"}, problem: ProblemInvalidToken, field: "header:x-api-key"},
		{name: "configured headers in order", opts: Options{APIKeyHeaders: []string{"X-Key", "api-token"}},
			hdr: map[string]string{"Api-Token": "second", "X-Key": "first", "X-API-Key": "default"}, kind: gate.APIKey, secret: "first", source: "header:x-key"},
		{name: "second configured header", opts: Options{APIKeyHeaders: []string{"X-Key", "api-token"}},
			hdr: map[string]string{"Api-Token": "second", "X-API-Key": "default"}, kind: gate.APIKey, secret: "second", source: "header:api-token"},
		{name: "no API-key headers", opts: Options{APIKeyHeaders: []string{}}, hdr: map[string]string{"X-API-Key": "key"}, kind: gate.Anonymous},

		// Query parameters.
		{name: "query", opts: query, uri: "/v1/users?page=2&api_key=qk1", kind: gate.APIKey, secret: "qk1", source: "query:api_key"},
		{name: "query second name", opts: query, uri: "/v1/users?key=qk2&page=2", kind: gate.APIKey, secret: "qk2", source: "query:key"},
		{name: "query names in order", opts: query, uri: "/v1/users?key=qk2&api_key=qk1", kind: gate.APIKey, secret: "qk1", source: "query:api_key"},
		{name: "query percent-decoded", opts: query, uri: "/?api_key=a%2Bb%2fc", kind: gate.APIKey, secret: "a+b/c", source: "query:api_key"},
		{name: "query name percent-encoded", opts: query, uri: "/?api%5Fkey=qk1", kind: gate.APIKey, secret: "qk1", source: "query:api_key"},
		{name: "query absolute-form target", opts: query, uri: "http://api.example/v1?api_key=qk1", kind: gate.APIKey, secret: "qk1", source: "query:api_key"},
		{name: "query in fragment ignored", opts: query, uri: "/v1#x?api_key=qk1", kind: gate.Anonymous},
		{name: "query after fragment ignored", opts: query, uri: "/v1?a=1#&api_key=qk1", kind: gate.Anonymous},
		{name: "query prefix of a name", opts: query, uri: "/v1?api_keys=qk1&xapi_key=2", kind: gate.Anonymous},
		{name: "header wins over query", opts: query, hdr: map[string]string{"X-API-Key": "hk"}, uri: "/?api_key=qk1", kind: gate.APIKey, secret: "hk", source: "header:x-api-key"},
		{name: "query repeated", opts: query, uri: "/?api_key=qk1&api_key=qk2", problem: ProblemInvalidRequest, field: "query:api_key"},
		{name: "query repeated, encoded name", opts: query, uri: "/?api_key=qk1&api%5fkey=qk1", problem: ProblemInvalidRequest, field: "query:api_key"},
		{name: "query empty", opts: query, uri: "/?api_key=&b=1", problem: ProblemInvalidRequest, field: "query:api_key"},
		{name: "query without value", opts: query, uri: "/?api_key", problem: ProblemInvalidRequest, field: "query:api_key"},
		{name: "query bad escape", opts: query, uri: "/?api_key=ab%zz", problem: ProblemInvalidRequest, field: "query:api_key"},
		{name: "query truncated escape", opts: query, uri: "/?api_key=ab%2", problem: ProblemInvalidRequest, field: "query:api_key"},
		{name: "query plus is a space", opts: query, uri: "/?api_key=a+b", problem: ProblemInvalidToken, field: "query:api_key"},
		{name: "query encoded comma", opts: query, uri: "/?api_key=a%2Cb", problem: ProblemInvalidToken, field: "query:api_key"},
		{name: "query over-long", opts: query, uri: "/?api_key=" + long + "q", problem: ProblemInvalidToken, field: "query:api_key"},
		{name: "query over-long once decoded", opts: Options{APIKeyQuery: []string{"api_key"}, MaxLength: 4}, uri: "/?api_key=%41%41%41%41%41", problem: ProblemInvalidToken, field: "query:api_key"},
		{name: "query fits once decoded", opts: Options{APIKeyQuery: []string{"api_key"}, MaxLength: 4}, uri: "/?api_key=%41%41%41%41", kind: gate.APIKey, secret: "AAAA", source: "query:api_key"},
	}
	for _, tc := range cases {
		x := newTest(t, tc.opts)
		for hname, h := range headerSets(tc.hdr) {
			t.Run(tc.name+"/"+hname, func(t *testing.T) {
				var c Credential
				err := x.Extract(h, tc.uri, &c)
				checkExtract(t, &tc, &c, err)
			})
		}
	}
}

func checkExtract(t *testing.T, tc *extractCase, c *Credential, err error) {
	t.Helper()
	if tc.problem != "" {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("err = %v, want an *Error", err)
		}
		if e.Problem != tc.problem || e.Field != tc.field {
			t.Errorf("error problem %q field %q, want %q %q (%v)", e.Problem, e.Field, tc.problem, tc.field, err)
		}
		if c.Kind != gate.Anonymous || c.Secret != nil || c.Source != "" || c.Claims != (Claims{}) {
			t.Errorf("after an error: kind %v, secret %d bytes, source %q, claims %+v; want all zero", c.Kind, len(c.Secret), c.Source, c.Claims)
		}
		return
	}
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if c.Kind != tc.kind || string(c.Secret) != tc.secret || c.Source != tc.source {
		t.Errorf("got kind %v secret %q source %q, want %v %q %q", c.Kind, string(c.Secret), c.Source, tc.kind, tc.secret, tc.source)
	}
	if tc.kind == gate.Anonymous && c.Secret != nil {
		t.Errorf("anonymous credential has a secret")
	}
}

// TestExtractRepeatedHeaders covers what only an http.Header shows: a
// header field sent twice, which the upstream may read differently.
func TestExtractRepeatedHeaders(t *testing.T) {
	x := newTest(t, Options{})
	for _, tc := range []struct{ header, field string }{
		{"Authorization", "Authorization"},
		{"X-Api-Key", "header:x-api-key"},
	} {
		h := http.Header{}
		h.Add(tc.header, "Bearer one")
		h.Add(tc.header, "Bearer two")
		var c Credential
		err := x.Extract(h, "/", &c)
		var e *Error
		if !errors.As(err, &e) || e.Problem != ProblemInvalidRequest || e.Field != tc.field || !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s twice: err = %v, want invalid_request on %s", tc.header, err, tc.field)
		}
		if c.Kind != gate.Anonymous || c.Secret != nil {
			t.Errorf("%s twice: credential not anonymous", tc.header)
		}
	}
}

// funcHeaders is a gate.Headers that is neither of the two known types.
type funcHeaders func(string) string

func (f funcHeaders) Get(name string) string { return f(name) }

func TestExtractOtherHeaders(t *testing.T) {
	x := newTest(t, Options{APIKeyHeaders: []string{"x-custom-key"}})
	var asked []string
	h := funcHeaders(func(name string) string {
		asked = append(asked, name)
		if strings.EqualFold(name, "x-custom-key") {
			return "ck"
		}
		return ""
	})
	var c Credential
	if err := x.Extract(h, "/", &c); err != nil || c.Kind != gate.APIKey || string(c.Secret) != "ck" || c.Source != "header:x-custom-key" {
		t.Fatalf("got %v %q %q, err %v", c.Kind, string(c.Secret), c.Source, err)
	}
	// Names are asked for in canonical form, as http.Header.Get expects.
	if want := []string{"Authorization", "X-Custom-Key"}; strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Errorf("asked for %q, want %q", asked, want)
	}
	if err := x.Extract(nil, "/", &c); err != nil || c.Kind != gate.Anonymous {
		t.Errorf("nil headers: %v %v", c.Kind, err)
	}
}

// TestMapHeadersSpellings: the documented lower-case keys, and keys spelled
// as http.Header or the configuration spells them, which MapHeaders.Get
// also finds.
func TestMapHeadersSpellings(t *testing.T) {
	x := newTest(t, Options{APIKeyHeaders: []string{"X-API-Key"}})
	for _, key := range []string{"x-api-key", "X-Api-Key", "X-API-Key"} {
		var c Credential
		if err := x.Extract(gate.MapHeaders{key: "k1"}, "/", &c); err != nil || string(c.Secret) != "k1" {
			t.Errorf("MapHeaders{%q}: got %q, %v", key, string(c.Secret), err)
		}
	}
	var c Credential
	if err := x.Extract(gate.MapHeaders{"Authorization": "Bearer t1"}, "/", &c); err != nil || string(c.Secret) != "t1" {
		t.Errorf("MapHeaders{Authorization}: got %q, %v", string(c.Secret), err)
	}
}

// TestCredentialReuse: the buffer is reused across calls, a failed call
// wipes what it had copied, and Secret never points at the header's memory.
func TestCredentialReuse(t *testing.T) {
	x := newTest(t, Options{APIKeyQuery: []string{"k"}})
	var c Credential
	if err := x.Extract(gate.MapHeaders{"authorization": "Bearer first-token"}, "/", &c); err != nil {
		t.Fatal(err)
	}
	first := c.Secret
	c.Secret.Wipe()
	if err := x.Extract(gate.MapHeaders{"x-api-key": "second"}, "/", &c); err != nil {
		t.Fatal(err)
	}
	if string(c.Secret) != "second" || &c.Secret[0] != &first[0] {
		t.Errorf("second extract: %q, buffer reused %v", string(c.Secret), &c.Secret[0] == &first[0])
	}
	// A query value is decoded into the buffer, then found malformed: the
	// decoded bytes must not stay behind.
	err := x.Extract(nil, "/?k=abcdef%20g", &c)
	if err == nil || c.Secret != nil {
		t.Fatalf("malformed query: err %v, secret %q", err, string(c.Secret))
	}
	for i, b := range first[:cap(first)][:8] {
		if b != 0 {
			t.Fatalf("byte %d of the buffer is %q after a failed extract, want it wiped", i, b)
		}
	}
	if err := x.Extract(nil, "/", &c); err != nil || c.Kind != gate.Anonymous || c.Secret != nil || c.Source != "" {
		t.Errorf("anonymous after a credential: %+v %v", c, err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"bad header name", Options{APIKeyHeaders: []string{"X Key"}}, "not a valid header name"},
		{"empty header name", Options{APIKeyHeaders: []string{""}}, "not a valid header name"},
		{"authorization as api key", Options{APIKeyHeaders: []string{"authorization"}}, "Authorization cannot be"},
		{"header twice", Options{APIKeyHeaders: []string{"X-Key", "x-key"}}, "listed twice"},
		{"bad query name", Options{APIKeyQuery: []string{"a=b"}}, "not a plain parameter name"},
		{"empty query name", Options{APIKeyQuery: []string{""}}, "not a plain parameter name"},
		{"query twice", Options{APIKeyQuery: []string{"k", "k"}}, "listed twice"},
		{"negative max", Options{MaxLength: -1}, "negative"},
		{"jwks without verify", Options{JWT: JWTOptions{JWKSURL: "https://idp.example/jwks"}}, "verification is off"},
		{"issuer without verify", Options{JWT: JWTOptions{Issuer: "https://idp.example"}}, "verification is off"},
		{"verify without jwks", Options{JWT: JWTOptions{Verify: true}}, "needs a JWKS"},
		{"two jwks", Options{JWT: JWTOptions{Verify: true, JWKSURL: "https://idp.example/jwks", JWKSFile: "/x"}}, "not both"},
		{"plain http", Options{JWT: JWTOptions{Verify: true, JWKSURL: "http://idp.example/jwks"}}, "not loopback"},
		{"ftp", Options{JWT: JWTOptions{Verify: true, JWKSURL: "ftp://idp.example/jwks"}}, "scheme must be https"},
		{"user info", Options{JWT: JWTOptions{Verify: true, JWKSURL: "https://u:pw@idp.example/jwks"}}, "user information"},
		{"short refresh", Options{JWT: JWTOptions{Verify: true, JWKSFile: "/x", Refresh: 10}}, "shorter than"},
		{"negative leeway", Options{JWT: JWTOptions{Verify: true, JWKSFile: "/x", Leeway: -1}}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), tc.o, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("error shows the URL's password: %v", err)
			}
		})
	}
}

func TestErrorWraps(t *testing.T) {
	x := newTest(t, Options{})
	var c Credential
	err := x.Extract(gate.MapHeaders{"authorization": "Bearer a b"}, "/", &c)
	if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrInvalidRequest) {
		t.Errorf("errors.Is: %v", err)
	}
	if got, want := err.Error(), "credential: Authorization: "+reasonToken68; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
