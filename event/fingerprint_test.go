package event_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/event"
)

var idPattern = regexp.MustCompile(`^tk_[0-9a-f]{32}$`)

// secretMark is in every raw token of these tests; no error, event or
// log line may contain it.
const secretMark = "s3cr3t"

// leaks reports whether b holds any recognisable piece of a test token.
func leaks(b []byte) bool {
	return bytes.Contains(b, []byte(secretMark)) || bytes.Contains(b, []byte("TOKEN-1"))
}

func TestTokenErrorsDoNotLeak(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		field string // FieldError.Field
		wiped bool   // the raw token is gone from the line after Decode
	}{
		{"array", line("token_id", "-", "token", `["s3cr3t-TOKEN-1"]`), "token", false},
		{"object", line("token_id", "-", "token", `{"v":"s3cr3t-TOKEN-1"}`), "token", false},
		{"control character", line("token_id", "-", "token", "\"s3cr3t-\x01TOKEN-1\""), "token", true},
		{"control character after escape", line("token_id", "-", "token", "\"s3cr3t\\n-\x01TOKEN-1\""), "token", true},
		{"bad escape", line("token_id", "-", "token", `"s3cr3t-\qTOKEN-1"`), "token", true},
		{"escape then bad escape", line("token_id", "-", "token", `"s3cr3t\u002d\qTOKEN-1"`), "token", true},
		{"bad unicode escape", line("token_id", "-", "token", `"s3cr3t-\u12TOKEN-1"`), "token", true},
		{"bad low surrogate", line("token_id", "-", "token", `"s3cr3t\ud83d\uXYZWTOKEN-1"`), "token", true},
		{"unterminated", `{"token":"s3cr3t-TOKEN-1`, "token", true},
		{"unterminated after escape", `{"token":"s3cr3t\/TOKEN-1`, "token", true},
		{"token_id then token", line("token", `"s3cr3t-TOKEN-1"`), "token", true},
		{"token then token_id", line("token_id", "-", "token", `"s3cr3t-TOKEN-1"`, "token_id", `"tk_abc"`), "token", true},
		{"escaped token and token_id", line("token", `"s3cr3t\u002dTOKEN-1"`), "token", true},
		{"empty", line("token_id", "-", "token", `""`), "token", true},
		{"later field fails", line("token_id", "-", "token", `"s3cr3t-TOKEN-1"`, "method", `200`), "method", true},
		// A line that fails before its token is reached keeps it: callers
		// must not log rejected lines, only the error.
		{"earlier field fails", line("token_id", "-", "status_code", `"200"`, "token", `"s3cr3t-TOKEN-1"`), "status_code", false},
		{"later syntax error", line("token_id", "-", "token", `"s3cr3t-TOKEN-1"`) + "x", "", true},
		{"twice then missing field", line("endpoint", "-", "token_id", "-", "token", `"s3cr3t-TOKEN-1"`, "token", `"s3cr3t-TOKEN-2"`), "endpoint", true},
	}
	d := event.NewDecoder(newFP(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.line)
			var ev event.Event
			err := d.Decode(b, &ev)
			if err == nil {
				t.Fatalf("Decode(%s) succeeded", tt.line)
			}
			if leaks([]byte(err.Error())) {
				t.Errorf("error %q contains the raw token", err)
			}
			if leaks([]byte(fmt.Sprintf("%+v %#v", err, err))) {
				t.Errorf("formatted error contains the raw token")
			}
			if leaks([]byte(fmt.Sprintf("%+v", ev))) {
				t.Errorf("event %+v contains the raw token", ev)
			}
			var fe *event.FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Errorf("error %q: want a FieldError for %q", err, tt.field)
			}
			if tt.wiped && leaks(b) {
				t.Errorf("line still holds the raw token after Decode: %q", b)
			}
		})
	}
}

