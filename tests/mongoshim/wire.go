package mongoshim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

// maxMessageSize is the largest wire message accepted (hello's maxMessageSizeBytes).
const maxMessageSize = 48000000

// request is one decoded client message: a command document with the OP_MSG
// document sequences folded in as arrays.
type request struct {
	requestID int32
	opCode    wiremessage.OpCode
	flags     wiremessage.MsgFlag
	// cmd is the command: the OP_MSG body (kind 0) with every document
	// sequence (kind 1) appended as an array field, or the OP_QUERY query.
	cmd bson.Raw
	// db is $db (OP_MSG) or the database of the OP_QUERY "<db>.$cmd".
	db string
}

// maxBackendMessageSize bounds a backend reply: mongo-java-server answers an
// aggregate with its whole result in one batch, whatever the batchSize (60 MB
// for 50,000 documents of 1 KiB), and the shim serves that in MongoDB's
// batches (batched.go); 1 GiB keeps a runaway reply from exhausting memory.
const maxBackendMessageSize = 1 << 30

// readMessage reads one wire message of at most limit bytes.
func readMessage(r io.Reader, limit int32) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(hdr[:]))
	if n < 16 || n > limit {
		return nil, fmt.Errorf("message length %d out of range", n)
	}
	buf := make([]byte, n)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// parseRequest decodes an OP_MSG or OP_QUERY message.
func parseRequest(msg []byte) (*request, error) {
	_, reqID, _, op, rem, ok := wiremessage.ReadHeader(msg)
	if !ok {
		return nil, errors.New("malformed message header")
	}
	req := &request{requestID: reqID, opCode: op}
	switch op {
	case wiremessage.OpMsg:
		flags, rem, ok := wiremessage.ReadMsgFlags(rem)
		if !ok {
			return nil, errors.New("malformed OP_MSG flags")
		}
		req.flags = flags
		if flags&wiremessage.ChecksumPresent != 0 {
			if len(rem) < 4 {
				return nil, errors.New("malformed OP_MSG checksum")
			}
			rem = rem[:len(rem)-4]
		}
		var body bsoncore.Document
		type seq struct {
			id   string
			docs []bsoncore.Document
		}
		var seqs []seq
		for len(rem) > 0 {
			var st wiremessage.SectionType
			st, rem, ok = wiremessage.ReadMsgSectionType(rem)
			if !ok {
				return nil, errors.New("malformed OP_MSG section")
			}
			switch st {
			case wiremessage.SingleDocument:
				body, rem, ok = wiremessage.ReadMsgSectionSingleDocument(rem)
				if !ok {
					return nil, errors.New("malformed OP_MSG body")
				}
			case wiremessage.DocumentSequence:
				var id string
				var docs []bsoncore.Document
				id, docs, rem, ok = wiremessage.ReadMsgSectionDocumentSequence(rem)
				if !ok {
					return nil, errors.New("malformed OP_MSG document sequence")
				}
				seqs = append(seqs, seq{id, docs})
			default:
				return nil, fmt.Errorf("unknown OP_MSG section kind %d", st)
			}
		}
		if body == nil {
			return nil, errors.New("OP_MSG without a body")
		}
		if len(seqs) == 0 {
			req.cmd = bson.Raw(body)
		} else {
			// body elements, then each sequence as an array
			idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(body)+1024))
			elems, err := body.Elements()
			if err != nil {
				return nil, err
			}
			for _, e := range elems {
				b = append(b, e...)
			}
			for _, s := range seqs {
				aidx, ab := bsoncore.AppendArrayElementStart(b, s.id)
				for i, d := range s.docs {
					ab = bsoncore.AppendDocumentElement(ab, itoa(i), d)
				}
				b, _ = bsoncore.AppendArrayEnd(ab, aidx)
			}
			b, _ = bsoncore.AppendDocumentEnd(b, idx)
			req.cmd = bson.Raw(b)
		}
		if v, err := req.cmd.LookupErr("$db"); err == nil {
			req.db, _ = v.StringValueOK()
		}
		if req.db == "" {
			req.db = "admin"
		}
	case wiremessage.OpQuery:
		_, rem, ok := wiremessage.ReadQueryFlags(rem)
		if !ok {
			return nil, errors.New("malformed OP_QUERY")
		}
		var ns string
		ns, rem, ok = wiremessage.ReadQueryFullCollectionName(rem)
		if !ok {
			return nil, errors.New("malformed OP_QUERY namespace")
		}
		_, rem, ok = wiremessage.ReadQueryNumberToSkip(rem)
		if !ok {
			return nil, errors.New("malformed OP_QUERY")
		}
		_, rem, ok = wiremessage.ReadQueryNumberToReturn(rem)
		if !ok {
			return nil, errors.New("malformed OP_QUERY")
		}
		q, _, ok := wiremessage.ReadQueryQuery(rem)
		if !ok {
			return nil, errors.New("malformed OP_QUERY query")
		}
		db, coll := splitNS(ns)
		if coll != "$cmd" {
			return nil, fmt.Errorf("legacy OP_QUERY on %q is not supported (only commands on <db>.$cmd)", ns)
		}
		req.db = db
		// a wrapped query {$query: {...}, $readPreference: ...}
		if v, err := bson.Raw(q).LookupErr("$query"); err == nil {
			if d, ok := v.DocumentOK(); ok {
				q = bsoncore.Document(d)
			}
		}
		req.cmd = bson.Raw(q)
	default:
		return nil, fmt.Errorf("unsupported wire opcode %d (%s)", op, op)
	}
	return req, nil
}

