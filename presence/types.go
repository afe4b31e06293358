package presence

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxPageSize is the most users one [Tracker.Page] call returns.
const MaxPageSize = 1000

// Counts is what one instance holds of one user.
type Counts struct {
	// Conns is the number of open connections.
	Conns int
	// Sessions is the number of distinct sessions among them.
	Sessions int
}

// encode is c's form in a Redis hash field: "conns:sessions".
func (c Counts) encode() string {
	return strconv.Itoa(c.Conns) + ":" + strconv.Itoa(c.Sessions)
}

// decodeCounts parses [Counts.encode]'s output.
func decodeCounts(s string) (Counts, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return Counts{}, fmt.Errorf("presence: malformed counts %q", s)
	}
	c, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || c < 0 || n < 0 {
		return Counts{}, fmt.Errorf("presence: malformed counts %q", s)
	}
	return Counts{Conns: c, Sessions: n}, nil
}

// Change is the new state of one user on the writing instance; zero
// Counts mean the user has no connection there any more.
type Change struct {
	UserID string
	Counts
}

// Placement is one instance's share of a user.
type Placement struct {
	Instance string
	Counts
}

// User is one online user across the alive instances.
type User struct {
	UserID string
	// Instances are the alive instances holding the user, sorted by id.
	Instances []Placement
}

// Total sums the user's counts over its instances.
func (u User) Total() Counts {
	var t Counts
	for _, p := range u.Instances {
		t.Conns += p.Conns
		t.Sessions += p.Sessions
	}
	return t
}

// Transition is a user going online (from no connection on any instance
// to at least one) or offline (back to none), as decided atomically on the
// user's record.
type Transition struct {
	UserID string
	Online bool
	// Seq increases by one with every transition of the user, cluster-wide
	// (it survives while the user's record does: see docs/PRESENCE.md). An
	// application that keeps the highest Seq it applied per user and
	// ignores lower ones ends in the right state whatever order events
	// arrive in.
	Seq int64
	// Reason is "connect", "disconnect" or "instance gone".
	Reason string
}

// Store keeps presence records. *Redis and *Memory implement it; all
// methods are safe for concurrent use.
type Store interface {
	// Write records changes of users on instance inst and returns the
	// transitions they caused.
	Write(ctx context.Context, inst string, changes []Change) ([]Transition, error)
	// Refresh keeps inst's records alive for the store's TTL and reports
	// whether they still existed; false means they were purged or expired
	// and the caller must write its whole state again with Replace.
	Refresh(ctx context.Context, inst string) (bool, error)
	// Replace drops inst's records and writes all as its whole state,
	// returning the transitions that caused (users whose record had lost
	// inst come back online).
	Replace(ctx context.Context, inst string, all []Change) ([]Transition, error)
	// Purge removes every record of inst and returns the offline
	// transitions of the users it was the last instance of. Idempotent:
	// several instances may purge the same one.
	Purge(ctx context.Context, inst string) ([]Transition, error)
	// Stale returns the instances whose last Refresh is older than older
	// (by the store's clock).
	Stale(ctx context.Context, older time.Duration) ([]string, error)
	// User returns where userID has connections, on every instance with a
	// record (the caller filters the alive ones).
	User(ctx context.Context, userID string) ([]Placement, error)
	// Page returns up to limit users after the user id after (""
	// starts), in byte order, with their counts on instances; only the
	// listed instances are read. next is the user id to continue after,
	// "" at the end; a page may hold fewer than limit users (some left
	// while it was read) and still have a next.
	Page(ctx context.Context, instances []string, after string, limit int) (users []User, next string, err error)
}
