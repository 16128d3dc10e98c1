//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// One set of probes per configuration serves both pipelines.
var receivers = newSharedReceivers()

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := receivers.getOrCreate(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.logs = next
	return logsReceiver{r}, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := receivers.getOrCreate(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.metrics = next
	return newMetricsReceiver(r, set, next)
}