// encodeReply builds the reply to req: OP_MSG for OP_MSG, OP_REPLY for OP_QUERY.
func encodeReply(req *request, reply bson.Raw) []byte {
	switch req.opCode {
	case wiremessage.OpQuery:
		idx, b := wiremessage.AppendHeaderStart(nil, wiremessage.NextRequestID(), req.requestID, wiremessage.OpReply)
		b = wiremessage.AppendReplyFlags(b, wiremessage.AwaitCapable)
		b = wiremessage.AppendReplyCursorID(b, 0)
		b = wiremessage.AppendReplyStartingFrom(b, 0)
		b = wiremessage.AppendReplyNumberReturned(b, 1)
		b = append(b, reply...)
		return bsoncore.UpdateLength(b, idx, int32(len(b[idx:])))
	default:
		idx, b := wiremessage.AppendHeaderStart(nil, wiremessage.NextRequestID(), req.requestID, wiremessage.OpMsg)
		b = wiremessage.AppendMsgFlags(b, 0)
		b = wiremessage.AppendMsgSectionType(b, wiremessage.SingleDocument)
		b = append(b, reply...)
		return bsoncore.UpdateLength(b, idx, int32(len(b[idx:])))
	}
}

// encodeCommand builds an OP_MSG carrying cmd (which must include $db).
func encodeCommand(reqID int32, cmd []byte) []byte {
	idx, b := wiremessage.AppendHeaderStart(nil, reqID, 0, wiremessage.OpMsg)
	b = wiremessage.AppendMsgFlags(b, 0)
	b = wiremessage.AppendMsgSectionType(b, wiremessage.SingleDocument)
	b = append(b, cmd...)
	return bsoncore.UpdateLength(b, idx, int32(len(b[idx:])))
}

// decodeReply extracts the reply document of an OP_MSG or OP_REPLY.
func decodeReply(msg []byte) (bson.Raw, error) {
	_, _, _, op, rem, ok := wiremessage.ReadHeader(msg)
	if !ok {
		return nil, errors.New("malformed reply header")
	}
	switch op {
	case wiremessage.OpMsg:
		flags, rem, ok := wiremessage.ReadMsgFlags(rem)
		if !ok {
			return nil, errors.New("malformed reply flags")
		}
		if flags&wiremessage.ChecksumPresent != 0 && len(rem) >= 4 {
			rem = rem[:len(rem)-4]
		}
		for len(rem) > 0 {
			var st wiremessage.SectionType
			st, rem, ok = wiremessage.ReadMsgSectionType(rem)
			if !ok {
				return nil, errors.New("malformed reply section")
			}
			if st == wiremessage.SingleDocument {
				d, _, ok := wiremessage.ReadMsgSectionSingleDocument(rem)
				if !ok {
					return nil, errors.New("malformed reply body")
				}
				return bson.Raw(d), nil
			}
			_, _, rem, ok = wiremessage.ReadMsgSectionDocumentSequence(rem)
			if !ok {
				return nil, errors.New("malformed reply sequence")
			}
		}
		return nil, errors.New("reply without body")
	case wiremessage.OpReply:
		_, rem, _ = wiremessage.ReadReplyFlags(rem)
		_, rem, _ = wiremessage.ReadReplyCursorID(rem)
		_, rem, _ = wiremessage.ReadReplyStartingFrom(rem)
		_, rem, _ = wiremessage.ReadReplyNumberReturned(rem)
		d, _, ok := wiremessage.ReadReplyDocument(rem)
		if !ok {
			return nil, errors.New("malformed OP_REPLY")
		}
		return bson.Raw(d), nil
	default:
		return nil, fmt.Errorf("unexpected reply opcode %s", op)
	}
}
