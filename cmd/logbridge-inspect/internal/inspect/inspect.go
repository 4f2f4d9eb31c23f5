package inspect

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	lbconfig "github.com/logbridge/logbridge/pkg/config"
	"github.com/logbridge/logbridge/pkg/kafkax"
	"github.com/logbridge/logbridge/pkg/verify"
	"github.com/logbridge/logbridge/pkg/version"
	"github.com/logbridge/logbridge/schema"
)

// config is the parsed command line.
type config struct {
	kafkaOpts   []kgo.Opt // brokers, client id, TLS and SASL (kafkax.Config)
	topics      []string
	topicRegex  *regexp.Regexp
	partition   int
	start       startKind
	fromOffset  int64
	fromTime    time.Time
	limit       int
	ns          string
	ops         map[schema.Op]bool
	key         bson.Raw
	registryCfg schema.RegistryConfig
	follow      bool
}

// ErrInvalidSettings wraps every error about the command line (the command
// exits 2 on it, 1 on a runtime error).
var ErrInvalidSettings = errors.New("invalid settings")

type startKind int

const (
	startBeginning startKind = iota
	startOffset
	startTime
)

const usageText = `Usage: logbridge-inspect --topic T[,T...] | --topic-regex RE [flags]

Prints logbridge records (any value encoding: Confluent Avro, Avro
single-object, JSON) as one line of canonical Extended JSON each:

  {"topic":"lb.shop.orders","partition":{"$numberInt":"0"},"offset":{"$numberLong":"42"},
   "timestamp":{"$date":...},"key":{"_id":...},"encoding":"avro-single-object",
   "value":{"op":"insert","ns":{...},"fullDocument":{...},...}}

A record that cannot be decoded is printed with an "error" field (and its
value as binary) unless --ns or --op filters are given. Reads committed
records only (isolation read_committed): aborted transactions never show.
Without --follow it stops at the end offsets current when it started.

Examples:
  logbridge-inspect --kafka-brokers localhost:9092 --topic lb.shop.orders --from-beginning
  logbridge-inspect --topic-regex '^lb\.shop\.' --op update,delete --follow
  logbridge-inspect --topic lb.shop.orders --key '{"_id":{"$oid":"65a0b1c2d3e4f5a6b7c8d9e0"}}'
  logbridge-inspect --topic lb.shop.orders --from-offset -10 --partition 3

Exit status: 0 when done, 1 on a runtime error, 2 on invalid settings.

Flags:
`

