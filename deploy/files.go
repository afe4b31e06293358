package deploy

import _ "embed"

//go:embed nginx/sessiongate.conf
var nginxConf []byte

//go:embed haproxy/sessiongate.cfg
var haproxyCfg []byte

//go:embed systemd/sessiongate.service
var systemdUnit []byte

// NginxConf returns nginx/sessiongate.conf. The caller owns the copy.
func NginxConf() []byte { return clone(nginxConf) }

// HAProxyCfg returns haproxy/sessiongate.cfg. The caller owns the copy.
func HAProxyCfg() []byte { return clone(haproxyCfg) }

// SystemdUnit returns systemd/sessiongate.service. The caller owns the copy.
func SystemdUnit() []byte { return clone(systemdUnit) }

func clone(b []byte) []byte { return append([]byte(nil), b...) }
