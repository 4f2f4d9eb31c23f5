package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func basicChecks() []Check {
	return []Check{
		{
			Name: "hello", Role: "both",
			Desc:    "hello reports setName (replica set) and maxWireVersion >= 9",
			Results: []string{"hello_setName", "hello_maxWireVersion"},
			Run:     checkHello,
		},
		{
			Name: "cluster_time", Role: "source",
			Desc: "replies carry $clusterTime.clusterTime and operationTime (BSON timestamps) that advance with writes",
			Run:  checkClusterTime,
		},
		{
			Name: "crud", Role: "both",
			Desc: "insert/find/update($set,$unset,$inc)/replace/delete/upsert/findOneAndUpdate",
			Run:  checkCRUD,
		},
		{
			Name: "bulk_unordered_dupkey", Role: "destination",
			Desc: "unordered bulk write: one E11000 in the middle is reported with its index, all other writes applied",
			Run:  checkBulkUnordered,
		},
		{
			Name: "list_collections_options", Role: "destination",
			Desc:    "createCollection options come back in listCollections; validator enforced",
			Results: []string{"collopt_validator", "collopt_collation", "collopt_capped", "collopt_uuid"},
			Run:     checkListCollections,
		},
	}
}

func miscChecks() []Check {
	return []Check{
		{
			Name: "agg_bucket_auto", Role: "source",
			Desc: "$bucketAuto on _id returns contiguous {min,max} buckets covering all docs",
			Run:  checkBucketAuto,
		},
		{
			Name: "agg_sample", Role: "source",
			Desc: "$sample returns size distinct documents",
			Run:  checkSample,
		},
		{
			Name: "coll_stats", Role: "source",
			Desc: "collStats command or $collStats gives count and size (for snapshot sizing)",
			Run:  checkCollStats,
		},
		{
			Name: "sort_mixed_types", Role: "both",
			Desc:    "sort by _id follows the BSON comparison order across types; range filters are type-bracketed",
			Results: []string{"sort_id_mixed_types", "range_filter_mixed_types"},
			Run:     checkSortMixed,
		},
		{
			Name: "bson_roundtrip", Role: "both",
			Desc:    "documents come back byte-equal (field order, numeric types, binary subtypes, Decimal128, regex, timestamps, Min/MaxKey)",
			Results: []string{"bson_roundtrip_all_types", "bson_roundtrip_deprecated_types", "decimal128_roundtrip"},
			Run:     checkBSONRoundTrip,
		},
		{
			Name: "set_user_write_block_mode", Role: "destination",
			Desc: "setUserWriteBlockMode global:true makes user writes fail (code 371), global:false lifts it",
			Run:  checkWriteBlock,
		},
	}
}

func checkHello(ctx context.Context, e *Env, rep Reporter) {
	var doc bson.Raw
	err := e.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&doc)
	via := "hello"
	if err != nil {
		err2 := e.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "isMaster", Value: 1}}).Decode(&doc)
		if err2 != nil {
			rep("*", Error, "hello: %s; isMaster: %s", errText(err), errText(err2))
			return
		}
		via = "isMaster (hello failed: " + errText(err) + ")"
	}
	version := ""
	var bi bson.Raw
	if err := e.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err == nil {
		version = lookupString(bi, "version")
	}
	setName := lookupString(doc, "setName")
	primary := false
	if v, err := doc.LookupErr("isWritablePrimary"); err == nil {
		primary, _ = v.BooleanOK()
	} else if v, err := doc.LookupErr("ismaster"); err == nil {
		primary, _ = v.BooleanOK()
	}
	lst, hasLST := lookupInt(doc, "logicalSessionTimeoutMinutes")
	info := fmt.Sprintf("via %s; primary=%v; logicalSessionTimeoutMinutes=%v", via, primary, func() any {
		if hasLST {
			return lst
		}
		return "missing"
	}())
	if setName != "" {
		hosts := ""
		if v, err := doc.LookupErr("hosts"); err == nil {
			hosts = v.String()
		}
		rep("hello_setName", Pass, "setName=%q hosts=%s; %s", setName, hosts, info)
	} else {
		rep("hello_setName", Fail, "no setName: server presents itself as standalone (drivers refuse transactions; use directConnection=true); %s", info)
	}
	maxWire, ok := lookupInt(doc, "maxWireVersion")
	switch {
	case !ok:
		rep("hello_maxWireVersion", Fail, "maxWireVersion missing; buildInfo.version=%q", version)
	case maxWire < 9:
		rep("hello_maxWireVersion", Fail, "maxWireVersion=%d < 9 (Go driver v2 needs MongoDB 4.4+); buildInfo.version=%q", maxWire, version)
	default:
		rep("hello_maxWireVersion", Pass, "maxWireVersion=%d buildInfo.version=%q", maxWire, version)
	}
}

