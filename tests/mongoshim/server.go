// Package mongoshim is a test-only MongoDB wire-protocol server that fronts a
// mongo-java-server backend and adds, as MongoDB documents them, what that
// backend lacks: a single-member replica-set hello, cluster time
// (operationTime / $clusterTime), sessions, transactions (applied at commit),
// an in-memory oplog of change events in the documented format served by
// cluster-, database- and collection-wide $changeStream cursors,
// setUserWriteBlockMode, find's min/max, and mongod's failCommand fail point
// (to stand in for a user without a privilege). It is test infrastructure —
// a fake replica set — and never part of the product. With Config.Mongos it
// presents itself as the mongos of a one-shard cluster instead.
// docs/testing.md lists how faithful it is and its gaps.
package mongoshim

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

// Version is what buildInfo reports.
const Version = "7.0.0-logbridge-shim"

// Config configures a Server.
type Config struct {
	// Listen is the TCP address to listen on ("127.0.0.1:27018"; port 0 picks one).
	Listen string
	// Backend is the mongo-java-server URI (one host; options are ignored).
	Backend string
	// SetName is the replica set name hello reports (default "rs0";
	// unused with Mongos).
	SetName string
	// Mongos makes the shim present itself as the mongos of a sharded
	// cluster with one shard instead of a replica set primary: hello says
	// msg "isdbgrid" without the replica-set fields, enableSharding and
	// shardCollection are served, find on config.collections lists the
	// sharded collections, and change events of a sharded collection carry
	// the shard key fields in their documentKey (sharding.go). The default
	// (false) is the replica set.
	Mongos bool
	// OplogMaxEvents caps the in-memory oplog (0 = unlimited; it trims back to
	// the cap once it holds a quarter more); older events
	// are dropped and resuming before them fails with ChangeStreamHistoryLost.
	OplogMaxEvents int
	// NoopInterval: when nothing was written for this long, a no-op oplog
	// entry advances the cluster time (MongoDB's periodic no-op writer,
	// periodicNoopIntervalSecs = 10), so that idle change streams'
	// postBatchResumeToken keeps moving. Default 10s; < 0 disables.
	NoopInterval time.Duration
	// WriteBlockBypassApp: clients whose handshake application name starts
	// with it may write while setUserWriteBlockMode is on, standing in for a
	// user with the bypassWriteBlockingMode privilege (default "logbridge";
	// the shim has no authentication). "-" disables the bypass.
	WriteBlockBypassApp string
	// RenameByCopy renames collections within a database by copying them
	// too (renames across databases always copy); needed in front of
	// mongo-java-server's h2 back end, whose own rename is broken (see
	// renameByCopy).
	RenameByCopy bool
	// StateFile, if set, keeps what the shim must not lose across a restart
	// in front of a persistent backend (the h2 back end): a lease on the
	// cluster time, so that it never goes backwards, the collections' UUIDs
	// and listed-only options, the write-block mode. The oplog is not kept:
	// resuming a change stream from before a restart fails with
	// ChangeStreamHistoryLost, as after an oplog rollover.
	StateFile string
	// WritesOnly makes by-_id updates ($set/$unset and other operators, not
	// replacements) and deletes of known collections cost what the backend
	// charges for them: they are forwarded as they come and record no change
	// event, where the shim otherwise reads the documents before and after
	// to build the events (an update then costs the backend about three
	// times an insert; a mongod writes its oplog entry without such reads).
	// For a server that is only written to, never read as a change stream
	// source: the catch-up benchmark's destination (tests/bench). Inserts,
	// replacements, other writes and DDL keep their events.
	WritesOnly bool
	Logger     *slog.Logger
}

// Server is a running shim.
type Server struct {
	cfg          Config
	log          *slog.Logger
	be           *backend
	ln           net.Listener
	addr         string
	clock        clock
	oplog        *oplog
	writeMu      sync.Mutex
	cat          *catalog
	cursors      *cursorRegistry
	txns         *txnTable
	blocked      atomic.Bool
	failCommand  failPoint // mongod's failCommand fail point (configureFailPoint)
	failGetMore  failPoint // mongod's failGetMoreAfterCursorCheckout
	bypassPrefix string
	processID    bson.ObjectID
	connIDs      atomic.Int32
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	connMu       sync.Mutex
	conns        map[net.Conn]struct{}
	stateSaved   []byte // the state file's content as last written (under clock.mu)
}

