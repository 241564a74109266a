// Command park_mem is the Go twin of bench/park_mem_bench.c: n goroutines
// block in a receive on one channel; the result is the growth of the
// resident set size (/proc/self/statm, as for the C side; not
// runtime.MemStats) from before starting them to when all are blocked,
// divided by n, in bytes. Then the channel is closed and all are waited for.
//
// Flags: --n=N goroutines (1M); --workers is accepted and ignored (use
// GOMAXPROCS).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// rss returns the resident set size in bytes, or -1.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return -1
	}
	return resident * int64(os.Getpagesize())
}

// waitBlocked waits until want goroutines have counted themselves in
// ready (the last thing each does before its receive), plus a margin.
func waitBlocked(ready *int64, want int64) {
	for atomic.LoadInt64(ready) < want {
		time.Sleep(time.Millisecond)
	}
	// The last ones may still be between the count and the receive.
	time.Sleep(20 * time.Millisecond)
}

func main() {
	n := flag.Int64("n", 1000000, "goroutines")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "park_mem: need --n>=1")
		os.Exit(2)
	}
	gate := make(chan struct{})
	var ready int64
	var wg sync.WaitGroup
	rss0 := rss()
	t0 := time.Now()
	wg.Add(int(*n))
	for i := int64(0); i < *n; i++ {
		go func() {
			atomic.AddInt64(&ready, 1)
			<-gate
			wg.Done()
		}()
	}
	waitBlocked(&ready, *n)
	rss1 := rss()
	fmt.Fprintf(os.Stderr, "park_mem: %d goroutines blocked in %.0f ms; rss %.1f -> %.1f MiB\n",
		*n, float64(time.Since(t0).Milliseconds()), float64(rss0)/1048576, float64(rss1)/1048576)
	fmt.Printf("RESULT name=park_mem impl=go workers=%d value=%.1f unit=B/fiber\n",
		runtime.GOMAXPROCS(0), float64(rss1-rss0)/float64(*n))
	close(gate)
	wg.Wait()
}
