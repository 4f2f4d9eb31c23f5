package apply

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/logbridge/logbridge/schema"
)

// UpdateDocs translates an update change event's updateDescription into the
// update documents that reproduce it on the destination, to be applied in
// order to the document with the event's key.
//
// MongoDB reports an update as updatedFields (dotted paths → new values),
// removedFields (dotted paths) and truncatedArrays (array paths shortened to
// newSize). Truncation happens before the element updates in updatedFields
// refer to the new array, and the two cannot go in one update document ($push
// on "a" conflicts with $set of "a.1"), so a truncation comes first as
// {$push: {path: {$each: [], $slice: newSize}}}, then {$set, $unset}.
// updatedFields is passed through as the $set document without decoding.
//
// It returns no documents for an empty description (a no-op update).
func UpdateDocs(ud *schema.UpdateDescription) ([]bson.Raw, error) {
	if ud == nil {
		return nil, nil
	}
	var out []bson.Raw
	if len(ud.TruncatedArrays) > 0 {
		push := bson.D{}
		for _, t := range ud.TruncatedArrays {
			if t.Field == "" || t.NewSize < 0 {
				return nil, fmt.Errorf("%w: truncatedArrays entry %+v", ErrBadEvent, t)
			}
			push = append(push, bson.E{Key: t.Field, Value: bson.D{{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: t.NewSize}}})
		}
		b, err := bson.Marshal(bson.D{{Key: "$push", Value: push}})
		if err != nil {
			return nil, fmt.Errorf("encoding $push for truncated arrays: %w", err)
		}
		out = append(out, b)
	}
	hasSet := len(ud.UpdatedFields) > 0
	if hasSet {
		if err := ud.UpdatedFields.Validate(); err != nil {
			return nil, fmt.Errorf("%w: updatedFields is not a BSON document: %v", ErrBadEvent, err)
		}
		hasSet = len(ud.UpdatedFields) > 5 // a valid document of 5 bytes is empty
	}
	if hasSet || len(ud.RemovedFields) > 0 {
		// Built with bsoncore, not bson.Marshal of a bson.D: the update of
		// every update event goes through here (reflection was 4% of the
		// sink's CPU in the catch-up benchmark).
		idx, b := bsoncore.AppendDocumentStart(nil)
		if hasSet {
			b = bsoncore.AppendDocumentElement(b, "$set", ud.UpdatedFields)
		}
		if len(ud.RemovedFields) > 0 {
			var uidx int32
			uidx, b = bsoncore.AppendDocumentElementStart(b, "$unset")
			for _, f := range ud.RemovedFields {
				if strings.IndexByte(f, 0) >= 0 {
					return nil, fmt.Errorf("%w: removedFields entry %q holds a NUL byte", ErrBadEvent, f)
				}
				b = bsoncore.AppendStringElement(b, f, "")
			}
			var err error
			if b, err = bsoncore.AppendDocumentEnd(b, uidx); err != nil {
				return nil, fmt.Errorf("encoding $unset: %w", err)
			}
		}
		b, err := bsoncore.AppendDocumentEnd(b, idx)
		if err != nil {
			return nil, fmt.Errorf("encoding $set/$unset: %w", err)
		}
		out = append(out, bson.Raw(b))
	}
	return out, nil
}
