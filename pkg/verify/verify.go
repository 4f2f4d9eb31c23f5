package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/logbridge/logbridge/pkg/mongox"
)

// ErrUnsortedCursor means a server returned documents out of MongoDB's _id
// order, so a merge comparison would be meaningless.
var ErrUnsortedCursor = errors.New("server returned documents out of MongoDB's _id sort order; the verifier cannot compare this collection by ranges")

// Pair names a source collection and the destination collection it maps to.
type Pair struct {
	SourceDB, SourceColl string
	DestDB, DestColl     string
}

func (p Pair) String() string {
	s := p.SourceDB + "." + p.SourceColl
	if d := p.DestDB + "." + p.DestColl; d != s {
		s += " -> " + d
	}
	return s
}

// Options tune a run. Zero values take the defaults.
type Options struct {
	RangeSize   int // source documents per range (default 1000)
	MaxReported int // differing _ids reported per kind and namespace (default 10)
	// ResumeAfter maps Pair.String() to the last _id of the last range a
	// previous run finished; documents up to it are not compared again.
	ResumeAfter map[string]bson.RawValue
	// OnRange, if set, is called after each finished range with the range's
	// last _id, so a caller can checkpoint and later resume (ResumeAfter).
	OnRange func(p Pair, lastID bson.RawValue)
}

// Result is the verdict for one namespace.
type Result struct {
	Pair            Pair
	SourceCount     int64
	DestCount       int64
	Ranges          int
	DifferentRanges int
	// Missing: _ids in the source, not the destination; Extra: the reverse;
	// Different: present on both sides with different bytes. Each holds at most
	// Options.MaxReported canonical Extended JSON _ids, the first in _id order.
	Missing, Extra, Different []string
	IndexDiffs                []string // one line per differing index
	OptionsDiff               string   // empty when the options are equal
	LastRangeEnd              bson.RawValue
	Err                       error
}

// Equal reports whether the namespace matched completely.
func (r *Result) Equal() bool {
	return r.Err == nil && r.SourceCount == r.DestCount && r.DifferentRanges == 0 &&
		len(r.Missing)+len(r.Extra)+len(r.Different) == 0 && len(r.IndexDiffs) == 0 && r.OptionsDiff == ""
}

// Summary is a one-line description for logs and reports.
func (r *Result) Summary() string {
	if r.Err != nil {
		return fmt.Sprintf("%s: error: %v", r.Pair, r.Err)
	}
	if r.Equal() {
		return fmt.Sprintf("%s: equal (%d documents, %d ranges)", r.Pair, r.SourceCount, r.Ranges)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: DIFFERENT: source %d docs, destination %d docs, %d of %d ranges differ", r.Pair, r.SourceCount, r.DestCount, r.DifferentRanges, r.Ranges)
	for _, l := range []struct {
		what string
		ids  []string
	}{{"missing", r.Missing}, {"extra", r.Extra}, {"different", r.Different}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(&b, "; first %s _ids %s", l.what, strings.Join(l.ids, ", "))
		}
	}
	for _, d := range r.IndexDiffs {
		fmt.Fprintf(&b, "; index %s", d)
	}
	if r.OptionsDiff != "" {
		fmt.Fprintf(&b, "; options %s", r.OptionsDiff)
	}
	return b.String()
}

// Report is the verdict for every namespace.
type Report struct{ Namespaces []*Result }

// Equal reports whether every namespace matched.
func (r Report) Equal() bool {
	for _, n := range r.Namespaces {
		if !n.Equal() {
			return false
		}
	}
	return true
}

// Run verifies each pair in turn; progress, if set, is called after each
// namespace. It returns an error only for a cancelled context; per-namespace
// failures are in each Result.Err.
func Run(ctx context.Context, src, dst *mongo.Client, pairs []Pair, opts Options, progress func(*Result)) (Report, error) {
	var rep Report
	for _, p := range pairs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		r := Namespace(ctx, src, dst, p, opts)
		rep.Namespaces = append(rep.Namespaces, r)
		if progress != nil {
			progress(r)
		}
	}
	return rep, ctx.Err()
}

