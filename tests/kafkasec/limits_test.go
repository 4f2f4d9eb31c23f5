package kafkasec

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

const oneMiB = 1 << 20

// TestSourceStopsOnTopicLimit: a data topic created beforehand at 1 MiB and a 2 MiB
// document. The source warns at start-up, then stops (exit 1) naming the topic, the size,
// the limit and the setting; once the limit is raised, a restart publishes everything and the
// destination converges: nothing lost.
func TestSourceStopsOnTopicLimit(t *testing.T) {
	env := testenv.New(t)
	db, prefix := testenv.DBName(t), testenv.TopicPrefix(t)
	topic := prefix + "." + db + ".big"
	adm := env.Admin(t)
	ctx := testenv.Context(t, 3*time.Minute)
	createTopic(t, ctx, adm, topic, 4, oneMiB)

	src, dst := env.Source(t), env.Dest(t)
	t.Cleanup(func() {
		_ = src.Database(db).Drop(context.Background())
		_ = dst.Database(db).Drop(context.Background())
	})
	coll := src.Database(db).Collection("big")
	docs := []any{bson.D{{Key: "_id", Value: 1}, {Key: "small", Value: "a"}},
		bson.D{{Key: "_id", Value: 2}, {Key: "blob", Value: bson.Binary{Data: incompressible(2 * oneMiB)}}},
		bson.D{{Key: "_id", Value: 3}, {Key: "small", Value: "c"}}}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	srcBin, sinkBin := procs.Binaries(t)
	brokers := strings.Join(env.KafkaBrokers, ",")
	source := procs.Start(t, "source", srcBin, "--source-uri", env.SourceURI, "--kafka-brokers", brokers,
		"--topic-prefix", prefix, "--include", db+".*", "--http-addr", "127.0.0.1:0")
	out := source.WaitExit(t, time.Minute)
	for _, want := range []string{"topic accepts smaller records", "larger than topic " + topic, "max.message.bytes (1048576)",
		"--add-config max.message.bytes=", "nothing is lost"} {
		if !strings.Contains(out, want) {
			t.Errorf("the source's output does not say %q:\n%s", want, out)
		}
	}

	alterMaxMessageBytes(t, ctx, adm, topic, 64*oneMiB)
	source.Start()
	sink := procs.Start(t, "sink", sinkBin, "--dest-uri", env.DestURI, "--kafka-brokers", brokers,
		"--topic-prefix", prefix, "--group", prefix+"-sink", "--http-addr", "127.0.0.1:0")
	testenv.WaitSameDocuments(t, ctx, coll, dst.Database(db).Collection("big"), source, sink)
}

// TestDeadLetterSizes: the dead-letter topic the sink creates accepts a 2 MiB poison record
// (franz-go's default batch limit is 1 MB); a dead-letter topic created beforehand at 1 MiB
// stops the sink with the topic, the size and the setting, and after the limit is raised a
// restart dead-letters the record and goes on: nothing lost.
func TestDeadLetterSizes(t *testing.T) {
	for _, preCreated := range []bool{false, true} {
		t.Run("precreated="+strconv.FormatBool(preCreated), func(t *testing.T) {
			env := testenv.New(t)
			db, prefix := testenv.DBName(t), testenv.TopicPrefix(t)
			adm := env.Admin(t)
			ctx := testenv.Context(t, 3*time.Minute)
			dlq := prefix + "._dlq"
			if preCreated {
				createTopic(t, ctx, adm, dlq, 1, oneMiB)
			}
			src, dst := env.Source(t), env.Dest(t)
			t.Cleanup(func() {
				_ = src.Database(db).Drop(context.Background())
				_ = dst.Database(db).Drop(context.Background())
			})
			coll := src.Database(db).Collection("c")
			if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
				t.Fatal(err)
			}
			// A 2 MiB undecodable record in a data topic (created as the source would, 64 MiB).
			topic := prefix + "." + db + ".c"
			createTopic(t, ctx, adm, topic, 4, 64*oneMiB)
			poison := &kgo.Record{Topic: topic, Key: []byte("k"), Value: incompressible(2 * oneMiB)}
			if err := env.Kafka(t, kgo.ProducerBatchMaxBytes(64*oneMiB)).ProduceSync(ctx, poison).FirstErr(); err != nil {
				t.Fatal(err)
			}
			srcBin, sinkBin := procs.Binaries(t)
			brokers := strings.Join(env.KafkaBrokers, ",")
			source := procs.Start(t, "source", srcBin, "--source-uri", env.SourceURI, "--kafka-brokers", brokers,
				"--topic-prefix", prefix, "--include", db+".*", "--http-addr", "127.0.0.1:0")
			sinkArgs := []string{"--dest-uri", env.DestURI, "--kafka-brokers", brokers, "--topic-prefix", prefix,
				"--group", prefix + "-sink", "--http-addr", "127.0.0.1:0", "--error-tolerance", "all"}
			sink := procs.Start(t, "sink", sinkBin, sinkArgs...)
			if preCreated {
				out := sink.WaitExit(t, time.Minute)
				for _, want := range []string{"larger than topic " + dlq, "max.message.bytes (1048576)", "nothing is lost"} {
					if !strings.Contains(out, want) {
						t.Errorf("the sink's output does not say %q:\n%s", want, out)
					}
				}
				alterMaxMessageBytes(t, ctx, adm, dlq, 65*oneMiB)
				sink.Start()
			}
			testenv.WaitSameDocuments(t, ctx, coll, dst.Database(db).Collection("c"), source, sink)
			var got int
			deadline := time.Now().Add(30 * time.Second)
			for got = len(testenv.ReadTopic(t, env.KafkaBrokers, dlq)); got < 1 && time.Now().Before(deadline); got = len(testenv.ReadTopic(t, env.KafkaBrokers, dlq)) {
				time.Sleep(200 * time.Millisecond)
			}
			if got != 1 {
				t.Fatalf("dead-letter topic holds %d records, want the poison record once", got)
			}
		})
	}
}

// incompressible returns n random bytes: the producer compresses batches, and the broker
// counts the compressed batch against max.message.bytes.
func incompressible(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func createTopic(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, parts int32, maxBytes int) {
	t.Helper()
	v := strconv.Itoa(maxBytes)
	resp, err := adm.CreateTopic(ctx, parts, -1, map[string]*string{"max.message.bytes": &v}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
}

func alterMaxMessageBytes(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, maxBytes int) {
	t.Helper()
	v := strconv.Itoa(maxBytes)
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &v}}, topic)
	if err == nil {
		for _, r := range resps {
			if r.Err != nil {
				err = r.Err
			}
		}
	}
	if err != nil {
		t.Fatalf("raising max.message.bytes of %s: %v", topic, err)
	}
}
