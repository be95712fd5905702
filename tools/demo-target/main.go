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
	load   = 1.0 // -load: the share of the default CPU work, so a dozen pods fit on 2 cores
)

// pace sleeps after a unit of work that began at start so the worker runs at `load` of its
// default duty: 1 adds nothing, 0.1 sleeps nine times the work's own duration.
func pace(start time.Time) {
	if load < 1 {
		time.Sleep(time.Duration(float64(time.Since(start)) * (1 - load) / load))
	}
}

// tenants: each unit of labelled work runs for one of them in turn, weighted 3:2:1 so
// their totals differ (a filter or group-by that mixed them up would show)
var tenants = []string{"acme", "acme", "acme", "globex", "globex", "initech"}

// asTenant runs one unit of work under the extra label tenant=tenants[i % 6]; the
// goroutine's other labels (worker, handler) stay (pprof.Do adds to the context's set).
func asTenant(ctx context.Context, i int, f func()) {
	pprof.Do(ctx, pprof.Labels("tenant", tenants[i%len(tenants)]), func(context.Context) { f() })
}

// hashLoop burns CPU in crypto code.
func hashLoop(ctx context.Context) {
	buf := make([]byte, 4096)
	for n := 0; ; n++ {
		start := time.Now()
		asTenant(ctx, n, func() {
			for i := 0; i < 200; i++ {
				sum := sha256.Sum256(buf)
				buf[0] = sum[0]
			}
			// the pause under the tenant too, so goroutine profiles see tenants
			pace(start)
			time.Sleep(2 * time.Millisecond)
		})
	}
}

// sortWork burns CPU in sort and allocates the slices it sorts.
func sortWork(ctx context.Context) {
	for n := 0; ; n++ {
		start := time.Now()
		asTenant(ctx, n, func() {
			xs := make([]int, 20000)
			for i := range xs {
				xs[i] = rand.Int()
			}
			sort.Ints(xs)
			pace(start)
			time.Sleep(5 * time.Millisecond)
		})
	}
}

// allocator churns the heap and keeps a bounded working set alive for inuse_* profiles.
func allocator() {
	start := time.Now()
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
			pace(start)
			time.Sleep(time.Millisecond)
			start = time.Now()
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
	flag.Float64Var(&load, "load", 1, "share of the default CPU work, in (0, 1]")
	flag.Parse()
	if load <= 0 || load > 1 {
		log.Fatalf("demo-target: -load %v is not in (0, 1]", load)
	}
	runtime.SetBlockProfileRate(10000)
	runtime.SetMutexProfileFraction(5)
	// pprof labels, so CPU and goroutine profiles carry labelled samples (the conformance suite
	// compares labels through merges and checks tag filters against go tool pprof -tagfocus):
	// worker and team as before; handler names the kind of work, as an HTTP service's
	// middleware would; tenant changes with each unit of work (asTenant). The allocator and
	// the contenders run unlabelled: samples without the keys, on purpose.
	go pprof.Do(context.Background(), pprof.Labels("worker", "hash", "handler", "/hash"), hashLoop)
	go pprof.Do(context.Background(), pprof.Labels("worker", "sort", "team", "core", "handler", "/sort"), sortWork)
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