// New creates a Server; Start runs it.
func New(cfg Config) (*Server, error) {
	switch cfg.WriteBlockBypassApp {
	case "":
		cfg.WriteBlockBypassApp = "logbridge"
	case "-":
		cfg.WriteBlockBypassApp = ""
	}
	if cfg.SetName == "" {
		cfg.SetName = "rs0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NoopInterval == 0 {
		cfg.NoopInterval = 10 * time.Second
	}
	be, err := newBackend(cfg.Backend)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger, be: be, cat: newCatalog(), cursors: newCursorRegistry(),
		txns: newTxnTable(), processID: bson.NewObjectID(), ctx: ctx, cancel: cancel,
		failCommand: failPoint{name: "failCommand"}, failGetMore: failPoint{name: "failGetMoreAfterCursorCheckout"},
		conns: map[net.Conn]struct{}{}, bypassPrefix: cfg.WriteBlockBypassApp,
	}
	s.clock.now = time.Now
	return s, nil
}

// Start listens and serves in the background. It checks that the backend
// answers first.
func (s *Server) Start(ctx context.Context) error {
	if _, err := s.be.command(ctx, "admin", mustRaw(bson.D{{Key: "ping", Value: 1}})); err != nil {
		return fmt.Errorf("backend %s does not answer ping: %w", s.be.addr, err)
	}
	if err := s.loadState(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	start := s.clock.tick() // the replica set's first oplog entry
	if err := s.saveState(true); err != nil {
		_ = ln.Close()
		return err
	}
	s.oplog = newOplog(start, s.cfg.OplogMaxEvents)
	if s.cfg.Mongos {
		s.log.Info("mongoshim listening as a mongos", "addr", s.addr, "backend", s.be.addr, "oplogStart", start.String())
	} else {
		s.log.Info("mongoshim listening", "addr", s.addr, "backend", s.be.addr, "setName", s.cfg.SetName, "oplogStart", start.String())
	}
	s.wg.Add(2)
	go s.acceptLoop()
	go s.reapLoop()
	return nil
}

// Addr is the listen address (host:port), as hello's hosts/me report it.
func (s *Server) Addr() string { return s.addr }

// Close stops listening, closes client connections and waits for handlers.
func (s *Server) Close() error {
	s.cancel()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	s.connMu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.connMu.Unlock()
	s.wg.Wait()
	if serr := s.saveState(true); serr != nil && err == nil {
		err = serr
	}
	s.be.close()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.connMu.Lock()
		s.conns[c] = struct{}{}
		s.connMu.Unlock()
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *Server) reapLoop() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	lastReap := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if time.Since(lastReap) > time.Minute {
				s.cursors.reap(10 * time.Minute)
				lastReap = time.Now()
			}
			if s.cfg.NoopInterval > 0 && s.oplog.idleFor() >= s.cfg.NoopInterval {
				s.writeMu.Lock()
				s.oplog.noop(s.clock.tick())
				s.writeMu.Unlock()
			}
			// implicit creates and a cluster time nearing its lease
			if err := s.saveState(false); err != nil {
				s.log.Warn("saving the state file", "err", err)
			}
		}
	}
}

// conn is one client connection.
type conn struct {
	id   int32
	net  net.Conn
	peer string
	// app: the application name of the client's handshake (read and
	// written only by the connection's goroutine).
	app string
	// bypass: the client's handshake named an application with the
	// bypass prefix, standing in for a user that holds the
	// bypassWriteBlockingMode privilege (the shim has no auth).
	bypass atomic.Bool
}

type bypassKey struct{}

