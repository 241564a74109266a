// Command spawn_join is the Go twin of bench/spawn_join_bench.c: the main
// goroutine starts a goroutine that returns at once and waits for it
// (sync.WaitGroup), n times; the result is ns per start+wait pair.
//
// Flags: --n=N pairs (500k); --workers is accepted and ignored (use
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
		wg.Wait()
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func main() {
	n := flag.Int64("n", 500000, "spawn+join pairs")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "spawn_join: need --n>=1")
		os.Exit(2)
	}
	measure(*n/10 + 1) // warm-up
	fmt.Printf("RESULT name=spawn_join impl=go workers=%d value=%.1f unit=ns/op\n", runtime.GOMAXPROCS(0), measure(*n))
}
