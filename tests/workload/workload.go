package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/logbridge/logbridge/pkg/mongox"
)

// Options shape a workload.
type Options struct {
	Seed         uint64
	DBs          []string // databases to write (created as needed)
	Collections  int      // collections per database at the start (default 3)
	Transactions bool     // include multi-document transactions
	DDL          bool     // include collection/database/index DDL
	// DDLPercent is the share of operations that are DDL when DDL is on
	// (default 4). Every drop loses a collection's documents, so a long
	// run that should end with many documents to compare wants less.
	DDLPercent  int
	MaxDocBytes int // upper bound of a document's padding (default 4096)
	// ExcludeTypes names optional BSON types (see TypeNames) that documents
	// must not hold, for servers that cannot store them (see Unstorable).
	// Every other type appears; the core fields (int, long, double, string,
	// object, array, date) are always there.
	ExcludeTypes []string
	// Trace, if set, is told of every DDL operation (for debugging a seed).
	Trace func(op string)
}

// Stats counts what a run did, per operation kind.
type Stats map[string]int

func (s Stats) String() string {
	var parts []string
	for _, k := range []string{"insert", "update", "replace", "delete", "txn", "createColl", "dropColl", "rename", "dropDatabase", "createIndex", "dropIndex"} {
		if s[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, s[k]))
		}
	}
	return strings.Join(parts, " ")
}

type coll struct {
	db, name string
	ids      []bson.RawValue // live _ids, in insertion order
	indexes  []string
}

// Generator holds the workload's model of what it wrote.
type Generator struct {
	cl    *mongo.Client
	opts  Options
	rnd   *rand.Rand
	colls []*coll
	next  int        // counter for unique names and ids
	types []bsonType // optional types documents may hold (catalogue minus ExcludeTypes)
}

// New prepares a generator; nothing is written until Run.
func New(cl *mongo.Client, opts Options) *Generator {
	if opts.Collections <= 0 {
		opts.Collections = 3
	}
	if opts.DDLPercent <= 0 {
		opts.DDLPercent = 4
	}
	if opts.MaxDocBytes <= 0 {
		opts.MaxDocBytes = 4096
	}
	g := &Generator{cl: cl, opts: opts, rnd: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
	// Counter-based _ids start at a seed-specific offset, so that runs with
	// different seeds can write to the same collections.
	g.next = int(opts.Seed%1000) * 10_000_000
	excluded := map[string]bool{}
	for _, t := range opts.ExcludeTypes {
		excluded[t] = true
	}
	for _, t := range catalogue {
		if !excluded[t.name] {
			g.types = append(g.types, t)
		}
	}
	for _, db := range opts.DBs {
		for i := 0; i < opts.Collections; i++ {
			g.colls = append(g.colls, &coll{db: db, name: fmt.Sprintf("c%d", i)})
		}
	}
	return g
}

// Run performs n operations.
func (g *Generator) Run(ctx context.Context, n int) (Stats, error) {
	st := Stats{}
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		kind, err := g.step(ctx)
		if err != nil {
			return st, fmt.Errorf("workload op %d (%s): %w", i, kind, err)
		}
		st[kind]++
	}
	return st, nil
}

// Seed inserts n documents into every collection (a base for the snapshot).
func (g *Generator) Seed(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	for _, c := range g.colls {
		docs := make([]any, n)
		for i := range docs {
			docs[i] = g.newDoc(c)
		}
		if _, err := g.cl.Database(c.db).Collection(c.name).InsertMany(ctx, docs); err != nil {
			return fmt.Errorf("seeding %s.%s: %w", c.db, c.name, err)
		}
	}
	return nil
}

func (g *Generator) step(ctx context.Context) (string, error) {
	p := g.rnd.IntN(100)
	switch {
	case g.opts.DDL && p < g.opts.DDLPercent:
		return g.ddl(ctx)
	case g.opts.Transactions && p < 10:
		return "txn", g.txn(ctx)
	case p < 45:
		c := g.pick()
		_, err := g.cl.Database(c.db).Collection(c.name).InsertOne(ctx, g.newDoc(c))
		return "insert", err
	}
	c := g.pick()
	if len(c.ids) == 0 {
		_, err := g.cl.Database(c.db).Collection(c.name).InsertOne(ctx, g.newDoc(c))
		return "insert", err
	}
	return g.modify(ctx, g.cl.Database(c.db).Collection(c.name), c, p)
}