// parseArgs parses args into a config; it writes usage to stderr for --help
// and returns flag.ErrHelp.
func parseArgs(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("logbridge-inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	// The same --kafka-* flags (TLS, SASL, password file) and environment
	// variables (LOGBRIDGE_INSPECT_KAFKA_*) as the connectors; no default broker.
	var kafka kafkax.Config
	kafka.RegisterFlags(fs, "logbridge-inspect")
	var (
		brokers     = fs.String("brokers", "", "deprecated name of --kafka-brokers")
		topics      = fs.String("topic", "", "comma-separated topics to read")
		topicRegex  = fs.String("topic-regex", "", "read every topic matching this regular expression")
		partition   = fs.Int("partition", -1, "read only this partition (-1: all)")
		fromOffset  = fs.Int64("from-offset", 0, "start at this offset; negative: that many records before the end")
		fromTime    = fs.String("from-time", "", "start at the first record at or after this RFC 3339 time")
		fromBegin   = fs.Bool("from-beginning", false, "start at the beginning of each partition (the default)")
		limit       = fs.Int("limit", 0, "stop after printing this many records (0: no limit)")
		ns          = fs.String("ns", "", `only events of this namespace ("db.coll", or "db" for database-level events)`)
		ops         = fs.String("op", "", "only these comma-separated operations (snapshot,insert,update,replace,delete,ddl,marker,heartbeat,unknown)")
		key         = fs.String("key", "", `only records whose key is this document key, as Extended JSON (numbers match by value)`)
		registryURL = fs.String("registry-url", "", "deprecated name of --schema-registry-url")
		follow      = fs.Bool("follow", false, "keep reading new records until interrupted")
	)
	var registry schema.RegistryConfig
	registry.RegisterFlags(fs) // the same --schema-registry-* flags as the connectors
	version.RegisterFlag(fs)   // answered by main before parsing; listed in --help
	if err := lbconfig.Parse(fs, "LOGBRIDGE_INSPECT", args); err != nil {
		return nil, err
	}
	if registry.URL == "" {
		registry.URL = *registryURL
	}
	if len(kafka.Brokers) == 0 && *brokers != "" {
		for _, b := range strings.Split(*brokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				kafka.Brokers = append(kafka.Brokers, b)
			}
		}
	}
	if err := kafka.ResolvePassword(); err != nil {
		return nil, err
	}
	kopts, err := kafka.ClientOpts() // validates
	if err != nil {
		return nil, err
	}
	if err := registry.Validate(); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}
	cfg := &config{
		partition: *partition, limit: *limit, ns: *ns, registryCfg: registry, follow: *follow,
		fromOffset: *fromOffset,
	}
	cfg.kafkaOpts = kopts
	for _, t := range strings.Split(*topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.topics = append(cfg.topics, t)
		}
	}
	if *topicRegex != "" {
		re, err := regexp.Compile(*topicRegex)
		if err != nil {
			return nil, fmt.Errorf("--topic-regex: %w", err)
		}
		cfg.topicRegex = re
	}
	if (len(cfg.topics) == 0) == (cfg.topicRegex == nil) {
		return nil, errors.New("give exactly one of --topic and --topic-regex (see --help)")
	}
	if cfg.partition < -1 || cfg.partition > math.MaxInt32 {
		return nil, fmt.Errorf("--partition %d out of range", cfg.partition)
	}
	if cfg.limit < 0 {
		return nil, errors.New("--limit must not be negative")
	}
	var starts []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "from-offset":
			cfg.start = startOffset
			starts = append(starts, "--"+f.Name)
		case "from-time":
			cfg.start = startTime
			starts = append(starts, "--"+f.Name)
		case "from-beginning":
			if *fromBegin {
				starts = append(starts, "--"+f.Name)
			}
		}
	})
	if len(starts) > 1 {
		return nil, fmt.Errorf("%s are mutually exclusive", strings.Join(starts, " and "))
	}
	if cfg.start == startTime {
		t, err := time.Parse(time.RFC3339, *fromTime)
		if err != nil {
			return nil, fmt.Errorf("--from-time: %w", err)
		}
		cfg.fromTime = t
	}
	if *ops != "" {
		cfg.ops = map[schema.Op]bool{}
		for _, o := range strings.Split(*ops, ",") {
			op := schema.Op(strings.TrimSpace(o))
			switch op {
			case schema.OpSnapshot, schema.OpInsert, schema.OpUpdate, schema.OpReplace, schema.OpDelete,
				schema.OpDDL, schema.OpMarker, schema.OpHeartbeat, schema.OpUnknown:
				cfg.ops[op] = true
			default:
				return nil, fmt.Errorf("--op: unknown operation %q", op)
			}
		}
	}
	if *key != "" {
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(*key), false, &raw); err != nil {
			return nil, fmt.Errorf("--key: not an Extended JSON document: %w", err)
		}
		cfg.key = raw
	}
	return cfg, nil
}

