//go:build linux

package mremapcheck

import (
	"bytes"
	"fmt"
	"os"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// FileOutput is what a file exporter (JSON, one batch per line) wrote.
type FileOutput struct {
	// Logs holds every log record written so far.
	Logs plog.Logs
	// LastMetrics holds the last resource's metrics written, that is the
	// receiver's last emission (it emits one resource per collection
	// interval, however batch processors on the way group them); it has
	// no resource when no metrics were written.
	LastMetrics pmetric.Metrics
}

// ReadFile reads a file exporter's output. Logs and metrics may share the
// file. A line still being written (no newline yet) is left for the next
// call; a missing file reads as empty.
func ReadFile(path string) (FileOutput, error) {
	out := FileOutput{Logs: plog.NewLogs(), LastMetrics: pmetric.NewMetrics()}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines[:len(lines)-1] {
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
		case bytes.HasPrefix(line, []byte(`{"resourceLogs"`)):
			ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
			if err != nil {
				return out, fmt.Errorf("%s line %d: %w", path, i+1, err)
			}
			ld.ResourceLogs().MoveAndAppendTo(out.Logs.ResourceLogs())
		case bytes.HasPrefix(line, []byte(`{"resourceMetrics"`)):
			md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
			if err != nil {
				return out, fmt.Errorf("%s line %d: %w", path, i+1, err)
			}
			if n := md.ResourceMetrics().Len(); n > 0 {
				out.LastMetrics = pmetric.NewMetrics()
				md.ResourceMetrics().At(n - 1).CopyTo(out.LastMetrics.ResourceMetrics().AppendEmpty())
			}
		default:
			return out, fmt.Errorf("%s line %d: neither logs nor metrics: %.80s", path, i+1, line)
		}
	}
	return out, nil
}
