// otlp-client: sends real pprof files to an OTLP/HTTP profiles endpoint, as an OpenTelemetry
// SDK or Collector exporter would, through the OTel pdata library (Apache-2.0) and
// github.com/google/pprof/profile (Apache-2.0). The collector suite's OTLP part runs it
// against bin/collector.
//
//	otlp-client -server URL -in FILE [-in FILE ...] [-json] [-gzip] [-service NAME] [-attr k=v ...]
//	            [-user U -password P] [-original] [-dump FILE] [-path /v1development/profiles]
//	otlp-client -server URL -send-raw FILE -content-type CT [-gzip] [-user U -password P] [-path P]
//
// All -in files go in ONE ExportProfilesServiceRequest (opentelemetry-proto v1.10,
// profiles/v1development), one ResourceProfiles per file (each with the same resource
// attributes: service.name and every -attr), each with one ScopeProfiles named otlp-client that
// holds one Profile per pprof sample type, in the pprof's order. All of them share the
// request's one dictionary (convert.go). -json sends OTLP/JSON instead of protobuf; -gzip
// compresses the body; -original also puts the file's bytes, as read, in original_payload
// (format "pprof") of each Profile; -dump writes the body (before gzip) to FILE too.
//
// -send-raw posts FILE's bytes as they are, with Content-Type CT (malformed-input tests).
//
// Prints "status N", then the response body: an ExportProfilesServiceResponse (protobuf
// Content-Type) as OTLP/JSON, anything else as it is. Exit 0 on status 200, 1 on any other
// status or no response at all, 2 on a usage or file error.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func usage(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "otlp-client: "+format+"\n", a...)
	os.Exit(2)
}

// buildRequest reads every file and converts it (see the package comment for the layout).
func buildRequest(files []string, service string, attrs []string, original bool) (pprofile.Profiles, error) {
	pd := pprofile.NewProfiles()
	t := newDict(pd.Dictionary())
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return pd, err
		}
		// profile.ParseData takes gzip-compressed and plain protobuf alike
		p, err := profile.ParseData(raw)
		if err != nil {
			return pd, fmt.Errorf("%s: %w", f, err)
		}
		rp := pd.ResourceProfiles().AppendEmpty()
		rp.Resource().Attributes().PutStr("service.name", service)
		for _, a := range attrs {
			k, v, _ := strings.Cut(a, "=")
			rp.Resource().Attributes().PutStr(k, v)
		}
		sp := rp.ScopeProfiles().AppendEmpty()
		sp.Scope().SetName("otlp-client")
		if !original {
			raw = nil
		}
		t.addProfiles(sp, p, raw)
	}
	return pd, nil
}

// send posts body and prints what came back; it returns the exit status.
func send(url, ct string, body []byte, gz bool, user, password string) int {
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(body)
		w.Close()
		body = b.Bytes()
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		usage("%v", err)
	}
	req.Header.Set("Content-Type", ct)
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlp-client:", err)
		return 1
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlp-client:", err)
		return 1
	}
	fmt.Printf("status %d\n", resp.StatusCode)
	// OTLP/HTTP answers protobuf requests in protobuf; decode it so tests can read it, and
	// print it raw if it does not decode (a server's bug then shows as it is)
	printed := false
	if rct := resp.Header.Get("Content-Type"); strings.HasPrefix(rct, "application/x-protobuf") || strings.HasPrefix(rct, "application/protobuf") {
		er := pprofileotlp.NewExportResponse()
		if er.UnmarshalProto(rb) == nil {
			if j, err := er.MarshalJSON(); err == nil {
				fmt.Println(string(j))
				printed = true
			}
		}
	}
	if !printed {
		os.Stdout.Write(rb)
	}
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

func main() {
	server := flag.String("server", "", "the collector's URL")
	path := flag.String("path", "/v1development/profiles", "the endpoint's path, appended to -server")
	var in, attrs multi
	flag.Var(&in, "in", "a pprof file (repeatable)")
	flag.Var(&attrs, "attr", "a resource attribute key=value (repeatable)")
	service := flag.String("service", "otlp-client", "the resource's service.name")
	asJSON := flag.Bool("json", false, "OTLP/JSON instead of protobuf")
	gz := flag.Bool("gzip", false, "gzip the request body")
	user := flag.String("user", "", "Basic auth user")
	password := flag.String("password", "", "Basic auth password")
	original := flag.Bool("original", false, "also send each file's bytes as original_payload")
	dump := flag.String("dump", "", "also write the request body (before gzip) to this file")
	sendRaw := flag.String("send-raw", "", "post this file's bytes as they are")
	ct := flag.String("content-type", "", "with -send-raw: the Content-Type")
	flag.Parse()
	if *server == "" || flag.NArg() > 0 {
		usage("-server URL and -in FILE or -send-raw FILE are required, and nothing else")
	}
	url := strings.TrimRight(*server, "/") + *path
	if *sendRaw != "" {
		if *ct == "" || len(in) > 0 {
			usage("-send-raw needs -content-type and no -in")
		}
		body, err := os.ReadFile(*sendRaw)
		if err != nil {
			usage("%v", err)
		}
		os.Exit(send(url, *ct, body, *gz, *user, *password))
	}
	if len(in) == 0 {
		usage("no -in FILE")
	}
	for _, a := range attrs {
		if k, _, ok := strings.Cut(a, "="); !ok || k == "" {
			usage("-attr %q is not key=value", a)
		}
	}
	pd, err := buildRequest(in, *service, attrs, *original)
	if err != nil {
		usage("%v", err)
	}
	req := pprofileotlp.NewExportRequestFromProfiles(pd)
	var body []byte
	contentType := "application/x-protobuf"
	if *asJSON {
		body, err = req.MarshalJSON()
		contentType = "application/json"
	} else {
		body, err = req.MarshalProto()
	}
	if err != nil {
		usage("marshal: %v", err)
	}
	if *dump != "" {
		if err := os.WriteFile(*dump, body, 0o644); err != nil {
			usage("%v", err)
		}
	}
	os.Exit(send(url, contentType, body, *gz, *user, *password))
}
