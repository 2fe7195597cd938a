// Package marketplace is the tutorial's marketplace as a runnable feature
// repository (the .py and .sql files of this folder, embedded as Files) and
// a deterministic generator of the data its SQL resolvers read. `fletch
// demo`, the tests and the benchmarks use both.
//
// The generator knows the tables the resolvers read and nothing of fletch:
// it fills a database/sql DuckDB database.
package marketplace

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Files is the feature repository: marketplace.py and the SQL resolvers.
//
//go:embed *.py *.sql
var Files embed.FS

// DefaultAnchor is the data's "now" when Options.Anchor is zero.
var DefaultAnchor = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// Options sizes and seeds the generated data. Zero fields take the
// defaults in parentheses.
type Options struct {
	Seed uint64
	// Anchor is the data's "now": events spread over the 120 days before
	// it, a few lie exactly on window edges relative to it, and a few lie
	// after it, which a query at the anchor must not see (DefaultAnchor).
	Anchor  time.Time
	Users   int // ids "1".."Users" (1,000)
	Items   int // ids "1".."Items" (500)
	Sellers int // ids "1".."Sellers" (50)
	// ReviewsPerUser and PricesPerItem are averages over the users and
	// items that have any (20, 100).
	ReviewsPerUser int
	PricesPerItem  int
}

func (o Options) withDefaults() Options {
	if o.Anchor.IsZero() {
		o.Anchor = DefaultAnchor
	}
	o.Anchor = o.Anchor.UTC().Truncate(time.Microsecond)
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Users, 1000)
	def(&o.Items, 500)
	def(&o.Sellers, 50)
	def(&o.ReviewsPerUser, 20)
	def(&o.PricesPerItem, 100)
	return o
}

// The entities without related rows: empty groups for the aggregations.
// User "1" and item "1" are never among them: they carry the edge cases;
// nor are the tutorial's user "50" and item "200", so its queries show
// values.

// HasReviews reports whether user id writes reviews: every tenth does not.
func HasReviews(user int) bool { return user%10 != 9 }

// HasPurchases reports whether user id buys anything: every seventh does not.
func HasPurchases(user int) bool { return user%7 != 5 }

// HasPrices reports whether item id has price events: every twentieth has none.
func HasPrices(item int) bool { return item%20 != 9 }

// IsReviewed reports whether item id is reviewed: every twenty-fifth is not.
func IsReviewed(item int) bool { return item%25 != 9 }

// EdgeWindows are the windows whose edges the data has events on: exactly
// at anchor − w (outside a `created_at > now − w` window), 1µs later
// (inside) and 1µs earlier (outside), for user "1" and item "1".
var EdgeWindows = []time.Duration{1 * day, 7 * day, 30 * day, 60 * day, 90 * day}

// AfterAnchor are the offsets of the events after the anchor (user "1",
// item "1"): invisible at the anchor.
var AfterAnchor = []time.Duration{time.Microsecond, time.Hour, 3 * day}

const day = 24 * time.Hour

const schema = `
DROP TABLE IF EXISTS marketplace_users;
DROP TABLE IF EXISTS marketplace_sellers;
DROP TABLE IF EXISTS marketplace_items;
DROP TABLE IF EXISTS marketplace_reviews;
DROP TABLE IF EXISTS marketplace_item_prices;
CREATE TABLE marketplace_users (hid VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
	first_name VARCHAR NOT NULL, last_name VARCHAR NOT NULL, email VARCHAR, birthday DATE);
CREATE TABLE marketplace_sellers (id VARCHAR NOT NULL, name VARCHAR NOT NULL, joined_at TIMESTAMPTZ NOT NULL);
CREATE TABLE marketplace_items (id VARCHAR NOT NULL, title VARCHAR NOT NULL, seller_id VARCHAR NOT NULL,
	genre VARCHAR, list_price DOUBLE NOT NULL);
CREATE TABLE marketplace_reviews (id BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL, review_headline VARCHAR NOT NULL,
	review_body VARCHAR, star_rating INTEGER NOT NULL, user_hid VARCHAR NOT NULL, item_id VARCHAR NOT NULL);
CREATE TABLE marketplace_item_prices (id BIGINT NOT NULL, item_id VARCHAR NOT NULL, buyer_hid VARCHAR,
	kind VARCHAR NOT NULL, value DOUBLE, created_at TIMESTAMPTZ NOT NULL);
`

