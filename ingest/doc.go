// Package ingest turns lines of other programs' logs into vigil events:
// nginx and Apache access logs (combined, or nginx's JSON log_format),
// Envoy JSON access logs, AWS API Gateway access logs, AWS CloudTrail
// records and GitHub audit-log events. docs/ingest.md documents each
// format: the log configuration to use, a sample line and which field
// becomes which part of the event.
//
// # Shape
//
// Every format has a Decoder with the shape of replay.Decoder, so `vigil
// replay --format F` (and anything else that reads lines) plugs it in
// with no adapter:
//
//	in, _ := ingest.Open(path)                // gzip is read transparently
//	r := ingest.Lines(in, ingest.CloudTrail)  // {"Records":[…]} → one record a line
//	dec, _ := ingest.NewDecoder(ingest.CloudTrail, fp)
//	err := dec.Decode(line, &ev)
//
// # Design
//
// Decoding is the bulk of a replay's work, so each JSON format is read by
// one hand-written pass over the object (scanner): it picks the fields it
// needs by name, descending only into the nested objects that hold one
// (CloudTrail's userIdentity.accessKeyId), and checks the syntax of the
// rest while skipping it. Values are first collected as byte ranges of
// the line, then mapped to the event once the object has been read, so
// that the choice of credential (an API key id, else a principal, else
// the client address) never depends on the order of the keys. Strings
// the event keeps are copied into an append-only arena owned by the
// decoder, the contract of event.Decoder: an event stays valid after its
// line is reused, and a decode allocates nothing in the steady state.
//
// # Credentials
//
// None of these logs carries a raw credential, and a decoder never reads
// the fields that could (an Authorization header logged by mistake). A
// credential id that looks like a raw secret all the same (a bearer
// token, a JWT, a key with a well-known secret prefix) is fingerprinted
// with the decoder's event.Fingerprinter, exactly like vigil's own `token`
// field, and wiped from the line. Errors name the field at fault and never
// quote a value.
package ingest
