package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/native"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// dial opens one gRPC connection to a Flight (SQL) server.
func dial(addr string) (*flightsql.Client, error) {
	return flightsql.NewClient(addr, nil, nil,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
}

// withHeaders adds gRPC metadata ("name: value") to every call made with
// the returned context.
func withHeaders(ctx context.Context, headers []string) (context.Context, error) {
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf(`--header %q: expected "name: value"`, h)
		}
		ctx = metadata.AppendToOutgoingContext(ctx, strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	return ctx, nil
}

// keyBatch builds the one-column input batch of a request's ids in the
// column's type (string or a 64/32-bit integer).
func keyBatch(mem memory.Allocator, schema *arrow.Schema, ids []string) (arrow.RecordBatch, error) {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, id := range ids {
		switch fb := b.Field(0).(type) {
		case *array.StringBuilder:
			fb.Append(id)
		case *array.Int64Builder:
			v, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return nil, err
			}
			fb.Append(v)
		case *array.Int32Builder:
			v, err := strconv.ParseInt(id, 10, 32)
			if err != nil {
				return nil, err
			}
			fb.Append(int32(v))
		default:
			return nil, fmt.Errorf("key column %s: type %s is not supported (string, int64, int32)", schema.Field(0).Name, schema.Field(0).Type)
		}
	}
	return b.NewRecordBatch(), nil
}

// checkRows turns an answer without one row per id into an error, when
// asked to.
func checkRows(rows int64, ids []string, check bool) (int64, error) {
	if check && rows != int64(len(ids)) {
		return rows, fmt.Errorf("%d rows for %d ids", rows, len(ids))
	}
	return rows, nil
}

// nativeRequest is one native feature query per call (docs/NATIVE.md): a
// DoExchange carrying the command and the input schema in its first
// message and the ids as a one-column batch in the second, reading the
// whole answer back. The first message is encoded once: arrow-go's record
// writer would rebuild the schema's flatbuffer for every request, client
// CPU that any SDK can avoid the same way.
func nativeRequest(cl *flightsql.Client, mem memory.Allocator, q native.Query, key arrow.Field, check bool) (request, error) {
	cmd, err := json.Marshal(native.Command{Query: &q})
	if err != nil {
		return nil, err
	}
	schema := arrow.NewSchema([]arrow.Field{key}, nil)
	p := ipc.GetSchemaPayload(schema, mem)
	hdr := p.Meta()
	first := arrowflight.FlightData{
		FlightDescriptor: &arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: cmd},
		DataHeader:       bytes.Clone(hdr.Bytes()),
	}
	hdr.Release()
	p.Release()
	var body bytes.Buffer
	return func(ctx context.Context, ids []string) (int64, error) {
		in, err := keyBatch(mem, schema, ids)
		if err != nil {
			return 0, err
		}
		p, err := ipc.GetRecordBatchPayload(in, ipc.WithAllocator(mem))
		in.Release()
		if err != nil {
			return 0, err
		}
		defer p.Release()
		meta := p.Meta()
		defer meta.Release()
		body.Reset()
		if err := p.SerializeBody(&body); err != nil {
			return 0, err
		}
		stream, err := cl.Client.DoExchange(ctx)
		if err != nil {
			return 0, err
		}
		// io.EOF from a Send means the server answered early (an error
		// status), which reading the answer reports.
		for _, fd := range []*arrowflight.FlightData{&first, {DataHeader: meta.Bytes(), DataBody: body.Bytes()}} {
			if err := stream.Send(fd); err != nil && !errors.Is(err, io.EOF) {
				return 0, err
			}
		}
		if err := stream.CloseSend(); err != nil {
			return 0, err
		}
		rows, err := readAll(arrowflight.NewRecordReader(stream, ipc.WithAllocator(mem)))
		if err != nil {
			return rows, err
		}
		return checkRows(rows, ids, check)
	}, nil
}

// readAll counts the rows of a stream and releases it.
func readAll(rdr *arrowflight.Reader, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	defer rdr.Release()
	var rows int64
	for rdr.Next() {
		rows += rdr.RecordBatch().NumRows()
	}
	return rows, rdr.Err()
}

// fetch reads every endpoint of a statement's FlightInfo on the same
// connection: fletch and the floor's gateway answer endpoints without a
// location, which means "where you asked".
func fetch(ctx context.Context, cl *flightsql.Client, info *arrowflight.FlightInfo) (int64, error) {
	var rows int64
	for _, ep := range info.Endpoint {
		for _, loc := range ep.Location {
			if loc.Uri != "arrow-flight-reuse-connection://?" {
				return rows, fmt.Errorf("endpoint at %s: only endpoints on the same connection are supported", loc.Uri)
			}
		}
		n, err := readAll(cl.DoGet(ctx, ep.Ticket))
		rows += n
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// statementRequest runs the SQL text as a Flight SQL statement
// (GetFlightInfo + DoGet), `{id}` replaced by the request's id and `{ids}`
// by its ids joined by commas.
func statementRequest(cl *flightsql.Client, sql string, check bool) request {
	return func(ctx context.Context, ids []string) (int64, error) {
		q := strings.ReplaceAll(strings.ReplaceAll(sql, "{ids}", strings.Join(ids, ", ")), "{id}", ids[0])
		info, err := cl.Execute(ctx, q)
		if err != nil {
			return 0, err
		}
		rows, err := fetch(ctx, cl, info)
		if err != nil {
			return rows, err
		}
		return checkRows(rows, ids, check)
	}
}

// preparedRequest prepares the SQL once (per worker) and executes it per
// request with the ids bound as a parameter batch of one row per id: the
// arrow-go client binds with a DoPut, then GetFlightInfo and DoGet.
func preparedRequest(ctx context.Context, cl *flightsql.Client, mem memory.Allocator, sql string, check bool) (request, func(), error) {
	prep, err := cl.Prepare(ctx, sql)
	if err != nil {
		return nil, nil, err
	}
	schema := prep.ParameterSchema()
	if schema == nil || schema.NumFields() == 0 {
		schema = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	}
	if schema.NumFields() != 1 {
		prep.Close(ctx)
		return nil, nil, fmt.Errorf("the prepared statement has %d parameters; one (the id) is supported", schema.NumFields())
	}
	req := func(ctx context.Context, ids []string) (int64, error) {
		params, err := keyBatch(mem, schema, ids)
		if err != nil {
			return 0, err
		}
		prep.SetParameters(params)
		params.Release()
		info, err := prep.Execute(ctx)
		if err != nil {
			return 0, err
		}
		rows, err := fetch(ctx, cl, info)
		if err != nil {
			return rows, err
		}
		return checkRows(rows, ids, check)
	}
	return req, func() { prep.Close(context.Background()) }, nil
}
