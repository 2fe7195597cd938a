package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/planner"
)

// validationCounts asks a running server how many computed values of each
// feature with bounds fell outside them (flight.ValidationsAction).
func validationCounts(ctx context.Context, addr string, creds credentials.TransportCredentials, token string) ([]planner.ValidationCount, error) {
	cl, err := arrowflight.NewClientWithMiddleware(addr, nil, nil, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	stream, err := cl.DoAction(ctx, &arrowflight.Action{Type: flight.ValidationsAction})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	res, err := stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	var counts []planner.ValidationCount
	if err := json.Unmarshal(res.GetBody(), &counts); err != nil {
		return nil, fmt.Errorf("%s: the validation counts are not JSON: %w", addr, err)
	}
	return counts, nil
}

// printValidations lists the features with bounds: from the server's
// counts when there are some (server named), else from the repository.
func printValidations(w io.Writer, g *features.Graph, counts []planner.ValidationCount, server string) {
	if server != "" {
		if len(counts) == 0 {
			return
		}
		fmt.Fprintf(w, "validations (values outside their bounds since %s started)\n", server)
		for _, c := range counts {
			fmt.Fprintf(w, "  %-40s %-32s %-6s %d\n", c.Feature, c.Bounds, strictness(c.Strict), c.Violations)
		}
		return
	}
	header := false
	for _, c := range g.Classes {
		for _, f := range c.Features {
			if f.Window != nil {
				continue // its group's
			}
			for _, v := range f.Validations {
				if !header {
					fmt.Fprintln(w, "validations (fletch features --server ADDR counts the values outside them)")
					header = true
				}
				fmt.Fprintf(w, "  %-40s %-32s %s\n", c.Table+"."+f.Name, planner.Bounds(v), strictness(v.Strict))
			}
		}
	}
}

func strictness(strict bool) string {
	if strict {
		return "strict"
	}
	return "served"
}
