package main

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// maxStepMessages bounds the messages one inbound step sends (the send
// times are kept per message).
const maxStepMessages = 1 << 21

// loadRun is one step of the inbound phase: messages numbered k = 0, 1, ...
// are sent, each acked (the gateway's ack, or XADD's answer on the floor)
// and, when a consumer runs, "replied" (the worker's echo.reply back at the
// client, or the floor consumer's read). Callbacks come from any goroutine.
type loadRun struct {
	id int
	// onAck: the ack completes a message (the consumer is not running);
	// else the reply does.
	onAck bool
	// warmAt is when the measured window starts (unix ns): latencies of
	// messages sent before it are not kept, completions before it not
	// counted in the rate.
	warmAt atomic.Int64
	sendAt []int64 // unix ns, atomic access

	sent, acked, replied, failed atomic.Int64

	// recMu guards the recorders against the step's end: callbacks hold
	// it shared while they record, the end takes it to freeze them
	// (frozen), so a late callback never writes while they are read.
	recMu            sync.RWMutex
	frozen           bool
	ackRec, replyRec *recorder

	// tokens holds one token per message that may be in flight (closed
	// loop); nil for a paced run.
	tokens chan struct{}

	mu   sync.Mutex
	errs map[string]int64
}

func newLoadRun(id int, onAck bool, conc int) *loadRun {
	r := &loadRun{
		id: id, onAck: onAck, sendAt: make([]int64, maxStepMessages),
		ackRec: newRecorder(maxStepMessages), replyRec: newRecorder(maxStepMessages),
		errs: map[string]int64{},
	}
	r.warmAt.Store(1<<63 - 1)
	if conc > 0 {
		r.tokens = make(chan struct{}, conc)
		for range conc {
			r.tokens <- struct{}{}
		}
	}
	return r
}

// release gives back a closed loop's token.
func (r *loadRun) release() {
	if r.tokens != nil {
		select {
		case r.tokens <- struct{}{}:
		default:
		}
	}
}

// sentAt is message k's send time, or 0 when k is not a message of r.
func (r *loadRun) sentAt(k int64) int64 {
	if k < 0 || k >= int64(len(r.sendAt)) {
		return 0
	}
	return atomic.LoadInt64(&r.sendAt[k])
}

// markSent records message k's send time; call it just before sending.
func (r *loadRun) markSent(k, now int64) {
	atomic.StoreInt64(&r.sendAt[k], now)
	r.sent.Add(1)
}

// ack records message k's ack at now.
func (r *loadRun) ack(k, now int64) {
	t := r.sentAt(k)
	if t == 0 {
		return
	}
	r.recMu.RLock()
	if !r.frozen && t >= r.warmAt.Load() {
		r.ackRec.add(now - t)
	}
	r.acked.Add(1)
	r.recMu.RUnlock()
	if r.onAck {
		r.release()
	}
}

// reply records message k's reply (round trip done) at now.
func (r *loadRun) reply(k, now int64) {
	t := r.sentAt(k)
	if t == 0 {
		return
	}
	r.recMu.RLock()
	if !r.frozen && t >= r.warmAt.Load() {
		r.replyRec.add(now - t)
	}
	r.replied.Add(1)
	r.recMu.RUnlock()
	if !r.onAck {
		r.release()
	}
}

// fail records that message k was refused with code.
func (r *loadRun) fail(k int64, code string) {
	r.failed.Add(1)
	r.mu.Lock()
	r.errs[code]++
	r.mu.Unlock()
	if r.sentAt(k) != 0 {
		r.release()
	}
}

// completed is the count of messages done (acked, or replied) or refused.
func (r *loadRun) completed() int64 {
	if r.onAck {
		return r.acked.Load() + r.failed.Load()
	}
	return r.replied.Load() + r.failed.Load()
}

// doneCount is the count that makes the step's rate: acks or replies.
func (r *loadRun) doneCount() int64 {
	if r.onAck {
		return r.acked.Load()
	}
	return r.replied.Load()
}

// sender sends message k of run r (it calls r.markSent).
type sender interface {
	send(ctx context.Context, r *loadRun, k int64) error
}

