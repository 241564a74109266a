// Command yield is the Go twin of bench/yield_bench.c: K goroutines each
// call runtime.Gosched() n times; the result is wall time divided by the
// total number of calls (K*n), in ns. The goroutines are started first and
// wait at a start line, so starting them is not timed. GOMAXPROCS (set by
// the caller) plays the role of Spindle's worker count.
//
// Flags: --n=N calls per goroutine (2M), --fibers=K (0: both 1 and 2),
// --workers is accepted and ignored (use GOMAXPROCS).
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

func measure(k int, n int64) float64 {
	var ready, start int32
	var wg sync.WaitGroup
	wg.Add(k)
	for i := 0; i < k; i++ {
		go func() {
			defer wg.Done()
			atomic.AddInt32(&ready, 1)
			for atomic.LoadInt32(&start) == 0 {
				runtime.Gosched()
			}
			for j := int64(0); j < n; j++ {
				runtime.Gosched()
			}
		}()
	}
	for atomic.LoadInt32(&ready) < int32(k) {
		runtime.Gosched()
	}
	t0 := time.Now()
	atomic.StoreInt32(&start, 1)
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / (float64(k) * float64(n))
}

func main() {
	n := flag.Int64("n", 2000000, "Gosched calls per goroutine")
	fibers := flag.Int("fibers", 0, "goroutines (0: both 1 and 2)")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 || *fibers < 0 {
		fmt.Fprintln(os.Stderr, "yield: need --n>=1 and --fibers>=0")
		os.Exit(2)
	}
	procs := runtime.GOMAXPROCS(0)
	measure(2, *n/20+1) // warm-up
	for k := 1; k <= 2; k++ {
		if *fibers != 0 && k != *fibers {
			continue
		}
		fmt.Printf("RESULT name=yield_%df impl=go workers=%d value=%.1f unit=ns/op\n", k, procs, measure(k, *n))
	}
	if *fibers > 2 {
		fmt.Printf("RESULT name=yield_%df impl=go workers=%d value=%.1f unit=ns/op\n", *fibers, procs, measure(*fibers, *n))
	}
}