func checkClusterTime(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("ct"))
	defer dropDB(e.Client, db.Name())
	run := func(cmd bson.D) (bson.Raw, error) {
		var r bson.Raw
		err := db.RunCommand(ctx, cmd).Decode(&r)
		return r, err
	}
	r1, err := run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 1}}}}})
	if err != nil {
		rep("cluster_time", Error, "insert: %s", errText(err))
		return
	}
	r2, err := run(bson.D{{Key: "insert", Value: "c"}, {Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 2}}}}})
	if err != nil {
		rep("cluster_time", Error, "insert: %s", errText(err))
		return
	}
	var problems []string
	ct1, ct2 := lookupType(r1, "$clusterTime", "clusterTime"), lookupType(r2, "$clusterTime", "clusterTime")
	ot1, ot2 := lookupType(r1, "operationTime"), lookupType(r2, "operationTime")
	if ct1 != bson.TypeTimestamp {
		problems = append(problems, "$clusterTime.clusterTime is "+typeName(ct1))
	}
	if ot1 != bson.TypeTimestamp {
		problems = append(problems, "operationTime is "+typeName(ot1))
	}
	if lookupType(r1, "$clusterTime", "signature") == 0 && ct1 == bson.TypeTimestamp {
		problems = append(problems, "$clusterTime.signature missing (drivers tolerate)")
	}
	if ot1 == bson.TypeTimestamp && ot2 == bson.TypeTimestamp {
		t1, i1 := r1.Lookup("operationTime").Timestamp()
		t2, i2 := r2.Lookup("operationTime").Timestamp()
		if !(t2 > t1 || (t2 == t1 && i2 > i1)) {
			problems = append(problems, fmt.Sprintf("operationTime did not advance between writes (%d,%d)->(%d,%d)", t1, i1, t2, i2))
		}
	}
	_ = ct2
	if len(problems) == 0 {
		t, i := r2.Lookup("operationTime").Timestamp()
		rep("cluster_time", Pass, "operationTime and $clusterTime are timestamps and advance, e.g. Timestamp(%d,%d)", t, i)
		return
	}
	// Only a missing $clusterTime signature is benign.
	if len(problems) == 1 && strings.Contains(problems[0], "signature") {
		rep("cluster_time", Pass, "%s", problems[0])
		return
	}
	rep("cluster_time", Fail, "%s", join(problems))
}

