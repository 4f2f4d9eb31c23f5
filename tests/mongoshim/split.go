package mongoshim

import (
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// maxEventBytes is MongoDB's BSON document limit: a larger change event is
// split by $changeStreamSplitLargeEvent.
const maxEventBytes = 16 * 1024 * 1024

// codeBSONObjectTooLarge is MongoDB's BSONObjectTooLarge.
const codeBSONObjectTooLarge = 10334

// fragFlag marks a fragment's resume token: flag fragFlag+k is "after
// fragment k" of the event at the token's position.
const fragFlag = 0x40

func fragmentOf(p pos) int {
	if p.flag >= fragFlag {
		return int(p.flag - fragFlag)
	}
	return 0
}

// justBefore is the position just before the event at p.
func justBefore(p pos) pos {
	if p.idx > 0 {
		return pos{ts: p.ts, idx: p.idx - 1, flag: 2} // after an invalidate (flag 1) too
	}
	return before(p.ts)
}

// splitEvent splits ev (over 16 MiB) as $changeStreamSplitLargeEvent does:
// top-level fields only, smallest first so that the first fragment carries
// as many fields (the event's context) as possible, each fragment with its
// own resume token and splitEvent {fragment, of}. A single field too large
// for a fragment is BSONObjectTooLarge, as in MongoDB.
func splitEvent(ev bson.Raw, at pos) ([]bson.Raw, error) {
	elems, err := ev.Elements()
	if err != nil {
		return nil, err
	}
	var fields []bson.RawElement
	for _, e := range elems {
		if e.Key() != "_id" {
			fields = append(fields, e)
		}
	}
	sort.SliceStable(fields, func(i, j int) bool { return len(fields[i]) < len(fields[j]) })
	// Room for _id (a token), splitEvent and the document framing.
	const overhead = 256
	var groups [][]bson.RawElement
	size := overhead
	for _, f := range fields {
		if overhead+len(f) > maxEventBytes {
			return nil, shimErr(codeBSONObjectTooLarge, "BSONObj size: "+itoa(len(f))+" is invalid. Size must be between 0 and 16793600(16MB) (field "+f.Key()+" of a change event is too large to split)")
		}
		if len(groups) == 0 || size+len(f) > maxEventBytes {
			groups = append(groups, nil)
			size = overhead
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], f)
		size += len(f)
	}
	out := make([]bson.Raw, len(groups))
	for i, g := range groups {
		tok := at.token()
		if i < len(groups)-1 {
			tok = pos{ts: at.ts, idx: at.idx, flag: uint8(fragFlag + i + 1)}.token()
		}
		idx, b := bsoncore.AppendDocumentStart(nil)
		b = bsoncore.AppendDocumentElement(b, "_id", tok)
		b = bsoncore.AppendDocumentElement(b, "splitEvent", mustRaw(bson.D{
			{Key: "fragment", Value: int32(i + 1)}, {Key: "of", Value: int32(len(groups))}}))
		for _, f := range g {
			b = append(b, f...)
		}
		b, _ = bsoncore.AppendDocumentEnd(b, idx)
		out[i] = bson.Raw(b)
	}
	return out, nil
}
