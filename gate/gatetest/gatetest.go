// Package gatetest helps tests write gate.Checkers that choose their answer
// as a whole Result, as adapter tests do.
package gatetest

import "github.com/vigil-sec/vigil/gate"

// Fill stores a test Checker's answer in res as gate.Checker.Check
// requires: err as it is; else *out, or the zero Result for a nil out,
// which no adapter accepts as a decision.
func Fill(res, out *gate.Result, err error) error {
	if err != nil {
		return err
	}
	*res = gate.Result{}
	if out != nil {
		*res = *out
	}
	return nil
}
