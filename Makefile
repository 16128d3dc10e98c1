# otelcol-mremap: `make run` builds the collector and runs it with
# config/collector.yaml; `make test` runs every test (as root: the
# real-kernel tests load eBPF programs, and the kernel VM suite boots
# Debian's kernels with kprobes under QEMU).

SHELL := /bin/bash
GO ?= go
OCB_VERSION := v0.161.0
OCB := .tools/builder
BIN := bin/otelcol-mremap
HELPER := bin/mremap-helper
HELPER32 := bin/mremap-helper32
CSTACK := bin/mremap-cstack
CLANG ?= clang-19
CLANG_FORMAT ?= clang-format-19
# golangci-lint, pinned in its own module (tools/lint/go.mod) so that its
# dependencies do not move mdatagen's; built once through the Go module proxy
# and cached by go tool.
GOLANGCI_LINT := $(GO) tool -modfile=tools/lint/go.mod golangci-lint
# The C sources clang-format checks (.clang-format): vmlinux.h is generated.
C_SOURCES := $(filter-out bpf/vmlinux.h,$(wildcard bpf/*.c bpf/*.h)) cmd/mremap-helper32/main.c cmd/mremap-cstack/main.c

GO_SOURCES := $(shell find bpf cmd internal receiver -name '*.go' -not -name '*_test.go') bpf/mremap_x86_bpfel.o bpf/mremap_arm64_bpfel.o go.mod go.sum builder-config.yaml

.PHONY: all deps build helper32 run certs test test-unit test-kernel test-e2e test-vm generate check-generated vmlinux bench bench-go clean fmt vet lint fuzz soak dashboards screenshots

all: build

$(OCB):
	GOBIN=$(CURDIR)/.tools $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

## build: the collector distribution, bin/otelcol-mremap (ocb, builder-config.yaml)
build: $(BIN) $(HELPER) helper32 $(CSTACK)

$(BIN): $(OCB) $(GO_SOURCES)
	mkdir -p build bin
	$(OCB) --config=builder-config.yaml
	cp build/otelcol-mremap/otelcol-mremap $(BIN)

## helper: the program that makes known mremap calls for the tests
$(HELPER): $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build -o $(HELPER) ./cmd/mremap-helper

## helper32: the 32-bit C helper, whose glibc mremap() enters the kernel through the
## vDSO, built with gcc -m32 -static when gcc can (gcc-multilib); otherwise a note,
## and the tests that run it skip
helper32:
	@mkdir -p build; \
	if echo 'int main(void) { return 0; }' | gcc -m32 -static -x c -o build/gcc-m32-probe - >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(HELPER32); \
	else \
		echo "note: gcc -m32 -static cannot build 32-bit programs here (apt-get install gcc-multilib): $(HELPER32) not built, TestIa32GlibcCaller skips"; \
	fi

$(HELPER32): cmd/mremap-helper32/main.c
	mkdir -p bin
	gcc -m32 -static -O2 -Wall -Wextra -Werror -o $@ $<

## cstack: the C program whose call comes from known nested functions, for the call-stack
## tests: frame pointers kept, no tail calls; static, so that it runs in the VM suite too
CSTACK_CFLAGS := -static -O2 -Wall -Wextra -Werror -fno-omit-frame-pointer -fno-optimize-sibling-calls
$(CSTACK): cmd/mremap-cstack/main.c
	mkdir -p bin
	gcc $(CSTACK_CFLAGS) -o $@ $<

## the same for the arm64 VM (test/vm/suite.sh): clang and lld with Debian's arm64 cross
## sysroot (libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross)
build/arm64/mremap-cstack: cmd/mremap-cstack/main.c
	mkdir -p build/arm64
	$(CLANG) --target=aarch64-linux-gnu -fuse-ld=lld $(CSTACK_CFLAGS) -o $@ $<

## run: build and run the collector with config/collector.yaml (needs root)
run: build
	$(BIN) --config config/collector.yaml

## certs: a trial PKI for config/agent.yaml -> config/gateway.yaml over mutual TLS, in
## build/certs: a CA, the gateway's certificate (for localhost and GATEWAY_NAMES, the names
## agents dial) and an agent's (docs/security.md)
GATEWAY_NAMES ?=
certs:
	config/tls/make-certs.sh build/certs $(GATEWAY_NAMES)

## deps: install what the tests need and this machine lacks (Debian packages; says what it installs)
deps:
	@test/deps.sh

## test: every test: vet, lint, unit and real-kernel tests, the built collector end to end, the kernel VM suite
test: deps vet lint test-kernel test-vm

vet:
	@test -z "$$(gofmt -l bpf cmd dashboards internal receiver test)" || { gofmt -l bpf cmd dashboards internal receiver test; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

## lint: golangci-lint (.golangci.yml: govet, staticcheck, errorlint, misspell, unused, gofmt)
## on every package, and clang-format-19 (.clang-format) on the C sources, checking only;
## both run, then it fails if either found something
lint:
	@status=0; \
	echo "$(GOLANGCI_LINT) run ./..."; \
	$(GOLANGCI_LINT) run ./... || status=1; \
	echo "$(CLANG_FORMAT) --dry-run --Werror $(C_SOURCES)"; \
	$(CLANG_FORMAT) --dry-run --Werror --style=file $(C_SOURCES) || { echo "lint: clang-format would change the C sources above (make fmt rewrites them)"; status=1; }; \
	echo "GOOS=darwin $(GO) build ./... (elsewhere than Linux it builds, and fails at start saying Linux only)"; \
	GOOS=darwin GOARCH=arm64 $(GO) build ./... || status=1; \
	exit $$status

## fmt: rewrite the Go sources with gofmt and the C sources with clang-format-19
fmt:
	gofmt -w bpf cmd internal receiver test
	$(CLANG_FORMAT) -i --style=file $(C_SOURCES)

## test-kernel: unit tests, real-kernel tests on this host, and the collector end to end.
## -p 1: packages run one at a time, since they all watch the helper's comm.
## The soak test runs only in `make soak`.
test-kernel: build
	SOAK_DURATION= MREMAP_HELPER=$(CURDIR)/$(HELPER) OTELCOL_MREMAP=$(CURDIR)/$(BIN) MREMAP_CSTACK=$(CURDIR)/$(CSTACK) \
		env $$(test -x $(HELPER32) && echo MREMAP_HELPER_GCC32=$(CURDIR)/$(HELPER32)) $(GO) test -p 1 -count=1 ./...

## test-unit: the tests that need neither root nor a kernel (-short skips the others)
test-unit:
	$(GO) test -short -count=1 ./internal/... ./receiver/... ./test/docs/

## soak: config/collector.yaml under the helper's full rate for SOAK_DURATION: RSS flat,
## every call delivered or counted as dropped, health_check answering (CI: after make test)
SOAK_DURATION ?= 2m
soak: build
	MREMAP_HELPER=$(CURDIR)/$(HELPER) OTELCOL_MREMAP=$(CURDIR)/$(BIN) SOAK_DURATION=$(SOAK_DURATION) \
		$(GO) test -p 1 -count=1 -timeout 30m -run '^TestSoak$$' -v ./test/e2e/

## fuzz: each fuzz target for FUZZTIME (the seed corpora in testdata/fuzz run in every `make test`)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' internal receiver | xargs -n1 dirname | sort -u); do \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg/*_test.go | sed 's/^func //'); do \
			echo "== $$target ($$pkg, $(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./$$pkg/ || exit 1; \
		done; \
	done

## test-vm: the real-kernel tests inside QEMU on Debian's kernels (test/vm/kernels.conf:
## 6.1 and 6.12, cloud and PREEMPT_RT, amd64 and arm64), in kprobe and tracepoint mode.
## KERNELS="6.12-cloud-arm64 6.1-rt-amd64" (names in kernels.conf, globs allowed) runs a subset.
KERNELS ?=
test-vm: build
	set -f; test/vm/suite.sh $(KERNELS)

## generate: regenerate the bpf2go objects (clang-19) and mdatagen's code
generate:
	$(GO) generate ./bpf/ ./receiver/mremapreceiver/

## check-generated: regenerate and fail if the committed files differ
## (and docs/kernels-tested.md if it is not what test/vm/results.tsv makes)
check-generated: generate
	git diff --exit-code -- bpf receiver/mremapreceiver
	test/vm/kernels-tested.sh --check

## dashboards: regenerate config/grafana/mremap.json from dashboards/panels.go (the Grafana
## Foundation SDK) and config/vmui/mremap.json from it; make test fails when either is stale
dashboards:
	$(GO) run ./cmd/mremap-dashboards

## screenshots: as root, docs/vmui-dashboard.png and docs/victorialogs.png: the browser test of
## test/backends (VictoriaMetrics, VictoriaLogs, Chromium) with a longer workload
screenshots: build
	MREMAP_HELPER=$(CURDIR)/$(HELPER) OTELCOL_MREMAP=$(CURDIR)/$(BIN) MREMAP_SCREENSHOTS=$(CURDIR)/docs \
		$(GO) test -count=1 -run '^TestBackends$$/^Browser$$' -v ./test/backends/

## vmlinux: regenerate bpf/vmlinux.h from this host's BTF (rarely needed)
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

## bench: as root, on a quiet machine: the Go benchmarks, then test/bench, which measures
## what observing mremap adds per call (nothing, the floor, bpftrace, the receiver), the
## highest rate without loss, the collector's CPU per record and peak RSS, and writes
## BENCHMARKS.md and test/bench/added-cost.png. About 5 minutes; installs bpftrace if missing.
bench: build bench-go
	command -v bpftrace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace >/dev/null; } || echo "bench: bpftrace could not be installed; its rows are left out"
	$(GO) build -o bin/mremap-bench ./test/bench
	bin/mremap-bench -go-bench build/bench-go.txt

## bench-go: the Go benchmarks (decoding, conversion; with root also the syscall overhead)
bench-go: build
	mkdir -p build
	set -o pipefail; MREMAP_HELPER=$(CURDIR)/$(HELPER) $(GO) test -p 1 -run '^$$' -bench . -benchmem ./... | tee build/bench-go.txt

clean:
	rm -rf bin build
