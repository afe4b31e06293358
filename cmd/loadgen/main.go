package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "floor-server" {
		err = runFloorServer(os.Args[2:])
	} else {
		err = runMain(os.Args[1:])
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// defaultPhases is every phase, in the order they run.
const defaultPhases = "gateway,floor,revocation,history,resume,inbound"

// pinnedEnv marks a loadgen that already re-executed itself under taskset.
const pinnedEnv = "LOADGEN_PINNED_CPU"

func runMain(args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	prof := fs.String("profile", "small", "load profile: small | full")
	gw := fs.String("gateway", "bin/gateway", "gateway binary")
	out := fs.String("out", "bench-results", "directory for <profile>.json and server logs")
	phases := fs.String("phases", defaultPhases, "comma-separated phases to run")
	noPin := fs.Bool("no-pin", false, "do not pin servers to core 0 and the generator to core 1")
	worker := fs.String("worker", "bin/worker", "worker binary (cmd/worker) for the inbound phase")
	inWorkers := fs.Int("inbound-workers", 0, "worker processes in the inbound phase (0: the profile's)")
	inProf := fs.String("inbound-cpuprofile", "", "write a CPU profile of the gateway over one more round-trip step at the peak's concurrency to this file")
	profDir := fs.String("profile-dir", "", "write CPU profiles of the gateway during the handshake and fan-out phases, of gateways A and B during the revocations, and of the history-on and history-off gateways during their publishes, of each repetition to this directory")
	reps := fs.Int("reps", 3, "repetitions of the whole run (fresh servers each); goals are judged on the median")
	stormProf := fs.String("storm-cpuprofile", "", "write a CPU profile of the gateway the resume storm reconnects to, over the storm, to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := profileByName(*prof)
	if err != nil {
		return err
	}
	gwBin, err := filepath.Abs(*gw)
	if err != nil {
		return err
	}
	if _, err := os.Stat(gwBin); err != nil {
		return fmt.Errorf("gateway binary: %w (run make build, or pass -gateway)", err)
	}
	workerBin, err := filepath.Abs(*worker)
	if err != nil {
		return err
	}
	phaseList := *phases
	if _, err := os.Stat(workerBin); err != nil && slices.Contains(strings.Split(phaseList, ","), "inbound") {
		if *phases != defaultPhases {
			return fmt.Errorf("worker binary: %w (go build -o bin/worker ./cmd/worker, or pass -worker)", err)
		}
		fmt.Fprintf(os.Stderr, "loadgen: no worker binary at %s (go build -o bin/worker ./cmd/worker): skipping the inbound phase\n", workerBin)
		phaseList = strings.ReplaceAll(phaseList, ",inbound", "")
	}
	if *inWorkers == 0 {
		*inWorkers = p.InboundWorkers
	}
	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			return err
		}
	}
	if *reps < 1 || *reps > 20 {
		return fmt.Errorf("-reps must be 1-20; got %d", *reps)
	}
	if *inWorkers < 1 {
		return fmt.Errorf("-inbound-workers must be at least 1; got %d", *inWorkers)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Pin: re-execute under "taskset -c 1" once; servers go to core 0.
	pinned := "none (fewer than 2 cores or no taskset)"
	serverCPU := ""
	if ts, lerr := exec.LookPath("taskset"); lerr == nil && !*noPin {
		if os.Getenv(pinnedEnv) == "" && runtime.NumCPU() >= 2 {
			env := append(os.Environ(), pinnedEnv+"=1")
			return syscall.Exec(ts, append([]string{"taskset", "-c", "1", self}, args...), env)
		}
		if os.Getenv(pinnedEnv) != "" {
			pinned, serverCPU = "servers (gateway, redis, floor) on core 0, loadgen on core 1", "0"
		}
	}
	nofile, err := raiseNoFile()
	if err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	need := p.MemLevels[len(p.MemLevels)-1] + 200
	if nofile < uint64(need) {
		return fmt.Errorf("open-file limit %d < %d needed by profile %s", nofile, need, p.Name)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	rep := report{Profile: p}
	failed := false
	for i := range *reps {
		if ctx.Err() != nil {
			break
		}
		logf("repetition %d of %d", i+1, *reps)
		r := &runner{
			phases: phaseList, stormProfile: *stormProf, inboundProfile: *inProf, inboundWorkers: *inWorkers,
			p: p, gatewayBin: gwBin, workerBin: workerBin, self: self, serverCPU: serverCPU,
			logDir: filepath.Join(*out, "logs", fmt.Sprintf("rep%d", i+1)), d: newDialers(10 * time.Second),
			secret: randHex(32), encKey: randHex(32), logf: logf,
			profileDir: *profDir, rep: i + 1,
		}
		noise := startNoise()
		res := &results{Profile: p, Machine: machineInfo(pinned, nofile), Started: time.Now()}
		r.res = res
		if err := r.run(ctx); err != nil {
			res.Errors = append(res.Errors, err.Error())
			r.logf("run failed: %v", err)
		}
		r.stopAll()
		res.DurationSec = time.Since(res.Started).Seconds()
		res.Machine.LoadEnd = loadAvg()
		res.judge()
		fmt.Printf("\n---- repetition %d of %d ----", i+1, *reps)
		res.printTable(os.Stdout)
		rep.Reps = append(rep.Reps, repetition{results: res, OthersPctCore: noise.othersPctCore()})
		failed = failed || len(res.Errors) > 0
	}
	rep.Summary = summarizeGoals(rep.Reps)
	printSummary(os.Stdout, rep.Reps, rep.Summary)
	path, err := rep.writeJSON(*out)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s (server logs in %s)\n", path, filepath.Join(*out, "logs"))
	if failed || len(rep.Reps) < *reps {
		return errors.New("run incomplete; see errors above")
	}
	return nil
}

// run is the whole measurement sequence.
func (r *runner) run(ctx context.Context) error {
	p, res := r.p, r.res
	r.logf("starting redis-server")
	if err := r.startRedis(ctx); err != nil {
		return err
	}
	r.logf("starting gateway A")
	a, err := r.startGateway(ctx, "gw-a")
	if err != nil {
		return err
	}
	defer a.api.close()
	n := max(p.MemLevels[len(p.MemLevels)-1], p.HistConns, p.StormConns, p.InboundConns)
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u-%06d", i)
	}
	r.logf("creating %d sessions through the server API", n)
	sess, err := a.api.createSessions(ctx, users, 32)
	if err != nil {
		return fmt.Errorf("create sessions: %w", err)
	}
	tokens := make([]string, n)
	for i, s := range sess {
		tokens[i] = s.Token
	}

	if r.enabled("gateway") {
		r.logf("gateway A: memory, heartbeats, fan-out, handshakes")
		res.Gateway, err = r.side(ctx, a, true, users, tokens)
		if err != nil {
			return fmt.Errorf("gateway phase: %w", err)
		}
	}
	if r.enabled("floor") {
		r.logf("floor server: memory, fan-out, upgrades")
		fl, err := r.startFloor(ctx, "floor")
		if err != nil {
			return err
		}
		res.Floor, err = r.side(ctx, fl, false, users, nil)
		fl.api.close()
		fl.p.stop(5 * time.Second)
		if err != nil {
			return fmt.Errorf("floor phase: %w", err)
		}
	}
	if r.enabled("revocation") {
		others := tokens[:min(p.RevokeOthers, len(tokens))]
		for len(others) < p.RevokeOthers {
			others = append(others, tokens[len(others)%len(tokens)])
		}
		res.Revocation, res.RedisHop, err = r.revocation(ctx, a, others)
		if err != nil {
			return fmt.Errorf("revocation phase: %w", err)
		}
	}
	if r.enabled("history") {
		h, err := r.historyPhase(ctx, users, tokens)
		res.History = &h
		if err != nil {
			return fmt.Errorf("history phase: %w", err)
		}
	}
	if r.enabled("resume") {
		s, err := r.resumePhase(ctx, a.api, users, tokens)
		res.Resume = &s
		if err != nil {
			return fmt.Errorf("resume phase: %w", err)
		}
	}
	if r.enabled("inbound") {
		in, err := r.inboundPhase(ctx, users, tokens, []int{a.p.pid()})
		res.Inbound = &in
		if err != nil {
			return fmt.Errorf("inbound phase: %w", err)
		}
	}
	return nil
}
