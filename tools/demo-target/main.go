// demo-target is a small Go service that gives every pprof profile type something to show:
// CPU work (hashing, sorting), allocation churn, mutex contention and channel blocking, with
// block and mutex profiling switched on. It serves net/http/pprof on -addr. The tests scrape
// it as a real peer, and `make local` runs it as the demo.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"log"
	"math/rand"
	"net/http"
	_ "net/http/pprof"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"
)

var (
	mu     sync.Mutex
	shared []int
	sink   [][]byte
)

// hashLoop burns CPU in crypto code.
func hashLoop() {
	buf := make([]byte, 4096)
	for {
		for i := 0; i < 200; i++ {
			sum := sha256.Sum256(buf)
			buf[0] = sum[0]
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sortWork burns CPU in sort and allocates the slices it sorts.
func sortWork() {
	for {
		xs := make([]int, 20000)
		for i := range xs {
			xs[i] = rand.Int()
		}
		sort.Ints(xs)
		time.Sleep(5 * time.Millisecond)
	}
}

// allocator churns the heap and keeps a bounded working set alive for inuse_* profiles.
func allocator() {
	for i := 0; ; i++ {
		var b strings.Builder
		for j := 0; j < 100; j++ {
			b.WriteString("allocation churn ")
		}
		mu.Lock()
		sink = append(sink, []byte(b.String()))
		if len(sink) > 2000 {
			sink = sink[1000:]
		}
		mu.Unlock()
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// contender fights over one mutex so the mutex profile has contention.
func contender() {
	for {
		mu.Lock()
		shared = append(shared, rand.Intn(100))
		if len(shared) > 1000 {
			shared = shared[:0]
		}
		time.Sleep(100 * time.Microsecond)
		mu.Unlock()
	}
}

// blocker waits on an unbuffered channel so the block profile has channel waits.
func blocker(ch chan int) {
	for v := range ch {
		_ = v
		time.Sleep(time.Millisecond)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6060", "listen address for /debug/pprof")
	flag.Parse()
	runtime.SetBlockProfileRate(10000)
	runtime.SetMutexProfileFraction(5)
	// pprof labels on two workers, so CPU and goroutine profiles carry labelled samples (the
	// conformance suite compares labels through merges)
	go pprof.Do(context.Background(), pprof.Labels("worker", "hash"), func(context.Context) { hashLoop() })
	go pprof.Do(context.Background(), pprof.Labels("worker", "sort", "team", "core"), func(context.Context) { sortWork() })
	go allocator()
	for i := 0; i < 4; i++ {
		go contender()
	}
	ch := make(chan int)
	go blocker(ch)
	go func() {
		for i := 0; ; i++ {
			ch <- i
		}
	}()
	log.Printf("demo-target: serving /debug/pprof on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
