//go:build linux

package mremap

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", ""},
		{"postgres", "postgres"},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{"café", "café"},
		{"日本語のファイル", "日本語のファイル"},
		{"a\\b", `a\\b`},
		{"/tmp/\xff\xfe", `/tmp/\xff\xfe`},
		{"caf\xc3", `caf\xc3`},    // a cut UTF-8 sequence
		{"\xc3\xa9\xc3", `é\xc3`}, // valid, then cut
		{"new\nline\ttab\x00nul\x7f", `new\x0aline\x09tab\x00nul\x7f`},
		{`\x41`, `\\x41`},                // a literal backslash-x is not mistaken for an escape
		{"\xed\xa0\x80", `\xed\xa0\x80`}, // a UTF-16 surrogate is not valid UTF-8
	}
	for _, tt := range tests {
		got := Escape([]byte(tt.in))
		assert.Equal(t, tt.want, got, "Escape(%q)", tt.in)
		assert.True(t, utf8.ValidString(got))
		back, err := Unescape(got)
		require.NoError(t, err)
		assert.Equal(t, []byte(tt.in), append([]byte{}, back...), "Unescape(Escape(%q))", tt.in)
	}
}

func TestUnescapeErrors(t *testing.T) {
	for _, s := range []string{`\`, `\x`, `\x4`, `\xzz`, `\n`} {
		_, err := Unescape(s)
		assert.Error(t, err, "Unescape(%q)", s)
	}
}

// FuzzEscape: the result is valid UTF-8, no longer than 4 bytes per input
// byte, and Unescape gives the input back.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "postgres", "a\\b", "\xff", "café", "\n\x00", `\x41`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Escape(b)
		if !utf8.ValidString(s) {
			t.Fatalf("Escape(%q) = %q: not valid UTF-8", b, s)
		}
		if len(s) > 4*len(b) {
			t.Fatalf("Escape(%q) = %q: longer than 4 bytes per byte", b, s)
		}
		back, err := Unescape(s)
		if err != nil || !bytes.Equal(back, b) && (len(back) != 0 || len(b) != 0) {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", b, back, err)
		}
	})
}
