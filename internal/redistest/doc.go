// Package redistest gives tests a real redis-server: a standalone server
// (Standalone) or a three-master Redis Cluster (Cluster). Tests of vigil's
// Redis state store talk to it over the network like production does; they
// are part of `make test` and are never skipped.
//
// # Where the server comes from
//
// By default each call starts servers of its own: Debian's redis-server
// (installed by `make deps`, scripts/deps.sh), as child processes in the
// foreground on free 127.0.0.1 ports, with persistence off and every file
// (log, cluster configuration) in t.TempDir(). They are stopped when the
// test ends, and on Linux also when the test binary dies. A missing
// redis-server fails the test with "... run make deps".
//
// When the environment names servers that are already running, they are
// used instead, shared by every test:
//
//	REDIS_ADDR=host:port                   Standalone
//	REDIS_CLUSTER_ADDRS=host:port,host:port Cluster
//
// A test that needs a server of its own anyway (to stop, restart, pause or
// configure it) asks for one with Private or Args.
//
// # Isolation
//
// Every Server and ClusterServer has a key prefix, Prefix(), unique to the
// call ("vigiltest:<16 hex digits>:"). Tests name all their keys with it.
// On a shared server the keys under the prefix are deleted when the test
// ends (SCAN MATCH prefix* in database 0, then UNLINK), so tests sharing a
// server see neither each other's keys nor those of earlier runs. Commands
// that touch the whole keyspace (FLUSHALL, FLUSHDB, KEYS *, DBSIZE) are for
// private servers only.
//
// # Talking to the server
//
// Server.Do and Server.Cmd (and their ClusterServer counterparts, which
// follow MOVED and ASK redirections) are a small RESP2 client for the tests
// themselves: one connection per command, replies decoded as string, int64,
// nil, []any and Error. The code under test uses its own client.
//
// # Faults
//
// Server.Stop (SIGTERM), Server.Kill (SIGKILL) and Server.Start (again on
// the same port, with the same arguments) take a private server down and
// up; Server.Pause freezes it (SIGSTOP, then SIGCONT) to make it slow.
// ClusterServer.Node gives the Server of one cluster node, so that a test
// can do the same to a single node, and ClusterServer.WaitReady waits for
// the cluster to be healthy again.
//
// The package needs Linux or another Unix.
package redistest
