package redisstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteClientLogs sends the Redis client library's own log lines (a dial
// that failed, a pool that shrank) to log at debug level: the store
// already logs an outage once, at error level, when it starts falling
// back, and the library would repeat it for every reconnection attempt.
// The library's logger is process-wide; vigil's main sets it once.
func RouteClientLogs(log *slog.Logger) {
	redis.SetLogger(clientLog{log})
}

type clientLog struct{ log *slog.Logger }

func (l clientLog) Printf(ctx context.Context, format string, v ...any) {
	if l.log.Enabled(ctx, slog.LevelDebug) {
		l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
	}
}
