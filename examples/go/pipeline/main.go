// The Go twin of examples/pipeline.c: a generator, a pool of worker
// goroutines and a collector that selects over results and done with an
// idle timeout; a WaitGroup closes results when every worker finished.
// Prints the same "metric value" lines, the checksum included. Workers
// follow GOMAXPROCS (scripts/showcase sets it to Spindle's worker count).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

const (
	rounds = 48               // CPU work per job
	queue  = 128              // capacity of both channels
	idle   = time.Second      // collector: max wait for one result
	budget = 60 * time.Second // watchdog: max time for the whole run
)

type result struct{ id, hash uint64 }

// work is murmur3's 64-bit finaliser, rounds times.
func work(x uint64) uint64 {
	for i := 0; i < rounds; i++ {
		x += 0x9e3779b97f4a7c15
		x ^= x >> 33
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
		x *= 0xc4ceb9fe1a85ec53
		x ^= x >> 33
	}
	return x
}

func main() {
	njobs := flag.Int64("jobs", 1000000, "jobs")
	pool := flag.Int("pool", 8, "worker goroutines")
	flag.Parse()
	if *njobs < 0 || *pool < 1 {
		fmt.Fprintln(os.Stderr, "pipeline: need --jobs>=0 and --pool>=1")
		os.Exit(2)
	}
	fmt.Printf("workers %d\n", runtime.GOMAXPROCS(0))

	jobs := make(chan uint64, queue)
	results := make(chan result, queue)
	done, stop := make(chan struct{}), make(chan struct{})
	t0 := time.Now()
	go func() { // watchdog
		select {
		case <-stop:
		case <-time.After(budget):
			close(done)
		}
	}()
	go func() { // generator
		for i := uint64(0); i < uint64(*njobs); i++ {
			jobs <- i
		}
		close(jobs)
	}()
	var wg sync.WaitGroup
	for i := 0; i < *pool; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				results <- result{id, work(id)}
			}
		}()
	}
	go func() { // closer
		wg.Wait()
		close(results)
	}()

	var sum uint64
	var items int64
	status := "ok"
	timer := time.NewTimer(idle)
collect:
	for {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(idle)
		select {
		case r, ok := <-results:
			if !ok {
				break collect // every worker finished
			}
			sum += r.hash
			items++
		case <-done:
			status = "cancelled: over the time budget"
			break collect
		case <-timer.C:
			status = "timeout: no result for 1 s"
			break collect
		}
	}
	el := time.Since(t0)
	close(stop)
	fmt.Printf("pipeline_pool %d\n", *pool)
	fmt.Printf("pipeline_items %d\n", items)
	fmt.Printf("pipeline_ms %.1f\n", float64(el.Nanoseconds())/1e6)
	fmt.Printf("items_per_sec %.0f\n", float64(items)/el.Seconds())
	fmt.Printf("pipeline_checksum 0x%016x\n", sum)
	fmt.Printf("pipeline_status %s\n", status)
	if status != "ok" || items != *njobs {
		os.Exit(1)
	}
}
