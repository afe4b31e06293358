//go:build !linux

package connmgr

import "errors"

// poller is Linux's (epoll); elsewhere every idle connection keeps a
// goroutine.
type poller struct{ m *Manager }

func newPoller(*Manager) (*poller, error) { return nil, errors.New("no epoll on this system") }

func (*poller) park(*idleConn) (bool, error) { return false, errors.New("no poller") }
func (*poller) forget(*idleConn)             {}
func (*poller) close()                       {}
