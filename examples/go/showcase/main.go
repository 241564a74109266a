// The Go twin of examples/showcase.c: the same three measurements with
// goroutines, printed in the same "metric value" format. Workers follow
// GOMAXPROCS (scripts/showcase sets it to Spindle's worker count).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func skynet(id, size int64, out chan<- int64) {
	if size == 1 {
		out <- id
		return
	}
	ch := make(chan int64, 10)
	step := size / 10
	for i := int64(0); i < 10; i++ {
		go skynet(id+i*step, step, ch)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-ch
	}
	out <- sum
}

func rssBytes() int64 {
	var pages, rss int64
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	defer f.Close()
	fmt.Fscan(f, &pages, &rss)
	return rss * int64(os.Getpagesize())
}

func main() {
	fibers := flag.Int64("fibers", 1000000, "fibers")
	flag.Parse()
	workers := runtime.GOMAXPROCS(0)
	fmt.Printf("workers %d\n", workers)

	leaves := int64(1)
	for leaves*10 <= *fibers {
		leaves *= 10
	}
	t0 := time.Now()
	out := make(chan int64, 1)
	go skynet(0, leaves, out)
	sum := <-out
	el := time.Since(t0)
	if sum != leaves*(leaves-1)/2 {
		fmt.Fprintln(os.Stderr, "skynet sum is wrong")
		os.Exit(1)
	}
	total := leaves
	for l := leaves / 10; l >= 1; l /= 10 {
		total += l
	}
	fmt.Printf("skynet_fibers %d\n", total)
	fmt.Printf("skynet_ms %.1f\n", float64(el.Nanoseconds())/1e6)

	runtime.GC()
	before := rssBytes()
	wake := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var asleep sync.WaitGroup
	asleep.Add(int(*fibers))
	wg.Add(int(*fibers))
	for i := int64(0); i < *fibers; i++ {
		go func() {
			defer wg.Done()
			asleep.Done()
			time.Sleep(time.Until(wake))
		}()
	}
	asleep.Wait()
	time.Sleep(20 * time.Millisecond)
	during := rssBytes()
	fmt.Printf("sleepers %d\n", *fibers)
	fmt.Printf("bytes_per_sleeping_fiber %.0f\n", float64(during-before)/float64(*fibers))
	wg.Wait()

	// two goroutines yielding to each other on one P
	runtime.GOMAXPROCS(1)
	per := 2000000
	t0 = time.Now()
	var yw sync.WaitGroup
	for i := 0; i < 2; i++ {
		yw.Add(1)
		go func() {
			defer yw.Done()
			for k := 0; k < per; k++ {
				runtime.Gosched()
			}
		}()
	}
	yw.Wait()
	el = time.Since(t0)
	runtime.GOMAXPROCS(workers)
	fmt.Printf("switch_ns %.1f\n", float64(el.Nanoseconds())/float64(2*per))
}
