package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tisync/tisync/schema"
)

// Client writes rows into ClickHouse and runs migrations. It owns a connection pool that it closes
// and opens again after any failed insert or statement, because a connection that failed mid-insert
// can stay unusable (seen with ClickHouse 18.16). A Client is safe for concurrent use.
type Client struct {
	cfg     Config
	opts    *ch.Options
	log     *zap.Logger
	metrics *metrics
	inserts map[string]string // table → INSERT statement with its column list

	// slots bounds the inserts running at once to the pool's size.
	slots chan struct{}

	mu     sync.Mutex
	conn   driver.Conn
	closed bool
}

// New returns a Client for cfg. It does not connect: the pool dials on first use, so New succeeds
// while the server is down. A nil logger logs nothing; a nil registerer leaves the metrics
// unregistered. It returns an error when cfg is invalid or its TLS files cannot be loaded.
func New(cfg Config, logger *zap.Logger, reg prometheus.Registerer) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clickhouse config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	tlsCfg, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("clickhouse config: %w", err)
	}
	method := map[string]ch.CompressionMethod{
		"lz4":  ch.CompressionLZ4,
		"zstd": ch.CompressionZSTD,
		"none": ch.CompressionNone,
	}[cfg.Compression]
	opts := &ch.Options{
		Addr: cfg.Addresses,
		// NB: the pool connects to the default database because the configured one may not exist
		// before the first migration; every statement names its database.
		Auth:         ch.Auth{Database: "default", Username: cfg.Username, Password: cfg.Password},
		TLS:          tlsCfg,
		Compression:  &ch.Compression{Method: method},
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
	}
	c := &Client{
		cfg:     cfg,
		opts:    opts,
		log:     logger.Named("clickhouse"),
		metrics: newMetrics(reg),
		inserts: map[string]string{},
		slots:   make(chan struct{}, cfg.MaxOpenConns),
	}
	for _, table := range schema.Tables {
		c.inserts[table] = insertStatement(cfg.Database, table, schema.Columns(table))
	}
	return c, nil
}

// insertStatement returns INSERT INTO db.table (columns). ClickHouse 18.16 replies to an INSERT
// without a column list with an empty header, so every insert names its columns.
func insertStatement(database, table string, columns []string) string {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = "`" + c + "`"
	}
	return "INSERT INTO " + database + "." + table + " (" + strings.Join(quoted, ", ") + ")"
}

// Database returns the configured database name.
func (c *Client) Database() string { return c.cfg.Database }

// connection returns the current pool, opening one when there is none.
func (c *Client) connection() (driver.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.conn == nil {
		conn, err := ch.Open(c.opts)
		if err != nil {
			return nil, fmt.Errorf("open clickhouse connection: %w", err)
		}
		c.conn = conn
	}
	return c.conn, nil
}

// discard closes conn after an error so that the next call opens a fresh pool. A pool that another
// goroutine has already replaced is left alone.
func (c *Client) discard(conn driver.Conn, cause error) {
	c.mu.Lock()
	if c.conn != conn {
		c.mu.Unlock()
		return
	}
	c.conn = nil
	c.mu.Unlock()
	c.metrics.reconnects.Inc()
	c.log.Debug("closing connection pool after error", zap.Error(cause))
	_ = conn.Close()
}

// Close closes the connection pool. Later calls return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// Ping checks that the server responds and returns its version.
func (c *Client) Ping(ctx context.Context) (string, error) {
	conn, err := c.connection()
	if err != nil {
		return "", err
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		c.discard(conn, err)
		return "", fmt.Errorf("ping clickhouse: %w", err)
	}
	return version, nil
}

// exec runs one statement that returns no rows.
func (c *Client) exec(ctx context.Context, query string) error {
	conn, err := c.connection()
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, query); err != nil {
		c.discard(conn, err)
		return err
	}
	return nil
}

// query runs a statement and calls scan for each row.
func (c *Client) query(ctx context.Context, q string, scan func(driver.Rows) error) error {
	conn, err := c.connection()
	if err != nil {
		return err
	}
	rows, err := conn.Query(ctx, q)
	if err != nil {
		c.discard(conn, err)
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		c.discard(conn, err)
		return err
	}
	return nil
}

// Batch collects the rows of one Write, grouped by table, in column form (see schema.Block). It
// is not safe for concurrent use.
type Batch struct {
	blocks []*schema.Block // one per table of schema.Tables, in that order
	n      int
	err    error
}

// NewBatch returns an empty Batch.
func NewBatch() *Batch {
	b := &Batch{blocks: make([]*schema.Block, len(schema.Tables))}
	for i, table := range schema.Tables {
		b.blocks[i] = schema.NewBlock(table)
	}
	return b
}

