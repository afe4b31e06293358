package main

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/inbound"
)

// The inbound floor's keys and group: partitions laid out like the
// queue's (<prefix>in:{n}), under the generator's own prefix.
const (
	floorInPrefix = "loadgen:floor:in:"
	floorGroup    = "floor"
	floorBatch    = 16 // XREADGROUP COUNT per stream, the worker's default Batch
)

func floorInKey(p int) string { return floorInPrefix + "{" + strconv.Itoa(p) + "}" }

// inboundFloor is the raw Redis floor of the inbound path: producers XADD
// a message the size of the gateway's queued message to its user's
// partition; when started, one Go consumer reads every partition with
// XREADGROUP (COUNT floorBatch, BLOCK) and XACKs each batch (one XACK per
// stream, pipelined).
type inboundFloor struct {
	rdb        *redis.Client // producers
	crdb       *redis.Client // the consumer's own connection
	users      []string
	partitions int
	jobs       chan floorJob
	wg         sync.WaitGroup
	cur        *atomic.Pointer[loadRun]
	// consumeErr is the consumer's first error.
	consumeErr atomic.Pointer[error]
}

type floorJob struct {
	r *loadRun
	k int64
}

// newInboundFloor starts producers goroutines (sending through rdb; the
// consumer reads through crdb, so it never waits for a connection of
// rdb's pool); stop them with close.
func newInboundFloor(rdb, crdb *redis.Client, users []string, partitions, producers int, cur *atomic.Pointer[loadRun]) *inboundFloor {
	f := &inboundFloor{rdb: rdb, crdb: crdb, users: users, partitions: partitions, jobs: make(chan floorJob, producers), cur: cur}
	for range producers {
		f.wg.Go(f.produce)
	}
	return f
}

func (f *inboundFloor) close() {
	close(f.jobs)
	f.wg.Wait()
}

// send hands message k to a producer (there are as many as messages in
// flight, so it does not wait in a closed loop).
func (f *inboundFloor) send(ctx context.Context, r *loadRun, k int64) error {
	r.markSent(k, time.Now().UnixNano())
	select {
	case f.jobs <- floorJob{r, k}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// floorHandle and floorConn are sender fields of the gateway's size.
const (
	floorHandle = "Zm9yLWxvYWRnZW4tZmxvb3ItbWVzc2FnZXMtb25seS0"
	floorConn   = "01JBENCHFLOORCONN000000000"
)

// floorMessage is message k of run r as the gateway would queue it.
func (f *inboundFloor) floorMessage(r *loadRun, k int64) ([]byte, int) {
	u := f.users[int(k%int64(len(f.users)))]
	ref := string(msgRef(nil, r.id, k))
	data := `{"text":"hello from the load generator","k":` + strconv.FormatInt(k, 10) + `}`
	b, _ := json.Marshal(inbound.Message{ClientID: ref, Event: "echo", Data: json.RawMessage(data),
		UserID: u, Handle: floorHandle, ConnID: floorConn, Instance: "gw-inbound", Received: time.Now().UTC()})
	return b, inbound.Partition(u, f.partitions)
}

func (f *inboundFloor) produce() {
	for j := range f.jobs {
		b, p := f.floorMessage(j.r, j.k)
		err := f.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: floorInKey(p), Values: []any{"m", b}}).Err()
		if err != nil {
			j.r.fail(j.k, "xadd: "+err.Error())
			continue
		}
		j.r.ack(j.k, time.Now().UnixNano())
	}
}

// ensureGroups creates the floor's group on every partition (from the
// streams' ends).
func (f *inboundFloor) ensureGroups(ctx context.Context) error {
	for p := range f.partitions {
		err := f.rdb.XGroupCreateMkStream(ctx, floorInKey(p), floorGroup, "$").Err()
		if err != nil && !isBusyGroup(err) {
			return err
		}
	}
	return nil
}

func isBusyGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP")
}

// deleteKeys removes the floor's partitions (and their group).
func (f *inboundFloor) deleteKeys(ctx context.Context) error {
	keys := make([]string, f.partitions)
	for p := range keys {
		keys[p] = floorInKey(p)
	}
	return f.rdb.Del(ctx, keys...).Err()
}

// consume reads and acks until ctx ends; each message read completes its
// message ("reply") in the current run.
func (f *inboundFloor) consume(ctx context.Context) {
	streams := make([]string, 0, 2*f.partitions)
	for p := range f.partitions {
		streams = append(streams, floorInKey(p))
	}
	for range f.partitions {
		streams = append(streams, ">")
	}
	for ctx.Err() == nil {
		res, err := f.crdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: floorGroup, Consumer: "c1",
			Streams: streams, Count: floorBatch, Block: 100 * time.Millisecond}).Result()
		now := time.Now().UnixNano()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				f.consumeErr.CompareAndSwap(nil, &err)
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		r := f.cur.Load()
		for _, st := range res {
			for _, m := range st.Messages {
				s, _ := m.Values["m"].(string)
				run, k, ok := parseMsgRef(stringAfter([]byte(s), clientIDKey))
				if ok && r != nil && r.id == run {
					r.reply(k, now)
				}
			}
		}
		_, err = f.crdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, st := range res {
				ids := make([]string, len(st.Messages))
				for i, m := range st.Messages {
					ids[i] = m.ID
				}
				pipe.XAck(ctx, st.Stream, floorGroup, ids...)
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			f.consumeErr.CompareAndSwap(nil, &err)
		}
	}
}
