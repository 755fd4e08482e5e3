//go:build !linux

package engine

func newPage() ([]record, func()) { return make([]record, 1<<pageBits), func() {} }
