package conformance

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func indexChecks() []Check {
	return []Check{
		{
			Name: "indexes", Role: "destination",
			Desc:    "createIndexes options come back in listIndexes and are enforced",
			Results: []string{"index_unique", "index_compound", "index_ttl", "index_collation", "index_partial_sparse"},
			Run:     checkIndexes,
		},
	}
}

func listIndexes(ctx context.Context, c *mongo.Collection) (map[string]bson.Raw, error) {
	cur, err := c.Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	var specs []bson.Raw
	if err := cur.All(ctx, &specs); err != nil {
		return nil, err
	}
	out := map[string]bson.Raw{}
	for _, s := range specs {
		out[lookupString(s, "name")] = s
	}
	return out, nil
}

func checkIndexes(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("idx"))
	defer dropDB(e.Client, db.Name())
	c := db.Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 0}, {Key: "email", Value: "a@x"}}); err != nil {
		rep("*", Error, "seed: %s", errText(err))
		return
	}
	create := func(keys bson.D, o *options.IndexOptionsBuilder) (string, error) {
		return c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: o})
	}

	// unique
	if name, err := create(bson.D{{Key: "email", Value: 1}}, options.Index().SetUnique(true).SetName("email_u")); err != nil {
		rep("index_unique", Error, "create: %s", errText(err))
	} else {
		_, derr := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a@x"}})
		specs, lerr := listIndexes(ctx, c)
		spec := specs[name]
		unique := false
		if v, err := spec.LookupErr("unique"); err == nil {
			unique, _ = v.BooleanOK()
		}
		switch {
		case lerr != nil:
			rep("index_unique", Error, "listIndexes: %s", errText(lerr))
		case derr == nil:
			rep("index_unique", Fail, "duplicate accepted")
		case errCode(derr) != 11000:
			rep("index_unique", Fail, "duplicate rejected with code %d, want 11000", errCode(derr))
		case !unique:
			rep("index_unique", Fail, "enforced, but listIndexes lacks unique:true: %s", spec)
		default:
			rep("index_unique", Pass, "E11000 on duplicate, unique:true listed")
		}
	}

	// compound, key order and directions preserved
	if name, err := create(bson.D{{Key: "b", Value: 1}, {Key: "a", Value: -1}, {Key: "c", Value: 1}}, nil); err != nil {
		rep("index_compound", Error, "create: %s", errText(err))
	} else if specs, err := listIndexes(ctx, c); err != nil {
		rep("index_compound", Error, "listIndexes: %s", errText(err))
	} else if spec, ok := specs[name]; !ok {
		rep("index_compound", Fail, "index %q not listed (names: %v)", name, keys(specs))
	} else {
		key, _ := spec.Lookup("key").DocumentOK()
		els, _ := key.Elements()
		got := ""
		for _, el := range els {
			n, _ := el.Value().AsInt64OK()
			if f, ok := el.Value().DoubleOK(); ok {
				n = int64(f)
			}
			got += fmt.Sprintf("%s:%d,", el.Key(), n)
		}
		if got == "b:1,a:-1,c:1," && name == "b_1_a_-1_c_1" {
			rep("index_compound", Pass, "key order/directions and default name preserved")
		} else {
			rep("index_compound", Fail, "listed key %s name %q, want b:1,a:-1,c:1 name b_1_a_-1_c_1", got, name)
		}
	}

	// TTL
	if name, err := create(bson.D{{Key: "ts", Value: 1}}, options.Index().SetExpireAfterSeconds(3600)); err != nil {
		rep("index_ttl", Error, "create: %s", errText(err))
	} else if specs, err := listIndexes(ctx, c); err != nil {
		rep("index_ttl", Error, "listIndexes: %s", errText(err))
	} else {
		v, ok := lookupInt(specs[name], "expireAfterSeconds")
		if ok && v == 3600 {
			rep("index_ttl", Pass, "expireAfterSeconds=3600 listed (expiry itself not waited for)")
		} else {
			rep("index_ttl", Fail, "expireAfterSeconds not listed: %s", specs[name])
		}
	}

	// collation: listed and used for uniqueness
	cc := db.Collection("coll")
	name, err := cc.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "name", Value: 1}},
		Options: options.Index().SetUnique(true).SetCollation(&options.Collation{Locale: "en", Strength: 2}),
	})
	if err != nil {
		rep("index_collation", Error, "create: %s", errText(err))
	} else {
		var problems []string
		specs, lerr := listIndexes(ctx, cc)
		if lerr != nil {
			problems = append(problems, "listIndexes: "+errText(lerr))
		} else {
			spec := specs[name]
			st, _ := lookupInt(spec, "collation", "strength")
			if lookupString(spec, "collation", "locale") != "en" || st != 2 {
				problems = append(problems, "collation not listed: "+spec.String())
			}
		}
		if _, err := cc.InsertOne(ctx, bson.D{{Key: "name", Value: "abc"}}); err != nil {
			problems = append(problems, "insert: "+errText(err))
		}
		if _, err := cc.InsertOne(ctx, bson.D{{Key: "name", Value: "ABC"}}); err == nil {
			problems = append(problems, "case-insensitive unique index accepted abc and ABC")
		}
		n, err := cc.CountDocuments(ctx, bson.D{{Key: "name", Value: "aBc"}}, options.Count().SetCollation(&options.Collation{Locale: "en", Strength: 2}))
		if err != nil || n != 1 {
			problems = append(problems, fmt.Sprintf("query with collation strength 2 found %d (err %v)", n, err))
		}
		if len(problems) > 0 {
			rep("index_collation", Fail, "%s", join(problems))
		} else {
			rep("index_collation", Pass, "collation listed and used for uniqueness and queries")
		}
	}

	// partial + sparse, on a collection without other unique indexes
	pc := db.Collection("partial")
	create = func(keys bson.D, o *options.IndexOptionsBuilder) (string, error) {
		return pc.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: o})
	}
	var problems []string
	pname, err := create(bson.D{{Key: "p", Value: 1}}, options.Index().SetPartialFilterExpression(bson.D{{Key: "p", Value: bson.D{{Key: "$gt", Value: 5}}}}).SetUnique(true))
	if err != nil {
		problems = append(problems, "partial create: "+errText(err))
	}
	sname, err := create(bson.D{{Key: "s", Value: 1}}, options.Index().SetSparse(true))
	if err != nil {
		problems = append(problems, "sparse create: "+errText(err))
	}
	if len(problems) == 0 {
		specs, err := listIndexes(ctx, pc)
		if err != nil {
			problems = append(problems, "listIndexes: "+errText(err))
		} else {
			if lookupType(specs[pname], "partialFilterExpression") != bson.TypeEmbeddedDocument {
				problems = append(problems, "partialFilterExpression not listed")
			}
			if v, err := specs[sname].LookupErr("sparse"); err != nil || !v.Boolean() {
				problems = append(problems, "sparse not listed")
			}
		}
		// partial unique: duplicates outside the filter are allowed
		_, e1 := pc.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 10}, {Key: "p", Value: 1}}, bson.D{{Key: "_id", Value: 11}, {Key: "p", Value: 1}}})
		if e1 != nil {
			problems = append(problems, "partial unique rejected docs outside its filter: "+errText(e1))
		}
		_, e2 := pc.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 12}, {Key: "p", Value: 9}}, bson.D{{Key: "_id", Value: 13}, {Key: "p", Value: 9}}})
		if e2 == nil {
			problems = append(problems, "partial unique not enforced inside its filter")
		}
	}
	if len(problems) > 0 {
		rep("index_partial_sparse", Fail, "%s", join(problems))
	} else {
		rep("index_partial_sparse", Pass, "partialFilterExpression and sparse listed and enforced")
	}
}

