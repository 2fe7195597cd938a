package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// distinct sends n statements that all differ in their plan key (an
// alias and a literal of their own) to a server, and samples the server's
// resident memory as it goes: what a client inventing ever new statements
// costs the server. Every answer is checked against the first one (the
// same feature plus the statement's literal), so a cache that answered one
// statement with another's plan would be caught.
func distinct(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("distinct", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8815", "the server")
	n := fs.Int("n", 200000, "distinct statements to send")
	every := fs.Int("every", 10000, "sample the server's memory every this many statements")
	pid := fs.Int("pid", 0, "the server's process id (its /proc/PID/status VmRSS is sampled)")
	class := fs.String("class", "user", "the table queried")
	id := fs.String("id", "50", "the key of the row queried")
	feature := fs.String("feature", "review_count__604800__", "an integer feature of the table")
	kinds := fs.Int("kinds", 0, "cycle through this many distinct statements (0: every statement new); a few give the server's baseline under the same load")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pid <= 0 {
		return fmt.Errorf("--pid is required: the server's process id")
	}
	cl, err := dial(*addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	one := func(sql string) (string, error) {
		info, err := cl.Execute(ctx, sql)
		if err != nil {
			return "", err
		}
		rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			return "", err
		}
		defer rdr.Release()
		var out []string
		for rdr.Next() {
			rec := rdr.RecordBatch()
			for i := range int(rec.NumRows()) {
				out = append(out, rec.Column(0).ValueStr(i))
			}
		}
		return strings.Join(out, ","), rdr.Err()
	}
	base, err := one(fmt.Sprintf("SELECT %s FROM %q WHERE id = '%s'", *feature, *class, *id))
	if err != nil {
		return err
	}
	b, err := strconv.ParseInt(base, 10, 64)
	if err != nil {
		return fmt.Errorf("%s of %s %s is %q, not an integer", *feature, *class, *id, base)
	}
	fmt.Fprintf(stdout, "statements\trss_mib\telapsed_s\n")
	sample := func(i int, start time.Time) error {
		rss, err := residentMiB(*pid)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d\t%.1f\t%.1f\n", i, rss, time.Since(start).Seconds())
		return nil
	}
	start := time.Now()
	if err := sample(0, start); err != nil {
		return err
	}
	wrong := 0
	for i := 1; i <= *n; i++ {
		k := i
		if *kinds > 0 {
			k = i%*kinds + 1
		}
		got, err := one(fmt.Sprintf("SELECT %s + %d AS c%d FROM %q WHERE id = '%s'", *feature, k, k, *class, *id))
		if err != nil {
			return fmt.Errorf("statement %d: %w", i, err)
		}
		if want := strconv.FormatInt(b+int64(k), 10); got != want {
			wrong++
			if wrong <= 5 {
				fmt.Fprintf(stderr, "statement %d answered %s, want %s\n", i, got, want)
			}
		}
		if i%*every == 0 {
			if err := sample(i, start); err != nil {
				return err
			}
		}
	}
	if wrong > 0 {
		return fmt.Errorf("%d of %d answers were wrong", wrong, *n)
	}
	fmt.Fprintf(stderr, "fletchload distinct: %d statements, every answer right\n", *n)
	return nil
}

// residentMiB is the resident set of process pid.
func residentMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
