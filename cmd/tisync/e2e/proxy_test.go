package e2e

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// insertProxy is a TCP proxy between the daemon and ClickHouse that delays each chunk the server
// sends by a fixed latency, as a server across a network would, and recognizes the daemon's inserts
// into the tisync tables. The native protocol sends the SQL of a query uncompressed, so the proxy
// finds "INSERT INTO <database>.<table> (" in the client's bytes. An insert then takes two replies
// of the server: the header block, after which the client sends its rows, and the end of the insert,
// which the server sends once the rows are written. A hook can run before the proxy forwards either
// reply, while the daemon waits for it inside its insert.
type insertProxy struct {
	t       testing.TB
	target  string
	addr    string
	latency time.Duration
	inserts map[string][]byte // table → statement prefix

	mu    sync.Mutex
	l     net.Listener
	conns map[*proxyConn]struct{}
	wg    sync.WaitGroup

	// hook, when set, runs before the proxy forwards a reply of the server to an insert.
	hook atomic.Pointer[func(insertReply)]
	// insertsSeen counts the inserts into the tisync tables.
	insertsSeen atomic.Int64
}

// insertReply describes a reply of the server that the proxy is about to forward.
type insertReply struct {
	table string
	// n is 1 for the header block and 2 for the reply that ends the insert.
	n int
}

// proxyConn is one proxied connection.
type proxyConn struct {
	client, server net.Conn

	mu      sync.Mutex
	table   string // the table of the insert in progress, "" when none
	replies int    // replies of the server since the insert began
}

// newInsertProxy starts a proxy to target on a random loopback port, stopped when the test ends.
// tables are the tables of database whose inserts it recognizes.
func newInsertProxy(t testing.TB, target, database string, latency time.Duration, tables ...string) *insertProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &insertProxy{
		t: t, target: target, addr: l.Addr().String(), latency: latency,
		inserts: map[string][]byte{}, l: l, conns: map[*proxyConn]struct{}{},
	}
	for _, table := range tables {
		p.inserts[table] = []byte("INSERT INTO " + database + "." + table + " (")
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		p.l.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.client.Close()
			c.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *insertProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxyConn{client: client, server: server}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.fromClient(c)
		go p.fromServer(c)
	}
}

// fromClient forwards the client's bytes and notes the start of each insert.
func (p *insertProxy) fromClient(c *proxyConn) {
	defer p.wg.Done()
	defer p.closeConn(c)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			for table, prefix := range p.inserts {
				if bytes.Contains(chunk, prefix) {
					c.mu.Lock()
					c.table, c.replies = table, 0
					c.mu.Unlock()
					p.insertsSeen.Add(1)
				}
			}
			if _, werr := c.server.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// fromServer forwards the server's bytes after the latency and runs the hook on replies to inserts.
func (p *insertProxy) fromServer(c *proxyConn) {
	defer p.wg.Done()
	defer p.closeConn(c)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			time.Sleep(p.latency)
			c.mu.Lock()
			table := c.table
			if table != "" {
				c.replies++
			}
			reply := insertReply{table: table, n: c.replies}
			c.mu.Unlock()
			if table != "" {
				if hook := p.hook.Load(); hook != nil {
					(*hook)(reply)
				}
			}
			if _, werr := c.client.Write(buf[:n]); werr != nil {
				return
			}
			if table != "" && reply.n >= 2 {
				// The insert has ended, unless the client already began the next one.
				c.mu.Lock()
				if c.table == table && c.replies == reply.n {
					c.table = ""
				}
				c.mu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *insertProxy) closeConn(c *proxyConn) {
	c.client.Close()
	c.server.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// inserting reports whether an insert is in progress on any connection.
func (p *insertProxy) inserting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.mu.Lock()
		busy := c.table != ""
		c.mu.Unlock()
		if busy {
			return true
		}
	}
	return false
}
