package testenv

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Local stack addresses (scripts/stack.sh). Keep in sync with scripts/stack.d.
const (
	LocalKafka    = "127.0.0.1:19092"
	LocalSource   = "mongodb://127.0.0.1:27018/?directConnection=true"
	LocalDest     = "mongodb://127.0.0.1:27019/?directConnection=true"
	LocalRegistry = "http://127.0.0.1:18081/apis/ccompat/v7"
)

// Env names the servers one test run uses.
type Env struct {
	KafkaBrokers []string
	SourceURI    string
	DestURI      string
	RegistryURL  string
}

var (
	once      sync.Once
	shared    Env
	sharedErr error // why the environment cannot be had at all (containers backend)
)

// resolve picks the servers once per test binary: the environment variables,
// else the containers backend when LOGBRIDGE_TESTCONTAINERS=1, else the local stack.
func resolve(t testing.TB) Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	once.Do(func() {
		shared = fromEnv()
		if containersWanted() {
			shared, sharedErr = withContainers(shared)
		}
	})
	if sharedErr != nil {
		unavailable(t, sharedErr.Error())
	}
	return shared
}

// New returns the environment, skipping (or failing, with
// LOGBRIDGE_REQUIRE_STACK=1) when Kafka or either MongoDB is unreachable.
func New(t testing.TB) Env {
	t.Helper()
	resolve(t)
	for _, a := range []struct{ what, addr string }{
		{"Kafka", shared.KafkaBrokers[0]},
		{"source MongoDB", hostPort(shared.SourceURI)},
		{"destination MongoDB", hostPort(shared.DestURI)},
	} {
		if err := dial(a.addr); err != nil {
			unavailable(t, fmt.Sprintf("%s at %s is unreachable (%v): run `make up` or set the environment variables (see tests/testenv)", a.what, a.addr, err))
		}
	}
	return shared
}

// NewKafka is New for tests that need only Kafka: it skips (or fails) only
// when the broker is unreachable.
func NewKafka(t testing.TB) Env {
	t.Helper()
	e := resolve(t)
	if err := dial(e.KafkaBrokers[0]); err != nil {
		unavailable(t, fmt.Sprintf("Kafka at %s is unreachable (%v): run `make up` or set KAFKA_BROKERS", e.KafkaBrokers[0], err))
	}
	return e
}

// Registry returns the schema registry URL, skipping or failing like New when
// it is unreachable.
func (e Env) Registry(t testing.TB) string {
	t.Helper()
	if err := dial(hostPort(e.RegistryURL)); err != nil {
		unavailable(t, fmt.Sprintf("schema registry at %s is unreachable (%v): run `make up` or set SCHEMA_REGISTRY_URL", e.RegistryURL, err))
	}
	return e.RegistryURL
}

func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("LOGBRIDGE_REQUIRE_STACK") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func fromEnv() Env {
	e := Env{
		KafkaBrokers: []string{LocalKafka},
		SourceURI:    LocalSource,
		DestURI:      LocalDest,
		RegistryURL:  LocalRegistry,
	}
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		e.KafkaBrokers = strings.Split(v, ",")
	}
	if v := os.Getenv("SOURCE_URI"); v != "" {
		e.SourceURI = v
	}
	if v := os.Getenv("DEST_URI"); v != "" {
		e.DestURI = v
	}
	if v := os.Getenv("SCHEMA_REGISTRY_URL"); v != "" {
		e.RegistryURL = v
	}
	return e
}

func hostPort(uri string) string {
	s := uri
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	return strings.Split(s, ",")[0]
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// DBName is a database name unique to the test (MongoDB limits names to 63 bytes).
func DBName(t testing.TB) string {
	return shortName("t_", t.Name(), 60)
}

// TopicPrefix is a topic prefix unique to the test.
func TopicPrefix(t testing.TB) string {
	return shortName("t-", t.Name(), 100)
}

func shortName(prefix, name string, max int) string {
	n := prefix + strings.Trim(unsafe.ReplaceAllString(name, "_"), "_")
	sum := sha1.Sum([]byte(name + fmt.Sprint(time.Now().UnixNano())))
	suffix := "_" + hex.EncodeToString(sum[:3])
	if len(n)+len(suffix) > max {
		n = n[:max-len(suffix)]
	}
	return n + suffix
}

// Source connects to the source server; the client is closed at cleanup.
func (e Env) Source(t testing.TB) *mongo.Client { return connect(t, e.SourceURI) }

// Dest connects to the destination server; the client is closed at cleanup.
func (e Env) Dest(t testing.TB) *mongo.Client { return connect(t, e.DestURI) }

func connect(t testing.TB, uri string) *mongo.Client {
	t.Helper()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("connecting to %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl
}

// Kafka returns a client for the test's broker, closed at cleanup.
func (e Env) Kafka(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.KafkaBrokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client for the test's broker.
func (e Env) Admin(t testing.TB) *kadm.Client {
	return kadm.NewClient(e.Kafka(t))
}

// Context returns a context cancelled at cleanup or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ReadTopic returns every committed record of topic (read_committed), from the
// start to the end offsets it had when called. It waits for the broker rather
// than stopping at the first quiet poll, and fails the test after a minute
// without progress, so a slow machine never yields a silently short read.
func ReadTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seed, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	ends, err := kadm.NewClient(seed).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: stalled with partitions %v not at their end", topic, want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("reading %s partition %d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// Disruptive skips a test that stops or restarts a shared server unless
// LOGBRIDGE_DISRUPTIVE=1. Such tests are named Test…Disruptive… and `make test`
// runs them in a phase of their own, one at a time, after every other test,
// so that they never break a test that shares the server.
func Disruptive(t testing.TB) {
	t.Helper()
	if os.Getenv("LOGBRIDGE_DISRUPTIVE") != "1" {
		t.Skip("restarts a shared server: runs only with LOGBRIDGE_DISRUPTIVE=1 (the last phase of `make test`)")
	}
}
