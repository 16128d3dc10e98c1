# otelcol-mremap in a container image: the same ocb build as `make build`,
# then only the static binary and the default config on a small runtime
# image. Build from the repository root:
#   docker build -t otelcol-mremap .
# Run (the host's PID namespace, so that process ids and /proc are the
# host's; the host's network, so that host.name is the host's; tracefs and
# BTF from the host; only the capabilities it needs):
#   docker run --rm --pid=host --network=host \
#     --cap-drop=ALL --cap-add=BPF --cap-add=PERFMON --cap-add=DAC_READ_SEARCH --cap-add=SYS_PTRACE \
#     -v /sys/kernel/tracing:/sys/kernel/tracing:ro -v /sys/kernel/btf:/sys/kernel/btf:ro \
#     otelcol-mremap
# Another config: -v $PWD/config/agent.yaml:/etc/otelcol-mremap/config.yaml:ro
# (with -e GATEWAY_ENDPOINT=gateway.example:4317, the TLS files in
# -v $PWD/build/certs/agent:/etc/otelcol-mremap/tls:ro and the on-disk queue in
# -v /var/lib/otelcol-mremap/queue:/var/lib/otelcol-mremap/queue; docs/security.md).

# Build stage: Go as in go.mod, ocb as in the Makefile (OCB_VERSION).
FROM golang:1.26.8-bookworm AS build
ARG OCB_VERSION=v0.161.0
RUN go install go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# The whole module (less .dockerignore): ocb's go mod tidy also resolves
# what the receiver's tests import (test/mremapcheck, internal/mremaptest).
COPY . .
# ocb creates only the last element of output_path.
RUN mkdir -p build && CGO_ENABLED=0 builder --config=builder-config.yaml

# Runtime stage: no shell, no package manager; the binary is static.
# It runs as root inside the container: container runtimes give added
# capabilities to root only (there are no ambient capabilities for other
# users), and --cap-drop=ALL --cap-add=... limits root to those.
FROM gcr.io/distroless/static-debian12
COPY --from=build /src/build/otelcol-mremap/otelcol-mremap /otelcol-mremap
COPY config/collector.yaml /etc/otelcol-mremap/config.yaml
# 8889: the prometheus exporter; 13133: health_check. config/collector.yaml
# binds both to localhost (with --network=host, the host's loopback).
# docs/security.md shows how to open them.
EXPOSE 8889 13133
ENTRYPOINT ["/otelcol-mremap"]
CMD ["--config=/etc/otelcol-mremap/config.yaml"]
