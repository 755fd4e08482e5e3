// Package credential finds the credential an inline request presents and
// reads what it can of it: the Authorization header (Bearer and DPoP,
// RFC 6750 and RFC 9449, and Basic, RFC 7617), configured API-key headers
// and query parameters, and for JWT access tokens the claims later stages
// use (sub, client_id or azp, jti, scope or scp, exp, iss, and the cnf
// confirmation for token binding).
//
// # Authorization schemes
//
// Bearer and DPoP tokens must be token68 and are read as described below.
// A Basic credential is taken whole, the base64 value as sent (never
// decoded), as a secret of Kind gate.APIKey with Source
// "authorization:basic": like an API key, it is a long-lived secret the
// client sends as it is. A Basic value that is empty, too long or not
// token68 is invalid_request.
//
// Any other scheme (AWS SigV4's "AWS4-HMAC-SHA256 Credential=...", Digest,
// "Token xyz", NTLM) holds no credential vigil reads. When the value is
// well-formed, an RFC 9110 auth-scheme token, whitespace, then a token68 or
// auth-params (read leniently: SigV4's parameter values are neither tokens
// nor quoted strings), the header is passed over as if absent: the API-key
// headers and query parameters are looked at, and without them the request
// is Anonymous, scored by its client address. Such a deployment is not
// broken, but vigil cannot tell its clients apart by credential. A value
// that is not a scheme and credentials (no scheme token, a bare word such
// as a raw key, control characters, an unclosed quoted string) is
// invalid_request.
//
// # Precedence and ambiguity
//
// Authorization comes first, then the API-key headers in the configured
// order, then the query parameters in order; the first one present is the
// credential and the others are not looked at. A request that presents one
// credential twice in a way the upstream could read differently from vigil
// is malformed rather than resolved by a guess: two Authorization (or two
// API-key) header fields in an http.Header, two values joined by a comma (as
// Envoy joins repeated headers), or one query parameter given twice. Otherwise
// an attacker could show vigil one credential and the upstream another. This
// holds for the schemes passed over too: "Token abc, Bearer xyz", where a
// list element after a comma is itself a scheme and credentials, is
// refused, not passed over.
//
// # Secrets
//
// The credential is copied into the Credential's own buffer, reused from one
// Extract to the next, and handed out as an event.Secret for the caller to
// fingerprint and wipe. Errors name the field and what was wrong in fixed
// words chosen from a short list; nothing of the request's value, not even
// the authentication scheme (which is the whole credential when a client
// sends a raw key in Authorization), is ever put in an error or a log line.
//
// # JWTs
//
// A bearer or DPoP token is treated as a JWT when it has the shape of one
// (three base64url segments, the first starting with "eyJ"), which costs a
// scan of the token and nothing on the opaque-token path. Its claims are
// read by a small JSON reader of this package (claims.go says why and what
// it measured); a claim of the wrong type is no claim. Only bearer and DPoP
// tokens are read as JWTs, never API keys or Basic credentials. Without
// verification the claims are taken as they are, and a token that does not
// parse is simply an opaque bearer token.
//
// With verification (JWTOptions.Verify) the signature must verify against
// the configured JWKS, and exp, nbf, iat, the issuer and the audience are
// checked with a leeway; a JWT that fails any of these is invalid_token.
// Tokens that are not JWT-shaped stay opaque bearer tokens even then: vigil
// judges credentials, it does not authenticate them, and the upstream still
// does. Verification is done with jwx. The tokens it verified are
// remembered by their SHA-256 (never the token itself) in a fixed-size
// cache, so a client that presents the same token request after request
// costs one signature verification (tens of µs), then about 1 µs; a hit
// still checks exp and nbf against the clock, and counts only while the
// JWKS is the one the token was verified with.
//
// The JWKS, from a URL or a file, is loaded when the Extractor is created
// (failing New with the cause), reloaded in the background every
// JWTOptions.Refresh, and reloaded when a token names a key id the set does
// not hold, so a key rotation is picked up by the first request that uses
// the new key. A failed reload keeps the keys it had. Those reloads start at
// least 1 s apart, whatever the key ids, one shared by all the requests
// waiting for it, each waiting 2 s at most. A key id still missing from a
// JWKS fetched after it was asked for is remembered (by a hash, at most
// 1,024 of them, oldest forgotten first) and causes no reload for 10 s. So a
// made-up key id sent again and again costs the identity provider one fetch
// every 10 s, a flood of made-up key ids one fetch a second, and neither
// keeps a rotated key from being picked up within about a second.
package credential
