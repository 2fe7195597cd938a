package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis writes its own lines (a pool that cannot dial, a connection
// handed back broken) to stderr with the standard library's logger: not in
// the server's format, without the query's trace id. They go through slog
// instead, at warn, as every other failure of the online store does
// (docs/OPERATIONS.md "Logs").
func init() { goredis.SetLogger(slogLogger{}) }

type slogLogger struct{}

func (slogLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	slog.WarnContext(ctx, "redis client", "detail", msg)
}
