// Package integration drives the real fletch binary as a user would: it
// builds cmd/fletch, runs `fletch demo` as a subprocess, and checks what
// Flight SQL clients (arrow-go's flightsql.Client and its database/sql
// driver) and the command line get back against DuckDB SQL over the same
// generated data. It knows the binary only through its flags, its output
// and the wire; it must not import fletch's internals beyond the
// marketplace example's data generator.
package integration
