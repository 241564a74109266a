// Command ctx_cancel is the Go twin of bench/ctx_cancel_bench.c: the main
// goroutine makes a context (context.WithCancel) and starts n goroutines;
// each counts itself and blocks in a select on a channel nobody sends to
// and ctx.Done() (Go's cancellable receive). Once all are blocked (their
// count is n, plus a 20 ms margin, as in park_mem), it calls cancel() and
// waits on a WaitGroup. The result is the time from cancel() to the end of
// wg.Wait(), in ms; every select must have been ended by ctx.Done()
// (checked). A first round is a warm-up and is not reported.
//
// Flags: --n=N goroutines (100k); --workers is accepted and ignored (use
// GOMAXPROCS).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// waitBlocked waits until want goroutines have counted themselves in
// ready (the last thing each does before its select), plus a margin.
func waitBlocked(ready *int64, want int64) {
	for atomic.LoadInt64(ready) < want {
		time.Sleep(time.Millisecond)
	}
	// The last ones may still be between the count and the select.
	time.Sleep(20 * time.Millisecond)
}

func measure(n int64) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	never := make(chan struct{})
	var ready, wrong int64
	var wg sync.WaitGroup
	for i := int64(0); i < n; i++ {
		wg.Add(1)
		go func() {
			atomic.AddInt64(&ready, 1)
			select {
			case <-never:
				atomic.AddInt64(&wrong, 1)
			case <-ctx.Done():
			}
			wg.Done()
		}()
	}
	waitBlocked(&ready, n)
	t0 := time.Now()
	cancel()
	wg.Wait()
	elapsed := time.Since(t0)
	if wrong != 0 {
		fmt.Fprintf(os.Stderr, "ctx_cancel: %d selects were not ended by ctx.Done()\n", wrong)
		os.Exit(1)
	}
	return float64(elapsed.Nanoseconds()) / 1e6
}

func main() {
	n := flag.Int64("n", 100000, "goroutines")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "ctx_cancel: need --n>=1")
		os.Exit(2)
	}
	warm := measure(*n)
	ms := measure(*n)
	fmt.Fprintf(os.Stderr, "ctx_cancel: %d goroutines: warm-up %.1f ms, measured %.1f ms (%.0f ns/goroutine)\n",
		*n, warm, ms, ms*1e6/float64(*n))
	fmt.Printf("RESULT name=ctx_cancel impl=go workers=%d value=%.1f unit=ms\n", runtime.GOMAXPROCS(0), ms)
}
