// Command chan_pingpong is the Go twin of bench/chan_pingpong_bench.c: the
// main goroutine sends i on an unbuffered channel ping and receives it back
// on an unbuffered channel pong from an echo goroutine, n times; the result
// is wall time / n, in ns per round trip.
//
// Flags: --n=N round trips (500k); --workers is accepted and ignored (use
// GOMAXPROCS).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func measure(n int64) float64 {
	ping, pong := make(chan int64), make(chan int64)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v
		}
		close(done)
	}()
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		ping <- i
		if v := <-pong; v != i {
			fmt.Fprintf(os.Stderr, "chan_pingpong: got %d back, want %d\n", v, i)
			os.Exit(1)
		}
	}
	el := time.Since(t0)
	close(ping)
	<-done
	return float64(el.Nanoseconds()) / float64(n)
}

func main() {
	n := flag.Int64("n", 500000, "round trips")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "chan_pingpong: need --n>=1")
		os.Exit(2)
	}
	measure(*n/10 + 1) // warm-up
	fmt.Printf("RESULT name=chan_pingpong impl=go workers=%d value=%.1f unit=ns/op\n", runtime.GOMAXPROCS(0), measure(*n))
}
