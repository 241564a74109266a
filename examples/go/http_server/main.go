// The Go twin of examples/http_server.c: net/http answering every request
// with "Hello, World!\n" (keep-alive and pipelining as net/http does them).
//
// Prints "listening on PORT" and serves until SIGINT or SIGTERM, or for
// --duration seconds; then it shuts down (open connections are closed).
// Workers follow GOMAXPROCS.
//
// Usage: http_server [--addr=127.0.0.1:8080] [--workers=N] [--duration=S]
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Int("workers", 0, "ignored: set GOMAXPROCS")
	duration := flag.Int("duration", 0, "seconds to serve (0: until SIGINT/SIGTERM)")
	flag.Parse()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "http_server: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Hello, World!\n"))
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if *duration > 0 {
		select {
		case <-stop:
		case <-time.After(time.Duration(*duration) * time.Second):
		}
	} else {
		<-stop
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx) // idle keep-alive connections are closed at once
	if err := <-served; err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "http_server: %v\n", err)
		os.Exit(1)
	}
}
