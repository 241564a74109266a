// Command chan_buffered is the Go twin of bench/chan_buffered_bench.c: a
// producer goroutine sends 0..n-1 on a channel of capacity 1024 and closes
// it; a consumer goroutine receives until it is closed and checks the count
// and sum. The result is the time from starting both to both finishing,
// divided by n: ns per item.
//
// Flags: --n=N items (2M); --workers is accepted and ignored (use
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

const capacity = 1024

func measure(n int64) float64 {
	ch := make(chan int64, capacity)
	var got, sum int64
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	go func() {
		defer wg.Done()
		for v := range ch {
			got++
			sum += v
		}
	}()
	go func() {
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	wg.Wait()
	el := time.Since(t0)
	if got != n || sum != n*(n-1)/2 {
		fmt.Fprintf(os.Stderr, "chan_buffered: got %d items summing to %d\n", got, sum)
		os.Exit(1)
	}
	return float64(el.Nanoseconds()) / float64(n)
}

func main() {
	n := flag.Int64("n", 2000000, "items")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "chan_buffered: need --n>=1")
		os.Exit(2)
	}
	measure(*n/10 + 1) // warm-up
	fmt.Printf("RESULT name=chan_buffered impl=go workers=%d value=%.1f unit=ns/op\n", runtime.GOMAXPROCS(0), measure(*n))
}
