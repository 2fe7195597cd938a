// Package console is fletch's web console: pages that show a repository's
// feature graph (catalogue, lineage), run a query and draw its plan with
// what each stage took, and plot a live server's metrics with its slowest
// recent queries. Handler serves the pages (embedded: plain JavaScript and
// SVG, no build step) and the JSON API they call under /console/api/;
// the data is shaped here, in Go, and the pages only draw it.
//
// The console applies the server's access rules: with a verifier, every API
// call needs a token, and only the classes its scopes may read appear
// anywhere. It costs nothing while nobody looks: the live page's sampler
// runs only while a page polls it, and the slowest-queries ring (Slowest)
// is an atomic load per query once it is full.
//
// It knows the feature graph, the planner and the front ends' readers; it
// knows nothing of the transport (flight), of fletch.yaml or of the stores.
package console