func keys(m map[string]bson.Raw) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ddlChecks() []Check {
	return []Check{
		{
			Name: "ddl", Role: "destination",
			Desc:    "DDL the sink replays: renameCollection, drop, dropDatabase, collMod (validator, TTL), dropIndexes, listDatabases",
			Results: []string{"ddl_rename", "ddl_drop", "ddl_drop_database", "ddl_coll_mod", "ddl_drop_index"},
			Run:     checkDDL,
		},
	}
}

func collNames(ctx context.Context, db *mongo.Database) ([]string, error) {
	return db.ListCollectionNames(ctx, bson.D{})
}

func checkDDL(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("ddl")
	defer dropDB(e.Client, dbn)
	db := e.Client.Database(dbn)
	for _, c := range []string{"a", "b", "c"} {
		if _, err := db.Collection(c).InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			rep("*", Error, "seed: %s", errText(err))
			return
		}
	}
	// rename a -> a2
	if err := e.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: dbn + ".a"}, {Key: "to", Value: dbn + ".a2"}}).Err(); err != nil {
		rep("ddl_rename", Error, "%s", errText(err))
	} else if names, err := collNames(ctx, db); err != nil {
		rep("ddl_rename", Error, "listCollections: %s", errText(err))
	} else if n, _ := db.Collection("a2").CountDocuments(ctx, bson.D{}); !contains(names, "a2") || contains(names, "a") || n != 1 {
		rep("ddl_rename", Fail, "after rename collections %v, a2 has %d docs", names, n)
	} else {
		rep("ddl_rename", Pass, "renameCollection moves the documents")
	}
	// drop b
	if err := db.Collection("b").Drop(ctx); err != nil {
		rep("ddl_drop", Error, "%s", errText(err))
	} else if names, err := collNames(ctx, db); err != nil {
		rep("ddl_drop", Error, "listCollections: %s", errText(err))
	} else if contains(names, "b") {
		rep("ddl_drop", Fail, "b still listed: %v", names)
	} else {
		rep("ddl_drop", Pass, "drop removes the collection")
	}
	// collMod: validator and TTL change
	c := db.Collection("c")
	var cmProblems []string
	if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "ts", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(100)}); err != nil {
		cmProblems = append(cmProblems, "create TTL index: "+errText(err))
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "c"}, {Key: "validator", Value: bson.D{{Key: "a", Value: bson.D{{Key: "$exists", Value: true}}}}}}).Err(); err != nil {
		cmProblems = append(cmProblems, "collMod validator: "+errText(err))
	} else if spec, err := listCollectionSpec(ctx, db, "c"); err != nil || lookupType(spec, "options", "validator") != bson.TypeEmbeddedDocument {
		cmProblems = append(cmProblems, "validator set by collMod not listed")
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: "c"}, {Key: "index", Value: bson.D{{Key: "keyPattern", Value: bson.D{{Key: "ts", Value: 1}}}, {Key: "expireAfterSeconds", Value: 200}}}}).Err(); err != nil {
		cmProblems = append(cmProblems, "collMod index TTL: "+errText(err))
	} else if specs, err := listIndexes(ctx, c); err != nil {
		cmProblems = append(cmProblems, "listIndexes: "+errText(err))
	} else if v, _ := lookupInt(specs["ts_1"], "expireAfterSeconds"); v != 200 {
		cmProblems = append(cmProblems, fmt.Sprintf("TTL after collMod %d want 200", v))
	}
	if len(cmProblems) > 0 {
		rep("ddl_coll_mod", Fail, "%s", join(cmProblems))
	} else {
		rep("ddl_coll_mod", Pass, "collMod changes validator and TTL, both listed")
	}
	// dropIndexes
	if err := c.Indexes().DropOne(ctx, "ts_1"); err != nil {
		rep("ddl_drop_index", Error, "%s", errText(err))
	} else if specs, err := listIndexes(ctx, c); err != nil {
		rep("ddl_drop_index", Error, "listIndexes: %s", errText(err))
	} else if _, ok := specs["ts_1"]; ok {
		rep("ddl_drop_index", Fail, "ts_1 still listed")
	} else {
		rep("ddl_drop_index", Pass, "dropIndexes removes the index")
	}
	// dropDatabase
	if err := db.Drop(ctx); err != nil {
		rep("ddl_drop_database", Error, "%s", errText(err))
	} else if dbs, err := e.Client.ListDatabaseNames(ctx, bson.D{}); err != nil {
		rep("ddl_drop_database", Error, "listDatabases: %s", errText(err))
	} else if contains(dbs, dbn) {
		rep("ddl_drop_database", Fail, "database still listed")
	} else {
		rep("ddl_drop_database", Pass, "dropDatabase removes it from listDatabases")
	}
}