func (g *Generator) pick() *coll { return g.colls[g.rnd.IntN(len(g.colls))] }

func (g *Generator) pickID(c *coll) (int, bson.RawValue) {
	i := g.rnd.IntN(len(c.ids))
	return i, c.ids[i]
}

// modify runs an update, replace or delete on an existing document; mc may be
// a collection bound to a transaction's session context.
func (g *Generator) modify(ctx context.Context, mc *mongo.Collection, c *coll, p int) (string, error) {
	i, id := g.pickID(c)
	filter := bson.D{{Key: "_id", Value: id}}
	switch {
	case p < 75:
		_, err := mc.UpdateOne(ctx, filter, g.updateDoc())
		return "update", err
	case p < 88:
		repl := g.body(g.rnd.IntN(g.opts.MaxDocBytes))
		_, err := mc.ReplaceOne(ctx, filter, repl)
		return "replace", err
	default:
		_, err := mc.DeleteOne(ctx, filter)
		if err == nil {
			c.ids = append(c.ids[:i], c.ids[i+1:]...)
		}
		return "delete", err
	}
}

func (g *Generator) updateDoc() bson.D {
	switch g.rnd.IntN(5) {
	case 0:
		return bson.D{{Key: "$set", Value: bson.D{{Key: "s", Value: g.word()}, {Key: "nested.x", Value: g.rnd.Int64()}}}}
	case 1:
		return bson.D{{Key: "$unset", Value: bson.D{{Key: "s", Value: ""}}}}
	case 2:
		return bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int32(g.rnd.IntN(10) + 1)}}}}
	case 3:
		return bson.D{{Key: "$push", Value: bson.D{{Key: "arr", Value: g.word()}}}}
	default:
		return bson.D{{Key: "$pull", Value: bson.D{{Key: "arr", Value: bson.D{{Key: "$in", Value: bson.A{"alpha", "beta"}}}}}}}
	}
}

func (g *Generator) txn(ctx context.Context) error {
	sess, err := g.cl.StartSession()
	if err != nil {
		return err
	}
	defer sess.EndSession(context.Background())
	c := g.pick()
	// Inserts are kept in a side list and only recorded once the
	// transaction commits, so the model never holds an aborted write.
	var inserted []bson.RawValue
	_, err = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		inserted = inserted[:0]
		mc := g.cl.Database(c.db).Collection(c.name)
		for k := 0; k < 1+g.rnd.IntN(4); k++ {
			doc := g.docWithID(g.newID())
			if _, err := mc.InsertOne(sctx, doc); err != nil {
				return nil, err
			}
			inserted = append(inserted, bson.Raw(mustMarshal(doc)).Lookup("_id"))
		}
		if len(c.ids) > 0 {
			_, id := g.pickID(c)
			if _, err := mc.UpdateOne(sctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "txn", Value: int32(1)}}}}); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err == nil {
		c.ids = append(c.ids, inserted...)
	}
	return err
}

func (g *Generator) ddl(ctx context.Context) (string, error) {
	c := g.pick()
	if g.opts.Trace != nil {
		before := c.db + "." + c.name
		defer func() {
			g.opts.Trace(fmt.Sprintf("ddl on %s (now %s.%s, indexes %v)", before, c.db, c.name, c.indexes))
		}()
	}
	db := g.cl.Database(c.db)
	switch g.rnd.IntN(6) {
	case 0:
		g.next++
		nc := &coll{db: c.db, name: fmt.Sprintf("n%d", g.next)}
		g.colls = append(g.colls, nc)
		return "createColl", db.CreateCollection(ctx, nc.name)
	case 1:
		if len(g.colls) <= 2 {
			return "createIndex", g.createIndex(ctx, c)
		}
		g.remove(c)
		return "dropColl", db.Collection(c.name).Drop(ctx)
	case 2:
		g.next++
		to := fmt.Sprintf("r%d", g.next)
		err := g.cl.Database("admin").RunCommand(ctx, bson.D{
			{Key: "renameCollection", Value: c.db + "." + c.name}, {Key: "to", Value: c.db + "." + to},
		}).Err()
		if mongox.IsNamespaceNotFound(err) { // never written yet
			return "rename", nil
		}
		if err == nil {
			c.name = to
		}
		return "rename", err
	case 3:
		if len(g.opts.DBs) < 2 || g.rnd.IntN(3) != 0 {
			return "createIndex", g.createIndex(ctx, c)
		}
		for _, o := range append([]*coll(nil), g.colls...) {
			if o.db == c.db {
				o.ids, o.indexes = nil, nil
			}
		}
		return "dropDatabase", db.Drop(ctx)
	case 4:
		return "createIndex", g.createIndex(ctx, c)
	default:
		if len(c.indexes) == 0 {
			return "createIndex", g.createIndex(ctx, c)
		}
		name := c.indexes[0]
		c.indexes = c.indexes[1:]
		return "dropIndex", db.Collection(c.name).Indexes().DropOne(ctx, name)
	}
}

