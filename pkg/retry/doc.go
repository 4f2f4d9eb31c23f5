// Package retry runs an operation again with capped exponential backoff while a
// caller-supplied classifier says its error is transient. A cancelled context
// stops it at once and is never retried.
//
//	err := retry.Do(ctx, retry.Default, mongox.IsTransient, func(ctx context.Context) error { … })
package retry
