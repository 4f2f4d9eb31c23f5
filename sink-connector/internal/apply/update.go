package apply

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

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
		n, err := ud.UpdatedFields.Elements()
		if err != nil {
			return nil, fmt.Errorf("%w: updatedFields: %v", ErrBadEvent, err)
		}
		hasSet = len(n) > 0
	}
	if hasSet || len(ud.RemovedFields) > 0 {
		doc := bson.D{}
		if hasSet {
			doc = append(doc, bson.E{Key: "$set", Value: ud.UpdatedFields})
		}
		if len(ud.RemovedFields) > 0 {
			unset := make(bson.D, 0, len(ud.RemovedFields))
			for _, f := range ud.RemovedFields {
				unset = append(unset, bson.E{Key: f, Value: ""})
			}
			doc = append(doc, bson.E{Key: "$unset", Value: unset})
		}
		b, err := bson.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("encoding $set/$unset: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}
