package main

// The -query mode: a client of Pyroscope's query API (querier.v1.QuerierService, through
// github.com/grafana/pyroscope/api's Connect client, as Grafana's Pyroscope data source and
// profilecli call it). The request is protojson text (-req); the response is printed as
// protojson on one line. Exit status: 0 success, 2 bad usage (unknown method, request that does
// not parse), 3 the server answered with a Connect error (a Connect error body), 4 any other
// failure (connection refused, an error response that is not a Connect error, ...).

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// queryMethod is one unary method of QuerierService: a new empty request, and the call.
type queryMethod struct {
	newReq func() proto.Message
	call   func(context.Context, proto.Message) (proto.Message, error)
}

// unary adapts a generated client method to queryMethod.
func unary[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}](f func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) queryMethod {
	return queryMethod{
		newReq: func() proto.Message { return PReq(new(Req)) },
		call: func(ctx context.Context, m proto.Message) (proto.Message, error) {
			resp, err := f(ctx, connect.NewRequest((*Req)(m.(PReq))))
			if err != nil {
				return nil, err
			}
			return PResp(resp.Msg), nil
		},
	}
}

func queryMethods(c querierv1connect.QuerierServiceClient) map[string]queryMethod {
	return map[string]queryMethod{
		"ProfileTypes":           unary(c.ProfileTypes),
		"LabelNames":             unary(c.LabelNames),
		"LabelValues":            unary(c.LabelValues),
		"Series":                 unary(c.Series),
		"SelectMergeStacktraces": unary(c.SelectMergeStacktraces),
		"SelectMergeProfile":     unary(c.SelectMergeProfile),
		"SelectSeries":           unary(c.SelectSeries),
		"Diff":                   unary(c.Diff),
	}
}

// runQuery calls QuerierService/<method> and returns the exit status.
func runQuery(method, server, reqJSON, out, user, password string, asJSON bool) int {
	var opts []connect.ClientOption
	if asJSON {
		opts = append(opts, connect.WithProtoJSON())
	}
	client := querierv1connect.NewQuerierServiceClient(&http.Client{Transport: basicAuth{user, password}, Timeout: 60 * time.Second}, server, opts...)
	methods := queryMethods(client)
	m, ok := methods[method]
	if !ok {
		names := make([]string, 0, len(methods))
		for n := range methods {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "push-client: unknown -query method %q (one of %s)\n", method, strings.Join(names, ", "))
		return 2
	}
	if server == "" {
		fmt.Fprintln(os.Stderr, "push-client: -query needs -server URL")
		return 2
	}
	if out != "" && method != "SelectMergeProfile" {
		fmt.Fprintln(os.Stderr, "push-client: -out is only for -query SelectMergeProfile")
		return 2
	}
	req := m.newReq()
	if err := protojson.Unmarshal([]byte(reqJSON), req); err != nil {
		fmt.Fprintf(os.Stderr, "push-client: -req is not a %s in protojson: %v\n", req.ProtoReflect().Descriptor().FullName(), err)
		return 2
	}
	resp, err := m.call(context.Background(), req)
	if err != nil {
		// the Connect client turns every failure into a *connect.Error; only those the server
		// sent (a Connect error body) count as such, the ones it synthesized (connection
		// refused, a non-Connect error response, an undecodable answer) are other errors
		var ce *connect.Error
		if errors.As(err, &ce) && connect.IsWireError(ce) {
			fmt.Fprintf(os.Stderr, "connect error: %s: %s\n", connect.CodeOf(err).String(), ce.Message())
			return 3
		}
		fmt.Fprintln(os.Stderr, "push-client:", err)
		return 4
	}
	text, err := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(resp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "push-client:", err)
		return 4
	}
	// protojson deliberately varies its whitespace from build to build; compact it so the
	// output is one stable line
	var line bytes.Buffer
	if err := json.Compact(&line, text); err != nil {
		fmt.Fprintln(os.Stderr, "push-client:", err)
		return 4
	}
	line.WriteByte('\n')
	if _, err := os.Stdout.Write(line.Bytes()); err != nil {
		fmt.Fprintln(os.Stderr, "push-client:", err)
		return 4
	}
	if p, ok := resp.(*googlev1.Profile); ok && out != "" {
		if err := writeProfile(out, p); err != nil {
			fmt.Fprintln(os.Stderr, "push-client:", err)
			return 4
		}
	}
	return 0
}

// writeProfile writes p gzip-compressed, as pprof reads it.
func writeProfile(path string, p *googlev1.Profile) error {
	raw, err := proto.Marshal(p)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
