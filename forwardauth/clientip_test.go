package forwardauth

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	loopback := DefaultTrustedProxies()
	withLAN := append(DefaultTrustedProxies(), netip.MustParsePrefix("10.0.0.0/8"))
	for _, c := range []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string // "" means invalid
		ok      bool
	}{
		{"untrusted peer ignores the header", "203.0.113.5:1234", []string{"198.51.100.1"}, loopback, "203.0.113.5", true},
		{"nil trusts nobody", "127.0.0.1:1234", []string{"198.51.100.1"}, nil, "127.0.0.1", true},
		{"trusted peer, one hop", "127.0.0.1:1234", []string{"198.51.100.1"}, loopback, "198.51.100.1", true},
		{"no header: the peer", "127.0.0.1:1234", nil, loopback, "127.0.0.1", true},
		{"a forgery left of the client is not reached", "127.0.0.1:1234", []string{"192.0.2.66, 198.51.100.1"}, loopback, "198.51.100.1", true},
		{"garbage left of the client is not reached", "127.0.0.1:1234", []string{"<script>, 198.51.100.1"}, loopback, "198.51.100.1", true},
		{"through trusted proxies", "127.0.0.1:1234", []string{"192.0.2.66, 198.51.100.1, 10.0.0.2, 10.0.0.3"}, withLAN, "198.51.100.1", true},
		{"several header lines, in order", "127.0.0.1:1234", []string{"192.0.2.66, 198.51.100.1", "10.0.0.2"}, withLAN, "198.51.100.1", true},
		{"only trusted: the leftmost", "127.0.0.1:1234", []string{"10.0.0.3, 10.0.0.2"}, withLAN, "10.0.0.3", true},
		{"garbage right of the client ends the walk", "127.0.0.1:1234", []string{"198.51.100.1, unknown"}, loopback, "127.0.0.1", false},
		{"garbage after a trusted hop", "127.0.0.1:1234", []string{"nonsense, 10.0.0.2"}, withLAN, "10.0.0.2", false},
		{"empty elements are skipped", "127.0.0.1:1234", []string{" 198.51.100.1 ,, \t,"}, loopback, "198.51.100.1", true},
		{"IPv4 with a port", "127.0.0.1:1234", []string{"198.51.100.1:4711"}, loopback, "198.51.100.1", true},
		{"IPv6 with a port", "127.0.0.1:1234", []string{"[2001:db8::1]:443"}, loopback, "2001:db8::1", true},
		{"IPv6 in brackets", "[::1]:1234", []string{"[2001:db8::1]"}, loopback, "2001:db8::1", true},
		{"IPv6 with a zone", "[::1]:1234", []string{"fe80::1%eth0"}, loopback, "fe80::1", true},
		{"IPv4-mapped peer and entry", "[::ffff:127.0.0.1]:1234", []string{"::ffff:198.51.100.1"}, loopback, "198.51.100.1", true},
		{"a bracketed IPv4 is not an address", "127.0.0.1:1234", []string{"[198.51.100.1]"}, loopback, "127.0.0.1", false},
		{"Unix socket peer", "@", []string{"198.51.100.1"}, loopback, "", true},
		{"too many trusted hops", "127.0.0.1:1234", []string{strings.Repeat("10.0.0.1,", 40)}, withLAN, "10.0.0.1", false},
		{"an overlong entry", "127.0.0.1:1234", []string{strings.Repeat("1", 100)}, loopback, "127.0.0.1", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := ClientIP(r, c.trusted)
			want := netip.Addr{}
			if c.want != "" {
				want = netip.MustParseAddr(c.want)
			}
			if got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
			got2, ok := ForwardedFor(PeerAddr(r), c.xff, c.trusted)
			if got2 != got || ok != c.ok {
				t.Errorf("ForwardedFor = %v, %v, want %v, %v", got2, ok, want, c.ok)
			}
		})
	}
}

func TestNormalizePrefixes(t *testing.T) {
	got := normalizePrefixes([]netip.Prefix{
		netip.MustParsePrefix("::ffff:10.1.2.3/104"),
		netip.MustParsePrefix("192.0.2.77/24"),
	})
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("normalizePrefixes = %v, want %v", got, want)
	}
}

func TestRequestTarget(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/v1/items?id=7&q=a%20b", "/v1/items?id=7&q=a%20b", true},
		{"/a%zz/raw-ü#frag", "/a%zz/raw-ü#frag", true},
		{"*", "*", true},
		{"http://api.example.com/v1?x=1", "/v1?x=1", true},
		{"HTTPS://api.example.com:8443", "/", true},
		{"http://api.example.com?x=1", "/?x=1", true},
		{"", "", false},
		{"v1/items", "", false},
		{"javascript:alert(1)", "", false},
		{"ftp://example.com/x", "", false},
		{"http://user@evil.example/x", "", false},
		{"/with space", "", false},
		{"/with\ttab", "", false},
		{"/with\x00nul", "", false},
		{"/with\x7fdel", "", false},
	} {
		got, ok := requestTarget(c.in)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("requestTarget(%q) = %q, %v, want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
