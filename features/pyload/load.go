package pyload

import (
	"errors"
	"strings"

	"github.com/fletch-engine/fletch/features"
)

func init() {
	features.RegisterLoader(features.Loader{
		Name:  "python",
		Phase: 0,
		Match: func(name string) bool { return strings.HasSuffix(name, ".py") },
		Load:  Load,
	})
}

// Load parses files and links them into g: the repository loader of `*.py`
// files. A Python resolver whose body the interpreter (features/pysym)
// cannot compile to expressions runs in the Python worker pool (Mode
// PyWorker, Why says why).
func Load(g *features.Graph, files []features.SourceFile) error {
	var errs []error
	parsed := make([]*File, 0, len(files))
	for _, sf := range files {
		f, err := ParseFile(sf.Path, sf.Src)
		if err != nil {
			errs = append(errs, err)
		}
		parsed = append(parsed, f)
	}
	if err := Link(g, parsed); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
