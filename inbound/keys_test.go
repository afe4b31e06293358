package inbound

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"testing"
)

func TestPartitionIsFNV1a(t *testing.T) {
	for _, u := range []string{"", "alice", "bob", "ユーザー"} {
		h := fnv.New32a()
		h.Write([]byte(u))
		if got, want := Partition(u, 16), int(h.Sum32()%16); got != want {
			t.Errorf("Partition(%q, 16) = %d, want %d", u, got, want)
		}
	}
	if Partition("alice", 0) != 0 || Partition("alice", 1) != 0 {
		t.Error("one partition (or fewer) must be partition 0")
	}
}

// Partitions are in different Cluster slots (the {n} hash tag), so they
// spread over the nodes; the dead letters are in a slot of their own.
func TestPartitionKeysSpreadOverSlots(t *testing.T) {
	rdb := newClient(t, startCluster(t).Addr())
	slots := map[int64]bool{}
	for p := range DefaultPartitions {
		k := partitionKey(DefaultPrefix, p)
		if want := "sessiongate:in:{" + strconv.Itoa(p) + "}"; k != want {
			t.Fatalf("partition key %q, want %q", k, want)
		}
		slot, err := rdb.ClusterKeySlot(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
	}
	if len(slots) != DefaultPartitions {
		t.Fatalf("%d partitions in %d slots", DefaultPartitions, len(slots))
	}
	if deadKey(DefaultPrefix) != "sessiongate:in:dead" {
		t.Fatalf("dead key %q", deadKey(DefaultPrefix))
	}
}

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		p        int
		entry    string
		ok       bool
	}{
		{"valid", "3-1732870000000-0", 3, "1732870000000-0", true},
		{"partition zero", "0-1-2", 0, "1-2", true},
		{"last partition", "15-1-0", 15, "1-0", true},
		{"past the partitions", "16-1-0", 0, "", false},
		{"negative", "-1-1-0", 0, "", false},
		{"leading zero", "03-1-0", 0, "", false},
		{"plus sign", "+3-1-0", 0, "", false},
		{"no entry", "3", 0, "", false},
		{"half an entry", "3-1", 0, "", false},
		{"entry not numeric", "3-a-0", 0, "", false},
		{"empty", "", 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, e, err := parseID(tc.id, 16)
			if tc.ok && (err != nil || p != tc.p || e != tc.entry) {
				t.Fatalf("parseID(%q) = %d, %q, %v; want %d, %q", tc.id, p, e, err, tc.p, tc.entry)
			}
			if !tc.ok && !errors.Is(err, ErrBadID) {
				t.Fatalf("parseID(%q) = %d, %q, %v; want ErrBadID", tc.id, p, e, err)
			}
		})
	}
}

func FuzzParseID(f *testing.F) {
	f.Add("3-1732870000000-0")
	f.Add("-1-1-0")
	f.Add("99999999999999999999-1-0")
	f.Fuzz(func(t *testing.T, id string) {
		p, e, err := parseID(id, 16)
		if err != nil {
			return
		}
		if p < 0 || p >= 16 || messageID(p, e) != id {
			t.Fatalf("parseID(%q) = %d, %q: not a round trip", id, p, e)
		}
	})
}
