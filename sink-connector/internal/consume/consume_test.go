package consume

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func members(t *testing.T, subs map[string][]string, owned map[string]map[string][]int32) []kmsg.JoinGroupResponseMember {
	t.Helper()
	var ids []string
	for id := range subs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []kmsg.JoinGroupResponseMember
	for _, id := range ids {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = id
		m.ProtocolMetadata = NamespaceBalancer{}.JoinGroupMetadata(subs[id], owned[id], 1)
		out = append(out, m)
	}
	return out
}

func balance(t *testing.T, ms []kmsg.JoinGroupResponseMember, topics map[string]int32) map[string]map[string][]int32 {
	t.Helper()
	mb, _, err := NamespaceBalancer{}.MemberBalancer(ms)
	if err != nil {
		t.Fatal(err)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	if err != nil {
		t.Fatal(err)
	}
	return into.(*kgo.BalancePlan).AsMemberIDMap()
}

func TestBalancerNamespaceAffine(t *testing.T) {
	all := []string{"lb.d.a", "lb.d.b", "lb.d.c", "lb.d.e"}
	topics := map[string]int32{"lb.d.a": 4, "lb.d.b": 4, "lb.d.c": 2, "lb.d.e": 2}
	tests := []struct {
		name  string
		subs  map[string][]string
		owned map[string]map[string][]int32
		check func(t *testing.T, plan map[string]map[string][]int32)
	}{
		{name: "one member gets all", subs: map[string][]string{"m1": all}, check: func(t *testing.T, plan map[string]map[string][]int32) {
			if len(plan["m1"]) != 4 {
				t.Fatalf("got %v, want all 4 topics on m1", plan)
			}
		}},
		{name: "two members split by load", subs: map[string][]string{"m1": all, "m2": all}, check: func(t *testing.T, plan map[string]map[string][]int32) {
			load := map[string]int{}
			for m, ts := range plan {
				for _, ps := range ts {
					load[m] += len(ps)
				}
			}
			if load["m1"] != 6 || load["m2"] != 6 {
				t.Fatalf("got loads %v, want 6 and 6 (plan %v)", load, plan)
			}
		}},
		{name: "sticky owner keeps topic", subs: map[string][]string{"m1": all, "m2": all},
			owned: map[string]map[string][]int32{"m2": {"lb.d.a": {0, 1, 2, 3}}},
			check: func(t *testing.T, plan map[string]map[string][]int32) {
				if len(plan["m2"]["lb.d.a"]) != 4 {
					t.Fatalf("got %v, want lb.d.a kept on m2", plan)
				}
			}},
		{name: "only subscribers", subs: map[string][]string{"m1": {"lb.d.a"}, "m2": all}, check: func(t *testing.T, plan map[string]map[string][]int32) {
			for tp := range plan["m1"] {
				if tp != "lb.d.a" {
					t.Fatalf("got %v on m1, which does not subscribe to it", tp)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := balance(t, members(t, tt.subs, tt.owned), topics)
			// Every topic is wholly on one member.
			owners := map[string][]string{}
			for m, ts := range plan {
				for topic, ps := range ts {
					if int32(len(ps)) != topics[topic] {
						t.Fatalf("member %s got %d of %d partitions of %s", m, len(ps), topics[topic], topic)
					}
					owners[topic] = append(owners[topic], m)
				}
			}
			for topic := range topics {
				if len(owners[topic]) != 1 {
					t.Fatalf("topic %s owned by %v, want exactly one member", topic, owners[topic])
				}
			}
			tt.check(t, plan)
		})
	}
}

func TestBarrierCompletesOnceWhenAllArrive(t *testing.T) {
	b := newBarrier("t", 3)
	var calls atomic.Int32
	var got map[int32]kgo.EpochOffset
	complete := func(_ context.Context, at map[int32]kgo.EpochOffset) error {
		calls.Add(1)
		got = at
		return nil
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for p := range int32(3) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(p) * 10 * time.Millisecond)
			errs[p] = b.arrive(ctx, p, "ddl-1", kgo.EpochOffset{Offset: int64(10 + p)}, complete)
		}()
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			t.Fatalf("partition %d: got %v, want nil", p, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("got %d completions, want 1", calls.Load())
	}
	if len(got) != 3 || got[2].Offset != 12 {
		t.Fatalf("got offsets %v, want 3 partitions at 10..12", got)
	}
	// The next barrier starts fresh.
	if err := newBarrier("t", 1).arrive(ctx, 0, "ddl-2", kgo.EpochOffset{}, complete); err != nil || calls.Load() != 2 {
		t.Fatalf("got %v, %d completions", err, calls.Load())
	}
}

func TestBarrierErrorsReachEveryPartition(t *testing.T) {
	b := newBarrier("t", 2)
	boom := errors.New("boom")
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- b.arrive(ctx, 0, "x", kgo.EpochOffset{}, nil) }()
	time.Sleep(10 * time.Millisecond)
	if err := b.arrive(ctx, 1, "x", kgo.EpochOffset{}, func(context.Context, map[int32]kgo.EpochOffset) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("completer got %v, want boom", err)
	}
	if err := <-errc; !errors.Is(err, boom) {
		t.Fatalf("waiter got %v, want boom", err)
	}
}

func TestBarrierMismatch(t *testing.T) {
	b := newBarrier("t", 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.arrive(ctx, 0, "x", kgo.EpochOffset{}, nil) }()
	time.Sleep(10 * time.Millisecond)
	if err := b.arrive(ctx, 1, "y", kgo.EpochOffset{}, nil); !errors.Is(err, ErrBarrierMismatch) {
		t.Fatalf("got %v, want ErrBarrierMismatch", err)
	}
}

func TestBarrierWaitEndsWithContext(t *testing.T) {
	b := newBarrier("t", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.arrive(ctx, 0, "x", kgo.EpochOffset{}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
}

func TestOffsetsCommitOnlyAdvances(t *testing.T) {
	var commits []map[string]map[int32]kgo.EpochOffset
	fail := false
	o := newOffsets(func(_ context.Context, offs map[string]map[int32]kgo.EpochOffset) error {
		if fail {
			return errors.New("down")
		}
		commits = append(commits, offs)
		return nil
	})
	ctx := context.Background()
	o.ack(tp{"t", 0}, kgo.EpochOffset{Offset: 5})
	o.ack(tp{"t", 0}, kgo.EpochOffset{Offset: 3}) // never back
	if err := o.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.flush(ctx); err != nil { // nothing new
		t.Fatal(err)
	}
	if len(commits) != 1 || commits[0]["t"][0].Offset != 5 {
		t.Fatalf("got commits %v, want one of offset 5", commits)
	}
	fail = true
	o.ack(tp{"t", 1}, kgo.EpochOffset{Offset: 1})
	if err := o.flush(ctx); err == nil {
		t.Fatal("got nil, want the commit error")
	}
	fail = false
	if err := o.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(commits[len(commits)-1]); got != "map[t:map[1:{-1 1}]]" && got != "map[t:map[1:{0 1}]]" {
		t.Fatalf("got %s, want only partition 1 retried", got)
	}
}
