package mongox

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Prober answers "is this cluster reachable?" for readiness checks. It keeps
// one client per URI (the driver monitors the topology in the background),
// so a probe every few seconds costs one ping, not a new connection pool and
// a new login each time. Safe for concurrent use.
type Prober struct {
	mu      sync.Mutex
	clients map[string]*mongo.Client
	closed  bool
}

// NewProber returns an empty prober; Close releases its clients.
func NewProber() *Prober { return &Prober{clients: map[string]*mongo.Client{}} }

// Ping pings the cluster at uri; role names it in the error ("source
// cluster0", "destination"). The error is redacted and says what to check.
func (p *Prober) Ping(ctx context.Context, role, uri string) error {
	cl, err := p.client(role, uri)
	if err != nil {
		return err
	}
	if err := cl.Ping(ctx, nil); err != nil {
		red := NewRedactor([]string{uri})
		if IsAuthError(err) {
			return red.Error(fmt.Errorf("%s at %s: authentication failed (%w): check the user, password and authSource in the URI", role, Redact(uri), err))
		}
		return red.Error(fmt.Errorf("%s at %s: %w (%v)", role, Redact(uri), ErrUnreachable, err))
	}
	return nil
}

func (p *Prober) client(role, uri string) (*mongo.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("%s: the service is shutting down", role)
	}
	if cl := p.clients[uri]; cl != nil {
		return cl, nil
	}
	opts := options.Client().ApplyURI(uri)
	if opts.AppName == nil {
		opts.SetAppName("logbridge-" + strings.ReplaceAll(role, " ", "-") + "-probe")
	}
	cl, err := mongo.Connect(opts) // lazy: no I/O until the ping
	if err != nil {
		return nil, fmt.Errorf("%s URI is not valid (%v): fix the URI", role, NewRedactor([]string{uri}).String(err.Error()))
	}
	p.clients[uri] = cl
	return cl, nil
}

// Close disconnects every client; later pings fail.
func (p *Prober) Close() {
	p.mu.Lock()
	cls := p.clients
	p.clients, p.closed = nil, true
	p.mu.Unlock()
	for _, cl := range cls {
		_ = cl.Disconnect(context.Background())
	}
}
