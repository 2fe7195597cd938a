package features

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefinitionError is a mistake in a definition file, located at file:line:col.
type DefinitionError struct {
	Pos Pos
	Msg string // the whole message, suggestion included
}

func (e *DefinitionError) Error() string {
	if e.Pos.File == "" && e.Pos.Line == 0 {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Errorf returns a DefinitionError at pos.
func Errorf(pos Pos, format string, args ...any) error {
	return &DefinitionError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// SourceFile is one definition file of a repository.
type SourceFile struct {
	Path string // as walked: the repository folder joined with the file's relative path
	Src  []byte
}

// Loader reads one kind of definition file into a graph. Loaders run in
// increasing Phase: a loader sees everything the earlier phases added (the
// SQL loader needs the classes the Python loader made).
type Loader struct {
	Name  string
	Phase int
	// Match reports whether the loader reads the file with this base name.
	Match func(name string) bool
	// Load adds the definitions of files (sorted by path) to g. It returns
	// every error it found, joined.
	Load func(g *Graph, files []SourceFile) error
}

// loaders are registered by the loader packages (features/pyload,
// features/sqlload) rather than imported here: those packages depend on this
// one, and on cgo parsers every user of the graph should not have to link.
var loaders []Loader

// RegisterLoader makes Load read the files l matches. It is called from the
// init functions of the loader packages.
func RegisterLoader(l Loader) {
	loaders = append(loaders, l)
	sort.SliceStable(loaders, func(i, j int) bool { return loaders[i].Phase < loaders[j].Phase })
}

// skipDir reports the folders a repository walk never enters.
func skipDir(name string) bool {
	switch name {
	case "__pycache__", "node_modules", ".venv", "venv":
		return true
	}
	return strings.HasPrefix(name, ".") && name != "."
}

// Load reads the feature repository in dir: every `*.py` and `*.sql` file
// below it (hidden folders, __pycache__, virtual environments and
// node_modules skipped), in sorted order, linked into one graph.
//
// Definition errors are collected across files (each located at
// file:line:col) and returned joined, together with the partial graph, so a
// validator can report them all.
//
// The loaders must be registered: import features/pyload and
// features/sqlload (for their side effect) in the program that calls Load.
func Load(dir string) (*Graph, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		paths = append(paths, path)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading feature repository: %w", err)
	}
	sort.Strings(paths)

	byLoader := make([][]SourceFile, len(loaders))
	var errs []error
	for _, path := range paths {
		name := filepath.Base(path)
		i := matchLoader(name)
		if i < 0 {
			if strings.HasSuffix(name, ".py") || strings.HasSuffix(name, ".sql") {
				errs = append(errs, fmt.Errorf("%s: no loader registered for this file: import _ \"github.com/fletch-engine/fletch/features/pyload\" and .../features/sqlload", path))
			}
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byLoader[i] = append(byLoader[i], SourceFile{Path: path, Src: src})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	g := NewGraph()
	g.Dir = dir
	for i, l := range loaders {
		if len(byLoader[i]) == 0 {
			continue
		}
		if err := l.Load(g, byLoader[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return g, errors.Join(errs...)
	}
	return g, nil
}

func matchLoader(name string) int {
	for i, l := range loaders {
		if l.Match(name) {
			return i
		}
	}
	return -1
}