func TestTokenWiped(t *testing.T) {
	tests := []struct {
		name, value, raw string
	}{
		{"plain", `"s3cr3t-TOKEN-1.abc"`, "s3cr3t-TOKEN-1.abc"},
		{"escaped", `"s3cr3t\u002dTOKEN-1\/\"x\""`, `s3cr3t-TOKEN-1/"x"`},
		{"escaped first", `"\u0073\u0033cr3t-TOKEN-1"`, "s3cr3t-TOKEN-1"},
		{"unicode", `"s3cr3t-TOKEN-1-ключ"`, "s3cr3t-TOKEN-1-ключ"},
	}
	d := event.NewDecoder(newFP(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := line("token_id", "-", "user_agent", `"curl/8.5"`, "token", tt.value, "method", `"GET"`)
			b := []byte(src)
			var ev event.Event
			if err := d.Decode(b, &ev); err != nil {
				t.Fatal(err)
			}
			if leaks(b) {
				t.Errorf("line still holds the raw token: %q", b)
			}
			// Only the token's value is wiped: the rest of the line is intact.
			at := strings.Index(src, tt.value) + 1
			end := at + len(tt.value) - 2
			if !bytes.Equal(b[:at], []byte(src[:at])) || !bytes.Equal(b[end:], []byte(src[end:])) {
				t.Errorf("bytes outside the token changed:\n got %q\nfrom %q", b, src)
			}
			if !bytes.Equal(b[at:end], make([]byte, end-at)) {
				t.Errorf("token bytes not zeroed: %q", b[at:end])
			}
			if !idPattern.MatchString(ev.TokenID) {
				t.Errorf("TokenID = %q, want tk_ and 32 hex digits", ev.TokenID)
			}
			if want := idOf(tt.raw); ev.TokenID != want {
				t.Errorf("TokenID = %q, want the fingerprint of the unescaped token %q", ev.TokenID, want)
			}
			if leaks([]byte(fmt.Sprintf("%+v", ev))) {
				t.Errorf("event holds the raw token: %+v", ev)
			}
			v := reflect.ValueOf(ev)
			for i := range v.NumField() {
				if f := v.Field(i); f.Kind() == reflect.String && leaks([]byte(f.String())) {
					t.Errorf("Event.%s holds the raw token", v.Type().Field(i).Name)
				}
			}
			if ev.UserAgent != "curl/8.5" || ev.Method != "GET" {
				t.Errorf("fields around the token: user_agent %q, method %q", ev.UserAgent, ev.Method)
			}
		})
	}
}

func TestTokenDuplicate(t *testing.T) {
	d := event.NewDecoder(newFP(t))
	b := []byte(line("token_id", "-", "token", `"s3cr3t-TOKEN-1"`, "token", `"s3cr3t-TOKEN-2"`))
	var ev event.Event
	if err := d.Decode(b, &ev); err != nil {
		t.Fatal(err)
	}
	if want := idOf("s3cr3t-TOKEN-2"); ev.TokenID != want {
		t.Errorf("TokenID = %q, want the last token's %q", ev.TokenID, want)
	}
	if bytes.Contains(b, []byte(secretMark)) {
		t.Errorf("line still holds a raw token: %q", b)
	}
}

func TestFingerprinter(t *testing.T) {
	key := []byte("0123456789abcdef") // MinKeyLen bytes
	fp, err := event.NewFingerprinter(key)
	if err != nil {
		t.Fatalf("key of %d bytes: %v", len(key), err)
	}
	raw := event.Secret("s3cr3t-TOKEN-1")

	// Known answer: tk_ and the hex of the first 128 bits of HMAC-SHA256.
	mac := hmac.New(sha256.New, key)
	mac.Write(raw)
	want := "tk_" + hex.EncodeToString(mac.Sum(nil)[:16])
	id := fp.ID(raw)
	if id != want {
		t.Fatalf("ID = %q, want %q", id, want)
	}
	if !idPattern.MatchString(id) || !strings.HasPrefix(id, event.FingerprintPrefix) {
		t.Errorf("ID %q is not tk_ and 32 hex digits", id)
	}
	if again := fp.ID(raw); again != id {
		t.Errorf("same key and token: %q then %q", id, again)
	}
	fp2, _ := event.NewFingerprinter(key)
	if got := fp2.ID(raw); got != id {
		t.Errorf("a second Fingerprinter with the same key gives %q, want %q", got, id)
	}
	if got := string(fp.AppendID([]byte("x="), raw)); got != "x="+id {
		t.Errorf("AppendID = %q, want %q", got, "x="+id)
	}
	if other := fp.ID(event.Secret("s3cr3t-TOKEN-2")); other == id {
		t.Errorf("two tokens share id %q", id)
	}

	otherKey, _ := event.NewFingerprinter([]byte("0123456789abcdeF"))
	if got := otherKey.ID(raw); got == id {
		t.Errorf("different keys give the same id %q", got)
	}

	// The key is copied: changing the caller's slice changes nothing.
	key[0] = 'X'
	if got := fp.ID(raw); got != id {
		t.Errorf("after the caller changed its key slice: %q, want %q", got, id)
	}

	c := fp.Clone()
	if got := c.ID(raw); got != id {
		t.Errorf("Clone gives %q, want %q", got, id)
	}
	// Clones are independent: each goroutine may use its own (run with -race).
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func(f *event.Fingerprinter) {
			defer wg.Done()
			for range 100 {
				if got := f.ID(raw); got != id {
					errs <- got
					return
				}
			}
		}(fp.Clone())
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Errorf("concurrent clone gave %q, want %q", got, id)
	}
}