func checkCRUD(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("crud"))
	defer dropDB(e.Client, db.Name())
	c := db.Collection("c")
	step := func(what string, err error) bool {
		if err != nil {
			rep("crud", Error, "%s: %s", what, errText(err))
			return false
		}
		return true
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: "x"}, {Key: "n", Value: int32(5)}}); !step("insertOne", err) {
		return
	}
	if _, err := c.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 2}, {Key: "a", Value: 2}}, bson.D{{Key: "_id", Value: 3}, {Key: "a", Value: 3}}}); !step("insertMany", err) {
		return
	}
	ur, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "a", Value: 10}, {Key: "sub.x", Value: "y"}}},
		{Key: "$unset", Value: bson.D{{Key: "b", Value: ""}}},
		{Key: "$inc", Value: bson.D{{Key: "n", Value: int32(2)}}},
	})
	if !step("updateOne", err) {
		return
	}
	var problems []string
	if ur.MatchedCount != 1 || ur.ModifiedCount != 1 {
		problems = append(problems, fmt.Sprintf("updateOne matched=%d modified=%d", ur.MatchedCount, ur.ModifiedCount))
	}
	var d1 bson.Raw
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&d1); !step("findOne", err) {
		return
	}
	if v, _ := lookupInt(d1, "a"); v != 10 {
		problems = append(problems, "$set a not applied: "+d1.String())
	}
	if lookupString(d1, "sub", "x") != "y" {
		problems = append(problems, "$set dotted path not applied: "+d1.String())
	}
	if lookupType(d1, "b") != 0 {
		problems = append(problems, "$unset not applied")
	}
	if v, err := d1.LookupErr("n"); err != nil || v.Type != bson.TypeInt32 || v.Int32() != 7 {
		problems = append(problems, "$inc int32 wrong: "+d1.String())
	}
	if _, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: 2}}, bson.D{{Key: "z", Value: true}}); !step("replaceOne", err) {
		return
	}
	var d2 bson.Raw
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&d2); !step("findOne", err) {
		return
	}
	if lookupType(d2, "a") != 0 || lookupType(d2, "z") != bson.TypeBoolean {
		problems = append(problems, "replace wrong: "+d2.String())
	}
	upr, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: 4}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 4}}}}, options.UpdateOne().SetUpsert(true))
	if !step("upsert", err) {
		return
	}
	if upr.UpsertedCount != 1 {
		problems = append(problems, fmt.Sprintf("upsert count %d", upr.UpsertedCount))
	}
	var fam bson.Raw
	err = c.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 33}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&fam)
	if !step("findOneAndUpdate", err) {
		return
	}
	if v, _ := lookupInt(fam, "a"); v != 33 {
		problems = append(problems, "findOneAndUpdate returnDocument=after wrong: "+fam.String())
	}
	dr, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: 3}})
	if !step("deleteOne", err) {
		return
	}
	if dr.DeletedCount != 1 {
		problems = append(problems, fmt.Sprintf("deleteOne deleted %d", dr.DeletedCount))
	}
	n, err := c.CountDocuments(ctx, bson.D{})
	if !step("countDocuments", err) {
		return
	}
	if n != 3 {
		problems = append(problems, fmt.Sprintf("count=%d want 3", n))
	}
	cur, err := c.Find(ctx, bson.D{{Key: "a", Value: bson.D{{Key: "$gte", Value: 4}}}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if !step("find", err) {
		return
	}
	var got []bson.Raw
	if err := cur.All(ctx, &got); !step("find cursor", err) {
		return
	}
	if len(got) != 2 {
		problems = append(problems, fmt.Sprintf("find a>=4 returned %d docs, want 2", len(got)))
	}
	if len(problems) > 0 {
		rep("crud", Fail, "%s", join(problems))
		return
	}
	rep("crud", Pass, "all CRUD operations behaved")
}

func checkBulkUnordered(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("bulk"))
	defer dropDB(e.Client, db.Name())
	c := db.Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "pre", Value: true}}); err != nil {
		rep("bulk_unordered_dupkey", Error, "seed insert: %s", errText(err))
		return
	}
	var models []mongo.WriteModel
	for i := 1; i <= 5; i++ {
		models = append(models, mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}}))
	}
	models = append(models,
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: 1}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}),
		mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: 6}}).SetReplacement(bson.D{{Key: "v", Value: 6}}).SetUpsert(true),
		mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: 5}}),
	)
	res, err := c.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if err == nil {
		rep("bulk_unordered_dupkey", Fail, "no error reported for duplicate _id 3")
		return
	}
	var problems []string
	if !errors.As(err, &bwe) {
		problems = append(problems, "error is not per-write (writeErrors) but a command error: "+errText(err))
	} else if len(bwe.WriteErrors) != 1 {
		problems = append(problems, fmt.Sprintf("%d write errors, want 1: %v", len(bwe.WriteErrors), bwe))
	} else {
		we := bwe.WriteErrors[0]
		if we.Code != 11000 {
			problems = append(problems, fmt.Sprintf("error code %d want 11000", we.Code))
		}
		if we.Index != 2 {
			problems = append(problems, fmt.Sprintf("error index %d want 2", we.Index))
		}
	}
	var ids []int64
	cur, err := c.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		rep("bulk_unordered_dupkey", Error, "find: %s", errText(err))
		return
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil {
		rep("bulk_unordered_dupkey", Error, "find: %s", errText(err))
		return
	}
	hasX := false
	for _, d := range docs {
		id, _ := lookupInt(d, "_id")
		ids = append(ids, id)
		if id == 1 && lookupType(d, "x") != 0 {
			hasX = true
		}
		if id == 3 && lookupType(d, "pre") == 0 {
			problems = append(problems, "pre-existing _id 3 was overwritten")
		}
	}
	if fmt.Sprint(ids) != "[1 2 3 4 6]" {
		problems = append(problems, fmt.Sprintf("ids after bulk %v want [1 2 3 4 6]", ids))
	}
	if !hasX {
		problems = append(problems, "update after the failed insert not applied")
	}
	if res != nil && (res.InsertedCount != 4 || res.UpsertedCount != 1 || res.DeletedCount != 1) {
		problems = append(problems, fmt.Sprintf("result counts inserted=%d upserted=%d deleted=%d want 4/1/1", res.InsertedCount, res.UpsertedCount, res.DeletedCount))
	}
	if len(problems) > 0 {
		rep("bulk_unordered_dupkey", Fail, "%s", join(problems))
		return
	}
	rep("bulk_unordered_dupkey", Pass, "one E11000 at index 2, other 7 writes applied")
}

