package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/verify"
)

const sentinelColl = "e2e_sentinel"

// drain waits until the sink has applied everything the source wrote:
//  1. a sentinel document written to the source after the workload stopped
//     appears on the destination — the source reads one ordered change
//     stream and commits its records in order, so every earlier event is in
//     the log;
//  2. the sink's group has committed every data record of every topic of the
//     test (offsets are committed only after the destination acknowledged the
//     writes); the gap between a committed offset and the end of a
//     partition may hold only transaction markers.
func (s *scenario) drain() {
	t0 := time.Now()
	s.sentNo++
	id := fmt.Sprintf("sentinel-%d", s.sentNo)
	sc := s.src.Database(s.dbs[0]).Collection(sentinelColl)
	if _, err := sc.InsertOne(s.ctx, bson.D{{Key: "_id", Value: id}, {Key: "round", Value: int32(s.sentNo)}}); err != nil {
		s.t.Fatalf("writing the sentinel: %v", err)
	}
	dc := s.dst.Database(s.dbs[0]).Collection(sentinelColl)
	s.waitUntil("the sentinel "+id+" on the destination", 3*time.Minute, func() (bool, string) {
		err := dc.FindOne(s.ctx, bson.D{{Key: "_id", Value: id}}).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return false, "not there yet"
		}
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	adm := kadm.NewClient(s.env.Kafka(s.t))
	s.waitUntil("the sink group's committed offsets at the end of every topic", 3*time.Minute, func() (bool, string) {
		return s.groupDrained(adm)
	})
	s.logf("drained in %v (sentinel %s applied, group %s at the end of the log)", time.Since(t0).Round(100*time.Millisecond), id, s.group)
}

// waitUntil polls cond every half second, supervising the processes, and
// fails the test after timeout with cond's last explanation.
func (s *scenario) waitUntil(what string, timeout time.Duration, cond func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.supervise()
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			s.t.Fatalf("waited %v for %s: %s", timeout, what, why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// dataTopics lists the test's data topics (<prefix>.<db>.<coll>).
func (s *scenario) dataTopics(ctx context.Context, adm *kadm.Client) ([]string, error) {
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range td.Names() {
		if strings.HasPrefix(name, s.prefix+".") && !strings.HasPrefix(name, s.prefix+"._") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

type gap struct {
	topic     string
	partition int32
	from, end int64
}

// groupDrained reports whether the group committed every data record.
func (s *scenario) groupDrained(adm *kadm.Client) (bool, string) {
	ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	topics, err := s.dataTopics(ctx, adm)
	if err != nil {
		return false, "listing topics: " + err.Error()
	}
	if len(topics) == 0 {
		return false, "no data topics yet"
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...) // last stable offsets
	if err != nil {
		return false, "listing end offsets: " + err.Error()
	}
	committed, err := adm.FetchOffsets(ctx, s.group)
	if err != nil {
		return false, "fetching the group's offsets: " + err.Error()
	}
	var gaps []gap
	var bad []string
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			bad = append(bad, fmt.Sprintf("%s/%d: %v", o.Topic, o.Partition, o.Err))
			return
		}
		if o.Offset <= 0 {
			return
		}
		from := int64(0)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			from = c.At
		}
		if from < o.Offset {
			gaps = append(gaps, gap{o.Topic, o.Partition, from, o.Offset})
		}
	})
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	if len(gaps) == 0 {
		return true, ""
	}
	// Transaction markers take offsets: a gap holding only markers is drained.
	pending, err := s.dataInGaps(ctx, gaps)
	if err != nil {
		return false, err.Error()
	}
	if len(pending) > 0 {
		if len(pending) > 5 {
			pending = append(pending[:5], fmt.Sprintf("… %d more", len(pending)-5))
		}
		return false, "uncommitted records: " + strings.Join(pending, ", ")
	}
	return true, ""
}

// dataInGaps reads each gap (read_committed, markers kept) and lists the
// partitions where it holds a data record.
func (s *scenario) dataInGaps(ctx context.Context, gaps []gap) ([]string, error) {
	assign := map[string]map[int32]kgo.Offset{}
	left := map[string]gap{}
	for _, g := range gaps {
		if assign[g.topic] == nil {
			assign[g.topic] = map[int32]kgo.Offset{}
		}
		assign[g.topic][g.partition] = kgo.NewOffset().At(g.from)
		left[fmt.Sprintf("%s/%d", g.topic, g.partition)] = g
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.env.KafkaBrokers...), kgo.ConsumePartitions(assign),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var pending []string
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading the uncommitted tails of %d partitions: %v", len(left), ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			g, ok := left[k]
			if !ok {
				return
			}
			if r.Offset < g.end && !r.Attrs.IsControl() {
				pending = append(pending, fmt.Sprintf("%s@%d (committed %d, end %d)", k, r.Offset, g.from, g.end))
				delete(left, k)
				return
			}
			if r.Offset+1 >= g.end {
				delete(left, k)
			}
		})
	}
	return pending, nil
}

// verify compares every namespace of the test databases on either side and
// fails the test unless all are equal. It reports whether to go on.
func (s *scenario) verify(round int) bool {
	t0 := time.Now()
	include := func(db, _ string) bool { return slices.Contains(s.dbs, db) }
	sp, err := verify.ListPairs(s.ctx, s.src, include, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	// Namespaces only the destination has (a missed drop or rename) count too.
	dp, err := verify.ListPairs(s.ctx, s.dst, include, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	seen := map[string]bool{}
	var pairs []verify.Pair
	for _, p := range append(sp, dp...) {
		if !seen[p.String()] {
			seen[p.String()] = true
			pairs = append(pairs, p)
		}
	}
	slices.SortFunc(pairs, func(a, b verify.Pair) int { return strings.Compare(a.String(), b.String()) })
	rep, err := verify.Run(s.ctx, s.src, s.dst, pairs, verify.Options{}, func(r *verify.Result) {
		s.logf("verify round %d: %s", round, r.Summary())
	})
	if err != nil {
		s.t.Fatal(err)
	}
	var docs int64
	for _, r := range rep.Namespaces {
		docs += r.SourceCount
	}
	if !rep.Equal() {
		for _, r := range rep.Namespaces {
			if len(r.Different) > 0 {
				s.showDifference(r.Pair, r.Different[0])
			}
		}
		s.t.Errorf("round %d: the destination differs from the source (see the verify lines above)", round)
		return false
	}
	s.logf("verify round %d: all %d namespaces equal (%d documents) in %v", round, len(rep.Namespaces), docs, time.Since(t0).Round(100*time.Millisecond))
	return true
}

// showDifference logs both versions of the document with _id id (canonical
// Extended JSON, as the verifier reports it), to show what differs.
func (s *scenario) showDifference(p verify.Pair, id string) {
	var filter bson.D
	if err := bson.UnmarshalExtJSON([]byte(`{"_id": `+id+`}`), true, &filter); err != nil {
		return
	}
	show := func(cl *mongo.Client, db, coll string) string {
		raw, err := cl.Database(db).Collection(coll).FindOne(s.ctx, filter).Raw()
		if err != nil {
			return err.Error()
		}
		out := raw.String()
		if len(out) > 1500 {
			out = out[:1500] + "…"
		}
		return out
	}
	s.logf("first different document of %s:\n  source:      %s\n  destination: %s", p, show(s.src, p.SourceDB, p.SourceColl), show(s.dst, p.DestDB, p.DestColl))
}