// mayBypassWriteBlock reports whether the request's client stands in for a
// user with the bypassWriteBlockingMode privilege.
func mayBypassWriteBlock(ctx context.Context) bool {
	b, _ := ctx.Value(bypassKey{}).(bool)
	return b
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.connMu.Lock()
		delete(s.conns, nc)
		s.connMu.Unlock()
		_ = nc.Close()
	}()
	c := &conn{id: s.connIDs.Add(1), net: nc, peer: nc.RemoteAddr().String()}
	r := bufio.NewReaderSize(nc, 64<<10)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	for {
		msg, err := readMessage(r, maxMessageSize)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
				s.log.Debug("connection closed", "conn", c.id, "err", err)
			}
			return
		}
		req, err := parseRequest(msg)
		if err != nil {
			s.log.Warn("bad request", "conn", c.id, "err", err)
			// answer with an error when the request id is known
			if _, reqID, _, op, _, ok := wiremessage.ReadHeader(msg); ok && (op == wiremessage.OpMsg || op == wiremessage.OpQuery) {
				rq := &request{requestID: reqID, opCode: op}
				if _, werr := nc.Write(encodeReply(rq, s.decorate(errReply(codeProtocolError, err.Error()), 0))); werr != nil {
					return
				}
				continue
			}
			return
		}
		reply := s.handle(ctx, c, req)
		if reply == nil {
			return // a fail point's closeConnection: no reply, as mongod closes the socket
		}
		if s.ctx.Err() != nil && !replyOK(reply) {
			// shutting down: a command cut short (its backend request was
			// cancelled) gets no reply, as from a mongod going away, so the
			// client sees a network error it may retry, not a command error
			return
		}
		if req.opCode == wiremessage.OpMsg && req.flags&wiremessage.MoreToCome != 0 {
			continue // the client asked for no reply (w:0)
		}
		if _, err := nc.Write(encodeReply(req, reply)); err != nil {
			return
		}
	}
}

// handle runs one command and returns its decorated reply, or nil when the
// connection is to be closed without one.
func (s *Server) handle(ctx context.Context, c *conn, req *request) (reply bson.Raw) {
	name := cmdName(req.cmd)
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in command", "cmd", name, "panic", r)
			reply = s.decorate(errReply(codeInternalError, fmt.Sprint("mongoshim: internal error: ", r)), 0)
		}
		if d := time.Since(start); d > 2*time.Second && !isAwaitCmd(name) {
			s.log.Info("slow command", "cmd", name, "db", req.db, "took", d)
		}
	}()
	lower := strings.ToLower(name)
	switch lower {
	case "hello", "ismaster":
		if app, ok := req.cmd.Lookup("client", "application", "name").StringValueOK(); ok {
			c.app = app
			if s.bypassPrefix != "" && strings.HasPrefix(app, s.bypassPrefix) {
				c.bypass.Store(true)
			}
		}
	}
	var wce bson.Raw
	if lower != "configurefailpoint" {
		if a, fired := s.failCommand.fire(name, c.app); fired {
			if a.block > 0 {
				select {
				case <-time.After(a.block):
				case <-ctx.Done():
					return nil
				}
			}
			if a.close {
				return nil
			}
			if a.err != nil {
				return s.decorate(s.withTopologyVersion(a.err), 0)
			}
			wce = a.wce
		}
	}
	ctx = context.WithValue(ctx, bypassKey{}, c.bypass.Load())
	var opTime ts
	out, err := s.dispatch(ctx, c, req, &opTime)
	if err != nil {
		out = errorReply(err)
	}
	if wce != nil && replyOK(out) {
		out = withFields(out, "writeConcernError", wce)
	}
	return s.decorate(out, opTime)
}

func isAwaitCmd(name string) bool {
	switch strings.ToLower(name) {
	case "getmore", "hello", "ismaster":
		return true
	}
	return false
}

// decorate adds operationTime and $clusterTime to a reply (unless present).
func (s *Server) decorate(reply bson.Raw, opTime ts) bson.Raw {
	ct := s.clock.current()
	if opTime == 0 {
		opTime = ct
		if s.oplog != nil {
			opTime = s.oplog.lastTS()
		}
	}
	kv := []any{}
	if !hasKey(reply, "operationTime") {
		kv = append(kv, "operationTime", opTime.bson())
	}
	if !hasKey(reply, "$clusterTime") {
		kv = append(kv, "$clusterTime", bson.D{
			{Key: "clusterTime", Value: ct.bson()},
			{Key: "signature", Value: bson.D{
				{Key: "hash", Value: bson.Binary{Subtype: 0, Data: make([]byte, 20)}},
				{Key: "keyId", Value: int64(0)},
			}},
		})
	}
	if len(kv) == 0 {
		return reply
	}
	return withFields(reply, kv...)
}

// newCursorID returns a random positive cursor id.
func newCursorID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := int64(uint64(b[0])<<56|uint64(b[1])<<48|uint64(b[2])<<40|uint64(b[3])<<32|
		uint64(b[4])<<24|uint64(b[5])<<16|uint64(b[6])<<8|uint64(b[7])) & 0x7fffffffffffffff
	if id == 0 {
		id = 1
	}
	return id
}
