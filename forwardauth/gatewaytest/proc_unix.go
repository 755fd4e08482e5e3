//go:build unix && !linux

package gatewaytest

import "syscall"

// sysProcAttr puts the gateway in its own process group, so that stopping
// it reaches its workers.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
