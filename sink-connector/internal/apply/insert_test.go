package apply

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// TestInsertCommand: documents go into the command byte for byte, a command
// stops before the 16 MiB payload limit (but always takes one document), and
// the write concern is carried.
func TestInsertCommand(t *testing.T) {
	big := func(id int32) write {
		return write{kind: wInsert, doc: raw(t, bson.D{{Key: "_id", Value: id}, {Key: "s", Value: string(make([]byte, 7<<20))}})}
	}
	ws := []write{big(1), big(2), big(3)}
	n, cmd := insertCommand("c", ws, writeconcern.Majority())
	if n != 2 {
		t.Fatalf("first command took %d documents of 7 MiB, want 2 (16 MiB payload limit)", n)
	}
	if got := cmd.Lookup("insert").StringValue(); got != "c" {
		t.Fatalf("insert = %q", got)
	}
	docs, err := cmd.Lookup("documents").Array().Values()
	if err != nil || len(docs) != 2 {
		t.Fatalf("documents: %d, %v", len(docs), err)
	}
	for i, d := range docs {
		if !bytes.Equal(d.Document(), ws[i].doc) {
			t.Fatalf("document %d is not the original bytes", i)
		}
	}
	if cmd.Lookup("ordered").Boolean() {
		t.Fatal("ordered must be false")
	}
	if got := cmd.Lookup("writeConcern", "w").StringValue(); got != "majority" {
		t.Fatalf("writeConcern.w = %q", got)
	}
	n, cmd = insertCommand("c", ws[2:], &writeconcern.WriteConcern{W: 1})
	if n != 1 || cmd.Lookup("writeConcern", "w").Int32() != 1 {
		t.Fatalf("second command: %d documents, writeConcern %v", n, cmd.Lookup("writeConcern"))
	}
	huge := write{kind: wInsert, doc: raw(t, bson.D{{Key: "s", Value: string(make([]byte, 17<<20))}})}
	if n, _ := insertCommand("c", []write{huge, big(1)}, nil); n != 1 {
		t.Fatalf("an oversized document goes alone (the server rejects it), got %d", n)
	}
}
