package runtimes

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreePort returns a loopback TCP port that nothing listens on, for an
// engine to bind. It is chosen below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port the kernel handed out for
// listening and that is closed again is also the next source port of an
// outgoing connection (to Redis, say), and the engine's bind would then
// fail. Ports from minPort up to that range are tried at random; without
// room there, the kernel chooses.
func FreePort() (int, error) {
	if low := ephemeralLow(); low-minPort >= 1000 {
		for range 64 {
			p := minPort + rand.IntN(low-minPort)
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				_ = l.Close()
				return p, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// minPort is the lowest port FreePort chooses: clear of the registered
// services most hosts run.
const minPort = 20000

// ephemeralLow is the lowest port of the kernel's ephemeral range, or 0
// when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return n
}