// Namespace verifies one pair.
func Namespace(ctx context.Context, src, dst *mongo.Client, p Pair, opts Options) *Result {
	if opts.RangeSize <= 0 {
		opts.RangeSize = 1000
	}
	if opts.MaxReported <= 0 {
		opts.MaxReported = 10
	}
	r := &Result{Pair: p}
	sc := src.Database(p.SourceDB).Collection(p.SourceColl)
	dc := dst.Database(p.DestDB).Collection(p.DestColl)
	if err := compareOptions(ctx, r, src, dst); err != nil {
		r.Err = err
		return r
	}
	if err := compareIndexes(ctx, r, sc, dc); err != nil {
		r.Err = err
		return r
	}
	if err := compareDocuments(ctx, r, sc, dc, opts); err != nil {
		r.Err = err
	}
	return r
}

func sortedCursor(ctx context.Context, c *mongo.Collection, after *bson.RawValue) (*mongo.Cursor, error) {
	filter := bson.D{}
	if after != nil {
		// $expr compares across BSON types in sort order; a plain $gt would
		// only match _ids of the same type (type bracketing).
		filter = bson.D{{Key: "$expr", Value: bson.D{{Key: "$gt", Value: bson.A{"$_id", *after}}}}}
	}
	return c.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(1000))
}

// side is one sorted cursor with its current document.
type side struct {
	cur    *mongo.Cursor
	doc    bson.Raw
	id     bson.RawValue
	prevID bson.RawValue
	count  int64
	done   bool
}

func (s *side) next(ctx context.Context) error {
	if s.cur.Next(ctx) {
		s.doc = s.cur.Current
		s.id = s.doc.Lookup("_id")
		if s.count > 0 && Compare(s.prevID, s.id) >= 0 {
			return fmt.Errorf("%w (saw %s after %s)", ErrUnsortedCursor, s.id, s.prevID)
		}
		s.prevID = s.id
		s.count++
		return nil
	}
	s.done = true
	return s.cur.Err()
}

func compareDocuments(ctx context.Context, r *Result, sc, dc *mongo.Collection, opts Options) error {
	var after *bson.RawValue
	if v, ok := opts.ResumeAfter[r.Pair.String()]; ok {
		after = &v
	}
	open := func(c *mongo.Collection) (*side, error) {
		cur, err := sortedCursor(ctx, c, after)
		if err != nil {
			return nil, fmt.Errorf("reading %s.%s: %w", c.Database().Name(), c.Name(), err)
		}
		s := &side{cur: cur}
		return s, s.next(ctx)
	}
	s, err := open(sc)
	if err != nil {
		return err
	}
	defer s.cur.Close(context.Background())
	d, err := open(dc)
	if err != nil {
		return err
	}
	defer d.cur.Close(context.Background())

	report := func(list *[]string, id bson.RawValue) {
		if len(*list) < opts.MaxReported {
			*list = append(*list, id.String())
		}
	}
	hs, hd := sha256.New(), sha256.New()
	inRange, rangeDiffers := 0, false
	closeRange := func(end bson.RawValue) {
		r.Ranges++
		if rangeDiffers || !bytes.Equal(hs.Sum(nil), hd.Sum(nil)) {
			r.DifferentRanges++
		}
		r.LastRangeEnd = end
		if opts.OnRange != nil && end.Type != 0 {
			opts.OnRange(r.Pair, end)
		}
		hs.Reset()
		hd.Reset()
		inRange, rangeDiffers = 0, false
	}
	for !s.done || !d.done {
		if err := ctx.Err(); err != nil {
			return err
		}
		var c int
		switch {
		case s.done:
			c = 1
		case d.done:
			c = -1
		default:
			c = Compare(s.id, d.id)
		}
		switch {
		case c == 0:
			hs.Write(s.doc)
			hd.Write(d.doc)
			if !bytes.Equal(s.doc, d.doc) {
				report(&r.Different, s.id)
				rangeDiffers = true
			}
			inRange++
			end := s.id
			if err := s.next(ctx); err != nil {
				return err
			}
			if err := d.next(ctx); err != nil {
				return err
			}
			if inRange >= opts.RangeSize {
				closeRange(end)
			}
		case c < 0:
			report(&r.Missing, s.id)
			rangeDiffers = true
			hs.Write(s.doc)
			inRange++
			end := s.id
			if err := s.next(ctx); err != nil {
				return err
			}
			if inRange >= opts.RangeSize {
				closeRange(end)
			}
		default:
			report(&r.Extra, d.id)
			rangeDiffers = true
			hd.Write(d.doc)
			if err := d.next(ctx); err != nil {
				return err
			}
		}
	}
	if inRange > 0 || rangeDiffers {
		closeRange(r.LastRangeEnd)
	}
	r.SourceCount, r.DestCount = s.count, d.count
	return nil
}

