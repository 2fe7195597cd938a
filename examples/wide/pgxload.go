package wide

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PgxOptions describe a bare pgx load: what fletch's Postgres source does
// for one entity, without fletch.
type PgxOptions struct {
	Features int     // columns f0..f{Features-1}
	Entities int     // ids drawn uniformly from 1..Entities
	Rate     float64 // queries per second, paced; 0: back to back
	Duration time.Duration
	Seed     uint64
	// OnlineTable, when set, is a PostgreSQL online store's table
	// (stores/pgonline): each query reads the packed entity fletch keeps
	// for CachedClass and the id, by key, rather than Features columns of
	// Table. It is the store's floor: fletch's read of a cached entity
	// without fletch.
	OnlineTable string
}

// PgxReport is one bare pgx run, as a JSON line in the floor tool's
// report format (mode "pgx"), so that `floor table` shows it beside the
// Flight SQL runs. Latencies are service times of a closed loop (one query
// at a time, paced at Rate), not the floor's open-loop times from the
// scheduled start.
type PgxReport struct {
	Mode       string  `json:"mode"`
	Label      string  `json:"label,omitempty"`
	Target     string  `json:"target,omitempty"`
	SQL        string  `json:"sql,omitempty"`
	Keys       int     `json:"keys"`
	Features   int     `json:"features"`
	Rate       float64 `json:"rate"`
	DurationS  float64 `json:"duration_s"`
	Workers    int     `json:"workers"`
	Scheduled  int     `json:"scheduled"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Achieved   float64 `json:"achieved_rate"`
	RowsPerReq float64 `json:"rows_per_req"`
	P50        float64 `json:"p50_us"`
	P90        float64 `json:"p90_us"`
	P99        float64 `json:"p99_us"`
	P999       float64 `json:"p999_us"`
	Max        float64 `json:"max_us"`
	Mean       float64 `json:"mean_us"`
	SvcP50     float64 `json:"service_p50_us"`
	SvcP99     float64 `json:"service_p99_us"`
	FirstError string  `json:"first_error,omitempty"`
	Time       string  `json:"time"`
}

// PgxQuery is the one-entity query of the bare run: the row fletch's
// LiveUser resolver reads for one id.
func PgxQuery(features int) string {
	return fmt.Sprintf("SELECT id, %s FROM %s WHERE id = $1", strings.Join(FeatureNames(features), ", "), Table)
}

// PgxLoad queries one random entity's row at a time through pool for
// o.Duration, decoding every value, and reports the latencies.
func PgxLoad(ctx context.Context, pool *pgxpool.Pool, o PgxOptions) (*PgxReport, error) {
	if o.Features < 1 || o.Entities < 1 || o.Duration <= 0 {
		return nil, fmt.Errorf("wide: pgx load needs features, entities and a duration, got %d, %d, %s", o.Features, o.Entities, o.Duration)
	}
	query := PgxQuery(o.Features)
	var id int64
	var dest []any
	var blob []byte
	if o.OnlineTable != "" {
		// the entity key as stores.EntityKey writes an int64 ("i:42")
		query = "SELECT $1::bigint, packed FROM " + pgx.Identifier(strings.Split(o.OnlineTable, ".")).Sanitize() +
			" WHERE class = '" + CachedClass + "' AND entity = 'i:' || $1::bigint"
		dest = []any{&id, &blob}
	} else {
		dest = make([]any, o.Features+1)
		dest[0] = &id
		vals := make([]float64, o.Features)
		for i := range vals {
			dest[i+1] = &vals[i]
		}
	}
	rep := &PgxReport{Mode: "pgx", SQL: query, Keys: 1, Features: o.Features, Rate: o.Rate, DurationS: o.Duration.Seconds(), Workers: 1}
	rng := rand.New(rand.NewPCG(o.Seed, 0x706778))
	var lat []time.Duration
	var rows int
	start := time.Now()
	for i := 0; ; i++ {
		if o.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if time.Since(start) >= o.Duration {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep.Scheduled++
		want := 1 + rng.Int64N(int64(o.Entities))
		t0 := time.Now()
		err := pool.QueryRow(ctx, query, want).Scan(dest...)
		d := time.Since(t0)
		if err == nil && id != want {
			err = fmt.Errorf("asked id %d, got %d", want, id)
		}
		if err == nil && o.OnlineTable != "" && len(blob) == 0 {
			err = fmt.Errorf("id %d: an empty entity", want)
		}
		if err != nil {
			rep.Errors++
			if rep.FirstError == "" {
				rep.FirstError = err.Error()
			}
			continue
		}
		rows++
		lat = append(lat, d)
	}
	elapsed := time.Since(start)
	rep.Requests = len(lat)
	rep.Achieved = float64(rep.Scheduled) / elapsed.Seconds()
	if len(lat) > 0 {
		rep.RowsPerReq = float64(rows) / float64(len(lat))
		slices.Sort(lat)
		q := func(p float64) float64 { return us(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		rep.P50, rep.P90, rep.P99, rep.P999, rep.Max = q(0.5), q(0.9), q(0.99), q(0.999), us(lat[len(lat)-1])
		rep.Mean = us(sum / time.Duration(len(lat)))
		rep.SvcP50, rep.SvcP99 = rep.P50, rep.P99
	}
	rep.Time = time.Now().UTC().Format(time.RFC3339)
	return rep, nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
