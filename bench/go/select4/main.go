// Command select4 is the Go twin of bench/select4_bench.c: 4 producer
// goroutines each send 0..n/4-1 on their own unbuffered channel; the main
// goroutine runs a 4-case select n times (n rounded down to a multiple of
// 4), checking that each channel's values arrive in order. The result is
// the time of the selects / n, in ns per select.
//
// Flags: --n=N selects (1M); --workers is accepted and ignored (use
// GOMAXPROCS).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

const chans = 4

func measure(per int64) float64 {
	var ch [chans]chan int64
	for i := range ch {
		ch[i] = make(chan int64)
		go func(c chan<- int64) {
			for j := int64(0); j < per; j++ {
				c <- j
			}
		}(ch[i])
	}
	var next [chans]int64
	t0 := time.Now()
	for k := int64(0); k < chans*per; k++ {
		var i int
		var v int64
		select {
		case v = <-ch[0]:
			i = 0
		case v = <-ch[1]:
			i = 1
		case v = <-ch[2]:
			i = 2
		case v = <-ch[3]:
			i = 3
		}
		if v != next[i] {
			fmt.Fprintf(os.Stderr, "select4: case %d: value %d, want %d\n", i, v, next[i])
			os.Exit(1)
		}
		next[i]++
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(chans*per)
}

func main() {
	n := flag.Int64("n", 1000000, "selects")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < chans {
		fmt.Fprintf(os.Stderr, "select4: need --n>=%d\n", chans)
		os.Exit(2)
	}
	measure(*n/chans/10 + 1) // warm-up
	fmt.Printf("RESULT name=select4 impl=go workers=%d value=%.1f unit=ns/op\n", runtime.GOMAXPROCS(0), measure(*n/chans))
}
