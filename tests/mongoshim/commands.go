package mongoshim

import (
	"context"
	"crypto/rand"
	"os"
	"runtime"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// internalDB reports the databases MongoDB treats as internal (no user-write
// blocking, no events on cluster-wide streams).
func internalDB(db string) bool { return db == "admin" || db == "config" || db == "local" }

// dispatch routes one command. opTime is set by commands that write.
func (s *Server) dispatch(ctx context.Context, c *conn, req *request, opTime *ts) (bson.Raw, error) {
	cmd, db := req.cmd, req.db
	name := cmdName(cmd)
	lower := strings.ToLower(name)
	inTxn := hasKey(cmd, "autocommit") && !lookupBool(cmd, "autocommit") && hasKey(cmd, "txnNumber")
	if inTxn && lower != "committransaction" && lower != "aborttransaction" && !writeCommands[lower] {
		// a read in a transaction (possibly its first command): start or
		// check the transaction, then read the committed state
		if _, err := s.txnFor(cmd); err != nil {
			return nil, err
		}
	}
	switch lower {
	case "hello", "ismaster":
		return s.hello(ctx, c, cmd, lower)
	case "buildinfo":
		return s.buildInfo(), nil
	case "ping":
		return okReply(), nil
	case "getparameter":
		return s.getParameter(cmd)
	case "startsession":
		return mustRaw(bson.D{
			{Key: "id", Value: bson.D{{Key: "id", Value: newUUID()}}},
			{Key: "timeoutMinutes", Value: int32(30)},
			{Key: "ok", Value: 1.0},
		}), nil
	case "endsessions", "refreshsessions", "killsessions", "killallsessions", "killallsessionsbypattern":
		return okReply(), nil
	case "hostinfo":
		return s.hostInfo(), nil
	case "replsetgetstatus":
		if s.cfg.Mongos {
			return mongosReplSetGetStatus(), nil
		}
		return s.replSetGetStatus(), nil
	case "serverstatus":
		return s.serverStatus(), nil
	case "getcmdlineopts":
		parsed := bson.D{{Key: "replication", Value: bson.D{{Key: "replSetName", Value: s.cfg.SetName}}}}
		if s.cfg.Mongos {
			parsed = bson.D{}
		}
		return mustRaw(bson.D{{Key: "argv", Value: bson.A{"mongoshim"}}, {Key: "parsed", Value: parsed}, {Key: "ok", Value: 1.0}}), nil
	case "connectionstatus":
		return mustRaw(bson.D{{Key: "authInfo", Value: bson.D{{Key: "authenticatedUsers", Value: bson.A{}}, {Key: "authenticatedUserRoles", Value: bson.A{}}}}, {Key: "ok", Value: 1.0}}), nil
	case "whatsmyuri":
		return mustRaw(bson.D{{Key: "you", Value: c.peer}, {Key: "ok", Value: 1.0}}), nil
	case "getlog":
		return mustRaw(bson.D{{Key: "totalLinesWritten", Value: int32(0)}, {Key: "log", Value: bson.A{}}, {Key: "ok", Value: 1.0}}), nil
	case "appendoplognote":
		if db != "admin" {
			return nil, shimErr(codeUnauthorized, "appendOplogNote may only be run against the admin database.")
		}
		if !hasKey(cmd, "data") {
			return nil, shimErr(codeNoSuchKey, "missing required field \"data\"")
		}
		s.writeMu.Lock()
		t := s.clock.tick()
		s.oplog.noop(t)
		s.writeMu.Unlock()
		*opTime = t
		return okReply(), nil
	case "setuserwriteblockmode":
		if db != "admin" {
			return nil, shimErr(codeUnauthorized, "setUserWriteBlockMode may only be run against the admin database.")
		}
		v, err := cmd.LookupErr("global")
		if err != nil || v.Type != bson.TypeBoolean {
			return nil, shimErr(codeNoSuchKey, "setUserWriteBlockMode requires a boolean field 'global'")
		}
		s.writeMu.Lock() // in-flight writes finish first, as MongoDB drains them
		s.blocked.Store(v.Boolean())
		t := s.clock.tick()
		s.oplog.noop(t)
		if err := s.saveState(false); err != nil {
			s.log.Warn("saving the state file", "err", err)
		}
		s.writeMu.Unlock()
		*opTime = t
		s.log.Info("user write blocking", "global", v.Boolean())
		return okReply(), nil
	case "enablesharding":
		if s.cfg.Mongos {
			return s.enableSharding(db, cmd)
		}
	case "shardcollection":
		if s.cfg.Mongos {
			return s.shardCollection(ctx, db, cmd, opTime)
		}
	case "committransaction":
		return s.commitTxn(ctx, cmd, opTime)
	case "aborttransaction":
		return s.abortTxn(cmd)
	case "insert", "update", "delete", "findandmodify",
		"create", "drop", "renamecollection", "dropdatabase", "createindexes", "dropindexes", "collmod":
		if inTxn {
			return s.txnWrite(ctx, db, cmd)
		}
		return s.write(ctx, db, cmd, opTime)
	case "aggregate":
		if isChangeStream(cmd) {
			return s.openChangeStream(ctx, db, cmd)
		}
		return s.aggregate(ctx, db, cmd)
	case "getmore":
		if cur := s.cursors.get(firstInt(cmd)); cur != nil {
			if a, fired := s.failGetMore.fire(name, c.app); fired && a.err != nil {
				// the cursor was checked out, then the getMore failed:
				// mongod kills such a cursor
				if c := s.cursors.remove(firstInt(cmd)); c != nil {
					c.kill(ctx, s)
				}
				return s.withTopologyVersion(a.err), nil
			}
			return cur.getMore(ctx, s, cmd)
		}
		return s.forward(ctx, db, cmd)
	case "killcursors":
		return s.killCursors(ctx, db, cmd)
	case "find":
		if s.cfg.Mongos && db == "config" && collOf(cmd) == "collections" {
			return s.configCollections(cmd)
		}
		if hasKey(cmd, "min") || hasKey(cmd, "max") {
			return s.findMinMax(ctx, db, cmd)
		}
		return s.batched(ctx, db, cmd)
	case "listcollections":
		return s.listCollections(ctx, db, cmd)
	case "configurefailpoint":
		return s.configureFailPoint(db, cmd)
	case "shutdown", "replsetinitiate", "replsetreconfig", "replsetstepdown", "fsync":
		return nil, shimErr(codeIllegalOperation, name+" is not supported by mongoshim")
	}
	return s.forward(ctx, db, cmd)
}

var writeCommands = map[string]bool{"insert": true, "update": true, "delete": true, "findandmodify": true,
	"create": true, "drop": true, "renamecollection": true, "dropdatabase": true, "createindexes": true, "dropindexes": true, "collmod": true}

func okReply() bson.Raw { return mustRaw(bson.D{{Key: "ok", Value: 1.0}}) }

func firstInt(cmd bson.Raw) int64 {
	n, _ := asInt64(firstValue(cmd))
	return n
}

// stripped lists the command fields the backend does not understand:
// sessions, transactions, cluster time, read preference, API versioning,
// write concern (the backend is one in-memory node: every acknowledged write
// is as durable as it gets).
var stripped = map[string]bool{
	"lsid": true, "txnNumber": true, "$clusterTime": true, "autocommit": true, "startTransaction": true,
	"$readPreference": true, "apiVersion": true, "apiStrict": true, "apiDeprecationErrors": true,
	"recoveryToken": true, "stmtId": true, "stmtIds": true, "$db": true, "writeConcern": true,
	"$audit": true, "mayBypassWriteBlocking": true, "$client": true, "$configServerState": true,
}

// sanitize removes what the backend does not understand. readConcern keeps
// only level local (majority, snapshot, linearizable and afterClusterTime /
// atClusterTime are meaningless on one in-memory node without snapshots).
func sanitize(cmd bson.Raw) bson.Raw {
	return rebuild(cmd, func(k string, v bson.RawValue) (bson.RawValue, bool) {
		if stripped[k] {
			return v, false
		}
		if k == "readConcern" {
			return v, false
		}
		return v, true
	})
}

// forward runs cmd on the backend as is (sanitized) and returns its reply.
func (s *Server) forward(ctx context.Context, db string, cmd bson.Raw) (bson.Raw, error) {
	return s.be.run(ctx, db, sanitize(cmd))
}

func (s *Server) hello(ctx context.Context, c *conn, cmd bson.Raw, lower string) (bson.Raw, error) {
	// awaitable hello (streaming SDAM): the topology never changes, so wait
	// maxAwaitTimeMS and answer the same
	if tv := lookupDoc(cmd, "topologyVersion"); tv != nil {
		if ms, ok := lookupInt(cmd, "maxAwaitTimeMS"); ok && ms > 0 {
			pid, _ := tv.Lookup("processId").ObjectIDOK()
			if pid == s.processID {
				t := time.NewTimer(time.Duration(ms) * time.Millisecond)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil, ctx.Err()
				}
			}
		}
	}
	if s.cfg.Mongos {
		return s.mongosHello(c, cmd, lower), nil
	}
	last := s.oplog.lastTS()
	lastDate := time.Unix(int64(last.T()), 0)
	d := bson.D{{Key: "topologyVersion", Value: bson.D{{Key: "processId", Value: s.processID}, {Key: "counter", Value: int64(0)}}}}
	d = append(d,
		bson.E{Key: "hosts", Value: bson.A{s.addr}},
		bson.E{Key: "setName", Value: s.cfg.SetName},
		bson.E{Key: "setVersion", Value: int32(1)},
	)
	if lower == "hello" {
		d = append(d, bson.E{Key: "isWritablePrimary", Value: true})
	} else {
		d = append(d, bson.E{Key: "ismaster", Value: true})
	}
	if lookupBool(cmd, "helloOk") {
		d = append(d, bson.E{Key: "helloOk", Value: true})
	}
	d = append(d,
		bson.E{Key: "secondary", Value: false},
		bson.E{Key: "primary", Value: s.addr},
		bson.E{Key: "me", Value: s.addr},
		bson.E{Key: "electionId", Value: bson.ObjectID{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}},
		bson.E{Key: "lastWrite", Value: bson.D{
			{Key: "opTime", Value: bson.D{{Key: "ts", Value: last.bson()}, {Key: "t", Value: int64(1)}}},
			{Key: "lastWriteDate", Value: bson.NewDateTimeFromTime(lastDate)},
			{Key: "majorityOpTime", Value: bson.D{{Key: "ts", Value: last.bson()}, {Key: "t", Value: int64(1)}}},
			{Key: "majorityWriteDate", Value: bson.NewDateTimeFromTime(lastDate)},
		}},
	)
	d = append(d, helloLimits(c)...)
	d = append(d,
		bson.E{Key: "minWireVersion", Value: int32(0)},
		bson.E{Key: "maxWireVersion", Value: int32(21)},
		bson.E{Key: "readOnly", Value: false},
		bson.E{Key: "ok", Value: 1.0},
	)
	return mustRaw(d), nil
}

