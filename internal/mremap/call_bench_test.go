//go:build linux

package mremap

import "testing"

// Sinks keep the compiler from discarding the work being measured.
var (
	benchStringSink string
)

func BenchmarkCallString(b *testing.B) {
	cases := []struct {
		name string
		call Call
	}{
		{"ok", Call{
			OldAddress: 0x7f3a2c000000, OldSize: 4096, NewSize: 8192,
			Flags: FlagMayMove, Return: 0x7f3a2c100000,
		}},
		{"failed", Call{
			OldAddress: 0x7f3a2c000001, OldSize: 4096, NewSize: 8192,
			Flags: FlagMayMove, Return: -22, Errno: 22, // EINVAL
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			c := tc.call
			b.ReportAllocs()
			for b.Loop() {
				benchStringSink = c.String()
			}
		})
	}
}

func BenchmarkFlagNames(b *testing.B) {
	cases := []struct {
		name  string
		flags uint64
	}{
		{"none", 0},
		{"maymove", FlagMayMove},
		{"maymove+fixed", FlagMayMove | FlagFixed},
		{"all+unknown", FlagMayMove | FlagFixed | FlagDontUnmap | 0x40},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchStringSink = FlagNames(tc.flags)
			}
		})
	}
}
