// Command skynet is the Go twin of bench/skynet_bench.c: a tree of
// goroutines with fan-out 10 and n leaves; each inner node starts its 10
// children, receives their results from a channel and sends the sum to
// its parent; leaf i sends i. The result is the time from starting the
// root to receiving its sum, in ms; the sum is checked.
//
// Flags: --n=N leaves, a power of 10 (1M); --workers is accepted and
// ignored (use GOMAXPROCS).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

const fanout = 10

func node(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	sub := size / fanout
	results := make(chan int64, fanout)
	for i := int64(0); i < fanout; i++ {
		go node(results, num+i*sub, sub)
	}
	var sum int64
	for i := 0; i < fanout; i++ {
		sum += <-results
	}
	out <- sum
}

func main() {
	n := flag.Int64("n", 1000000, "leaves (a power of 10)")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	p := int64(1)
	for p < *n {
		p *= fanout
	}
	if *n < 1 || p != *n {
		fmt.Fprintln(os.Stderr, "skynet: need --n a power of 10")
		os.Exit(2)
	}
	t0 := time.Now()
	root := make(chan int64, 1)
	go node(root, 0, *n)
	sum := <-root
	ms := float64(time.Since(t0).Nanoseconds()) / 1e6
	if want := *n * (*n - 1) / 2; sum != want {
		fmt.Fprintf(os.Stderr, "skynet: wrong sum %d, want %d\n", sum, want)
		os.Exit(1)
	}
	fmt.Printf("RESULT name=skynet impl=go workers=%d value=%.1f unit=ms\n", runtime.GOMAXPROCS(0), ms)
}
