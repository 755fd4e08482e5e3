package gatewaytest

import "syscall"

// sysProcAttr puts the gateway in its own process group, so that stopping
// it reaches its workers, and has the kernel stop it (politely, so that it
// stops its workers) if the test process dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
