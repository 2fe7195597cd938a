package marketplace

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Tables are the tables Generate fills, in the order it fills them.
var Tables = []string{"marketplace_users", "marketplace_sellers", "marketplace_items", "marketplace_reviews", "marketplace_item_prices"}

// pgSchema is Generate's schema in Postgres's spelling, plus indexes on
// the columns the resolvers' keys are pushed into.
var pgSchema = strings.ReplaceAll(schema, " DOUBLE", " DOUBLE PRECISION") + `
CREATE INDEX ON marketplace_users (hid);
CREATE INDEX ON marketplace_sellers (id);
CREATE INDEX ON marketplace_items (id);
CREATE INDEX ON marketplace_items (seller_id);
CREATE INDEX ON marketplace_reviews (id);
CREATE INDEX ON marketplace_reviews (user_hid);
CREATE INDEX ON marketplace_reviews (item_id);
CREATE INDEX ON marketplace_item_prices (id);
CREATE INDEX ON marketplace_item_prices (item_id);
CREATE INDEX ON marketplace_item_prices (buyer_hid);
`

// CopyToPostgres (re)creates the marketplace tables in pg (in the first
// schema of its search path) and copies the rows of db's tables, filled
// by Generate, into them: the same data in both databases, so that the
// same resolvers answer the same rows from either.
func CopyToPostgres(ctx context.Context, db *sql.DB, pg *pgxpool.Pool) error {
	if _, err := pg.Exec(ctx, pgSchema); err != nil {
		return fmt.Errorf("marketplace: create the Postgres tables: %w", err)
	}
	for _, table := range Tables {
		if err := copyTable(ctx, db, pg, table); err != nil {
			return fmt.Errorf("marketplace: copy %s to Postgres: %w", table, err)
		}
	}
	if _, err := pg.Exec(ctx, "ANALYZE "+strings.Join(Tables, ", ")); err != nil {
		return fmt.Errorf("marketplace: analyze the Postgres tables: %w", err)
	}
	return nil
}

func copyTable(ctx context.Context, db *sql.DB, pg *pgxpool.Pool, table string) error {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	_, err = pg.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		if !rows.Next() {
			return nil, rows.Err()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		return vals, nil
	}))
	return err
}
