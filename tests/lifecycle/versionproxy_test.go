package lifecycle

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// versionProxy forwards MongoDB wire traffic to a real server and rewrites
// what buildInfo and getParameter(featureCompatibilityVersion) answer, so
// that a test can present the server as another MongoDB version without
// changing the server (the shared shim) for everyone else. Everything else
// passes through untouched.
type versionProxy struct {
	t       *testing.T
	ln      net.Listener
	backend string
	version string // buildInfo.version
	fcv     string // featureCompatibilityVersion.version
}

func startVersionProxy(t *testing.T, backend, version, fcv string) *versionProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &versionProxy{t: t, ln: ln, backend: backend, version: version, fcv: fcv}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	})
	return p
}

func (p *versionProxy) addr() string { return p.ln.Addr().String() }

const opMsg = 2013

func (p *versionProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.backend)
	if err != nil {
		p.t.Logf("version proxy: %v", err)
		return
	}
	defer server.Close()
	var mu sync.Mutex
	pending := map[int32]string{} // requestID → command name (lower case)
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			msg, err := readMsg(client)
			if err != nil {
				return
			}
			if name := commandName(msg); name != "" {
				mu.Lock()
				pending[int32(binary.LittleEndian.Uint32(msg[4:]))] = name
				mu.Unlock()
			}
			if _, err := server.Write(msg); err != nil {
				return
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			msg, err := readMsg(server)
			if err != nil {
				return
			}
			mu.Lock()
			name := pending[int32(binary.LittleEndian.Uint32(msg[8:]))]
			mu.Unlock()
			if name == "buildinfo" || name == "getparameter" {
				msg = p.rewrite(msg)
			}
			if _, err := client.Write(msg); err != nil {
				return
			}
		}
	}()
	<-done
}

func readMsg(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(hdr[:]))
	if n < 16 || n > 48<<20 {
		return nil, io.ErrUnexpectedEOF
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	_, err := io.ReadFull(r, msg[4:])
	return msg, err
}

// body returns the kind-0 section document of an OP_MSG, or nil.
func body(msg []byte) bson.Raw {
	if len(msg) < 21 || binary.LittleEndian.Uint32(msg[12:]) != opMsg || msg[20] != 0 {
		return nil
	}
	doc := bson.Raw(msg[21:])
	if len(doc) < 5 || int(binary.LittleEndian.Uint32(doc)) > len(doc) {
		return nil
	}
	return doc[:binary.LittleEndian.Uint32(doc)]
}

func commandName(msg []byte) string {
	doc := body(msg)
	if doc == nil {
		return ""
	}
	elems, err := doc.Elements()
	if err != nil || len(elems) == 0 {
		return ""
	}
	return strings.ToLower(elems[0].Key())
}

// rewrite replaces the version fields of a reply and re-frames it (without
// a checksum: the flag is cleared).
func (p *versionProxy) rewrite(msg []byte) []byte {
	doc := body(msg)
	if doc == nil {
		return msg
	}
	var d bson.D
	if err := bson.Unmarshal(doc, &d); err != nil {
		return msg
	}
	for i := range d {
		switch d[i].Key {
		case "version":
			d[i].Value = p.version
		case "versionArray":
			d[i].Value = bson.A{}
		case "featureCompatibilityVersion":
			d[i].Value = bson.D{{Key: "version", Value: p.fcv}}
		}
	}
	nd, err := bson.Marshal(d)
	if err != nil {
		return msg
	}
	rest := msg[21+len(doc):]
	flags := binary.LittleEndian.Uint32(msg[16:])
	if flags&1 != 0 { // checksumPresent: drop the trailing CRC
		flags &^= 1
		rest = rest[:len(rest)-4]
	}
	var b bytes.Buffer
	b.Write(make([]byte, 16))
	binary.Write(&b, binary.LittleEndian, flags)
	b.WriteByte(0)
	b.Write(nd)
	b.Write(rest)
	out := b.Bytes()
	copy(out[4:16], msg[4:16])
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}