// Generate (re)creates the marketplace tables in db and fills them. The
// same Options give byte-identical tables.
func Generate(ctx context.Context, db *sql.DB, opts Options) error {
	o := opts.withDefaults()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("marketplace: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("marketplace: create tables: %w", err)
	}
	g := &generator{o: o, rng: rand.New(rand.NewPCG(o.Seed, 0x6d61726b6574))}
	if err := conn.Raw(func(dc any) error {
		for _, t := range []struct {
			table string
			fill  func(add func(...driver.Value) error) error
		}{
			{"marketplace_users", g.users},
			{"marketplace_sellers", g.sellers},
			{"marketplace_items", g.items},
			{"marketplace_reviews", g.reviews},
			{"marketplace_item_prices", g.prices},
		} {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := appendRows(dc.(driver.Conn), t.table, t.fill); err != nil {
				return fmt.Errorf("marketplace: fill %s: %w", t.table, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	// The keys resolvers are looked up by, as an operational database
	// would index them: DuckDB answers a point lookup from an ART index
	// instead of scanning the table.
	if _, err := conn.ExecContext(ctx, indexes); err != nil {
		return fmt.Errorf("marketplace: create indexes: %w", err)
	}
	return nil
}

const indexes = `
CREATE INDEX marketplace_users_hid ON marketplace_users (hid);
CREATE INDEX marketplace_items_id ON marketplace_items (id);
CREATE INDEX marketplace_sellers_id ON marketplace_sellers (id);
CREATE INDEX marketplace_reviews_user ON marketplace_reviews (user_hid);
CREATE INDEX marketplace_reviews_item ON marketplace_reviews (item_id);
CREATE INDEX marketplace_item_prices_item ON marketplace_item_prices (item_id);
CREATE INDEX marketplace_item_prices_buyer ON marketplace_item_prices (buyer_hid);
`

func appendRows(conn driver.Conn, table string, fill func(add func(...driver.Value) error) error) error {
	app, err := duckdb.NewAppenderFromConn(conn, "", table)
	if err != nil {
		return err
	}
	if err := fill(app.AppendRow); err != nil {
		app.Close()
		return err
	}
	return app.Close()
}

type generator struct {
	o   Options
	rng *rand.Rand
	// listPrice[i] is item i+1's list price; prices vary around it.
	listPrice []float64
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
		"Radia", "John", "Sophie", "Tim", "Hedy", "Linus", "Anita", "Guido", "Katherine", "Bjarne", "Jean", "Niklaus"}
	lastNames = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
		"Ritchie", "Perlman", "McCarthy", "Wilson", "Berners-Lee", "Lamarr", "Torvalds", "Borg", "van Rossum", "Johnson"}
	domains    = []string{"example.com", "mail.test", "inbox.example.org"}
	adjectives = []string{"Vintage", "Handmade", "Compact", "Deluxe", "Organic", "Wireless", "Classic", "Tiny", "Rugged", "Silent"}
	nouns      = []string{"Lamp", "Notebook", "Kettle", "Backpack", "Headphones", "Chair", "Record", "Scarf", "Puzzle", "Novel", "Mug"}
	genres     = []string{"home", "books", "music", "outdoors", "fashion", "electronics", "toys"}
	headlines  = []string{"Love it", "Not great", "Exactly as described", "Would buy again", "Meh", "Five stars", "Broke in a week", "Good value"}
	bodies     = []string{"Arrived quickly and works well.", "The colour is off.", "My kids use it every day.",
		"Cheaper elsewhere.", "Solid build, nice finish.", "Returned it."}
)

func (g *generator) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

// before is a time in the 120 days before the anchor, to the second.
func (g *generator) before(days int) time.Time {
	return g.o.Anchor.Add(-time.Duration(1+g.rng.Int64N(int64(days)*86400)) * time.Second)
}

func (g *generator) users(add func(...driver.Value) error) error {
	for u := 1; u <= g.o.Users; u++ {
		first, last := g.pick(firstNames), g.pick(lastNames)
		var email, birthday driver.Value
		if g.rng.IntN(10) != 0 { // a tenth have no email
			local := strings.ToLower(strings.ReplaceAll(first+"."+last, " ", ""))
			email = local + strconv.Itoa(u) + "@" + g.pick(domains)
		}
		if g.rng.IntN(7) != 0 { // a seventh have no birthday
			birthday = time.Date(1950+g.rng.IntN(55), time.Month(1+g.rng.IntN(12)), 1+g.rng.IntN(28), 0, 0, 0, 0, time.UTC)
		}
		if err := add(strconv.Itoa(u), g.before(1000), first, last, email, birthday); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) sellers(add func(...driver.Value) error) error {
	for s := 1; s <= g.o.Sellers; s++ {
		if err := add(strconv.Itoa(s), g.pick(lastNames)+" & Co. #"+strconv.Itoa(s), g.before(2000)); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) items(add func(...driver.Value) error) error {
	g.listPrice = make([]float64, g.o.Items)
	stocking := g.o.Sellers
	if stocking > 2 {
		stocking -= 2 // the last two sellers list no items
	}
	for i := 1; i <= g.o.Items; i++ {
		price := cents(5 + g.rng.Float64()*495)
		g.listPrice[i-1] = price
		var genre driver.Value
		if g.rng.IntN(5) != 0 { // a fifth have no genre yet
			genre = g.pick(genres)
		}
		title := g.pick(adjectives) + " " + g.pick(nouns)
		if err := add(strconv.Itoa(i), title, strconv.Itoa(1+g.rng.IntN(stocking)), genre, price); err != nil {
			return err
		}
	}
	return nil
}

func cents(x float64) float64 { return math.Round(x*100) / 100 }

// edgeTimes are the event times of the edge cases, in a fixed order.
func (g *generator) edgeTimes() []time.Time {
	a := g.o.Anchor
	ts := []time.Time{a} // exactly now: visible
	for _, w := range EdgeWindows {
		ts = append(ts, a.Add(-w), a.Add(-w+time.Microsecond), a.Add(-w-time.Microsecond))
	}
	for _, d := range AfterAnchor {
		ts = append(ts, a.Add(d))
	}
	return ts
}

// TieTime is when item "2" has two reviews and two purchases at the same
// instant (a max_by tie), relative to the anchor.
const TieTime = -2 * day

// someUser is a random user for which has holds; has(1) always holds, so
// the loop ends.
func (g *generator) someUser(has func(int) bool) string {
	for {
		if u := 1 + g.rng.IntN(g.o.Users); has(u) {
			return strconv.Itoa(u)
		}
	}
}

// someItem is a random item for which has holds (has(1) always does).
func (g *generator) someItem(has func(int) bool) string {
	for {
		if i := 1 + g.rng.IntN(g.o.Items); has(i) {
			return strconv.Itoa(i)
		}
	}
}

func (g *generator) reviews(add func(...driver.Value) error) error {
	id := int64(0)
	review := func(at time.Time, user, item string, stars int) error {
		id++
		var body driver.Value
		if g.rng.IntN(5) != 0 { // a fifth have no body
			body = g.pick(bodies)
		}
		return add(id, at, g.pick(headlines), body, int32(stars), user, item)
	}
	for _, at := range g.edgeTimes() {
		if err := review(at, "1", "1", 1+g.rng.IntN(5)); err != nil {
			return err
		}
	}
	tie := g.o.Anchor.Add(TieTime)
	for _, stars := range []int{2, 5} {
		if err := review(tie, "1", "2", stars); err != nil {
			return err
		}
	}
	for u := 1; u <= g.o.Users; u++ {
		if !HasReviews(u) {
			continue
		}
		n := 1 + g.rng.IntN(2*g.o.ReviewsPerUser-1) // mean ReviewsPerUser
		for range n {
			if err := review(g.before(120), strconv.Itoa(u), g.someItem(IsReviewed), stars(g.rng)); err != nil {
				return err
			}
		}
	}
	return nil
}

// stars leans positive, as review sites do.
func stars(rng *rand.Rand) int {
	return []int{1, 2, 3, 3, 4, 4, 4, 5, 5, 5}[rng.IntN(10)]
}

func (g *generator) prices(add func(...driver.Value) error) error {
	id := int64(0)
	event := func(item string, buyer driver.Value, kind string, value driver.Value, at time.Time) error {
		id++
		return add(id, item, buyer, kind, value, at)
	}
	for _, at := range g.edgeTimes() {
		if err := event("1", "1", "purchase", cents(g.listPrice[0]*(0.8+0.4*g.rng.Float64())), at); err != nil {
			return err
		}
	}
	tie := g.o.Anchor.Add(TieTime)
	for _, v := range []float64{10, 20} {
		if err := event("2", "1", "purchase", v, tie); err != nil {
			return err
		}
	}
	// Item "3"'s latest price is a null value: max_by must skip it.
	if err := event("3", nil, "list", nil, g.o.Anchor); err != nil {
		return err
	}
	for i := 1; i <= g.o.Items; i++ {
		if !HasPrices(i) {
			continue
		}
		item, list := strconv.Itoa(i), g.listPrice[i-1]
		n := 1 + g.rng.IntN(2*g.o.PricesPerItem-1)
		for range n {
			var buyer, value driver.Value
			kind := "purchase"
			switch r := g.rng.IntN(20); {
			case r < 5:
				kind = "list"
			case r < 8:
				kind = "discount"
			default:
				buyer = g.someUser(HasPurchases)
			}
			if g.rng.IntN(30) != 0 { // a thirtieth have no value
				value = cents(list * (0.7 + 0.5*g.rng.Float64()))
			}
			if err := event(item, buyer, kind, value, g.before(120)); err != nil {
				return err
			}
		}
	}
	return nil
}
