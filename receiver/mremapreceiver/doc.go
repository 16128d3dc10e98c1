// Package mremapreceiver is an OpenTelemetry Collector receiver, of type
// mremap, that observes every mremap(2) call on the host with eBPF and emits
// one log record per call and metrics aggregated in the kernel.
package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
