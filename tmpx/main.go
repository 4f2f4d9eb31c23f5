package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	ctx := context.Background()
	topic := fmt.Sprintf("tmpx-%d", time.Now().UnixNano())
	adm, _ := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:19092"))
	kadm.NewClient(adm).CreateTopic(ctx, 16, 1, nil, topic)
	p, _ := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:19092"), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(topic), kgo.ProducerBatchMaxBytes(16<<20))
	val := []byte(strings.Repeat("x", 1000))
	start := time.Now()
	for t := 0; t < 100; t++ {
		p.BeginTransaction()
		for i := 0; i < 2000; i++ {
			p.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(t*2000 + i)), Value: val}, nil)
		}
		p.Flush(ctx)
		p.EndTransaction(ctx, kgo.TryCommit)
	}
	fmt.Println("produced 200k in", time.Since(start))
	for _, opts := range [][]kgo.Opt{
		{},
		{kgo.FetchMaxPartitionBytes(8 << 20)},
		{kgo.FetchMaxPartitionBytes(8 << 20), kgo.FetchMaxWait(100 * time.Millisecond)},
	} {
		c, _ := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers("127.0.0.1:19092"), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
		start := time.Now()
		n := 0
		fetches := 0
		for n < 200000 {
			f := c.PollFetches(ctx)
			fetches++
			n += f.NumRecords()
		}
		fmt.Printf("consumed %d in %v (%d polls)\n", n, time.Since(start), fetches)
		c.Close()
	}
	kadm.NewClient(adm).DeleteTopics(ctx, topic)
}
