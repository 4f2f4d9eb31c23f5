package sink_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/tests/procs"
	"github.com/logbridge/logbridge/tests/testenv"
)

// sinkBinary builds the connectors once per test binary (tests/procs).
func sinkBinary(t testing.TB) string {
	_, sink := procs.Binaries(t)
	return sink
}

func startBinary(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(sinkBinary(t), args...)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sink logs:\n%s", logs.String())
		}
	})
	return cmd
}

func count(t testing.TB, cl *mongo.Client, ns schema.Namespace) int64 {
	n, err := cl.Database(ns.DB).Collection(ns.Coll).EstimatedDocumentCount(testenv.Context(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// updated counts the documents of ns that the second pass (v: 1) reached.
func updated(t testing.TB, cl *mongo.Client, ns schema.Namespace) int64 {
	n, err := cl.Database(ns.DB).Collection(ns.Coll).CountDocuments(testenv.Context(t, 30*time.Second), bson.D{{Key: "v", Value: int32(1)}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSinkKill9Restart(t *testing.T) {
	env := testenv.New(t)
	dest := env.Dest(t)
	l := newLog(t, env, 4)
	db := testenv.DBName(t)
	dropDB(t, dest, db)
	ns := schema.Namespace{DB: db, Coll: "k"}
	want := expect{}
	const n = 30000
	l.barrier(ddlEv(ns, schema.DDLCreate, "create"), ns)
	var evs []*schema.Event
	for i := range n {
		d := bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int32(0)}, {Key: "pad", Value: strings.Repeat("x", 200)}}
		evs = append(evs, dataEv(t, schema.OpSnapshot, ns, int32(i), d))
		want.put(t, d)
	}
	// Second pass of changes to every document, after a marker barrier.
	l.data(evs...)
	l.barrier(markerEv(ns, schema.MarkerSnapshotDone, "done"), ns)
	evs = evs[:0]
	for i := range n {
		ev := dataEv(t, schema.OpUpdate, ns, int32(i), nil)
		ev.Update = &schema.UpdateDescription{UpdatedFields: rawDoc(t, bson.D{{Key: "v", Value: int32(1)}})}
		evs = append(evs, ev)
		want.put(t, bson.D{{Key: "_id", Value: int32(i)}, {Key: "v", Value: int32(1)}, {Key: "pad", Value: strings.Repeat("x", 200)}})
	}
	l.data(evs...)

	args := []string{"--kafka-brokers", strings.Join(env.KafkaBrokers, ","), "--group", "g-" + db, "--topic-prefix", l.prefix,
		"--dest-uri", env.DestURI, "--http-addr", "127.0.0.1:0", "--batch-size", "200"}
	for round := 0; ; round++ {
		cmd := startBinary(t, args...)
		if round == 3 {
			break
		}
		// Kill it mid-stream: twice while the snapshot records are being
		// inserted, once while the updates after the marker are being
		// applied; wait until some but not all of that work is visible.
		deadline := time.Now().Add(60 * time.Second)
		for {
			var done bool
			if round < 2 {
				done = count(t, dest, ns) > int64(round+1)*n/5
			} else {
				done = updated(t, dest, ns) > n/3
			}
			if done || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		t.Logf("round %d: killed with %d documents in the destination, %d of them updated", round, count(t, dest, ns), updated(t, dest, ns))
	}
	waitEqual(t, dest, ns, want, 120*time.Second)
	if c := count(t, dest, ns); c != n {
		t.Fatalf("got %d documents, want %d", c, n)
	}
}
