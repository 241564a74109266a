// The Go twin of examples/echo_server.c: a TCP echo server with an accept
// loop and a goroutine per connection, which reads into a buffer and writes
// it back until end of file or an error.
//
// Prints "listening on PORT" and serves until SIGINT or SIGTERM, or for
// --duration seconds; then it stops accepting, closes the open connections
// and exits. Workers follow GOMAXPROCS.
//
// Usage: echo_server [--addr=127.0.0.1:7000] [--workers=N] [--duration=S]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

var (
	mu    sync.Mutex // guards conns
	conns = map[net.Conn]struct{}{}
	wg    sync.WaitGroup
)

func serve(c net.Conn) {
	defer wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if err != io.EOF && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				fmt.Fprintf(os.Stderr, "echo_server: connection: %v\n", err)
			}
			break
		}
	}
	mu.Lock()
	delete(conns, c)
	mu.Unlock()
	c.Close()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "listen address")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	duration := flag.Int("duration", 0, "seconds to serve (0: until SIGINT/SIGTERM)")
	flag.Parse()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo_server: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	done := make(chan struct{})
	go func() { // the accept loop; Go sets TCP_NODELAY on accepted conns
		defer close(done)
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			} else if err != nil {
				fmt.Fprintf(os.Stderr, "echo_server: accept: %v; retrying\n", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			mu.Lock()
			conns[c] = struct{}{}
			wg.Add(1)
			mu.Unlock()
			go serve(c)
		}
	}()
	if *duration > 0 {
		select {
		case <-stop:
		case <-time.After(time.Duration(*duration) * time.Second):
		}
	} else {
		<-stop
	}
	ln.Close()
	<-done
	mu.Lock()
	for c := range conns {
		c.Close() // its goroutine's Read fails
	}
	mu.Unlock()
	wg.Wait()
}
