//go:build linux

package mremap

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// Each signal is the bit of the kernel's enum call_signal at its index.
func TestSignalBits(t *testing.T) {
	bits := []bpf.MremapCallSignal{
		bpf.MremapCallSignalSIGNAL_EXEC_MOVE, bpf.MremapCallSignalSIGNAL_WRITE_EXEC,
		bpf.MremapCallSignalSIGNAL_FIXED_REPLACE, bpf.MremapCallSignalSIGNAL_SHARED_ALIAS,
		bpf.MremapCallSignalSIGNAL_DONTUNMAP, bpf.MremapCallSignalSIGNAL_SEALED,
		bpf.MremapCallSignalSIGNAL_SPECIAL_MOVE, bpf.MremapCallSignalSIGNAL_UNBACKED_CALLER,
		bpf.MremapCallSignalSIGNAL_MAP_COUNT_LIMIT,
	}
	assert.Len(t, bits, NumSignals)
	for i, b := range bits {
		assert.Equal(t, uint32(1)<<i, uint32(b), "bit of %v", Signal(i))
	}
}

func TestSignalsString(t *testing.T) {
	assert.Equal(t, "", Signals(0).String())
	assert.Equal(t, "exec_move", Signals(1).String())
	assert.Equal(t, "map_count_limit", Signals(1<<SignalMapCountLimit).String())
	assert.Equal(t, "exec_move|write_exec|unbacked_caller", Signals(1|2|1<<SignalUnbackedCaller).String())
	assert.Equal(t, "exec_move|write_exec|fixed_replace|shared_alias|dontunmap|sealed|special_move|unbacked_caller|map_count_limit",
		Signals(1<<NumSignals-1).String())
	assert.Equal(t, "signal(12)", Signal(12).String())
	var got []Signal
	Signals(1<<SignalDontUnmap | 1<<SignalSealed).Each(func(s Signal) { got = append(got, s) })
	assert.Equal(t, []Signal{SignalDontUnmap, SignalSealed}, got)
	assert.True(t, Signals(1<<SignalSealed).Has(SignalSealed))
	assert.False(t, Signals(1<<SignalSealed).Has(SignalDontUnmap))
	assert.Zero(t, testing.AllocsPerRun(10, func() { _ = Signals(1 << SignalSealed).String() }))
}