func listCollectionSpec(ctx context.Context, db *mongo.Database, name string) (bson.Raw, error) {
	// Filter client-side too: some servers ignore the listCollections filter.
	cur, err := db.ListCollections(ctx, bson.D{{Key: "name", Value: name}})
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if lookupString(cur.Current, "name") == name {
			return append(bson.Raw(nil), cur.Current...), nil
		}
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("collection %s not listed", name)
}

func checkListCollections(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("collopt"))
	defer dropDB(e.Client, db.Name())

	// validator
	validator := bson.D{{Key: "$jsonSchema", Value: bson.D{
		{Key: "bsonType", Value: "object"},
		{Key: "required", Value: bson.A{"a"}},
	}}}
	if err := db.CreateCollection(ctx, "validated", options.CreateCollection().
		SetValidator(validator).SetValidationLevel("moderate").SetValidationAction("error")); err != nil {
		rep("collopt_validator", Error, "create: %s", errText(err))
	} else if spec, err := listCollectionSpec(ctx, db, "validated"); err != nil {
		rep("collopt_validator", Error, "listCollections: %s", errText(err))
	} else {
		var problems []string
		if lookupType(spec, "options", "validator", "$jsonSchema") != bson.TypeEmbeddedDocument {
			problems = append(problems, "options.validator not returned: "+spec.String())
		}
		if lookupString(spec, "options", "validationLevel") != "moderate" {
			problems = append(problems, "options.validationLevel not returned")
		}
		_, err := db.Collection("validated").InsertOne(ctx, bson.D{{Key: "b", Value: 1}})
		if err == nil {
			problems = append(problems, "validator not enforced (doc without required field accepted)")
		} else if errCode(err) != 121 {
			problems = append(problems, "validation error code "+fmt.Sprint(errCode(err))+" want 121: "+errText(err))
		}
		if len(problems) > 0 {
			rep("collopt_validator", Fail, "%s", join(problems))
		} else {
			rep("collopt_validator", Pass, "validator/validationLevel listed and enforced (code 121)")
		}
	}

	// collation
	if err := db.CreateCollection(ctx, "collated", options.CreateCollection().
		SetCollation(&options.Collation{Locale: "fr", Strength: 2})); err != nil {
		rep("collopt_collation", Error, "create: %s", errText(err))
	} else if spec, err := listCollectionSpec(ctx, db, "collated"); err != nil {
		rep("collopt_collation", Error, "listCollections: %s", errText(err))
	} else {
		loc := lookupString(spec, "options", "collation", "locale")
		st, _ := lookupInt(spec, "options", "collation", "strength")
		if loc == "fr" && st == 2 {
			rep("collopt_collation", Pass, "options.collation listed (locale fr, strength 2)")
		} else {
			rep("collopt_collation", Fail, "options.collation not listed as given: %s", spec.String())
		}
	}

	// capped
	if err := db.CreateCollection(ctx, "capped", options.CreateCollection().
		SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(100)); err != nil {
		rep("collopt_capped", Error, "create: %s", errText(err))
	} else if spec, err := listCollectionSpec(ctx, db, "capped"); err != nil {
		rep("collopt_capped", Error, "listCollections: %s", errText(err))
	} else {
		capped := false
		if v, err := spec.LookupErr("options", "capped"); err == nil {
			capped, _ = v.BooleanOK()
		}
		size, _ := lookupInt(spec, "options", "size")
		max, _ := lookupInt(spec, "options", "max")
		if capped && size == 1<<20 && max == 100 {
			rep("collopt_capped", Pass, "options.capped/size/max listed")
		} else {
			rep("collopt_capped", Fail, "capped options not listed as given: %s", spec.String())
		}
	}

	// uuid and type: mongosync and many tools key collections by info.uuid.
	if err := db.CreateCollection(ctx, "plain"); err != nil {
		rep("collopt_uuid", Error, "create: %s", errText(err))
	} else if spec, err := listCollectionSpec(ctx, db, "plain"); err != nil {
		rep("collopt_uuid", Error, "listCollections: %s", errText(err))
	} else {
		st, _, ok := spec.Lookup("info", "uuid").BinaryOK()
		typ := lookupString(spec, "type")
		switch {
		case ok && st == 4 && typ == "collection":
			rep("collopt_uuid", Pass, "type=collection, info.uuid is UUID")
		default:
			rep("collopt_uuid", Fail, "type=%q info.uuid=%s", typ, typeName(lookupType(spec, "info", "uuid")))
		}
	}
}

