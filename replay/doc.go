// Package replay decides every event of a JSON-lines stream: it reads the
// events, runs them through one engine in input order and writes one
// decision line per usable input line, in the same order.
//
// # Design
//
// Decoding and encoding cost more than the engine itself, and the engine is
// sequential, so the work is split into a pipeline whose only sequential
// stage is the engine:
//
//	reader ──batches──► workers: decode ──► engine (one goroutine, in order)
//	                                            │
//	writer ◄── in order ── workers: encode ◄────┘
//
// The stages:
//
//   - The reader reads blocks of up to 1 MiB (its buffer starts at 64 KiB,
//     so short inputs stay cheap, and grows while reads fill it) and cuts
//     them at line boundaries into batches of up to Options.Batch lines
//     (and a few MiB), noting the input
//     line number of every line. It skips blank lines, and streams past
//     lines longer than event.MaxLineBytes without buffering them, marking
//     them as bad. It sends each batch to two queues: one that any worker
//     takes from, and one that keeps input order for the engine.
//   - Workers decode batches in parallel, each with its own event.Decoder
//     (and its own clone of the Fingerprinter) and profile.Keyer, so the
//     engine finds the events' keys already hashed.
//   - One goroutine takes the batches in input order, waits until each is
//     decoded and runs engine.ProcessBatch over its valid events. What the
//     engine decides therefore depends only on the order of the events,
//     never on the number of workers or the batch size: the output is
//     byte-identical for every setting.
//   - Workers encode the verdicts of each batch into its output buffer
//     (each worker owns a decision.Encoder).
//   - The writer takes the batches in input order, waits until each is
//     encoded and writes its decisions and error lines.
//
// Batches circulate through a fixed set (a free list), so in the steady
// state the pipeline reuses its buffers; the number of batches in flight
// (two per worker and four more, at most about 64k events) bounds memory
// and provides back-pressure on the reader. What still allocates per event
// is the decoder's string arena.
//
// Error lines name the input line and carry the decoder's error text, which
// never quotes the `token` field; the content of a line is never printed.
package replay
