package redistest

import "syscall"

// sysProcAttr puts redis-server in its own process group, so that stopping
// it also reaches a child it forked (BGSAVE, BGREWRITEAOF), and has the
// kernel kill it if the test binary dies first (a test timeout, ^C): a
// server left frozen by Pause would not heed a gentler signal.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
