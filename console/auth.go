package console

import (
	"errors"
	"net/http"

	"github.com/fletch-engine/fletch/auth"
)

// viewer is who is looking: nil principal when auth is off (everything is
// visible).
type viewer struct {
	p *auth.Principal
}

// canRead says whether the viewer may see class (a table name).
func (v viewer) canRead(class string) bool { return v.p == nil || v.p.CanRead(class) }

// canSee says whether the viewer may see node r: its class, and for a
// relation the class it leads to (the catalogue does not list a relation
// to a hidden class).
func (v viewer) canSee(r ref) bool {
	if c := r.class(); c != "" && !v.canRead(c) {
		return false
	}
	return r.feature == nil || r.feature.Relation == nil || v.canRead(r.feature.Relation.To.Table)
}

// canReadAll says whether the viewer may see every one of classes.
func (v viewer) canReadAll(classes []string) bool {
	for _, c := range classes {
		if !v.canRead(c) {
			return false
		}
	}
	return true
}

// errUnauthenticated refuses a call without a valid token; the pages ask
// for one.
var errUnauthenticated = errors.New("unauthenticated")

// authenticate reads the caller's token from the Authorization header
// (Bearer, or Basic with the token as the password, as the Flight port
// accepts); with no verifier everyone sees everything.
func authenticate(r *http.Request, v *auth.Verifier) (viewer, error) {
	if v == nil {
		return viewer{}, nil
	}
	p, err := v.Authenticate(r.Header.Values("Authorization"))
	if err != nil {
		return viewer{}, errors.Join(errUnauthenticated, err)
	}
	return viewer{p: p}, nil
}