func TestFingerprinterShortKey(t *testing.T) {
	for _, n := range []int{0, 1, event.MinKeyLen - 1} {
		fp, err := event.NewFingerprinter(bytes.Repeat([]byte("k"), n))
		if !errors.Is(err, event.ErrShortKey) || fp != nil {
			t.Errorf("key of %d bytes: %v, %v; want nil, ErrShortKey", n, fp, err)
		}
	}
	if _, err := event.NewFingerprinter(nil); !errors.Is(err, event.ErrShortKey) {
		t.Errorf("nil key: %v, want ErrShortKey", err)
	}
}

func TestRandomKey(t *testing.T) {
	a, b := event.RandomKey(), event.RandomKey()
	if len(a) != 32 || len(b) != 32 {
		t.Fatalf("RandomKey lengths %d, %d; want 32", len(a), len(b))
	}
	if bytes.Equal(a, b) {
		t.Error("two RandomKeys are equal")
	}
	if _, err := event.NewFingerprinter(a); err != nil {
		t.Errorf("RandomKey rejected: %v", err)
	}
}

// TestSecretRedacts passes a Secret to everything that might print it.
func TestSecretRedacts(t *testing.T) {
	s := event.Secret("s3cr3t-TOKEN-1")
	forms := [][]byte{
		[]byte(s),
		[]byte(hex.EncodeToString(s)),
		[]byte(strings.ToUpper(hex.EncodeToString(s))),
		[]byte(base64.StdEncoding.EncodeToString(s)),
		[]byte(fmt.Sprint([]byte(s))), // [115 51 ...]
	}
	check := func(t *testing.T, what string, out []byte) {
		t.Helper()
		for _, f := range forms {
			if bytes.Contains(out, f) {
				t.Errorf("%s leaks the secret: %s", what, out)
				return
			}
		}
		if !bytes.Contains(out, []byte("[REDACTED]")) {
			t.Errorf("%s = %s, want [REDACTED]", what, out)
		}
	}

	type holder struct {
		Name  string
		Token event.Secret
		Ptr   *event.Secret
	}
	h := holder{Name: "n", Token: s, Ptr: &s}

	t.Run("fmt", func(t *testing.T) {
		for _, verb := range []string{"%v", "%s", "%q", "%+v", "%#v", "%x", "%X", "%d", "% x", "%10s", "%-20v"} {
			check(t, verb, []byte(fmt.Sprintf(verb, s)))
			check(t, verb+" of a pointer", []byte(fmt.Sprintf(verb, &s)))
			check(t, verb+" in a struct", []byte(fmt.Sprintf(verb, h)))
			check(t, verb+" in a slice", []byte(fmt.Sprintf(verb, []event.Secret{s, s})))
			check(t, verb+" in a map", []byte(fmt.Sprintf(verb, map[string]event.Secret{"k": s})))
			check(t, verb+" as any", []byte(fmt.Sprintf(verb, any(s))))
		}
		check(t, "Sprint", []byte(fmt.Sprint(s)))
		check(t, "Sprintln", []byte(fmt.Sprintln("token", s)))
		check(t, "String", []byte(s.String()))
		check(t, "GoString", []byte(s.GoString()))
		check(t, "Errorf", []byte(fmt.Errorf("bad token %v: %w", s, errors.New("x")).Error()))
	})

	t.Run("slog", func(t *testing.T) {
		for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
			"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		} {
			for form, log := range map[string]func(*slog.Logger){
				"key-value": func(l *slog.Logger) { l.Info("m", "token", s) },
				"Any":       func(l *slog.Logger) { l.Info("m", slog.Any("token", s)) },
				"pointer":   func(l *slog.Logger) { l.Info("m", "token", &s) },
				"group":     func(l *slog.Logger) { l.Info("m", slog.Group("req", "token", s)) },
				"With":      func(l *slog.Logger) { l.With("token", s).Info("m") },
				"struct":    func(l *slog.Logger) { l.Info("m", "req", h) },
				"message":   func(l *slog.Logger) { l.Info(fmt.Sprint("token ", s)) },
			} {
				var b bytes.Buffer
				log(slog.New(newHandler(&b)))
				check(t, name+" "+form, b.Bytes())
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		for what, v := range map[string]any{
			"value":   s,
			"pointer": &s,
			"struct":  h,
			"map":     map[string]event.Secret{"k": s},
			"slice":   []event.Secret{s},
		} {
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			check(t, "json "+what, out)
		}
		txt, _ := s.MarshalText()
		check(t, "MarshalText", txt)
	})

	t.Run("Wipe", func(t *testing.T) {
		w := event.Secret(bytes.Clone(s))
		w.Wipe()
		if !bytes.Equal(w, make([]byte, len(s))) {
			t.Errorf("after Wipe: %q", []byte(w))
		}
	})
}
