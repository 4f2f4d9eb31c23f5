package conformance

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

func txnChecks() []Check {
	return []Check{
		{
			Name: "transactions", Role: "both",
			Desc:    "multi-document transactions: commit visible atomically, uncommitted invisible, abort discards",
			Results: []string{"txn_commit", "txn_isolation", "txn_abort"},
			Run:     checkTxn,
		},
		{
			Name: "cs_txn_fields", Role: "source",
			Desc: "change events from a transaction carry lsid and txnNumber; aborted transactions emit nothing",
			Run:  checkCSTxn,
		},
	}
}

var errAbortOnPurpose = errors.New("abort on purpose")

func checkTxn(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("txn")
	defer dropDB(e.Client, dbn)
	db := e.Client.Database(dbn)
	a, b := db.Collection("a"), db.Collection("b")
	// create the collections outside the transaction (older servers need that)
	if _, err := a.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		rep("*", Error, "seed: %s", errText(err))
		return
	}
	if _, err := b.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		rep("*", Error, "seed: %s", errText(err))
		return
	}
	sess, err := e.Client.StartSession()
	if err != nil {
		rep("*", Error, "startSession: %s", errText(err))
		return
	}
	defer sess.EndSession(context.Background())

	var outsideCount int64 = -1
	var outsideErr error
	_, err = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		if _, err := a.InsertOne(sctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			return nil, err
		}
		if _, err := b.InsertOne(sctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			return nil, err
		}
		// read outside the transaction: must not see the uncommitted insert
		outsideCount, outsideErr = a.CountDocuments(ctx, bson.D{{Key: "_id", Value: 1}})
		return nil, nil
	})
	if err != nil {
		rep("txn_commit", Error, "%s", errText(err))
		rep("txn_isolation", Skip, "transaction failed")
	} else {
		na, _ := a.CountDocuments(ctx, bson.D{{Key: "_id", Value: 1}})
		nb, _ := b.CountDocuments(ctx, bson.D{{Key: "_id", Value: 1}})
		if na == 1 && nb == 1 {
			rep("txn_commit", Pass, "both writes visible after commit")
		} else {
			rep("txn_commit", Fail, "after commit a=%d b=%d want 1/1", na, nb)
		}
		switch {
		case outsideErr != nil:
			rep("txn_isolation", Error, "read outside txn: %s", errText(outsideErr))
		case outsideCount == 0:
			rep("txn_isolation", Pass, "uncommitted write invisible outside the transaction")
		default:
			rep("txn_isolation", Fail, "uncommitted write visible outside the transaction (count %d)", outsideCount)
		}
	}

	sess2, err := e.Client.StartSession()
	if err != nil {
		rep("txn_abort", Error, "startSession: %s", errText(err))
		return
	}
	defer sess2.EndSession(context.Background())
	if err := sess2.StartTransaction(); err != nil {
		rep("txn_abort", Error, "startTransaction: %s", errText(err))
		return
	}
	sctx := mongo.NewSessionContext(ctx, sess2)
	if _, err := a.InsertOne(sctx, bson.D{{Key: "_id", Value: 2}}); err != nil {
		_ = sess2.AbortTransaction(ctx)
		rep("txn_abort", Error, "insert in txn: %s", errText(err))
		return
	}
	if err := sess2.AbortTransaction(ctx); err != nil {
		rep("txn_abort", Error, "abortTransaction: %s", errText(err))
		return
	}
	n, err := a.CountDocuments(ctx, bson.D{{Key: "_id", Value: 2}})
	switch {
	case err != nil:
		rep("txn_abort", Error, "count: %s", errText(err))
	case n != 0:
		rep("txn_abort", Fail, "aborted insert is visible")
	default:
		rep("txn_abort", Pass, "aborted insert invisible")
	}
}

func checkCSTxn(ctx context.Context, e *Env, rep Reporter) {
	dbn := e.DBName("cstxn")
	defer dropDB(e.Client, dbn)
	c := e.Client.Database(dbn).Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		rep("cs_txn_fields", Error, "seed: %s", errText(err))
		return
	}
	cs, err := watch(ctx, e, dbn, "c", nil, nil)
	if err != nil {
		rep("cs_txn_fields", Error, "watch: %s", errText(err))
		return
	}
	defer closeStream(cs)
	sess, err := e.Client.StartSession()
	if err != nil {
		rep("cs_txn_fields", Error, "startSession: %s", errText(err))
		return
	}
	defer sess.EndSession(context.Background())
	// an aborted transaction first: it must produce no events
	_, _ = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		if _, err := c.InsertOne(sctx, bson.D{{Key: "_id", Value: "aborted"}}); err != nil {
			return nil, err
		}
		return nil, errAbortOnPurpose
	})
	_, err = sess.WithTransaction(ctx, func(sctx context.Context) (any, error) {
		for i := 1; i <= 2; i++ {
			if _, err := c.InsertOne(sctx, bson.D{{Key: "_id", Value: i}}); err != nil {
				return nil, err
			}
		}
		if _, err := c.UpdateOne(sctx, bson.D{{Key: "_id", Value: "seed"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "t", Value: 1}}}}); err != nil {
			return nil, err
		}
		return nil, nil
	})
	if err != nil {
		rep("cs_txn_fields", Error, "transaction: %s", errText(err))
		return
	}
	// a plain write after the transaction marks the end
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "after"}}); err != nil {
		rep("cs_txn_fields", Error, "insert: %s", errText(err))
		return
	}
	evs, err := collect(ctx, e, cs, []string{dbn}, func(ev bson.Raw) bool {
		return lookupString(ev, "documentKey", "_id") == "after"
	})
	var p []string
	var txEvents []bson.Raw
	for _, ev := range evs {
		switch id := ev.Lookup("documentKey", "_id"); {
		case id.Type == bson.TypeString && id.StringValue() == "aborted":
			p = append(p, "aborted transaction produced an event")
		case id.Type == bson.TypeString && id.StringValue() == "after":
			if lookupType(ev, "lsid") != 0 || lookupType(ev, "txnNumber") != 0 {
				p = append(p, "non-transactional event carries lsid/txnNumber")
			}
		default:
			txEvents = append(txEvents, ev)
		}
	}
	if len(txEvents) != 3 {
		p = append(p, fmt.Sprintf("%d transaction events want 3 (%s)", len(txEvents), eventSummary(evs)))
	}
	var ct []string
	for _, ev := range txEvents {
		if lookupType(ev, "lsid") != bson.TypeEmbeddedDocument {
			p = append(p, "event without lsid: "+ev.String())
			break
		}
		if st, _, ok := ev.Lookup("lsid", "id").BinaryOK(); !ok || st != 4 {
			p = append(p, "lsid.id is not a UUID: "+ev.Lookup("lsid").String())
			break
		}
		if t := lookupType(ev, "txnNumber"); t != bson.TypeInt64 {
			p = append(p, "txnNumber is "+typeName(t))
			break
		}
		ct = append(ct, ev.Lookup("clusterTime").String())
	}
	note := "one clusterTime for the whole transaction"
	if len(ct) == 3 && (ct[0] != ct[1] || ct[1] != ct[2]) {
		note = "note: events of one transaction have different clusterTimes (MongoDB gives them all the commit's)"
	}
	if err != nil {
		p = append(p, "stream: "+errText(err))
	}
	if len(p) > 0 {
		rep("cs_txn_fields", Fail, "%s", join(p))
		return
	}
	rep("cs_txn_fields", Pass, "3 events with lsid (UUID) and txnNumber (int64); aborted txn silent; %s", note)
}
