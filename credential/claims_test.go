package credential

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// token builds a JWT-shaped token from a header and a payload, as text.
func token(header, payload string) []byte {
	return []byte(base64.RawURLEncoding.EncodeToString([]byte(header)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln")
}

func TestReadJWT(t *testing.T) {
	const h = `{"alg":"ES256","kid":"k1"}`
	for _, tc := range []struct {
		name, header, payload string
		ok                    bool
		want                  Claims
	}{
		{"all claims", h, `{"sub":"u1","client_id":"c1","azp":"a1","jti":"j1","scope":"a b","iss":"https://i","exp":1700000000,"cnf":{"jkt":"T1","x5t#S256":"X1"}}`, true,
			Claims{JWT: true, Subject: "u1", ClientID: "c1", JTI: "j1", Scope: "a b", Issuer: "https://i", Expiry: time.Unix(1700000000, 0).UTC(), JKT: "T1", X5T: "X1"}},
		{"whitespace", " \t\r\n" + h + "\n", "\n{ \"sub\" :\t\"u1\" ,\r\n\"exp\" : 5 }\n ", true, Claims{JWT: true, Subject: "u1", Expiry: time.Unix(5, 0).UTC()}},
		{"empty payload object", h, `{}`, true, Claims{JWT: true}},
		{"azp fallback", h, `{"azp":"a1"}`, true, Claims{JWT: true, ClientID: "a1"}},
		{"scp array", h, `{"scp":["a",1,"b",null,{"x":"y"}]}`, true, Claims{JWT: true, Scope: "a b"}},
		{"scp string", h, `{"scp":"a b"}`, true, Claims{JWT: true, Scope: "a b"}},
		{"escaped values", h, `{"sub":"a\"b\\c\/d\u00e9\ud83d\ude00\n"}`, true, Claims{JWT: true, Subject: "a\"b\\c/dé😀\n"}},
		{"lone surrogate", h, `{"sub":"\ud800x\udc00"}`, true, Claims{JWT: true, Subject: "\uFFFDx\uFFFD"}},
		{"escaped names", h, `{"\u0073ub":"u1","cn\u0066":{"x5t\u0023S256":"X"}}`, true, Claims{JWT: true, Subject: "u1", X5T: "X"}},
		{"names are case-sensitive", h, `{"Sub":"u1","SUB":"u2"}`, true, Claims{JWT: true}},
		{"duplicate: last wins", h, `{"sub":"u1","sub":"u2","cnf":{"jkt":"T"},"cnf":{}}`, true, Claims{JWT: true, Subject: "u2"}},
		{"wrong types ignored", h, `{"sub":1,"iss":["x"],"exp":"1700000000","scope":{"a":1},"cnf":"x","jti":null,"client_id":true}`, true, Claims{JWT: true}},
		{"float exp", h, `{"exp":1700000000.9}`, true, Claims{JWT: true, Expiry: time.Unix(1700000000, 0).UTC()}},
		{"exponent exp", h, `{"exp":1.7e9}`, true, Claims{JWT: true, Expiry: time.Unix(1700000000, 0).UTC()}},
		{"negative exp", h, `{"exp":-1}`, true, Claims{JWT: true, Expiry: time.Unix(-1, 0).UTC()}},
		{"huge exp", h, `{"exp":1e300}`, true, Claims{JWT: true}},
		{"nested values skipped", h, `{"a":[1,-2.5e-3,true,false,null,{"b":[[]]},"s"],"sub":"u"}`, true, Claims{JWT: true, Subject: "u"}},
		{"invalid UTF-8 replaced", h, "{\"sub\":\"a\xffb\"}", true, Claims{JWT: true, Subject: "a\uFFFDb"}},

		{"header not an object", `["ES256"]`, `{"sub":"u"}`, false, Claims{}},
		{"header not JSON", `alg`, `{"sub":"u"}`, false, Claims{}},
		{"payload not an object", h, `"sub"`, false, Claims{}},
		{"trailing garbage", h, `{"sub":"u"}x`, false, Claims{}},
		{"two objects", h, `{"sub":"u"}{}`, false, Claims{}},
		{"trailing comma", h, `{"sub":"u",}`, false, Claims{}},
		{"missing colon", h, `{"sub" "u"}`, false, Claims{}},
		{"unterminated string", h, `{"sub":"u}`, false, Claims{}},
		{"control character", h, "{\"sub\":\"a\x01\"}", false, Claims{}},
		{"bad escape", h, `{"sub":"\x"}`, false, Claims{}},
		{"short unicode escape", h, `{"sub":"\u12"}`, false, Claims{}},
		{"leading zero", h, `{"exp":0123}`, false, Claims{}},
		{"bare minus", h, `{"exp":-}`, false, Claims{}},
		{"dot without digits", h, `{"exp":1.}`, false, Claims{}},
		{"bad literal", h, `{"a":tru}`, false, Claims{}},
		{"too deep", h, `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, false, Claims{}},
		{"empty", h, ``, false, Claims{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Claims
			var p payload
			ok, scratch := readJWT(token(tc.header, tc.payload), nil, &c, &p)
			if ok != tc.ok || c != tc.want {
				t.Errorf("got %v %+v\nwant %v %+v", ok, c, tc.ok, tc.want)
			}
			if len(bytes.Trim(scratch, "\x00")) != 0 {
				t.Errorf("scratch not wiped: %q", scratch)
			}
		})
	}
	// Bad base64.
	var c Claims
	var p payload
	if ok, _ := readJWT([]byte("eyJ!.eyJ.x"), nil, &c, &p); ok {
		t.Error("bad base64 read")
	}
}

// TestReadJWTAllocs: the claims strings are the only allocations.
func TestReadJWTAllocs(t *testing.T) {
	tok := token(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`,
		`{"iss":"https://idp.example","sub":"user-42","aud":["https://api.example"],"client_id":"crm-web","jti":"jti-1","scope":"a b","iat":1,"nbf":1,"exp":1700000000}`)
	scratch := make([]byte, 512)
	allocs := testing.AllocsPerRun(100, func() {
		var c Claims
		var p payload
		if ok, _ := readJWT(tok, scratch, &c, &p); !ok {
			t.Fatal("not read")
		}
	})
	if allocs > 5 { // sub, iss, jti, client_id, scope
		t.Errorf("%v allocations, want at most 5", allocs)
	}
}

// FuzzReadJWT compares readJWT with encoding/json on the same payload.
func FuzzReadJWT(f *testing.F) {
	for _, s := range []string{
		`{"sub":"u1","client_id":"c1","jti":"j1","scope":"a b","iss":"i","exp":1700000000,"cnf":{"jkt":"T"}}`,
		`{"azp":"a","scp":["x","y"],"exp":1.5e9}`, `{"sub":"\ud83d\ude00\u00e9","sub":"x"}`, `{"a":[{"b":null}],"exp":-3}`,
		`{"cnf":{"x5t#S256":"X"},"cnf":[]}`, "{\"sub\":\"\xff\"}", `{"scp":"s","scope":""}`, `{"exp":1e400}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payloadJSON string) {
		var c Claims
		var p payload
		ok, _ := readJWT(token(`{"alg":"none"}`, payloadJSON), nil, &c, &p)
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(payloadJSON))
		dec.UseNumber()
		err := dec.Decode(&m)
		if err == nil {
			if _, end := dec.Token(); end != io.EOF {
				err = errors.New("more than one value")
			}
		}
		if err != nil || m == nil {
			if ok {
				t.Fatalf("readJWT read what encoding/json refuses (%v): %+v", err, c)
			}
			return
		}
		if !ok {
			if depth(payloadJSON) >= maxJSONDepth {
				return
			}
			t.Fatalf("readJWT refused what encoding/json reads")
		}
		want := referenceClaims(m)
		if e, ok := m["exp"].(json.Number); ok && len(e) > 15 {
			want.Expiry, c.Expiry = time.Time{}, time.Time{} // float64 loses digits
		}
		if c != want {
			t.Fatalf("readJWT %+v\nencoding/json %+v", c, want)
		}
	})
}

// referenceClaims reads the claims from encoding/json's reading.
func referenceClaims(m map[string]any) Claims {
	str := func(v any) string { s, _ := v.(string); return s }
	c := Claims{JWT: true, Subject: str(m["sub"]), Issuer: str(m["iss"]), JTI: str(m["jti"])}
	if c.ClientID = str(m["client_id"]); c.ClientID == "" {
		c.ClientID = str(m["azp"])
	}
	if c.Scope = str(m["scope"]); c.Scope == "" {
		switch v := m["scp"].(type) {
		case string:
			c.Scope = v
		case []any:
			var parts []string
			for _, e := range v {
				if s, ok := e.(string); ok {
					parts = append(parts, s)
				}
			}
			c.Scope = strings.Join(parts, " ")
		}
	}
	if e, ok := m["exp"].(json.Number); ok {
		if n, err := e.Int64(); err == nil {
			c.Expiry = time.Unix(n, 0).UTC()
		} else if f, err := e.Float64(); err == nil && f >= math.MinInt64 && f < math.MaxInt64 {
			c.Expiry = time.Unix(int64(f), 0).UTC()
		}
	}
	if cnf, ok := m["cnf"].(map[string]any); ok {
		c.JKT, c.X5T = str(cnf["jkt"]), str(cnf["x5t#S256"])
	}
	return c
}

// depth returns the deepest nesting of arrays and objects in valid JSON.
func depth(s string) int {
	d, most := 0, 0
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		tok, err := dec.Token()
		if err != nil {
			return most
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			d++
			most = max(most, d)
		case json.Delim('}'), json.Delim(']'):
			d--
		}
	}
}