func seedInts(ctx context.Context, c *mongo.Collection, n int) error {
	docs := make([]any, n)
	for i := 0; i < n; i++ {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "pad", Value: strings.Repeat("x", 100)}}
	}
	_, err := c.InsertMany(ctx, docs)
	return err
}

func checkBucketAuto(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("bucket"))
	defer dropDB(e.Client, db.Name())
	c := db.Collection("c")
	if err := seedInts(ctx, c, 100); err != nil {
		rep("agg_bucket_auto", Error, "seed: %s", errText(err))
		return
	}
	cur, err := c.Aggregate(ctx, mongo.Pipeline{{{Key: "$bucketAuto", Value: bson.D{{Key: "groupBy", Value: "$_id"}, {Key: "buckets", Value: 4}}}}})
	if err != nil {
		rep("agg_bucket_auto", Error, "%s", errText(err))
		return
	}
	var bs []bson.Raw
	if err := cur.All(ctx, &bs); err != nil {
		rep("agg_bucket_auto", Error, "%s", errText(err))
		return
	}
	var problems []string
	if len(bs) != 4 {
		problems = append(problems, fmt.Sprintf("%d buckets want 4", len(bs)))
	}
	total := int64(0)
	var prevMax bson.RawValue
	for i, b := range bs {
		n, _ := lookupInt(b, "count")
		total += n
		min, err1 := b.LookupErr("_id", "min")
		max, err2 := b.LookupErr("_id", "max")
		if err1 != nil || err2 != nil {
			problems = append(problems, "bucket without _id.min/_id.max: "+b.String())
			break
		}
		if i > 0 && !min.Equal(prevMax) {
			problems = append(problems, fmt.Sprintf("bucket %d min %s != previous max %s", i, min, prevMax))
		}
		prevMax = max
	}
	if total != 100 {
		problems = append(problems, fmt.Sprintf("counts sum to %d want 100", total))
	}
	if len(problems) > 0 {
		rep("agg_bucket_auto", Fail, "%s", join(problems))
		return
	}
	rep("agg_bucket_auto", Pass, "4 contiguous buckets, counts sum 100")
}

func checkSample(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("sample"))
	defer dropDB(e.Client, db.Name())
	c := db.Collection("c")
	if err := seedInts(ctx, c, 100); err != nil {
		rep("agg_sample", Error, "seed: %s", errText(err))
		return
	}
	cur, err := c.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$sample", Value: bson.D{{Key: "size", Value: 10}}}},
		{{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}},
	})
	if err != nil {
		rep("agg_sample", Error, "%s", errText(err))
		return
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil {
		rep("agg_sample", Error, "%s", errText(err))
		return
	}
	seen := map[int64]bool{}
	for _, d := range docs {
		id, _ := lookupInt(d, "_id")
		seen[id] = true
	}
	if len(docs) != 10 || len(seen) != 10 {
		rep("agg_sample", Fail, "got %d docs, %d distinct, want 10", len(docs), len(seen))
		return
	}
	rep("agg_sample", Pass, "10 distinct docs")
}

func checkCollStats(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("stats"))
	defer dropDB(e.Client, db.Name())
	c := db.Collection("c")
	if err := seedInts(ctx, c, 50); err != nil {
		rep("coll_stats", Error, "seed: %s", errText(err))
		return
	}
	var notes []string
	var st bson.Raw
	cmdOK := false
	if err := db.RunCommand(ctx, bson.D{{Key: "collStats", Value: "c"}}).Decode(&st); err != nil {
		notes = append(notes, "collStats: "+errText(err))
	} else {
		n, _ := lookupInt(st, "count")
		sz, _ := lookupInt(st, "size")
		if n == 50 && sz > 0 {
			cmdOK = true
			notes = append(notes, fmt.Sprintf("collStats count=%d size=%d", n, sz))
		} else {
			notes = append(notes, fmt.Sprintf("collStats count=%d size=%d (want 50, >0)", n, sz))
		}
	}
	aggOK := false
	cur, err := c.Aggregate(ctx, mongo.Pipeline{{{Key: "$collStats", Value: bson.D{{Key: "storageStats", Value: bson.D{}}}}}})
	if err != nil {
		notes = append(notes, "$collStats: "+errText(err))
	} else {
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil || len(docs) == 0 {
			notes = append(notes, "$collStats returned nothing")
		} else {
			n, _ := lookupInt(docs[0], "storageStats", "count")
			sz, _ := lookupInt(docs[0], "storageStats", "size")
			aggOK = n == 50 && sz > 0
			notes = append(notes, fmt.Sprintf("$collStats count=%d size=%d", n, sz))
		}
	}
	switch {
	case cmdOK || aggOK:
		rep("coll_stats", Pass, "%s", join(notes))
	default:
		rep("coll_stats", Fail, "%s", join(notes))
	}
}

