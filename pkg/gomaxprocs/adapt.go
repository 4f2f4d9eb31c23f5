package gomaxprocs

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Config tunes Adapt; zero values take the defaults.
type Config struct {
	// Max is GOMAXPROCS while busy (default: its value when Adapt starts).
	Max int
	// Interval between two looks at the process's CPU use (default 1s).
	Interval time.Duration
	// Low and High are in cores: the process goes to one P after Calm
	// intervals in a row below Low (default 0.2, 3), and back to Max after
	// one interval above High (default 0.5; on one P it cannot use much
	// more than one core, so High must stay well below 1).
	Low, High float64
	Calm      int
	Log       *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Max <= 0 {
		c.Max = runtime.GOMAXPROCS(0)
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Low <= 0 {
		c.Low = 0.2
	}
	if c.High <= 0 {
		c.High = 0.5
	}
	if c.Calm <= 0 {
		c.Calm = 3
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Adapt watches the process's CPU use until ctx ends and sets GOMAXPROCS
// to 1 or Max accordingly (see the package documentation); it restores
// Max when it returns. It does nothing when the GOMAXPROCS environment
// variable is set or Max is 1.
func Adapt(ctx context.Context, cfg Config) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	cfg = cfg.withDefaults()
	if cfg.Max <= 1 {
		return
	}
	defer runtime.GOMAXPROCS(cfg.Max)
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	s := state{procs: runtime.GOMAXPROCS(0)}
	lastCPU, lastAt := cpuTime(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cpu, at := cpuTime(), time.Now()
		used := (cpu - lastCPU).Seconds() / at.Sub(lastAt).Seconds()
		lastCPU, lastAt = cpu, at
		if s.next(cfg, used) {
			runtime.GOMAXPROCS(s.procs)
			cfg.Log.Debug("GOMAXPROCS changed", "gomaxprocs", s.procs, "cpuCores", used)
		}
	}
}

// state is Adapt's decision state.
type state struct {
	procs int // the current GOMAXPROCS
	calm  int // intervals in a row below Low
}

// next takes one interval's CPU use in cores and reports whether procs
// changed.
func (s *state) next(cfg Config, used float64) bool {
	switch {
	case used > cfg.High:
		s.calm = 0
		if s.procs != cfg.Max {
			s.procs = cfg.Max
			return true
		}
	case used < cfg.Low:
		s.calm++
		if s.calm >= cfg.Calm && s.procs != 1 {
			s.procs = 1
			return true
		}
	default:
		s.calm = 0
	}
	return false
}

// cpuTime is the CPU the process used so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
