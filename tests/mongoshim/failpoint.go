package mongoshim

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// failPoint is one of mongod's test fail points (enableTestCommands), set with
// configureFailPoint on admin, so that tests drive the clients' error and
// resume paths as a genuine server would:
//
//	{configureFailPoint: "failCommand" | "failGetMoreAfterCursorCheckout",
//	 mode: "alwaysOn" | "off" | {times: n} | {skip: n} | {activationProbability: p},
//	 data: {failCommands: [names], errorCode: n, errorLabels: [...],
//	        closeConnection: bool, blockConnection: bool, blockTimeMS: n,
//	        writeConcernError: {...}, appName: s}}
//
// failCommand matches commands by name, case-sensitively as mongod does; with
// appName only clients whose handshake named that application. What it does,
// in mongod's order: blockConnection waits blockTimeMS first (and is all it
// does unless another action is set); closeConnection closes the connection
// without a reply (the client sees a network error); errorCode fails the
// command with that code, its codeName and errorLabels; writeConcernError runs
// the command and adds that writeConcernError to its reply.
//
// failGetMoreAfterCursorCheckout fails every getMore (of a change stream or
// any cursor the shim serves) after the cursor was found: the cursor is gone
// afterwards, as mongod kills a cursor whose getMore failed, and the error is
// data.errorCode (InternalError when none is given) with data.errorLabels.
//
// Modes: alwaysOn; off; {times: n} fires n times, then turns off; {skip: n}
// lets n matching commands pass, then fires on each one; {activationProbability:
// p} fires on each match with probability p. The reply is {count: times the
// fail point fired before this call, ok: 1}.
type failPoint struct {
	name    string
	on      atomic.Bool // read without the lock on every command; set under it
	mu      sync.Mutex
	times   int64   // activations left; < 0: unlimited
	skip    int64   // matches to let pass first
	prob    float64 // activation probability (1 unless that mode)
	entered int64
	cmds    map[string]bool
	code    int32
	labels  []string
	app     string
	close   bool
	block   time.Duration
	wce     bson.Raw
}

// action is what a fired fail point does to one command.
type action struct {
	block time.Duration
	close bool
	err   bson.Raw // the error reply, nil when the command runs
	wce   bson.Raw // writeConcernError to add to the reply
}

// configure runs configureFailPoint for this fail point.
func (f *failPoint) configure(cmd bson.Raw) (bson.Raw, error) {
	on, times, skip, prob := false, int64(0), int64(0), 1.0
	switch m := cmd.Lookup("mode"); m.Type {
	case bson.TypeString:
		switch m.StringValue() {
		case "off":
		case "alwaysOn":
			on, times = true, -1
		default:
			return nil, shimErr(codeBadValue, "unknown fail point mode "+strconv.Quote(m.StringValue()))
		}
	case bson.TypeEmbeddedDocument:
		md := m.Document()
		switch k := cmdName(md); k {
		case "times":
			n, ok := md.Lookup(k).AsInt64OK()
			if !ok || n < 0 {
				return nil, shimErr(codeBadValue, "mode {times: n} needs a number n >= 0")
			}
			on, times = n > 0, n
		case "skip":
			n, ok := md.Lookup(k).AsInt64OK()
			if !ok || n < 0 {
				return nil, shimErr(codeBadValue, "mode {skip: n} needs a number n >= 0")
			}
			on, times, skip = true, -1, n
		case "activationProbability":
			p, ok := md.Lookup(k).AsFloat64OK()
			if !ok || p < 0 || p > 1 {
				return nil, shimErr(codeBadValue, "mode {activationProbability: p} needs a number between 0 and 1")
			}
			on, times, prob = p > 0, -1, p
		default:
			return nil, shimErr(codeBadValue, "unknown fail point mode "+md.String()+": use alwaysOn, off, {times: n}, {skip: n} or {activationProbability: p}")
		}
	default:
		return nil, shimErr(codeBadValue, "configureFailPoint needs a mode")
	}
	data, _ := cmd.Lookup("data").DocumentOK()
	cmds := map[string]bool{}
	if arr, ok := data.Lookup("failCommands").ArrayOK(); ok {
		vals, _ := arr.Values()
		for _, v := range vals {
			if s, ok := v.StringValueOK(); ok {
				cmds[s] = true
			}
		}
	}
	code, _ := data.Lookup("errorCode").AsInt64OK()
	closeConn := lookupBool(data, "closeConnection")
	block := time.Duration(0)
	if lookupBool(data, "blockConnection") {
		ms, ok := data.Lookup("blockTimeMS").AsInt64OK()
		if !ok || ms < 0 {
			return nil, shimErr(codeBadValue, "blockConnection needs blockTimeMS, a number of milliseconds")
		}
		block = time.Duration(ms) * time.Millisecond
	}
	wce, _ := data.Lookup("writeConcernError").DocumentOK()
	if f.name == "failCommand" && on {
		if len(cmds) == 0 {
			return nil, shimErr(codeBadValue, "failCommand needs data.failCommands")
		}
		if code == 0 && !closeConn && block == 0 && wce == nil {
			return nil, shimErr(codeBadValue, "failCommand needs one of data.errorCode, closeConnection, blockConnection or writeConcernError")
		}
	}
	if f.name == "failGetMoreAfterCursorCheckout" && code == 0 {
		code = codeInternalError
	}
	var labels []string
	if arr, ok := data.Lookup("errorLabels").ArrayOK(); ok {
		vals, _ := arr.Values()
		for _, v := range vals {
			if s, ok := v.StringValueOK(); ok {
				labels = append(labels, s)
			}
		}
	}
	app, _ := data.Lookup("appName").StringValueOK()
	f.mu.Lock()
	count := f.entered
	f.times, f.skip, f.prob, f.cmds, f.code, f.labels, f.app = times, skip, prob, cmds, int32(code), labels, app
	f.close, f.block, f.wce = closeConn, block, copyRaw(wce)
	if wce == nil {
		f.wce = nil
	}
	f.on.Store(on)
	f.mu.Unlock()
	return mustRaw(bson.D{{Key: "count", Value: count}, {Key: "ok", Value: 1.0}}), nil
}