// mixedIDs returns _id values of many BSON types in genuine MongoDB sort order.
func mixedIDs() []any {
	oid, _ := bson.ObjectIDFromHex("5f0000000000000000000001")
	d35, _ := bson.ParseDecimal128("3.5")
	return []any{
		bson.MinKey{},
		nil,
		-1.5,
		int32(1),
		int64(2),
		2.5,
		d35,
		int32(10),
		int64(1 << 40),
		"a",
		"b",
		bson.D{{Key: "x", Value: 1}},
		bson.Binary{Subtype: 0, Data: []byte{1, 2}},
		oid,
		false,
		true,
		bson.DateTime(1_600_000_000_000),
		bson.Timestamp{T: 1_600_000_000, I: 1},
		bson.MaxKey{},
	}
}

func idList(docs []bson.Raw) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Lookup("_id").String()
	}
	return out
}

func checkSortMixed(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("sortmix"))
	defer dropDB(e.Client, db.Name())
	c := db.Collection("c")
	ids := mixedIDs()
	// insert in a scrambled order
	for _, i := range []int{7, 3, 18, 0, 11, 5, 14, 1, 9, 16, 2, 12, 6, 17, 4, 10, 8, 13, 15} {
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: ids[i]}, {Key: "i", Value: i}}); err != nil {
			rep("*", Error, "insert _id %v: %s", ids[i], errText(err))
			return
		}
	}
	find := func(filter any, sort int) ([]bson.Raw, error) {
		cur, err := c.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: sort}}))
		if err != nil {
			return nil, err
		}
		var docs []bson.Raw
		err = cur.All(ctx, &docs)
		return docs, err
	}
	docs, err := find(bson.D{}, 1)
	if err != nil {
		rep("sort_id_mixed_types", Error, "%s", errText(err))
	} else {
		var order []int64
		for _, d := range docs {
			i, _ := lookupInt(d, "i")
			order = append(order, i)
		}
		want := "[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18]"
		if fmt.Sprint(order) == want {
			docsDesc, err := find(bson.D{}, -1)
			if err == nil && len(docsDesc) == len(docs) && bytes.Equal(docsDesc[0], docs[len(docs)-1]) {
				rep("sort_id_mixed_types", Pass, "ascending/descending sort follows BSON type order (MinKey<null<numbers<string<object<binData<ObjectId<bool<date<timestamp<MaxKey)")
			} else {
				rep("sort_id_mixed_types", Fail, "ascending ok, descending wrong")
			}
		} else {
			rep("sort_id_mixed_types", Fail, "order of inserted positions %v want %s (ids: %s)", order, want, strings.Join(idList(docs), ","))
		}
	}

	type rq struct {
		name   string
		filter bson.D
		want   []int
	}
	oid0, _ := bson.ObjectIDFromHex("000000000000000000000000")
	queries := []rq{
		{"numbers [2,10)", bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: int32(2)}, {Key: "$lt", Value: int32(10)}}}}, []int{4, 5, 6}},
		{"numbers >= 2.5 (double bound, int64 values)", bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 2.5}}}}, []int{5, 6, 7, 8}},
		{"strings > a", bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: "a"}}}}, []int{10}},
		{"ObjectId > 0", bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: oid0}}}}, []int{13}},
		{"[MinKey,MaxKey)", bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: bson.MinKey{}}, {Key: "$lt", Value: bson.MaxKey{}}}}}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}},
		{"(MinKey,MaxKey]", bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: bson.MinKey{}}, {Key: "$lte", Value: bson.MaxKey{}}}}}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}},
		{"dates >= epoch", bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: bson.DateTime(0)}}}}, []int{16}},
	}
	var problems []string
	for _, q := range queries {
		docs, err := find(q.filter, 1)
		if err != nil {
			problems = append(problems, q.name+": "+errText(err))
			continue
		}
		var got []int
		for _, d := range docs {
			i, _ := lookupInt(d, "i")
			got = append(got, int(i))
		}
		if fmt.Sprint(got) != fmt.Sprint(q.want) {
			problems = append(problems, fmt.Sprintf("%s: got %v want %v", q.name, got, q.want))
		}
	}
	if len(problems) > 0 {
		rep("range_filter_mixed_types", Fail, "%s", join(problems))
	} else {
		rep("range_filter_mixed_types", Pass, "%d range filters type-bracketed as in MongoDB", len(queries))
	}
}

