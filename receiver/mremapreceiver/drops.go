//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// dropCount is the count of one reason of mremap.events.dropped.
type dropCount struct {
	reason metadata.AttributeReason
	count  uint64
}

// dropsByReason lists every reason with its count, zeros included, in the
// order of metadata.yaml.
func dropsByReason(d tracer.Drops) []dropCount {
	return []dropCount{
		{metadata.AttributeReasonRingBufferFull, d.RingBufferFull},
		{metadata.AttributeReasonRateLimited, d.RateLimited},
		{metadata.AttributeReasonUnpaired, d.Unpaired},
		{metadata.AttributeReasonProbeMissed, d.ProbeMissed},
		{metadata.AttributeReasonCardinalityLimit, d.CardinalityLimit},
		{metadata.AttributeReasonMalformedRecord, d.MalformedRecord},
	}
}