// fire returns what the fail point does to command name from a client of
// application app; ok is false when it does not fire. failCommand matches
// names; failGetMoreAfterCursorCheckout every getMore (name is not checked).
func (f *failPoint) fire(name, app string) (action, bool) {
	if !f.on.Load() {
		return action{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on.Load() || (len(f.cmds) > 0 && !f.cmds[name]) || (f.app != "" && f.app != app) {
		return action{}, false
	}
	if f.skip > 0 {
		f.skip--
		return action{}, false
	}
	if f.prob < 1 && rand.Float64() >= f.prob {
		return action{}, false
	}
	f.entered++
	if f.times > 0 {
		if f.times--; f.times == 0 {
			f.on.Store(false)
		}
	}
	a := action{block: f.block, close: f.close, wce: f.wce}
	if f.code != 0 {
		codeName, ok := codeNames[f.code]
		if !ok {
			codeName = "Location" + itoa(int(f.code))
		}
		msg := "Failing command via '" + f.name + "' failpoint"
		if f.name == "failGetMoreAfterCursorCheckout" {
			msg = "Failing getMore via 'failGetMoreAfterCursorCheckout' failpoint"
		}
		a.err = errReplyNamed(f.code, codeName, msg, f.labels...)
	}
	return a, true
}

// configureFailPoint dispatches to the named fail point.
func (s *Server) configureFailPoint(db string, cmd bson.Raw) (bson.Raw, error) {
	if db != "admin" {
		return nil, shimErr(codeUnauthorized, "configureFailPoint may only be run against the admin database.")
	}
	name, _ := cmd.Lookup("configureFailPoint").StringValueOK()
	switch name {
	case "failCommand":
		return s.failCommand.configure(cmd)
	case "failGetMoreAfterCursorCheckout":
		return s.failGetMore.configure(cmd)
	}
	return nil, shimErr(codeBadValue, "mongoshim supports the fail points failCommand and failGetMoreAfterCursorCheckout, not "+strconv.Quote(name))
}

// stateChangeCodes are the NotPrimary and Shutdown error codes: mongod puts
// its topologyVersion on such an error, and a client whose server
// description already has that version treats the error as stale instead
// of marking the server unknown (a fail point's error would otherwise make
// the driver wait for the next awaitable hello before selecting the server
// again).
var stateChangeCodes = map[int64]bool{91: true, 189: true, 10107: true, 11600: true, 11602: true, 13435: true, 13436: true}

func (s *Server) withTopologyVersion(reply bson.Raw) bson.Raw {
	if c, _ := lookupInt(reply, "code"); !stateChangeCodes[c] {
		return reply
	}
	return withFields(reply, "topologyVersion", bson.D{{Key: "processId", Value: s.processID}, {Key: "counter", Value: int64(0)}})
}
