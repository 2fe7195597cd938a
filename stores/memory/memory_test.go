package memory

import (
	"testing"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/storetest"
)

// The memory store answers the conformance suite every online store does
// (types, nulls, newer wins, partial writes, type changes, many keys,
// errors, concurrent use).
func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) stores.OnlineStore { return New() })
}