func (g *Generator) createIndex(ctx context.Context, c *coll) error {
	fields := []string{"n", "s", "nested.x", "d"}
	f := fields[g.rnd.IntN(len(fields))]
	name, err := g.cl.Database(c.db).Collection(c.name).Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: f, Value: 1 - 2*g.rnd.IntN(2)}},
	})
	if err == nil && !slices.Contains(c.indexes, name) { // creating an existing index is a no-op
		c.indexes = append(c.indexes, name)
	}
	return err
}

func (g *Generator) remove(c *coll) {
	for i, o := range g.colls {
		if o == c {
			g.colls = append(g.colls[:i], g.colls[i+1:]...)
			return
		}
	}
}

// newID returns an _id of one of several BSON types.
func (g *Generator) newID() any {
	g.next++
	switch g.rnd.IntN(6) {
	case 0:
		return g.objectID()
	case 1:
		return int32(g.next)
	case 2:
		return int64(g.next) << 33
	case 3:
		return fmt.Sprintf("id-%06d", g.next)
	case 4:
		b := make([]byte, 16)
		for i := range b {
			b[i] = byte(g.rnd.IntN(256))
		}
		return bson.Binary{Subtype: 4, Data: b}
	default:
		return bson.D{{Key: "k", Value: int32(g.next)}, {Key: "t", Value: "c"}}
	}
}

func (g *Generator) newDoc(c *coll) bson.D {
	id := g.newID()
	d := g.docWithID(id)
	c.ids = append(c.ids, bson.Raw(mustMarshal(d)).Lookup("_id"))
	return d
}

func (g *Generator) docWithID(id any) bson.D {
	return append(bson.D{{Key: "_id", Value: id}}, g.body(g.rnd.IntN(g.opts.MaxDocBytes))...)
}

// body is a document of varied shape holding every BSON type the product
// must carry losslessly.
func (g *Generator) body(pad int) bson.D {
	d := bson.D{
		{Key: "n", Value: int32(g.rnd.IntN(1000))},
		{Key: "s", Value: g.word()},
		{Key: "arr", Value: bson.A{"alpha", g.word(), int64(g.rnd.IntN(9))}},
		{Key: "nested", Value: bson.D{{Key: "x", Value: g.rnd.Int64()}, {Key: "f", Value: g.rnd.Float64()}}},
		{Key: "d", Value: bson.DateTime(1700000000000 + g.rnd.Int64N(1e9))},
	}
	for _, t := range g.types {
		if g.rnd.IntN(2) == 0 {
			d = append(d, bson.E{Key: t.field, Value: t.gen(g)})
		}
	}
	if pad > 0 {
		d = append(d, bson.E{Key: "pad", Value: strings.Repeat("x", pad)})
	}
	return d
}

var words = []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}

func (g *Generator) word() string { return words[g.rnd.IntN(len(words))] }

func mustMarshal(v any) []byte {
	b, err := bson.Marshal(v)
	if err != nil {
		panic(err) // the generator only builds marshalable values
	}
	return b
}

func (g *Generator) objectID() bson.ObjectID {
	var oid bson.ObjectID
	for i := range oid {
		oid[i] = byte(g.rnd.IntN(256))
	}
	return oid
}
