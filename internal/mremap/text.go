//go:build linux

package mremap

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape makes bytes that come from user space (a comm, a file path, a
// command line) a valid UTF-8 string without losing information: a byte
// that is not part of valid UTF-8, or is an ASCII control character, is
// written as \xNN, and a backslash as \\, so that every escape can be
// undone. Valid UTF-8 without control characters or backslashes is
// returned as it is.
func Escape(b []byte) string {
	if !needsEscape(b) {
		return string(b)
	}
	var s strings.Builder
	s.Grow(len(b) + 16)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n <= 1:
			writeHexByte(&s, b[0])
		case r == '\\':
			s.WriteString(`\\`)
		case r < 0x20 || r == 0x7f:
			writeHexByte(&s, byte(r))
		default:
			s.Write(b[:n])
		}
		b = b[n:]
	}
	return s.String()
}

// Unescape undoes Escape.
func Unescape(s string) ([]byte, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b = append(b, '\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return nil, err
			}
			b = append(b, byte(v))
			i += 3
		default:
			return nil, strconv.ErrSyntax
		}
	}
	return b, nil
}

func needsEscape(b []byte) bool {
	ascii := true
	for _, c := range b {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return true
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return !ascii && !utf8.Valid(b)
}

const hexDigits = "0123456789abcdef"

func writeHexByte(s *strings.Builder, c byte) {
	s.WriteString(`\x`)
	s.WriteByte(hexDigits[c>>4])
	s.WriteByte(hexDigits[c&0xf])
}