// Run runs the inspector with the given command-line arguments (without the
// program name), printing records to stdout and diagnostics to stderr. It
// returns flag.ErrHelp after printing usage for --help, nil when done (the end
// offsets or --limit reached, or ctx cancelled with --follow), or an error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseArgs(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrInvalidSettings, err)
	}
	serde, err := schema.NewSerde(ctx, schema.SerdeConfig{Encoding: schema.EncodingJSON, Registry: cfg.registryCfg})
	if err != nil {
		return err
	}
	base := append(append([]kgo.Opt{}, cfg.kafkaOpts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) are returned so that the
		// offset just below the last stable offset is always seen.
		kgo.KeepControlRecords(),
	)
	admCl, err := kgo.NewClient(cfg.kafkaOpts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	var ends map[string]map[int32]int64 // nil when following
	if cfg.follow && cfg.topicRegex != nil && cfg.partition < 0 {
		// Follow every matching topic, including topics created later.
		base = append(base, kgo.ConsumeRegex(), kgo.ConsumeTopics(cfg.topicRegex.String()), kgo.ConsumeResetOffset(symbolicStart(cfg)))
	} else {
		parts, err := resolvePartitions(ctx, adm, cfg)
		if err != nil {
			return err
		}
		starts, endOffsets, err := resolveOffsets(ctx, adm, cfg, parts)
		if err != nil {
			return err
		}
		assign := map[string]map[int32]kgo.Offset{}
		for t, ps := range starts {
			for p, o := range ps {
				if !cfg.follow && o >= endOffsets[t][p] {
					continue // nothing to read
				}
				if assign[t] == nil {
					assign[t] = map[int32]kgo.Offset{}
				}
				assign[t][p] = kgo.NewOffset().At(o)
			}
		}
		if !cfg.follow {
			ends = map[string]map[int32]int64{}
			for t, ps := range assign {
				ends[t] = map[int32]int64{}
				for p := range ps {
					ends[t][p] = endOffsets[t][p]
				}
			}
			if len(ends) == 0 {
				return nil // every partition is empty from the start offset
			}
		}
		base = append(base, kgo.ConsumePartitions(assign))
	}
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	printed := 0
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			if cfg.follow {
				return nil
			}
			return ctx.Err()
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if fetchErr == nil {
				fetchErr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			if ends != nil {
				end, ok := ends[r.Topic][r.Partition]
				if !ok {
					continue // partition already done
				}
				if r.Offset >= end-1 {
					delete(ends[r.Topic], r.Partition)
					if len(ends[r.Topic]) == 0 {
						delete(ends, r.Topic)
					}
				}
				if r.Offset >= end {
					continue // written after we started
				}
			}
			if r.Attrs.IsControl() {
				continue
			}
			line, ok := render(serde, cfg, r)
			if !ok {
				continue
			}
			if _, err := out.Write(line); err != nil {
				return err
			}
			printed++
			if cfg.limit > 0 && printed >= cfg.limit {
				return out.Flush()
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if ends != nil && len(ends) == 0 {
			return nil
		}
	}
}

// symbolicStart is the start offset as a kgo.Offset, for regex following.
func symbolicStart(cfg *config) kgo.Offset {
	switch cfg.start {
	case startOffset:
		if cfg.fromOffset < 0 {
			return kgo.NewOffset().AtEnd().Relative(cfg.fromOffset)
		}
		return kgo.NewOffset().At(cfg.fromOffset)
	case startTime:
		return kgo.NewOffset().AfterMilli(cfg.fromTime.UnixMilli())
	}
	return kgo.NewOffset().AtStart()
}

// resolvePartitions lists the partitions to read.
func resolvePartitions(ctx context.Context, adm *kadm.Client, cfg *config) (map[string][]int32, error) {
	details, err := adm.ListTopics(ctx, cfg.topics...)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	out := map[string][]int32{}
	for _, name := range details.Names() {
		d := details[name]
		if cfg.topicRegex != nil && !cfg.topicRegex.MatchString(name) {
			continue
		}
		if d.Err != nil {
			return nil, fmt.Errorf("topic %s: %w", name, d.Err)
		}
		for _, p := range d.Partitions.Numbers() {
			if cfg.partition < 0 || p == int32(cfg.partition) {
				out[name] = append(out[name], p)
			}
		}
		if cfg.partition >= 0 && len(out[name]) == 0 {
			return nil, fmt.Errorf("topic %s has no partition %d", name, cfg.partition)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no topic matches %s", cfg.topicRegex)
	}
	return out, nil
}

// resolveOffsets turns the start flags into numeric offsets and lists the
// end (last stable) offsets.
func resolveOffsets(ctx context.Context, adm *kadm.Client, cfg *config, parts map[string][]int32) (starts, ends map[string]map[int32]int64, err error) {
	topics := make([]string, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	list := func(what string, l kadm.ListedOffsets, err error) (map[string]map[int32]int64, error) {
		if err != nil {
			return nil, fmt.Errorf("listing %s offsets: %w", what, err)
		}
		if err := l.Error(); err != nil {
			return nil, fmt.Errorf("listing %s offsets: %w", what, err)
		}
		out := map[string]map[int32]int64{}
		l.Each(func(o kadm.ListedOffset) {
			if !slices.Contains(parts[o.Topic], o.Partition) {
				return
			}
			if out[o.Topic] == nil {
				out[o.Topic] = map[int32]int64{}
			}
			out[o.Topic][o.Partition] = o.Offset
		})
		return out, nil
	}
	// Committed = last stable offset: what a read_committed consumer can reach.
	committed, err := adm.ListCommittedOffsets(ctx, topics...)
	if ends, err = list("end", committed, err); err != nil {
		return nil, nil, err
	}
	first, err := adm.ListStartOffsets(ctx, topics...)
	if starts, err = list("start", first, err); err != nil {
		return nil, nil, err
	}
	for t, ps := range starts {
		for p, lo := range ps {
			end := ends[t][p]
			var s int64
			switch cfg.start {
			case startBeginning:
				s = lo
			case startOffset:
				s = cfg.fromOffset
				if s < 0 {
					s = end + s
				}
			case startTime:
				continue // below
			}
			starts[t][p] = max(lo, min(s, end))
		}
	}
	if cfg.start == startTime {
		after, err := adm.ListOffsetsAfterMilli(ctx, cfg.fromTime.UnixMilli(), topics...)
		if err != nil {
			return nil, nil, fmt.Errorf("listing offsets after %s: %w", cfg.fromTime.Format(time.RFC3339), err)
		}
		after.Each(func(o kadm.ListedOffset) {
			if _, ok := starts[o.Topic][o.Partition]; !ok {
				return
			}
			end := ends[o.Topic][o.Partition]
			if o.Err != nil || o.Offset < 0 || o.Offset > end {
				starts[o.Topic][o.Partition] = end
				return
			}
			starts[o.Topic][o.Partition] = o.Offset
		})
	}
	return starts, ends, nil
}

// sniff guesses the encoding of a value without the record header.
func sniff(value []byte) schema.Encoding {
	switch {
	case len(value) > 0 && value[0] == 0:
		return schema.EncodingConfluent
	case len(value) > 1 && value[0] == 0xC3 && value[1] == 0x01:
		return schema.EncodingSingleObject
	case len(value) > 0 && value[0] == '{':
		return schema.EncodingJSON
	}
	return ""
}

// render returns the output line of a record, or false when filtered out.
func render(serde *schema.Serde, cfg *config, r *kgo.Record) ([]byte, bool) {
	if cfg.key != nil && !keysEqual(r.Key, cfg.key) {
		return nil, false
	}
	enc, encErr := schema.EncodingOf(r.Headers)
	if encErr != nil {
		if s := sniff(r.Value); s != "" {
			enc, encErr = s, nil
		}
	}
	var (
		ev     *schema.Event
		decErr error
	)
	switch {
	case r.Value == nil: // tombstone: no envelope, usually no header
	case encErr != nil:
		decErr = encErr
	default:
		ev, decErr = serde.DecodeValue(enc, r.Value)
	}
	filtered := cfg.ns != "" || cfg.ops != nil
	if r.Value != nil && decErr != nil && filtered {
		return nil, false
	}
	if ev != nil {
		if cfg.ns != "" && ev.NS.String() != cfg.ns {
			return nil, false
		}
		if cfg.ops != nil && !cfg.ops[ev.Op] {
			return nil, false
		}
	}
	if r.Value == nil && filtered {
		return nil, false // tombstone: no op, no namespace
	}

	var envelope bson.Raw
	if ev != nil {
		var err error
		if envelope, err = schema.EnvelopeBSON(ev); err != nil {
			decErr = err
		}
	}
	line, err := renderLine(r, enc, envelope, decErr)
	if err != nil && envelope != nil {
		// A BSON payload that is framed right but invalid inside cannot be
		// rendered as Extended JSON: print the record as undecodable.
		line, err = renderLine(r, enc, nil, fmt.Errorf("rendering Extended JSON: %w", err))
	}
	if err != nil {
		line = []byte(fmt.Sprintf(`{"topic":%q,"offset":%d,"error":%q}`, r.Topic, r.Offset, err.Error()))
	}
	return append(line, '\n'), true
}

func renderLine(r *kgo.Record, enc schema.Encoding, envelope bson.Raw, decErr error) ([]byte, error) {
	idx, b := bsoncore.AppendDocumentStart(nil)
	b = bsoncore.AppendStringElement(b, "topic", r.Topic)
	b = bsoncore.AppendInt32Element(b, "partition", r.Partition)
	b = bsoncore.AppendInt64Element(b, "offset", r.Offset)
	b = bsoncore.AppendDateTimeElement(b, "timestamp", r.Timestamp.UnixMilli())
	switch {
	case r.Key == nil:
		b = bsoncore.AppendNullElement(b, "key")
	case bson.Raw(r.Key).Validate() == nil:
		b = bsoncore.AppendDocumentElement(b, "key", r.Key)
	default:
		b = bsoncore.AppendBinaryElement(b, "key", 0, r.Key)
	}
	if enc != "" {
		b = bsoncore.AppendStringElement(b, "encoding", string(enc))
	}
	switch {
	case r.Value == nil:
		b = bsoncore.AppendNullElement(b, "value") // tombstone
	case envelope != nil:
		b = bsoncore.AppendDocumentElement(b, "value", envelope)
	default:
		b = bsoncore.AppendBinaryElement(b, "value", 0, r.Value)
	}
	if decErr != nil {
		b = bsoncore.AppendStringElement(b, "error", decErr.Error())
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return bson.MarshalExtJSON(bson.Raw(b), true, false)
}

// keysEqual reports whether a record key equals the --key document as
// MongoDB compares documents (pkg/verify's BSON order): same field names in
// the same order, numbers equal by value whatever their BSON type (1, 1.0,
// NumberLong(1), NumberDecimal("1.00")), strings and symbols by their text.
func keysEqual(key []byte, want bson.Raw) bool {
	got := bson.Raw(key)
	if got.Validate() != nil {
		return false
	}
	return verify.Compare(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: got},
		bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: want}) == 0
}
