package mremapreceiver

import (
	"os"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// BenchmarkStackStage is what call_stack adds to the collector's CPU per
// record, once the process's files are parsed (the usual case: every
// record of a process but its first): the stage's symbolization from the
// cache, in order, of a stack of this process (about 12 frames), and the
// four attributes on the record.
func BenchmarkStackStage(b *testing.B) {
	s := newStackStage(nil)
	defer s.q.Close()
	c := observedCall{Call: mremap.Call{Process: mremap.Process{PID: uint32(os.Getpid())}, Stack: ownStack()}}
	s.sym.Symbolize(stackRequest(&c.Call))
	var got *observedCall
	take := func(oc *observedCall) { got = oc }
	var w attributeWriter
	attrs := pcommon.NewMap()
	b.ReportAllocs()
	for b.Loop() {
		s.hold(&c)
		s.release(take, false)
		if got == nil || got.Stack.Symbolized.Function == "" {
			b.Fatalf("not symbolized from the cache: %+v", got)
		}
		w.start(stackAttributeCount(&got.Stack.Symbolized))
		putStack(&w, &got.Stack.Symbolized, false)
		attrs.Clear()
		w.into(attrs)
		got = nil
	}
	b.ReportMetric(float64(len(c.Stack.Addresses)), "frames/record")
}
