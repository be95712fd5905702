// push-client: a Go program that profiles itself with the pyroscope-go SDK (Apache-2.0) and
// pushes what it records to a collector, as a service instrumented with the SDK would. The
// collector suite's push part runs it against bin/collector (issue 16 §2).
//
//	push-client -server URL [-app NAME] [-run 4s] [-upload-rate 1s] [-user U -password P]
//
// It burns CPU in burnCPU, allocates in allocate, contends a mutex in contend and blocks on a
// channel in block, so every pushed type has samples, then flushes (every profile uploaded and
// answered) and stops. Exit status 0 unless the SDK failed to start.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/grafana/pyroscope-go"
)

var sink [][]byte

//go:noinline
func burnCPU(n int) uint64 {
	var h uint64 = 1469598103934665603
	for i := 0; i < n; i++ {
		h = (h ^ uint64(i)) * 1099511628211
	}
	return h
}

//go:noinline
func allocate() {
	for i := 0; i < 64; i++ {
		sink = append(sink, make([]byte, 4096))
	}
	if len(sink) > 4096 {
		sink = sink[:0]
	}
}

//go:noinline
func contend(mu *sync.Mutex) {
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				mu.Lock()
				burnCPU(2000)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

//go:noinline
func block() {
	ch := make(chan int)
	go func() { time.Sleep(time.Millisecond); ch <- 1 }()
	<-ch
}

func main() {
	server := flag.String("server", "", "the collector's URL")
	app := flag.String("app", "push-client", "the application name")
	run := flag.Duration("run", 4*time.Second, "how long to work")
	rate := flag.Duration("upload-rate", time.Second, "the SDK's upload period")
	user := flag.String("user", "", "Basic auth user")
	password := flag.String("password", "", "Basic auth password")
	flag.Parse()
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName:   *app,
		ServerAddress:     *server,
		Tags:              map[string]string{"env": "test", "region": "eu-1"},
		UploadRate:        *rate,
		BasicAuthUser:     *user,
		BasicAuthPassword: *password,
		ProfileTypes: []pyroscope.ProfileType{
			pyroscope.ProfileCPU, pyroscope.ProfileInuseObjects, pyroscope.ProfileAllocObjects,
			pyroscope.ProfileInuseSpace, pyroscope.ProfileAllocSpace, pyroscope.ProfileGoroutines,
			pyroscope.ProfileMutexCount, pyroscope.ProfileMutexDuration,
			pyroscope.ProfileBlockCount, pyroscope.ProfileBlockDuration,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "push-client:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	end := time.Now().Add(*run)
	for time.Now().Before(end) {
		burnCPU(2_000_000)
		allocate()
		contend(&mu)
		block()
	}
	// Flush uploads the snapshot types and waits for every upload; Stop alone would not
	p.Flush(true)
	p.Stop()
}
