package flight

import (
	"encoding/json"
	"strings"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"

	"github.com/fletch-engine/fletch/planner"
)

// ValidationsAction is the DoAction that answers, as one JSON array of
// planner.ValidationCount, how many computed values of each feature with
// bounds (feature(min=, max=, …)) fell outside them since the server
// started: what `fletch features --server` prints. A caller sees the
// features of the classes it may read only.
const ValidationsAction = "fletch.validations"

// DoAction answers ValidationsAction, and passes every other action to
// Flight SQL (sessions, prepared statements).
func (x exchangeService) DoAction(action *arrowflight.Action, stream arrowflight.FlightService_DoActionServer) error {
	if action.GetType() != ValidationsAction {
		return x.FlightServer.DoAction(action, stream)
	}
	counts := []planner.ValidationCount{}
	for _, c := range x.s.repoOf(stream.Context()).engine.Validations() {
		class, _, _ := strings.Cut(c.Feature, ".")
		if x.s.canRead(stream.Context(), class) {
			counts = append(counts, c)
		}
	}
	body, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	return stream.Send(&arrowflight.Result{Body: body})
}
