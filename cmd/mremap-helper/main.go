// Command mremap-helper makes a known sequence of mremap(2) calls (grow in
// place, shrink, moves, failures) and prints each as a JSON line: the
// arguments, the raw return value, its pid and tid. The real-kernel tests
// run it and compare what the receiver reports.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

func main() {
	made, err := mremaptest.MakeCalls()
	enc := json.NewEncoder(os.Stdout)
	for _, m := range made {
		_ = enc.Encode(m)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mremap-helper:", err)
		os.Exit(1)
	}
}