func mustDec(s string) bson.Decimal128 {
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		panic(err)
	}
	return d
}

func allTypesDoc() bson.D {
	oid, _ := bson.ObjectIDFromHex("650000000000000000000abc")
	return bson.D{
		{Key: "_id", Value: "all-types"},
		{Key: "zfirst", Value: 1}, // field order must survive
		{Key: "double", Value: 3.25},
		{Key: "negzero", Value: math.Copysign(0, -1)},
		{Key: "nan", Value: math.NaN()},
		{Key: "inf", Value: math.Inf(-1)},
		{Key: "string", Value: "héllo\u0000w"},
		{Key: "doc", Value: bson.D{{Key: "b", Value: 1}, {Key: "a", Value: bson.D{{Key: "y", Value: int64(2)}}}}},
		{Key: "array", Value: bson.A{int32(1), "two", 3.0, bson.A{}, bson.D{}}},
		{Key: "bin0", Value: bson.Binary{Subtype: 0x00, Data: []byte{0, 1, 2, 255}}},
		{Key: "bin4", Value: bson.Binary{Subtype: 0x04, Data: []byte("0123456789abcdef")}},
		{Key: "bin5", Value: bson.Binary{Subtype: 0x05, Data: []byte("0123456789abcdef")}},
		{Key: "bin80", Value: bson.Binary{Subtype: 0x80, Data: []byte("user-defined")}},
		{Key: "oid", Value: oid},
		{Key: "bool", Value: true},
		{Key: "date", Value: bson.DateTime(-62135596800000)},
		{Key: "null", Value: nil},
		{Key: "regex", Value: bson.Regex{Pattern: "^a.*b$", Options: "imsx"}},
		{Key: "js", Value: bson.JavaScript("function(){return 1}")},
		{Key: "int32", Value: int32(-2147483648)},
		{Key: "ts", Value: bson.Timestamp{T: 1700000000, I: 7}},
		{Key: "int64", Value: int64(9007199254740993)},
		{Key: "dec", Value: mustDec("1.000")},
		{Key: "minkey", Value: bson.MinKey{}},
		{Key: "maxkey", Value: bson.MaxKey{}},
		{Key: "intAsFloat", Value: 1.0},
		{Key: "empty", Value: ""},
	}
}

func deprecatedTypesDoc() bson.D {
	oid, _ := bson.ObjectIDFromHex("650000000000000000000abd")
	return bson.D{
		{Key: "_id", Value: "deprecated-types"},
		{Key: "undefined", Value: bson.Undefined{}},
		{Key: "dbpointer", Value: bson.DBPointer{DB: "db.coll", Pointer: oid}},
		{Key: "symbol", Value: bson.Symbol("sym")},
		{Key: "cws", Value: bson.CodeWithScope{Code: "function(){return x}", Scope: bson.D{{Key: "x", Value: 1}}}},
		{Key: "bin2", Value: bson.Binary{Subtype: 0x02, Data: []byte{4, 0, 0, 0, 1, 2, 3, 4}}},
		{Key: "bin3", Value: bson.Binary{Subtype: 0x03, Data: []byte("0123456789abcdef")}},
	}
}

func decimalDoc() bson.D {
	vals := []string{"0", "-0", "1.0", "1.00", "0.1", "-1.5E+10", "1E+6144", "1E-6176", "9.999999999999999999999999999999999E+6144",
		"1234567890123456789012345678901234", "NaN", "Infinity", "-Infinity", "0E-6176", "-0E+10", "12345.6789"}
	d := bson.D{{Key: "_id", Value: "decimals"}}
	for i, v := range vals {
		d = append(d, bson.E{Key: fmt.Sprintf("d%02d", i), Value: mustDec(v)})
	}
	// Decimal128 also as an _id and inside arrays
	d = append(d, bson.E{Key: "arr", Value: bson.A{mustDec("1.10"), mustDec("-0.000")}})
	return d
}

