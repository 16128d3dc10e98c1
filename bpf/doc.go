// Package bpf holds the eBPF program that observes mremap(2) and the Go
// bindings bpf2go generates for it. The generated .go and .o files are
// committed, so building needs no clang; `make generate` regenerates them.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type event -type call_key -type call_agg -type signal_key -type limits -type ia32_start -type call_flag -type call_signal -type hist_slots -type drop_reason -type resize -type move -type vma_flag -type vma -type stack_tail -type stack_flag -type classify_test Mremap mremap.bpf.c
