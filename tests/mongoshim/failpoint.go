package mongoshim

import (
	"strconv"
	"sync"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// failCommand is mongod's failCommand fail point (a test command there,
// with enableTestCommands), so that tests can make the server refuse a
// command as a genuine one would, for example with Unauthorized for a user
// without a privilege (the shim has no authentication):
//
//	{configureFailPoint: "failCommand", mode: "alwaysOn" | "off" | {times: n},
//	 data: {failCommands: [names], errorCode: n, errorLabels: [...], appName: s}}
//
// Commands are matched by name, case-sensitively as mongod does; with
// appName only clients whose handshake named that application fail. The
// reply is {count: times the fail point fired so far, ok: 1}. Not
// supported: closeConnection, blockConnection, writeConcernError and the
// skip and activationProbability modes (an error says so).
type failCommand struct {
	on      atomic.Bool // read without the lock on every command; set under it
	mu      sync.Mutex
	times   int64 // activations left; < 0: until switched off
	entered int64
	cmds    map[string]bool
	code    int32
	labels  []string
	app     string
}

// configure runs configureFailPoint.
func (f *failCommand) configure(db string, cmd bson.Raw) (bson.Raw, error) {
	if db != "admin" {
		return nil, shimErr(codeUnauthorized, "configureFailPoint may only be run against the admin database.")
	}
	if name, _ := cmd.Lookup("configureFailPoint").StringValueOK(); name != "failCommand" {
		return nil, shimErr(codeBadValue, "mongoshim supports only the failCommand fail point, not "+strconv.Quote(name))
	}
	on, times := false, int64(0)
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
		n, ok := m.Document().Lookup("times").AsInt64OK()
		if !ok || n < 0 {
			return nil, shimErr(codeBadValue, "mongoshim supports the modes alwaysOn, off and {times: n}")
		}
		on, times = n > 0, n
	default:
		return nil, shimErr(codeBadValue, "configureFailPoint needs a mode")
	}
	data, _ := cmd.Lookup("data").DocumentOK()
	for _, unsupported := range []string{"closeConnection", "blockConnection", "writeConcernError"} {
		if v := data.Lookup(unsupported); on && v.Type != 0 && !(v.Type == bson.TypeBoolean && !v.Boolean()) {
			return nil, shimErr(codeBadValue, "mongoshim's failCommand does not support "+unsupported)
		}
	}
	cmds := map[string]bool{}
	if arr, ok := data.Lookup("failCommands").ArrayOK(); ok {
		vals, _ := arr.Values()
		for _, v := range vals {
			if s, ok := v.StringValueOK(); ok {
				cmds[s] = true
			}
		}
	}
	if on && len(cmds) == 0 {
		return nil, shimErr(codeBadValue, "failCommand needs data.failCommands")
	}
	code, _ := data.Lookup("errorCode").AsInt64OK()
	if on && code == 0 {
		return nil, shimErr(codeBadValue, "mongoshim's failCommand needs data.errorCode")
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
	f.times, f.cmds, f.code, f.labels, f.app = times, cmds, int32(code), labels, app
	f.on.Store(on)
	f.mu.Unlock()
	return mustRaw(bson.D{{Key: "count", Value: count}, {Key: "ok", Value: 1.0}}), nil
}

// fire returns the error reply for a command the fail point fails, or nil.
func (f *failCommand) fire(name, app string) bson.Raw {
	if !f.on.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on.Load() || !f.cmds[name] || (f.app != "" && f.app != app) {
		return nil
	}
	f.entered++
	if f.times > 0 {
		if f.times--; f.times == 0 {
			f.on.Store(false)
		}
	}
	codeName, ok := codeNames[f.code]
	if !ok {
		codeName = "Location" + itoa(int(f.code))
	}
	return errReplyNamed(f.code, codeName, "Failing command via 'failCommand' failpoint", f.labels...)
}
