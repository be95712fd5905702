// push-client: a Go program that profiles itself with the pyroscope-go SDK (Apache-2.0) and
// pushes what it records to a collector, as a service instrumented with the SDK would. The
// collector suite's push part runs it against bin/collector (issue 16 §2).
//
//	push-client -server URL [-app NAME] [-run 4s] [-upload-rate 1s] [-user U -password P]
//	push-client -connect -out DIR -server URL [-app NAME] [-json] [-gzip] [-user U -password P]
//	push-client -query METHOD -server URL [-json] [-user U -password P] [-req 'PROTOJSON'] [-out FILE]
//
// It burns CPU in burnCPU, allocates in allocate, contends a mutex in contend and blocks on a
// channel in block, so every pushed type has samples, then flushes (every profile uploaded and
// answered) and stops. Exit status 0 unless the SDK failed to start.
//
// With -connect it is instead a client of Pyroscope's push API (push.v1.PusherService/Push,
// through github.com/grafana/pyroscope/api's Connect client, as Grafana Alloy's pyroscope.write
// sends): it records its own CPU (1 s), heap, goroutine and mutex profiles with runtime/pprof,
// and the heap again marked as a delta profile; writes each to DIR/<sent_as>.pb.gz (the label
// sent_as says which), pushes them in one request (protobuf, or protojson with -json;
// gzip-compressed with -gzip) and exits 0 only if the push succeeded.
//
// With -query it is a client of Pyroscope's query API (querier.v1.QuerierService, query.go):
// METHOD is ProfileTypes, LabelNames, LabelValues, Series, SelectMergeStacktraces,
// SelectMergeProfile, SelectSeries or Diff; -req is its request in protojson (default {}); the
// response goes to stdout as protojson on one line (-out FILE: SelectMergeProfile's profile
// also to FILE, gzipped pprof). Exit 0 success, 2 bad METHOD or -req, 3 a Connect error sent
// by the server ("connect error: CODE: MESSAGE" on stderr), 4 any other failure (connection
// refused, an error response without a Connect error body, ...).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope-go"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// basicAuth adds Basic credentials to every request of the Connect client.
type basicAuth struct{ user, password string }

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.user != "" {
		r.SetBasicAuth(b.user, b.password)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// connectPush records this process's profiles and pushes them through Pyroscope's Connect API.
func connectPush(server, app, out, user, password string, json, gz bool) error {
	var mu sync.Mutex
	var cpu bytes.Buffer
	if err := pprof.StartCPUProfile(&cpu); err != nil {
		return err
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		burnCPU(2_000_000)
		allocate()
		contend(&mu)
	}
	pprof.StopCPUProfile()
	// file, __name__, the runtime/pprof profile (CPU: the one recorded above), whether to mark it
	// as a delta profile (__delta__="false", Pyroscope's convention); runtime/pprof's heap and
	// mutex profiles count since the process started, so they go unmarked, and the heap once
	// more marked, as a client that computed deltas would send it
	profiles := []struct {
		file, name, lookup string
		delta              bool
	}{{"process_cpu", "process_cpu", "", false}, {"memory", "memory", "heap", false}, {"goroutine", "goroutine", "goroutine", false},
		{"mutex", "mutex", "mutex", false}, {"memory-delta", "memory", "heap", true}}
	req := &pushv1.PushRequest{}
	for i, p := range profiles {
		var b bytes.Buffer
		if p.lookup == "" {
			b = cpu
		} else if err := pprof.Lookup(p.lookup).WriteTo(&b, 0); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, p.file+".pb.gz"), b.Bytes(), 0o644); err != nil {
			return err
		}
		labels := []*typesv1.LabelPair{{Name: "__name__", Value: p.name}, {Name: "service_name", Value: app}, {Name: "env", Value: "test"},
			{Name: "sent_as", Value: p.file}}
		if p.delta {
			labels = append(labels, &typesv1.LabelPair{Name: "__delta__", Value: "false"})
		}
		req.Series = append(req.Series, &pushv1.RawProfileSeries{Labels: labels,
			Samples: []*pushv1.RawSample{{RawProfile: b.Bytes(), ID: fmt.Sprintf("sample-%d", i)}}})
	}
	var opts []connect.ClientOption
	if json {
		opts = append(opts, connect.WithProtoJSON())
	}
	if gz {
		opts = append(opts, connect.WithSendGzip())
	}
	client := pushv1connect.NewPusherServiceClient(&http.Client{Transport: basicAuth{user, password}, Timeout: 60 * time.Second}, server, opts...)
	_, err := client.Push(context.Background(), connect.NewRequest(req))
	return err
}

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
	viaConnect := flag.Bool("connect", false, "push through push.v1.PusherService/Push instead of the SDK")
	out := flag.String("out", "", "with -connect: where to write what was pushed; with -query SelectMergeProfile: file for the profile")
	asJSON := flag.Bool("json", false, "with -connect or -query: protojson instead of protobuf")
	gz := flag.Bool("gzip", false, "with -connect: gzip the request")
	query := flag.String("query", "", "call querier.v1.QuerierService/METHOD instead")
	reqJSON := flag.String("req", "{}", "with -query: the request in protojson")
	flag.Parse()
	if *query != "" {
		os.Exit(runQuery(*query, *server, *reqJSON, *out, *user, *password, *asJSON))
	}
	if *viaConnect {
		if err := connectPush(*server, *app, *out, *user, *password, *asJSON, *gz); err != nil {
			fmt.Fprintln(os.Stderr, "push-client:", err)
			os.Exit(1)
		}
		return
	}
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
