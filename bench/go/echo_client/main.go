// Command echo_client is the Go twin of examples/loadgen.c in echo mode: a
// closed-loop client with --conns connections, each driven by a goroutine
// that sends --size bytes (a pattern that changes per request), reads the
// echo back and checks it, until --requests requests in all or --duration
// seconds, whichever comes first. Latencies are recorded per goroutine,
// merged and sorted at the end. Loopback addresses only.
//
// scripts/bench loads both echo servers (examples/echo_server.c and
// examples/go/echo_server) with this client, so that they face the same
// load. Prints RESULT lines: <name> in requests per second, <name>_p50 and
// <name>_p99 in microseconds; --impl and --workers label them (scripts/bench
// passes the server's; the defaults are go and GOMAXPROCS). A summary goes
// to stderr. Exit status 1 if a request failed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const grace = 5 * time.Second // a reply may take this long after the end

type client struct {
	conn net.Conn
	lat  []int64 // latencies in ns
	err  error
}

// echoOnce sends size bytes that depend on seq and reads them back.
func echoOnce(c *client, seq int64, out, in []byte) error {
	for i := range out {
		out[i] = byte(uint64(seq) + uint64(i)*31)
	}
	if _, err := c.conn.Write(out); err != nil {
		return err
	}
	if _, err := io.ReadFull(c.conn, in); err != nil {
		return err
	}
	if !bytes.Equal(in, out) {
		return fmt.Errorf("echo differs from what was sent")
	}
	return nil
}

// isLoopback reports whether addr ("host:port") names a loopback host.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return host == "localhost"
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "server address (loopback only)")
	conns := flag.Int("conns", 50, "connections, one goroutine each")
	size := flag.Int("size", 64, "bytes per request")
	requests := flag.Int64("requests", 0, "requests in all (0: no limit)")
	duration := flag.Int64("duration", 10, "seconds (0: no limit)")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "label of the RESULT lines")
	name := flag.String("name", "echo", "name of the RESULT lines")
	impl := flag.String("impl", "go", "label of the RESULT lines")
	flag.Parse()
	if !isLoopback(*addr) {
		fmt.Fprintf(os.Stderr, "echo_client: %s is not a loopback address (127.0.0.0/8, ::1, localhost)\n", *addr)
		os.Exit(2)
	}
	if *conns < 1 || *size < 1 || *requests < 0 || *duration < 0 || (*requests == 0 && *duration == 0) {
		fmt.Fprintln(os.Stderr, "echo_client: need --conns>=1, --size>=1 and a bound (--requests or --duration)")
		os.Exit(2)
	}

	cs := make([]client, *conns)
	for i := range cs {
		conn, err := net.DialTimeout("tcp", *addr, grace)
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo_client: dial %s: %v\n", *addr, err)
			os.Exit(1)
		}
		cs[i].conn = conn
	}
	t0 := time.Now()
	stop, ioDeadline := time.Time{}, time.Time{}
	if *duration > 0 {
		stop = t0.Add(time.Duration(*duration) * time.Second)
		ioDeadline = stop.Add(grace)
	}
	var issued int64
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			c.conn.SetDeadline(ioDeadline)
			out, in := make([]byte, *size), make([]byte, *size)
			for {
				seq := atomic.AddInt64(&issued, 1) - 1
				start := time.Now()
				if (*requests > 0 && seq >= *requests) || (!stop.IsZero() && !start.Before(stop)) {
					return
				}
				if c.err = echoOnce(c, seq, out, in); c.err != nil {
					return
				}
				c.lat = append(c.lat, int64(time.Since(start)))
			}
		}(&cs[i])
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()

	var all []int64
	failed := false
	for i := range cs {
		if cs[i].err != nil {
			fmt.Fprintf(os.Stderr, "echo_client: connection %d: %v\n", i, cs[i].err)
			failed = true
		}
		all = append(all, cs[i].lat...)
		cs[i].conn.Close()
	}
	if failed {
		os.Exit(1)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	n := len(all)
	rps, p50, p99 := float64(n)/secs, 0.0, 0.0
	if n > 0 {
		p50 = float64(all[(n-1)*50/100]) / 1e3
		p99 = float64(all[(n-1)*99/100]) / 1e3
	}
	for _, r := range []struct {
		suffix, unit string
		v            float64
	}{{"", "req/s", rps}, {"_p50", "us", p50}, {"_p99", "us", p99}} {
		fmt.Printf("RESULT name=%s%s impl=%s workers=%d value=%.1f unit=%s\n", *name, r.suffix, *impl, *workers, r.v, r.unit)
	}
	fmt.Fprintf(os.Stderr, "echo_client: %d conns, %d requests in %.2f s: %.0f req/s, p50 %.1f us, p99 %.1f us\n",
		*conns, n, secs, rps, p50, p99)
}