// helloLimits are the hello fields a mongod and a mongos both send, in
// their order.
func helloLimits(c *conn) []bson.E {
	return []bson.E{
		{Key: "maxBsonObjectSize", Value: int32(16777216)},
		{Key: "maxMessageSizeBytes", Value: int32(maxMessageSize)},
		{Key: "maxWriteBatchSize", Value: int32(100000)},
		{Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: "logicalSessionTimeoutMinutes", Value: int32(30)},
		{Key: "connectionId", Value: c.id},
	}
}

// mongosHello is a mongos's hello / isMaster reply (fields as a genuine
// mongos sends them, in its order): no setName, hosts, primary, me,
// secondary, electionId, setVersion, lastWrite or readOnly, and msg
// "isdbgrid", which makes drivers see a Sharded topology.
func (s *Server) mongosHello(c *conn, cmd bson.Raw, lower string) bson.Raw {
	var d bson.D
	if lower == "hello" {
		d = append(d, bson.E{Key: "isWritablePrimary", Value: true})
	} else {
		d = append(d, bson.E{Key: "ismaster", Value: true})
	}
	d = append(d, bson.E{Key: "msg", Value: "isdbgrid"})
	if lookupBool(cmd, "helloOk") {
		d = append(d, bson.E{Key: "helloOk", Value: true})
	}
	d = append(d, helloLimits(c)...)
	d = append(d,
		bson.E{Key: "maxWireVersion", Value: int32(21)},
		bson.E{Key: "minWireVersion", Value: int32(0)},
		bson.E{Key: "topologyVersion", Value: bson.D{{Key: "processId", Value: s.processID}, {Key: "counter", Value: int64(0)}}},
		bson.E{Key: "ok", Value: 1.0},
	)
	return mustRaw(d)
}

