package action

import (
	"fmt"
	"log/slog"
)

// secret holds a raw credential in memory. Printing, logging or encoding
// it shows nothing of it.
type secret []byte

func (secret) String() string               { return redacted }
func (secret) GoString() string             { return redacted }
func (secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (secret) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }

// wipe zeroes the secret's bytes.
func (s secret) wipe() { clear(s) }
