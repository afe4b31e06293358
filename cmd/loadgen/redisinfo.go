package main

import (
	"bufio"
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// cmdStat is one command's line of INFO commandstats.
type cmdStat struct {
	Calls int64
	Usec  int64
}

// parseCommandStats reads the "cmdstat_<name>:calls=N,usec=N,..." lines
// of INFO commandstats, by command name. Other lines are skipped.
func parseCommandStats(info string) map[string]cmdStat {
	out := map[string]cmdStat{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var st cmdStat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "calls":
				st.Calls = n
			case "usec":
				st.Usec = n
			}
		}
		out[name] = st
	}
	return out
}

// infoField returns one "name:value" field of an INFO answer as an
// integer, or 0.
func infoField(info, name string) int64 {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// redisCounters is a snapshot of redis-server's command counters.
type redisCounters struct {
	byCmd     map[string]cmdStat
	processed int64 // total_commands_processed: commands clients sent
}

func readRedisCounters(ctx context.Context, rdb *redis.Client) (redisCounters, error) {
	cs, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return redisCounters{}, err
	}
	st, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		return redisCounters{}, err
	}
	return redisCounters{byCmd: parseCommandStats(cs), processed: infoField(st, "total_commands_processed")}, nil
}

// redisDelta is what redis-server did between two snapshots: calls per
// command (commandstats counts the commands scripts run too), their
// execution time, and the commands clients sent. The INFO commands of
// the snapshots themselves are left out.
type redisDelta struct {
	Calls     int64            `json:"calls"`
	Usec      int64            `json:"usec"`
	Processed int64            `json:"commands_processed"`
	ByCommand map[string]int64 `json:"calls_by_command"`
}

func diffRedis(before, after redisCounters) redisDelta {
	d := redisDelta{ByCommand: map[string]int64{}}
	for name, a := range after.byCmd {
		if name == "info" {
			continue
		}
		b := before.byCmd[name]
		if n := a.Calls - b.Calls; n > 0 {
			d.ByCommand[name] = n
			d.Calls += n
			d.Usec += a.Usec - b.Usec
		}
	}
	// A command is counted once it has run, so "INFO stats" is not in its
	// own answer: the delta holds the "before" snapshot's INFO stats and
	// the "after" snapshot's INFO commandstats.
	d.Processed = max(0, after.processed-before.processed-2)
	return d
}
