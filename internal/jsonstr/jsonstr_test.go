package jsonstr

import "testing"

func TestUnescape(t *testing.T) {
	for _, c := range []struct {
		src, want string
		n         int
		closed    bool
		problem   string
	}{
		{`abc"rest`, "abc", 4, true, ""},
		{`a\"b\\c\/d\n\t"`, "a\"b\\c/d\n\t", 15, true, ""},
		{`\u00e9\ud83d\ude00"`, "é😀", 19, true, ""},
		{`\ud83dx"`, "\uFFFDx", 8, true, ""},
		{`\ud83d\u0041"`, "\uFFFDA", 13, true, ""},
		{`abc`, "abc", 3, false, ""},
		{`ab\`, "ab", 2, false, ""},
		{"a\x01", "a", 1, false, ControlCharacter},
		{`\u12g4"`, "", 2, false, MalformedUnicode},
		{`\ud83d\uzzzz"`, "", 8, false, MalformedUnicode},
		{`\q"`, "", 2, false, InvalidEscape},
	} {
		out, n, closed, problem := Unescape(nil, []byte(c.src))
		if string(out) != c.want || n != c.n || closed != c.closed || problem != c.problem {
			t.Errorf("Unescape(%q) = %q, %d, %v, %q; want %q, %d, %v, %q", c.src, out, n, closed, problem, c.want, c.n, c.closed, c.problem)
		}
	}
}
