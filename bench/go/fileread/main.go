// Command fileread is the Go twin of bench/fileread_bench.c: a --mib MiB
// file (in $TMPDIR or /tmp, removed at once) is written, read once so that
// it sits in the page cache, then --fibers goroutines read 4 KiB blocks at
// random block-aligned offsets with (*os.File).ReadAt, --n reads in all,
// each checking the block number written at the start of its block.
// Results: reads per second (fileread) and reads per CPU-second of the
// process (fileread_cpu).
//
// Flags: --n=N reads (200k), --fibers=F goroutines (64), --mib=M (64);
// --workers is accepted and ignored (use GOMAXPROCS).
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

const (
	block = 4096
	chunk = 1 << 20 // setup writes and reads 1 MiB at a time
)

// next is xorshift64*: the same sequence as the C benchmark's.
func next(s *uint64) uint64 {
	*s ^= *s >> 12
	*s ^= *s << 25
	*s ^= *s >> 27
	return *s * 0x2545f4914f6cdd1d
}

func die(what string, err error) {
	fmt.Fprintf(os.Stderr, "fileread: %s: %v\n", what, err)
	os.Exit(1)
}

// setup writes the file (each block starts with its number) and reads it once.
func setup(f *os.File, blocks int64) {
	buf := make([]byte, chunk)
	for off := int64(0); off < blocks*block; off += chunk {
		for b := int64(0); b < chunk/block; b++ {
			id := off/block + b
			for i := b * block; i < (b+1)*block; i++ {
				buf[i] = byte(id)
			}
			binary.LittleEndian.PutUint64(buf[b*block:], uint64(id))
		}
		if _, err := f.Write(buf); err != nil {
			die("write", err)
		}
	}
	for off := int64(0); off < blocks*block; off += chunk {
		if _, err := f.ReadAt(buf, off); err != nil {
			die("warm-up read", err)
		}
	}
}

func measure(f *os.File, blocks, n, fibers int64) {
	var wg sync.WaitGroup
	for i := int64(0); i < fibers; i++ {
		reads := n / fibers
		if i < n%fibers {
			reads++
		}
		wg.Add(1)
		go func(reads int64, seed uint64) {
			defer wg.Done()
			buf := make([]byte, block)
			for j := int64(0); j < reads; j++ {
				b := int64(next(&seed) % uint64(blocks))
				if _, err := f.ReadAt(buf, b*block); err != nil {
					die("pread", err)
				}
				if int64(binary.LittleEndian.Uint64(buf)) != b {
					die("pread", fmt.Errorf("wrong block"))
				}
			}
		}(reads, uint64(i)+1)
	}
	wg.Wait()
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func main() {
	n := flag.Int64("n", 200000, "reads in all")
	fibers := flag.Int64("fibers", 64, "goroutines reading")
	mib := flag.Int64("mib", 64, "file size in MiB")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	flag.Parse()
	if *n < 1 || *fibers < 1 || *mib < 1 {
		fmt.Fprintln(os.Stderr, "fileread: need --n, --fibers and --mib >= 1")
		os.Exit(2)
	}
	f, err := os.CreateTemp("", "fileread_bench.")
	if err != nil {
		die("create", err)
	}
	os.Remove(f.Name())
	blocks := *mib * (chunk / block)
	setup(f, blocks)
	measure(f, blocks, *n/10+1, *fibers) // warm-up
	c0, t0 := cpuSeconds(), time.Now()
	measure(f, blocks, *n, *fibers)
	secs, cpu := time.Since(t0).Seconds(), cpuSeconds()-c0
	w := runtime.GOMAXPROCS(0)
	fmt.Printf("RESULT name=fileread impl=go workers=%d value=%.1f unit=reads/s\n", w, float64(*n)/secs)
	perCPU := 0.0
	if cpu > 0 {
		perCPU = float64(*n) / cpu
	}
	fmt.Printf("RESULT name=fileread_cpu impl=go workers=%d value=%.1f unit=reads/cpu-s\n", w, perCPU)
	fmt.Fprintf(os.Stderr, "fileread: %d reads of %d B by %d goroutines in %.3f s (%.0f MB/s), %.3f CPU-s\n",
		*n, block, *fibers, secs, float64(*n)*block/secs/1e6, cpu)
	f.Close()
}
