package controlapi

import (
	"context"
	"math"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// pingInterval is how often the clusters of the current sync are pinged
// for progress.source/destination.pingLatencyMs.
const pingInterval = 5 * time.Second

// pinger measures the round trip of a ping command to each cluster of the
// current sync over a client it keeps open (a fresh connection would time
// the handshake, not the server).
type pinger struct {
	mu      sync.Mutex
	clients map[string]*mongo.Client
	latency map[string]int64 // ms, rounded up; absent until measured
}

func newPinger() *pinger {
	return &pinger{clients: map[string]*mongo.Client{}, latency: map[string]int64{}}
}

// get returns the last latency of cluster name in milliseconds, rounded up
// so that a measured loopback round trip never reads 0, or -1 before the
// first successful ping (as mongosync reports an unknown latency).
func (p *pinger) get(name string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.latency[name]; ok {
		return l
	}
	return -1
}

// run pings the clusters names() returns every pingInterval until ctx ends.
func (p *pinger) run(ctx context.Context, c *Controller, names func() []string) {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	defer p.close()
	for {
		for _, name := range names() {
			p.ping(ctx, c, name)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *pinger) ping(ctx context.Context, c *Controller, name string) {
	p.mu.Lock()
	cl := p.clients[name]
	p.mu.Unlock()
	if cl == nil {
		var err error
		if cl, err = c.connect(ctx, name); err != nil {
			c.log.Debug("ping: cannot connect", "cluster", name, "err", err)
			p.forget(name)
			return
		}
		p.mu.Lock()
		p.clients[name] = cl
		p.mu.Unlock()
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	err := cl.Ping(pctx, readpref.Primary())
	el := time.Since(start)
	if err != nil {
		c.log.Debug("ping failed", "cluster", name, "err", c.red.Error(err))
		p.forget(name)
		return
	}
	ms := int64(math.Ceil(float64(el) / float64(time.Millisecond)))
	p.mu.Lock()
	p.latency[name] = max(ms, 1)
	p.mu.Unlock()
}

// client returns the kept client of cluster name, nil before the first ping.
func (p *pinger) client(name string) *mongo.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clients[name]
}

// forget drops a cluster's latency: an unreachable cluster reads -1.
func (p *pinger) forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.latency, name)
}

func (p *pinger) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n, cl := range p.clients {
		_ = cl.Disconnect(context.Background())
		delete(p.clients, n)
	}
}
