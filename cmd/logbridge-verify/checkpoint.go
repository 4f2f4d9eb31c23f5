package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// checkpoint maps a namespace pair to {"id": <last _id>} in canonical
// Extended JSON: the end of its last verified range. Only fully compared ranges are recorded, so
// resuming after one never skips a document; a resumed namespace reports the
// counts of the remaining ranges only.
type checkpoint map[string]string

func loadCheckpoint(path string) (checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return checkpoint{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	cp := checkpoint{}
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("checkpoint file %s is not valid (%v): delete it to start over", path, err)
	}
	return cp, nil
}

func (cp checkpoint) resumeAfter() map[string]bson.RawValue {
	out := map[string]bson.RawValue{}
	for ns, ext := range cp {
		var doc bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(ext), true, &doc); err == nil {
			out[ns] = doc.Lookup("id")
		}
	}
	return out
}

func (cp checkpoint) save(path, ns string, last bson.RawValue) error {
	id, err := bson.MarshalExtJSON(bson.D{{Key: "id", Value: last}}, true, false)
	if err != nil {
		return err
	}
	cp[ns] = string(id)
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
