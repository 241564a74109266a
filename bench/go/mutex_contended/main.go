// Command mutex_contended is the Go twin of bench/mutex_contended_bench.c:
// 8 goroutines each lock one sync.Mutex, increment a shared counter and
// unlock, n times. The result is the time from starting them to all
// finishing, divided by the 8n lock+unlock pairs: ns per op. The counter
// must end at 8n.
//
// Flags: --n=N ops per goroutine (250k); --workers is accepted and ignored
// (use GOMAXPROCS).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

const goroutines = 8

var (
	mu      sync.Mutex
	counter int64 // protected by mu
)

func measure(n int64) float64 {
	counter = 0
	var wg sync.WaitGroup
	wg.Add(goroutines)
	t0 := time.Now()
	for g := 0; g < goroutines; g++ {
		go func() {
			defer wg.Done()
			for i := int64(0); i < n; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if counter != goroutines*n {
		fmt.Fprintf(os.Stderr, "mutex_contended: counter %d, want %d\n", counter, goroutines*n)
		os.Exit(1)
	}
	return float64(el.Nanoseconds()) / float64(goroutines*n)
}

func main() {
	n := flag.Int64("n", 250000, "lock+unlock pairs per goroutine")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "mutex_contended: need --n>=1")
		os.Exit(2)
	}
	measure(*n/10 + 1) // warm-up
	fmt.Printf("RESULT name=mutex_contended impl=go workers=%d value=%.1f unit=ns/op\n", runtime.GOMAXPROCS(0), measure(*n))
}