func (s *Server) buildInfo() bson.Raw {
	return mustRaw(bson.D{
		{Key: "version", Value: Version},
		{Key: "gitVersion", Value: "mongoshim"},
		{Key: "modules", Value: bson.A{}},
		{Key: "allocator", Value: "system"},
		{Key: "javascriptEngine", Value: "none"},
		{Key: "sysInfo", Value: "deprecated"},
		{Key: "versionArray", Value: bson.A{int32(7), int32(0), int32(0), int32(0)}},
		{Key: "bits", Value: int32(64)},
		{Key: "debug", Value: false},
		{Key: "maxBsonObjectSize", Value: int32(16777216)},
		{Key: "storageEngines", Value: bson.A{"mongo-java-server"}},
		{Key: "ok", Value: 1.0},
	})
}

func (s *Server) getParameter(cmd bson.Raw) (bson.Raw, error) {
	known := map[string]any{
		"featureCompatibilityVersion":            bson.D{{Key: "version", Value: "7.0"}},
		"logicalSessionRefreshMillis":            int32(300000),
		"transactionLifetimeLimitSeconds":        int32(60),
		"maxTransactionLockRequestTimeoutMillis": int32(5),
	}
	all := false
	if v := firstValue(cmd); v.Type == bson.TypeString && v.StringValue() == "*" {
		all = true
	}
	d := bson.D{}
	elems, _ := cmd.Elements()
	for _, e := range elems[1:] {
		if stripped[e.Key()] || e.Key() == "comment" {
			continue
		}
		v, ok := known[e.Key()]
		if !ok {
			return nil, shimErr(codeInvalidOptions, "no option found to get")
		}
		d = append(d, bson.E{Key: e.Key(), Value: v})
	}
	if all {
		d = d[:0]
		for k, v := range known {
			d = append(d, bson.E{Key: k, Value: v})
		}
	}
	d = append(d, bson.E{Key: "ok", Value: 1.0})
	return mustRaw(d), nil
}

