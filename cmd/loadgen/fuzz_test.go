package main

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
)

// FuzzReadMessage feeds arbitrary server bytes to the frame reader: it must
// return a message or an error, never panic or over-allocate.
func FuzzReadMessage(f *testing.F) {
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x01, 0x02, 'h', 'e', 0x80, 0x01, 'y'})
	f.Add([]byte{0x88, 0x02, 0x11, 0x94})
	f.Add([]byte{0x89, 0x00, 0x81, 0x00})
	f.Add([]byte{0x81, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() { // drain pongs the reader writes
			var b [256]byte
			for {
				if _, err := server.Read(b[:]); err != nil {
					return
				}
			}
		}()
		c := &wsConn{nc: client, br: bufio.NewReader(bytes.NewReader(in))}
		for range 8 {
			op, p, err := c.readMessage()
			if err != nil {
				return
			}
			if len(p) > maxFramePayload || op > opPong {
				t.Fatalf("op %d, %d bytes", op, len(p))
			}
		}
	})
}

// FuzzParseProm: any text parses without panicking.
func FuzzParseProm(f *testing.F) {
	f.Add("# HELP x\nx 1\ny{a=\"b\"} 2\nz NaN\n")
	f.Add("go_memstats_heap_inuse_bytes 1.2e+07\n")
	f.Fuzz(func(t *testing.T, in string) {
		if _, err := parseProm(strings.NewReader(in)); err != nil && !strings.Contains(err.Error(), "too long") {
			t.Fatal(err)
		}
	})
}

func TestParseProm(t *testing.T) {
	in := "# TYPE a gauge\na 1.5\nb{x=\"y\"} 2\nprocess_resident_memory_bytes 3.2e+07\nbad line\n"
	got, err := parseProm(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  string
		want float64
		ok   bool
	}{
		{name: "plain", key: "a", want: 1.5, ok: true},
		{name: "labelled is skipped", key: "b", ok: false},
		{name: "exponent", key: "process_resident_memory_bytes", want: 3.2e7, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := got[tt.key]
			if ok != tt.ok || v != tt.want {
				t.Errorf("%s = %v, %v; want %v, %v", tt.key, v, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	s := make([]int64, 100)
	for i := range s {
		s[i] = int64(i + 1)
	}
	tests := []struct {
		name string
		p    float64
		want int64
	}{
		{name: "p50", p: 50, want: 50},
		{name: "p99", p: 99, want: 99},
		{name: "p100", p: 100, want: 100},
		{name: "p0", p: 0, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(s, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %d, want %d", tt.p, got, tt.want)
			}
		})
	}
}