// indexSpec keeps the index fields that define behaviour (not v or ns).
func indexSpec(spec bson.Raw) string {
	var keep bson.D
	elems, _ := spec.Elements()
	for _, e := range elems {
		switch e.Key() {
		case "v", "ns", "background":
			continue
		}
		keep = append(keep, bson.E{Key: e.Key(), Value: e.Value()})
	}
	slices.SortFunc(keep, func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
	b, err := bson.MarshalExtJSON(keep, true, false)
	if err != nil {
		return fmt.Sprintf("unprintable index spec: %v", err)
	}
	return string(b)
}

func listIndexes(ctx context.Context, c *mongo.Collection) (map[string]string, error) {
	cur, err := c.Indexes().List(ctx)
	if err != nil {
		if mongox.IsNamespaceNotFound(err) { // no collection, so no indexes
			return map[string]string{}, nil
		}
		return nil, fmt.Errorf("listing indexes of %s.%s: %w", c.Database().Name(), c.Name(), err)
	}
	defer cur.Close(ctx)
	out := map[string]string{}
	for cur.Next(ctx) {
		out[cur.Current.Lookup("name").StringValue()] = indexSpec(cur.Current)
	}
	return out, cur.Err()
}

func compareIndexes(ctx context.Context, r *Result, sc, dc *mongo.Collection) error {
	si, err := listIndexes(ctx, sc)
	if err != nil {
		return err
	}
	di, err := listIndexes(ctx, dc)
	if err != nil {
		return err
	}
	var names []string
	for n := range si {
		names = append(names, n)
	}
	for n := range di {
		if _, ok := si[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		s, inS := si[n]
		d, inD := di[n]
		switch {
		case !inD:
			r.IndexDiffs = append(r.IndexDiffs, fmt.Sprintf("%s missing in destination (source %s)", n, s))
		case !inS:
			r.IndexDiffs = append(r.IndexDiffs, fmt.Sprintf("%s only in destination (%s)", n, d))
		case s != d:
			r.IndexDiffs = append(r.IndexDiffs, fmt.Sprintf("%s differs: source %s, destination %s", n, s, d))
		}
	}
	return nil
}

func collectionOptions(ctx context.Context, cl *mongo.Client, db, coll string) (string, error) {
	specs, err := cl.Database(db).ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: coll}})
	if err != nil {
		return "", fmt.Errorf("listing collection %s.%s: %w", db, coll, err)
	}
	if len(specs) == 0 {
		return "<absent>", nil
	}
	opts := specs[0].Options
	if len(opts) == 0 {
		opts = bson.Raw{5, 0, 0, 0, 0}
	}
	return specs[0].Type + " " + opts.String(), nil
}

func compareOptions(ctx context.Context, r *Result, src, dst *mongo.Client) error {
	so, err := collectionOptions(ctx, src, r.Pair.SourceDB, r.Pair.SourceColl)
	if err != nil {
		return err
	}
	do, err := collectionOptions(ctx, dst, r.Pair.DestDB, r.Pair.DestColl)
	if err != nil {
		return err
	}
	if so != do {
		r.OptionsDiff = fmt.Sprintf("source %s, destination %s", so, do)
	}
	return nil
}

// systemDBs are never verified.
var systemDBs = map[string]bool{"admin": true, "local": true, "config": true, "__logbridge": true}

// ListPairs lists the source's collections (not views, not system.*) that
// include accepts, mapped to destination names by mapNS (nil: same names).
func ListPairs(ctx context.Context, src *mongo.Client, include func(db, coll string) bool, mapNS func(db, coll string) (string, string)) ([]Pair, error) {
	dbs, err := src.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("listing source databases: %w", err)
	}
	slices.Sort(dbs)
	var pairs []Pair
	for _, db := range dbs {
		if systemDBs[db] {
			continue
		}
		specs, err := src.Database(db).ListCollectionSpecifications(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("listing collections of %s: %w", db, err)
		}
		for _, s := range specs {
			if s.Type == "view" || strings.HasPrefix(s.Name, "system.") || (include != nil && !include(db, s.Name)) {
				continue
			}
			p := Pair{SourceDB: db, SourceColl: s.Name, DestDB: db, DestColl: s.Name}
			if mapNS != nil {
				p.DestDB, p.DestColl = mapNS(db, s.Name)
			}
			pairs = append(pairs, p)
		}
	}
	slices.SortFunc(pairs, func(a, b Pair) int { return strings.Compare(a.String(), b.String()) })
	return pairs, nil
}
