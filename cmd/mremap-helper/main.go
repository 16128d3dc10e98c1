// Command mremap-helper makes a known sequence of mremap(2) calls (grow in
// place, shrink, moves, failures) and prints each as a JSON line: the
// arguments, the raw return value, its pid and tid. The real-kernel tests
// run it and compare what the receiver reports. With -loop N it instead
// makes N shrink/grow pairs of calls and prints the ns per call, for
// test/bench/bpftrace.sh.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

func main() {
	linger := flag.Duration("linger", 0, "stay alive this long after the calls, so /proc still shows the process")
	pairs := flag.Int("loop", 0, "instead of the known calls, make this many shrink/grow pairs of calls and print the ns per call (for benchmarks)")
	flag.Parse()
	if *pairs > 0 {
		if err := loop(*pairs); err != nil {
			fmt.Fprintln(os.Stderr, "mremap-helper:", err)
			os.Exit(1)
		}
		return
	}
	made, err := mremaptest.MakeCalls()
	enc := json.NewEncoder(os.Stdout)
	for _, m := range made {
		_ = enc.Encode(m)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mremap-helper:", err)
		os.Exit(1)
	}
	time.Sleep(*linger)
}
