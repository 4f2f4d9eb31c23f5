package obs

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/logbridge/logbridge/pkg/version"
)

// LogConfig selects the log format and level.
type LogConfig struct {
	Level  string
	Format string
}

// RegisterFlags adds --log-level and --log-format.
func (c *LogConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.Format, "log-format", "text", "log format: text or json")
}

// NewLogger builds the logger the settings describe.
func (c LogConfig) NewLogger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log-level %q: use debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(c.Format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log-format %q: use text or json", c.Format)
	}
}

// NewRegistry returns a registry with the Go and process collectors and
// logbridge_build_info.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), BuildInfo())
	return reg
}

// BuildInfo is the gauge logbridge_build_info, always 1, whose labels
// describe the binary (pkg/version): version, revision (the commit),
// goversion, record_contract and metadata_version — the names Prometheus'
// own build_info metrics use where one exists, so that dashboards can join
// on them (e.g. count by (version) to watch a rolling upgrade).
func BuildInfo() prometheus.Collector {
	i := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "logbridge_build_info",
		Help: "Always 1; the labels describe the running binary (version, commit, Go version, record contract, metadata version).",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Commit, "goversion": i.GoVersion,
			"record_contract": i.RecordContract, "metadata_version": strconv.Itoa(i.Metadata)},
	})
	g.Set(1)
	return g
}
