//go:build !linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"context"
	"fmt"
	"runtime"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// errLinuxOnly: the probes are eBPF programs loaded into the Linux kernel.
var errLinuxOnly = fmt.Errorf("the mremap receiver runs on Linux only: it loads eBPF programs into the Linux kernel, and this is %s", runtime.GOOS)

func createLogs(context.Context, receiver.Settings, component.Config, consumer.Logs) (receiver.Logs, error) {
	return nil, errLinuxOnly
}

func createMetrics(context.Context, receiver.Settings, component.Config, consumer.Metrics) (receiver.Metrics, error) {
	return nil, errLinuxOnly
}