// firstDiff explains the first element where two documents differ.
func firstDiff(want, got bson.Raw) string {
	we, _ := want.Elements()
	ge, _ := got.Elements()
	for i := 0; i < len(we) && i < len(ge); i++ {
		if !bytes.Equal(we[i], ge[i]) {
			return fmt.Sprintf("element %d: sent %s=%s, got %s=%s", i, we[i].Key(), we[i].Value().DebugString(), ge[i].Key(), ge[i].Value().DebugString())
		}
	}
	if len(we) != len(ge) {
		return fmt.Sprintf("sent %d fields, got %d", len(we), len(ge))
	}
	return "lengths differ"
}

func roundTrip(ctx context.Context, c *mongo.Collection, doc bson.D) (string, Status) {
	raw, err := bson.Marshal(doc)
	if err != nil {
		return "marshal: " + err.Error(), Error
	}
	if _, err := c.InsertOne(ctx, bson.Raw(raw)); err != nil {
		return "insert: " + errText(err), Error
	}
	id := doc[0].Value
	var got bson.Raw
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil {
		return "find: " + errText(err), Error
	}
	if !bytes.Equal(raw, got) {
		return "find: " + firstDiff(raw, got), Fail
	}
	// and through an aggregation and a replace (the sink's write path)
	if _, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.Raw(raw)); err != nil {
		return "replace: " + errText(err), Error
	}
	cur, err := c.Aggregate(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "_id", Value: id}}}}})
	if err != nil {
		return "aggregate: " + errText(err), Error
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil || len(docs) != 1 {
		return fmt.Sprintf("aggregate returned %d docs (%v)", len(docs), err), Fail
	}
	if !bytes.Equal(raw, docs[0]) {
		return "after replace+aggregate: " + firstDiff(raw, docs[0]), Fail
	}
	return fmt.Sprintf("%d fields byte-equal via find, replace and aggregate", len(doc)), Pass
}

func checkBSONRoundTrip(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("bson"))
	defer dropDB(e.Client, db.Name())
	c := db.Collection("c")
	reason, st := roundTrip(ctx, c, allTypesDoc())
	rep("bson_roundtrip_all_types", st, "%s", reason)
	reason, st = roundTrip(ctx, c, deprecatedTypesDoc())
	rep("bson_roundtrip_deprecated_types", st, "undefined/DBPointer/symbol/codeWithScope/binary 2,3: %s", reason)
	reason, st = roundTrip(ctx, c, decimalDoc())
	if st == Pass {
		// Decimal128 as _id, queried by an equal-valued decimal of different scale
		if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: mustDec("2.50")}}); err != nil {
			reason, st = "decimal _id insert: "+errText(err), Error
		} else {
			n, err := c.CountDocuments(ctx, bson.D{{Key: "_id", Value: mustDec("2.5")}})
			if err != nil || n != 1 {
				reason, st = fmt.Sprintf("decimal _id 2.50 not matched by 2.5 (n=%d err=%v)", n, err), Fail
			}
		}
	}
	rep("decimal128_roundtrip", st, "%s", reason)
}

func checkWriteBlock(ctx context.Context, e *Env, rep Reporter) {
	db := e.Client.Database(e.DBName("wblock"))
	defer dropDB(e.Client, db.Name())
	admin := e.Client.Database("admin")
	c := db.Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 0}}); err != nil {
		rep("set_user_write_block_mode", Error, "seed: %s", errText(err))
		return
	}
	err := admin.RunCommand(ctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: true}}).Err()
	if err != nil {
		rep("set_user_write_block_mode", Error, "%s", errText(err))
		return
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5e9)
		defer cancel()
		_ = admin.RunCommand(uctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: false}}).Err()
	}()
	_, werr := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	uerr := admin.RunCommand(ctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: false}}).Err()
	_, werr2 := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	switch {
	case werr == nil:
		rep("set_user_write_block_mode", Fail, "command accepted but writes are not blocked")
	case errCode(werr) != 371:
		rep("set_user_write_block_mode", Fail, "write failed with code %d (want 371 UserWritesBlocked): %s", errCode(werr), errText(werr))
	case uerr != nil:
		rep("set_user_write_block_mode", Error, "unblock: %s", errText(uerr))
	case werr2 != nil:
		rep("set_user_write_block_mode", Fail, "writes still blocked after global:false: %s", errText(werr2))
	default:
		rep("set_user_write_block_mode", Pass, "writes blocked with code 371, unblocked after global:false")
	}
}
