package sink_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/logbridge/logbridge/schema"
	"github.com/logbridge/logbridge/sink-connector/sink"
	"github.com/logbridge/logbridge/tests/testenv"
)

// TestSinkTransactionsAcrossMembers: with --transactions and two group
// members, the namespace-affine balancer gives each member one of two
// topics, so a source transaction spanning both namespaces never completes
// at either member. The documented fallback must hold: after
// --transaction-wait each member applies its part per event (counted as
// result="timeout", never "applied"), nothing hangs and nothing is lost.
func TestSinkTransactionsAcrossMembers(t *testing.T) {
	env := testenv.New(t)
	dest := env.Dest(t)
	l := newLog(t, env, 2)
	db := testenv.DBName(t)
	dropDB(t, dest, db)
	nsA, nsB := schema.Namespace{DB: db, Coll: "a"}, schema.Namespace{DB: db, Coll: "b"}
	l.barrier(ddlEv(nsA, schema.DDLCreate, "create-a"), nsA)
	l.barrier(ddlEv(nsB, schema.DDLCreate, "create-b"), nsB)

	group := "g-" + db
	var sinks []*sink.Service
	for range 2 {
		cfg := sinkCfg(env, l, group)
		cfg.Transactions = true
		cfg.TxnWait = 2 * time.Second
		cfg.HTTP.Addr = "127.0.0.1:0"
		svc, done, _ := startSink(t, cfg)
		go func() {
			if err := <-done; err != nil {
				t.Errorf("sink stopped: %v", err)
			}
		}()
		sinks = append(sinks, svc)
	}
	// Both members must own one topic each before the transactions are
	// written (else the first member could gather them all alone).
	deadline := time.Now().Add(60 * time.Second)
	for {
		owned := make([]map[string]bool, len(sinks))
		for i, s := range sinks {
			owned[i] = map[string]bool{}
			for _, p := range s.Progress().Partitions {
				owned[i][p.Topic] = true
			}
		}
		if len(owned[0]) == 1 && len(owned[1]) == 1 && !overlap(owned[0], owned[1]) {
			t.Logf("member 0 owns %v, member 1 owns %v", owned[0], owned[1])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two members did not split the two topics: %v and %v", owned[0], owned[1])
		}
		time.Sleep(100 * time.Millisecond)
	}

	lsid := rawDoc(t, bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}}})
	want := map[schema.Namespace]expect{nsA: {}, nsB: {}}
	const txns = 10
	var evs []*schema.Event
	for k := range txns {
		for i, ns := range []schema.Namespace{nsA, nsB} {
			doc := bson.D{{Key: "_id", Value: int32(k)}, {Key: "t", Value: int32(k)}}
			ev := dataEv(t, schema.OpInsert, ns, int32(k), doc)
			ev.Txn = &schema.TxnID{LSID: lsid, TxnNumber: int64(k + 1), Index: int32(i), Counted: true}
			if i == 1 {
				ev.Txn.Count = 2 // the transaction's last event carries its event count
			}
			evs = append(evs, ev)
			want[ns].put(t, doc)
		}
	}
	l.data(evs...)

	for ns, w := range want {
		waitEqual(t, dest, ns, w, 90*time.Second)
	}
	var timeouts, applied float64
	for _, s := range sinks {
		m := scrapeTxnResults(t, "http://"+s.HTTPAddr()+"/metrics")
		timeouts += m["timeout"]
		applied += m["applied"]
	}
	t.Logf("transactions: %.0f resolved per event after the wait (both members), %.0f applied as one transaction", timeouts, applied)
	if applied != 0 {
		t.Errorf("%.0f transactions applied as one destination transaction, want 0: no member holds both namespaces", applied)
	}
	if timeouts < txns {
		t.Errorf("%.0f timeout fallbacks counted, want at least %d (each transaction times out at the members holding a part)", timeouts, txns)
	}
}

// overlap reports whether a and b share a key.
func overlap(a, b map[string]bool) bool {
	for k := range a {
		if b[k] {
			return true
		}
	}
	return false
}

// scrapeTxnResults reads logbridge_sink_transactions_total by result from a
// /metrics endpoint.
func scrapeTxnResults(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `logbridge_sink_transactions_total{result="`)
		if !ok {
			continue
		}
		result, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[result] = v
	}
	return out
}
