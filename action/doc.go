// Package action responds to a credential judged stolen: it puts it on
// the denylist, revokes it at the authorization server (RFC 7009) and
// tells a webhook receiver to rotate or retire it, and records every
// attempt in an append-only audit log.
//
// # Pieces
//
//   - Triggers watches the request path's verdicts and says when to act
//     (a block, or N step-ups within an hour), at most once per
//     credential per hour, in bounded memory.
//   - Executor runs an action's steps, each on its own: a failing revoke
//     does not hold back the denylist or the webhook. Retryable errors
//     (network, 408, 429, 5xx) are retried with doubling backoff and
//     jitter, honoring Retry-After; others fail the step at once.
//   - OAuth is the RFC 7009 / RFC 7662 client; Introspector caches
//     introspection answers by token id for the request path.
//   - Webhook posts events signed with HMAC-SHA256 (Vigil-Signature);
//     VerifySignature is the receiver's side.
//   - Audit is the JSON-lines log: one line per record, written with one
//     write and fsync'd.
//
// # Idempotency
//
// An action's id is derived from the token id, the step set and the
// webhook type (ActionID), so the same trigger firing again, from this
// process or another after a restart, does nothing while the action is in
// progress or once it succeeded. After a step failed for good, the same
// Submit runs the failed steps again (and only those). The audit log is
// the executor's memory: New reads it back, keeps succeeded ids, resumes
// denylist and webhook steps left open, and fails open revoke steps,
// since the raw token is never written anywhere. A Submit whose records
// cannot be written is refused, not run unrecorded. Records go to the log
// before the attempt they announce can start, so the log's order per step
// is the true order.
//
// # Raw tokens
//
// Only the revoke step needs the raw credential. The executor copies it
// into memory it owns, never logs or records it, and zeroes the copy when
// the step ends or at Close; the form body that carries it is zeroed once
// the HTTP transport is done with it. Text an authorization server sends
// back (error, error_description) is cut to printable ASCII and scrubbed
// of the token before it reaches an error, a record or a log line, and
// Submit refuses a request whose other fields contain the token. What
// this cannot cover: Go strings made by the HTTP stack and TLS buffers
// may hold copies until collected.
//
// # Limits
//
// The executor keeps every action it saw (to stay idempotent) and New
// reads the whole log: both grow with the number of actions, which are
// rare. Rotating the log by hand forgets the ids in the old file. Waits
// use the real clock; Options.Now only stamps records.
package action
