package pyload

import (
	"os"
	"testing"

	"github.com/fletch-engine/fletch/features"
)

// FuzzDefinitions reads arbitrary text as a repository's feature
// definitions: parse and link may refuse it (with an error), never panic
// or hang. Seeded with the marketplace example.
func FuzzDefinitions(f *testing.F) {
	if src, err := os.ReadFile("../../examples/marketplace/marketplace.py"); err == nil {
		f.Add(src)
	}
	f.Add([]byte("from chalk.features import features\n\n@features\nclass A:\n    id: int\n    x: int = _.id + 1\n"))
	f.Add([]byte("@features\nclass A:\n    id: int\n    bs: DataFrame[B]\n    n: int = _.bs[_.x > 1].count()\n\n@features\nclass B:\n    id: int\n    a_id: A.id\n    x: int\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		_ = Load(features.NewGraph(), []features.SourceFile{{Path: "fuzz.py", Src: src}})
	})
}