// inboundStep is one measured step: a closed loop (Conc messages in
// flight) or a paced open loop (Rate messages per second).
type inboundStep struct {
	Mode string  `json:"mode"`
	Conc int     `json:"in_flight,omitempty"`
	Rate float64 `json:"target_rate,omitempty"`
	// PerClientRate is Rate (or the measured rate) divided by the
	// connections: what one connection sent per second.
	PerClientRate float64 `json:"per_connection_rate,omitempty"`
	Sent          int64   `json:"sent"`
	Acked         int64   `json:"acked"`
	Replied       int64   `json:"replied"`
	// NotDone is messages sent and neither completed nor refused when
	// the step ended (after its drain wait).
	NotDone int64            `json:"not_done"`
	Errors  map[string]int64 `json:"errors,omitempty"`
	// PerSec is completions (acks, or replies) per second over the
	// measured window; AckPerSec acks per second over it.
	PerSec    float64 `json:"per_sec"`
	AckPerSec float64 `json:"acks_per_sec"`
	SendToAck latency `json:"send_to_ack"`
	// SendToReply is the round trip: send to echo.reply (gateway) or to
	// the floor consumer's read.
	SendToReply latency `json:"send_to_reply"`
	// SendLag is how late the pacer sent, against the schedule.
	SendLag latency    `json:"send_lag,omitempty"`
	CPU     inboundCPU `json:"cpu"`
	// MicrosPerMsg is the servers' CPU (gateway, workers, redis-server;
	// floor: redis-server) per message done in the window.
	MicrosPerMsg float64 `json:"server_cpu_us_per_msg"`
	// PerMsg splits it by process, in µs per message done.
	PerMsg cpuPerMsg   `json:"cpu_us_per_msg"`
	Redis  *redisDelta `json:"redis,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// stepSpec is how to run one step.
type stepSpec struct {
	mode    string
	onAck   bool
	conc    int     // closed loop when > 0
	rate    float64 // paced when conc == 0
	warm    time.Duration
	measure time.Duration
	conns   int // connections the messages are spread over (per-client rate)
}

// runStep sends through s per spec and measures. meter, when not nil,
// is started at the window's start and read at its end.
func runStep(ctx context.Context, id int, s sender, spec stepSpec, meter func() func() inboundCPU, cur *atomic.Pointer[loadRun]) inboundStep {
	out := inboundStep{Mode: spec.mode, Conc: spec.conc, Rate: spec.rate}
	r := newLoadRun(id, spec.onAck, spec.conc)
	cur.Store(r)
	defer cur.Store(nil)

	var lagRec *recorder
	if spec.conc == 0 {
		lagRec = newRecorder(maxStepMessages)
	}
	start := time.Now()
	warmEnd := start.Add(spec.warm)
	end := warmEnd.Add(spec.measure)
	var (
		stop    func() inboundCPU
		done0   int64
		acks0   int64
		sendErr error
		k       int64
	)
	sctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	warmed := false
	openWindow := func(now time.Time) {
		warmed = true
		r.warmAt.Store(now.UnixNano())
		done0, acks0 = r.doneCount(), r.acked.Load()
		if meter != nil {
			stop = meter()
		}
	}
	for sendErr == nil && sctx.Err() == nil && k < maxStepMessages {
		if !warmed && !time.Now().Before(warmEnd) {
			openWindow(time.Now())
		}
		if spec.conc > 0 {
			select {
			case <-r.tokens:
			case <-sctx.Done():
				continue
			}
		} else {
			due := start.Add(time.Duration(float64(k) / spec.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				time.Sleep(min(wait, time.Until(end)))
				continue
			}
			lagRec.add(int64(time.Since(due)))
		}
		sendErr = s.send(ctx, r, k)
		k++
	}
	if !warmed {
		openWindow(time.Now())
	}
	wall := max(time.Since(time.Unix(0, r.warmAt.Load())), time.Millisecond)
	doneN, acksN := r.doneCount()-done0, r.acked.Load()-acks0
	if stop != nil {
		out.CPU = stop()
	}
	// Drain: the messages in flight complete (or not) within 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for r.completed() < r.sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	r.recMu.Lock()
	r.frozen = true
	r.recMu.Unlock()
	out.Sent, out.Acked, out.Replied = r.sent.Load(), r.acked.Load(), r.replied.Load()
	out.NotDone = out.Sent - r.completed()
	r.mu.Lock()
	if len(r.errs) > 0 {
		out.Errors = maps.Clone(r.errs)
	}
	r.mu.Unlock()
	out.PerSec = float64(doneN) / wall.Seconds()
	out.AckPerSec = float64(acksN) / wall.Seconds()
	out.SendToAck = summarize(r.ackRec.sorted())
	out.SendToReply = summarize(r.replyRec.sorted())
	if lagRec != nil {
		out.SendLag = summarize(lagRec.sorted())
	}
	rate := out.PerSec
	if spec.conc == 0 {
		rate = spec.rate
	}
	out.PerClientRate = rate / float64(max(spec.conns, 1))
	if stop != nil && doneN > 0 {
		out.MicrosPerMsg = 1e6 * out.CPU.serversSec() / float64(doneN)
		per := func(sec float64) float64 { return 1e6 * sec / float64(doneN) }
		out.PerMsg = cpuPerMsg{Gateway: per(out.CPU.GatewaySec), Workers: per(out.CPU.WorkersSec),
			Redis: per(out.CPU.RedisSec), OtherGateways: per(out.CPU.OtherGatewaysSec), Loadgen: per(out.CPU.LoadgenSec)}
	}
	switch {
	case sendErr != nil:
		out.Error = fmt.Sprintf("send: %v", sendErr)
	case out.NotDone > 0:
		out.Error = fmt.Sprintf("%d of %d messages not done 10 s after the step", out.NotDone, out.Sent)
	}
	return out
}

// cpuPerMsg is CPU µs per message done, by process.
type cpuPerMsg struct {
	Gateway       float64 `json:"gateway"`
	Workers       float64 `json:"workers"`
	Redis         float64 `json:"redis"`
	OtherGateways float64 `json:"other_gateways"`
	Loadgen       float64 `json:"loadgen"`
}

// inboundCPU is the CPU of the inbound path's processes over a window.
type inboundCPU struct {
	GatewaySec float64 `json:"gateway_cpu_s,omitempty"`
	WorkersSec float64 `json:"workers_cpu_s,omitempty"`
	RedisSec   float64 `json:"redis_cpu_s"`
	// OtherGatewaysSec is the run's other gateway instances (A, idle but
	// subscribed to the event channel: each decodes every reply too); not
	// in serversSec, not in the others.
	OtherGatewaysSec float64 `json:"other_gateways_cpu_s,omitempty"`
	LoadgenSec       float64 `json:"loadgen_cpu_s"`
	WallSec          float64 `json:"wall_s"`
	// ServersPctCore is gateway + workers + redis-server, in percent of
	// one core; OthersPctCore the rest of the machine's CPU (neither
	// those nor the generator).
	ServersPctCore float64 `json:"servers_cpu_pct_of_core"`
	LoadgenPctCore float64 `json:"loadgen_cpu_pct_of_core"`
	OthersPctCore  float64 `json:"others_cpu_pct_of_core"`
}

func (c inboundCPU) serversSec() float64 { return c.GatewaySec + c.WorkersSec + c.RedisSec }

// inboundMeter returns a meter of the gateway (0: none), the
// redis-server, the workers' processes and the run's other gateways,
// with this process as the generator.
func inboundMeter(gatewayPid, redisPid int, workerPids, otherPids []int) func() func() inboundCPU {
	return func() func() inboundCPU {
		pids := append([]int{0, redisPid, gatewayPid}, workerPids...)
		pids = append(pids, otherPids...)
		m := startCPU(pids...)
		return func() inboundCPU {
			v, wall, busy := m.stopAll()
			c := inboundCPU{LoadgenSec: v[0], RedisSec: v[1], WallSec: wall.Seconds()}
			if gatewayPid != 0 {
				c.GatewaySec = v[2]
			}
			for _, w := range v[3 : 3+len(workerPids)] {
				c.WorkersSec += w
			}
			for _, o := range v[3+len(workerPids):] {
				c.OtherGatewaysSec += o
			}
			c.ServersPctCore = 100 * c.serversSec() / c.WallSec
			c.LoadgenPctCore = 100 * c.LoadgenSec / c.WallSec
			c.OthersPctCore = max(0, 100*(busy-c.serversSec()-c.OtherGatewaysSec-c.LoadgenSec)/c.WallSec)
			return c
		}
	}
}

// peakOf is the step with the highest rate.
func peakOf(steps []inboundStep) (inboundStep, bool) {
	best, ok := inboundStep{}, false
	for _, s := range steps {
		if s.Error == "" && (!ok || s.PerSec > best.PerSec) {
			best, ok = s, true
		}
	}
	return best, ok
}
