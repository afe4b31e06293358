// Package bench holds in-process benchmarks that put the gateway next to a
// bare coder/websocket floor where an exact, GC-settled figure is worth
// having (the load generator in cmd/loadgen measures the real processes).
//
// BenchmarkIdleConnMemory reports heap bytes and goroutines per idle
// authenticated connection for the gateway and for a bare holder; set
// BENCH_HEAPPROFILE=<path> to also write the gateway's heap profile with the
// connections open (inspect it with go tool pprof -top -inuse_space).
package bench