func (s *Server) hostInfo() bson.Raw {
	host, _ := os.Hostname()
	return mustRaw(bson.D{
		{Key: "system", Value: bson.D{
			{Key: "currentTime", Value: bson.NewDateTimeFromTime(time.Now())},
			{Key: "hostname", Value: host},
			{Key: "cpuAddrSize", Value: int32(64)},
			{Key: "numCores", Value: int32(runtime.NumCPU())},
			{Key: "cpuArch", Value: runtime.GOARCH},
		}},
		{Key: "os", Value: bson.D{{Key: "type", Value: runtime.GOOS}, {Key: "name", Value: runtime.GOOS}}},
		{Key: "extra", Value: bson.D{}},
		{Key: "ok", Value: 1.0},
	})
}

func (s *Server) replSetGetStatus() bson.Raw {
	last := s.oplog.lastTS()
	op := bson.D{{Key: "ts", Value: last.bson()}, {Key: "t", Value: int64(1)}}
	return mustRaw(bson.D{
		{Key: "set", Value: s.cfg.SetName},
		{Key: "date", Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: "myState", Value: int32(1)},
		{Key: "term", Value: int64(1)},
		{Key: "heartbeatIntervalMillis", Value: int64(2000)},
		{Key: "optimes", Value: bson.D{{Key: "lastCommittedOpTime", Value: op}, {Key: "appliedOpTime", Value: op}, {Key: "durableOpTime", Value: op}}},
		{Key: "members", Value: bson.A{bson.D{
			{Key: "_id", Value: int32(0)},
			{Key: "name", Value: s.addr},
			{Key: "health", Value: 1.0},
			{Key: "state", Value: int32(1)},
			{Key: "stateStr", Value: "PRIMARY"},
			{Key: "optime", Value: op},
			{Key: "optimeDate", Value: bson.NewDateTimeFromTime(time.Unix(int64(last.T()), 0))},
			{Key: "self", Value: true},
		}}},
		{Key: "ok", Value: 1.0},
	})
}

func (s *Server) serverStatus() bson.Raw {
	host, _ := os.Hostname()
	s.connMu.Lock()
	n := len(s.conns)
	s.connMu.Unlock()
	if s.cfg.Mongos {
		return mustRaw(bson.D{
			{Key: "host", Value: host},
			{Key: "version", Value: Version},
			{Key: "process", Value: "mongos"},
			{Key: "pid", Value: int64(os.Getpid())},
			{Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
			{Key: "connections", Value: bson.D{{Key: "current", Value: int32(n)}}},
			{Key: "ok", Value: 1.0},
		})
	}
	return mustRaw(bson.D{
		{Key: "host", Value: host},
		{Key: "version", Value: Version},
		{Key: "process", Value: "mongod"},
		{Key: "pid", Value: int64(os.Getpid())},
		{Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
		{Key: "connections", Value: bson.D{{Key: "current", Value: int32(n)}}},
		{Key: "repl", Value: bson.D{
			{Key: "setName", Value: s.cfg.SetName},
			{Key: "isWritablePrimary", Value: true},
			{Key: "hosts", Value: bson.A{s.addr}},
			{Key: "primary", Value: s.addr},
			{Key: "me", Value: s.addr},
		}},
		{Key: "ok", Value: 1.0},
	})
}

// newUUID returns a random UUID as BSON binary subtype 4.
func newUUID() bson.Binary {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return bson.Binary{Subtype: 4, Data: b}
}
