// Command wg_fanin is the Go twin of bench/wg_fanin_bench.c: the main
// goroutine starts n goroutines, each with wg.Add(1) before and wg.Done()
// as its only statement (Go 1.19 has no wg.Go), then waits on the
// WaitGroup. The result is the time from the first start to the end of
// the wait, in ms.
//
// Flags: --n=N goroutines (100k); --workers is accepted and ignored (use
// GOMAXPROCS).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func measure(n int64) float64 {
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / 1e6
}

func main() {
	n := flag.Int64("n", 100000, "goroutines")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "wg_fanin: need --n>=1")
		os.Exit(2)
	}
	procs := runtime.GOMAXPROCS(0)
	fmt.Printf("RESULT name=wg_fanin_cold impl=go workers=%d value=%.1f unit=ms\n", procs, measure(*n))
	fmt.Printf("RESULT name=wg_fanin impl=go workers=%d value=%.1f unit=ms\n", procs, measure(*n))
}