// Add appends rows. Each row's values must be in the order of schema.Columns(row.Table) and of the
// types schema.Rows produces. A row of another table or with a value of the wrong type is not
// added, and the next Write fails with a row error for it.
func (b *Batch) Add(rows ...schema.Row) {
	for _, r := range rows {
		blk := b.block(r.Table)
		if blk == nil {
			if b.err == nil {
				b.err = &InsertError{Table: r.Table, Rows: 1, RowError: true, Err: fmt.Errorf("table %q is not written by the sink", r.Table)}
			}
			continue
		}
		if blk.AddRow(r) == nil {
			b.n++
		}
	}
}

// AddEvent appends both rows of one event.
func (b *Batch) AddEvent(r schema.EventRows) { b.Add(r.Entity, r.Change) }

// AddDecoded appends both rows of one decoded event.
func (b *Batch) AddDecoded(d *schema.Decoded) {
	for _, blk := range b.blocks {
		if blk.AddDecoded(d) {
			b.n++
		}
	}
}

func (b *Batch) block(table string) *schema.Block {
	for i, t := range schema.Tables {
		if t == table {
			return b.blocks[i]
		}
	}
	return nil
}

// Len returns the number of rows over all tables.
func (b *Batch) Len() int { return b.n }

// TableLen returns the number of rows for one table.
func (b *Batch) TableLen(table string) int {
	if blk := b.block(table); blk != nil {
		return blk.Len()
	}
	return 0
}

// Reset empties the batch and keeps its memory for reuse.
func (b *Batch) Reset() {
	for _, blk := range b.blocks {
		blk.Reset()
	}
	b.n, b.err = 0, nil
}

// Write inserts every row of b, one INSERT per table: the entity tables first, concurrently on
// separate connections of the pool, then change_events, so that an event's history row never
// becomes visible before its entity row. It makes one attempt. When a row could not be added to b,
// Write fails with a row error before inserting anything. On failure it closes the connection
// pool and returns an *InsertError for the first table, in the order of schema.Tables, that
// failed. Other tables may have been inserted; that is harmless because a retry of the same rows
// is deduplicated by key and version. Write does not modify b, so the caller can retry with the
// same batch.
func (c *Client) Write(ctx context.Context, b *Batch) error {
	if b.err != nil {
		return b.err
	}
	for _, blk := range b.blocks {
		if err := blk.Err(); err != nil {
			return &InsertError{Table: blk.Table(), Rows: blk.Len() + 1, RowError: true, Err: err}
		}
	}
	var changes *schema.Block
	errs := make([]error, len(b.blocks))
	var wg sync.WaitGroup
	for i, blk := range b.blocks {
		if blk.Table() == schema.TableChangeEvents {
			changes = blk
			continue
		}
		if blk.Len() == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.slots <- struct{}{}
			defer func() { <-c.slots }()
			errs[i] = c.insert(ctx, blk)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if changes == nil || changes.Len() == 0 {
		return nil
	}
	return c.insert(ctx, changes)
}

func (c *Client) insert(ctx context.Context, blk *schema.Block) error {
	start := time.Now()
	table, rows := blk.Table(), blk.Len()
	fail := func(rowError bool, err error) error {
		kind := "retryable"
		if rowError {
			kind = "row"
		}
		c.metrics.insertErrors.WithLabelValues(table, kind).Inc()
		return &InsertError{Table: table, Rows: rows, RowError: rowError, Err: err}
	}

	conn, err := c.connection()
	if err != nil {
		return fail(false, err)
	}
	batch, err := conn.PrepareBatch(ctx, c.inserts[table])
	if err != nil {
		c.discard(conn, err)
		return fail(classifySend(err), fmt.Errorf("prepare: %w", err))
	}
	columns := schema.Columns(table)
	for i, values := range blk.Values() {
		if err := appendColumn(batch.Column(i), values); err != nil {
			// The driver rejected a value before anything was sent: the rows are at fault. The
			// connection is mid-INSERT, so it is dropped with the pool.
			_ = batch.Abort()
			c.discard(conn, err)
			return fail(true, fmt.Errorf("append column %s: %w", columns[i], err))
		}
	}
	if err := batch.Send(); err != nil {
		_ = batch.Close()
		c.discard(conn, err)
		return fail(classifySend(err), fmt.Errorf("send: %w", err))
	}
	c.metrics.insertDuration.WithLabelValues(table).Observe(time.Since(start).Seconds())
	c.metrics.rowsInserted.WithLabelValues(table).Add(float64(rows))
	return nil
}

// appendColumn appends a whole column of values, a slice from schema.Block.Values. Array columns
// are appended row by row: clickhouse-go's Append for an array column reflects over every row,
// while its AppendRow takes a row of a plain element type without reflection.
func appendColumn(col driver.BatchColumn, values any) error {
	switch v := values.(type) {
	case [][]string:
		return appendRows(col, v)
	case [][]uint8:
		return appendRows(col, v)
	case [][]int64:
		return appendRows(col, v)
	case [][]*time.Time:
		return appendRows(col, v)
	}
	return col.Append(values)
}

func appendRows[T any](col driver.BatchColumn, rows []T) error {
	for _, r := range rows {
		if err := col.AppendRow(r); err != nil {
			return err
		}
	}
	return nil
}
