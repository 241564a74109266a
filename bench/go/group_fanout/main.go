// Command group_fanout is the Go twin of bench/group_fanout_bench.c: the
// main goroutine makes an errgroup (WithContext of the background context,
// SetLimit(--limit) when given) and starts n functions with g.Go; function
// i stores a splitmix64 of i in slot i of a slice and returns nil. Then it
// calls g.Wait(). The result is the time from WithContext to the end of
// Wait, in ms (group_fanout_cold for the first fan-out, group_fanout for
// the second); the slots are checked against a serial computation.
//
// golang.org/x/sync is not in the standard library and the build is
// offline, so errGroup below is a minimal errgroup with the same mechanics
// as golang.org/x/sync/errgroup (WithContext, SetLimit, Go, Wait): a
// sync.WaitGroup, a sync.Once for the first error, context.WithCancel, and
// a buffered channel as the limit.
//
// Flags: --n=N functions (100k) --limit=L (0: none); --workers is accepted
// and ignored (use GOMAXPROCS).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// ---- a minimal errgroup -----------------------------------------------------

type errGroup struct {
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	slots   chan struct{} // nil: no limit
	errOnce sync.Once
	err     error
}

// newErrGroup is errgroup.WithContext (plus SetLimit when limit > 0).
func newErrGroup(parent context.Context, limit int) (*errGroup, context.Context) {
	ctx, cancel := context.WithCancel(parent)
	g := &errGroup{cancel: cancel}
	if limit > 0 {
		g.slots = make(chan struct{}, limit)
	}
	return g, ctx
}

// Go runs f in a new goroutine, first waiting for a slot when limited; the
// first error is kept and cancels the context.
func (g *errGroup) Go(f func() error) {
	if g.slots != nil {
		g.slots <- struct{}{}
	}
	g.wg.Add(1)
	go func() {
		defer func() {
			if g.slots != nil {
				<-g.slots
			}
			g.wg.Done()
		}()
		if err := f(); err != nil {
			g.errOnce.Do(func() {
				g.err = err
				g.cancel()
			})
		}
	}()
}

// Wait waits for every function, cancels the context, returns the first error.
func (g *errGroup) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// ---- the benchmark ---------------------------------------------------------

func mix(x uint64) uint64 { // splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func measure(slots []uint64, limit int) float64 {
	for i := range slots {
		slots[i] = 0
	}
	t0 := time.Now()
	g, _ := newErrGroup(context.Background(), limit)
	for i := range slots {
		slot := &slots[i]
		x := uint64(i)
		g.Go(func() error {
			*slot = mix(x)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "group_fanout:", err)
		os.Exit(1)
	}
	elapsed := time.Since(t0)
	for i, v := range slots {
		if v != mix(uint64(i)) {
			fmt.Fprintf(os.Stderr, "group_fanout: slot %d is wrong\n", i)
			os.Exit(1)
		}
	}
	return float64(elapsed.Nanoseconds()) / 1e6
}

func main() {
	n := flag.Int64("n", 100000, "functions")
	limit := flag.Int("limit", 0, "most functions running at once (0: no limit)")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 || *limit < 0 {
		fmt.Fprintln(os.Stderr, "group_fanout: need --n>=1 and --limit>=0")
		os.Exit(2)
	}
	slots := make([]uint64, *n)
	procs := runtime.GOMAXPROCS(0)
	fmt.Printf("RESULT name=group_fanout_cold impl=go workers=%d value=%.1f unit=ms\n", procs, measure(slots, *limit))
	fmt.Printf("RESULT name=group_fanout impl=go workers=%d value=%.1f unit=ms\n", procs, measure(slots, *limit))
}
