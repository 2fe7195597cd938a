package config

import (
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// PythonConfig is `python:`, the worker processes that run the Python
// resolvers fletch does not compile to expressions (docs/PYTHON.md). Zero
// values mean the defaults of operators/pyworker.
type PythonConfig struct {
	// Executable is the interpreter: a name looked up on the PATH
	// (python3), or a path, relative to the configuration file's folder.
	// Default: the repository's .venv/bin/python when it exists, else
	// python3.
	Executable string
	Workers    int           // worker processes
	Timeout    time.Duration // per call
	Queue      int           // calls that may wait for a busy worker
}

func (p *parser) python(n *yaml.Node, pc *PythonConfig) error {
	if err := p.mapping(n, "python", map[string]func(*yaml.Node) error{
		"executable": p.str(&pc.Executable),
		"workers":    p.integer(&pc.Workers),
		"timeout":    p.duration(&pc.Timeout),
		"queue":      p.integer(&pc.Queue),
	}); err != nil {
		return err
	}
	if strings.ContainsRune(pc.Executable, filepath.Separator) && !filepath.IsAbs(pc.Executable) {
		pc.Executable = filepath.Join(filepath.Dir(p.path), pc.Executable)
	}
	return nil
}
