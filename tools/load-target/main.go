// load-target simulates many Go services for the collector benchmark: it listens on -n
// loopback ports from -base-port and answers /debug/pprof/{profile,heap,goroutine,allocs} with
// real profiles read from -profiles (a folder of *.pb.gz as in shared/testdata/pprof/prometheus).
// A CPU profile request waits its `seconds` first, as Go's handler does.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.Int("base-port", 20000, "first port")
	n := flag.Int("n", 2000, "number of simulated targets (ports)")
	dir := flag.String("profiles", "", "folder with cpu-*.pb.gz, heap.pb.gz, goroutine.pb.gz, allocs.pb.gz")
	flag.Parse()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(*dir, name))
		if err != nil {
			log.Fatal(err)
		}
		return b
	}
	var cpus [][]byte
	for i := 1; i <= 6; i++ {
		cpus = append(cpus, read(fmt.Sprintf("cpu-%d.pb.gz", i)))
	}
	snap := map[string][]byte{"heap": read("heap.pb.gz"), "goroutine": read("goroutine.pb.gz"), "allocs": read("allocs.pb.gz")}
	var served int64
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", func(w http.ResponseWriter, r *http.Request) {
		sec, _ := strconv.Atoi(r.URL.Query().Get("seconds"))
		if sec <= 0 {
			sec = 30
		}
		select {
		case <-time.After(time.Duration(sec) * time.Second):
		case <-r.Context().Done():
			return
		}
		w.Write(cpus[atomic.AddInt64(&served, 1)%int64(len(cpus))])
	})
	for name, body := range snap {
		body := body
		mux.HandleFunc("/debug/pprof/"+name, func(w http.ResponseWriter, r *http.Request) {
			atomic.AddInt64(&served, 1)
			w.Write(body)
		})
	}
	for i := 0; i < *n; i++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *base+i))
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(ln, mux)
	}
	log.Printf("load-target: %d targets on 127.0.0.1:%d..%d", *n, *base, *base+*n-1)
	for {
		time.Sleep(10 * time.Second)
		log.Printf("served %d", atomic.LoadInt64(&served))
	}
}
