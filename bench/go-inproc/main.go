// go-inproc measures google/pprof's profile package in-process, the baseline for our codec's
// in-process numbers. It is its own module, pinned by go.sum to the google/pprof revision that
// the machine's Go toolchain vendors for `go tool pprof` (see GOROOT/src/cmd/go.mod), so the
// in-process and whole-process baselines run the same parser; bench/run.py builds it.
//
//	go-inproc parse FILE RUNS     median time of profile.ParseData on the gunzipped bytes
//	go-inproc merge RUNS FILE...  median time of profile.Merge over the parsed files
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/google/pprof/profile"
)

func median(v []float64) float64 {
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func raw(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			panic(err)
		}
		if b, err = io.ReadAll(r); err != nil {
			panic(err)
		}
	}
	return b
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func main() {
	switch os.Args[1] {
	case "parse":
		data := raw(os.Args[2])
		runs, _ := strconv.Atoi(os.Args[3])
		var t []float64
		for i := 0; i < runs; i++ {
			t0 := time.Now()
			if _, err := profile.ParseData(data); err != nil {
				panic(err)
			}
			t = append(t, ms(time.Since(t0)))
		}
		m := median(t)
		fmt.Printf("{\"raw_bytes\": %d, \"parse_ms\": %.3f, \"parse_mb_s\": %.1f}\n", len(data), m, float64(len(data))/1e6/(m/1e3))
	case "merge":
		runs, _ := strconv.Atoi(os.Args[2])
		var ps []*profile.Profile
		for _, f := range os.Args[3:] {
			p, err := profile.ParseData(raw(f))
			if err != nil {
				panic(err)
			}
			ps = append(ps, p)
		}
		var t []float64
		for i := 0; i < runs; i++ {
			t0 := time.Now()
			if _, err := profile.Merge(ps); err != nil {
				panic(err)
			}
			t = append(t, ms(time.Since(t0)))
		}
		fmt.Printf("{\"profiles\": %d, \"merge_ms\": %.3f}\n", len(ps), median(t))
	}
}
