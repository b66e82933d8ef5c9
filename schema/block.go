package schema

import (
	"fmt"
)

// Block holds rows of one table in column form, one slice per column of Columns(table). Each slice
// has the Go type that clickhouse-go's columnar API takes for the column's ClickHouse type, so an
// insert appends whole columns without converting single values. A Block is not safe for
// concurrent use, but concurrent reads (Len, Values) are safe while nothing is added.
type Block struct {
	table  string
	ops    []columnOps
	values []any // *[]T per column
	rows   int
	err    error
}

// NewBlock returns an empty block for table, one of Tables. It panics for any other table, which
// is a programming error.
func NewBlock(table string) *Block {
	ops, ok := columnOpsOf[table]
	if !ok {
		panic(fmt.Sprintf("schema: NewBlock: unknown table %q", table))
	}
	b := &Block{table: table, ops: ops, values: make([]any, len(ops))}
	for i, op := range ops {
		b.values[i] = op.newValues()
	}
	return b
}

// Table returns the table the block holds rows of.
func (b *Block) Table() string { return b.table }

// Len returns the number of rows.
func (b *Block) Len() int { return b.rows }

// Values returns the column values in the order of Columns(Table()): the i-th element is a slice of
// Len() values of column i. The slices stay valid until the next Add or Reset; the caller must
// not modify them.
func (b *Block) Values() []any {
	out := make([]any, len(b.ops))
	for i, op := range b.ops {
		out[i] = op.slice(b.values[i])
	}
	return out
}

// Err returns the first error of AddRow, which left the block without that row.
func (b *Block) Err() error { return b.err }

// AddRow appends a row produced by Rows. When the row belongs to another table or a value is not
// of its column's type, AddRow leaves the block as it was and returns an error, which Err keeps.
func (b *Block) AddRow(r Row) error {
	if r.Table != b.table {
		return b.reject(fmt.Errorf("row of table %s added to a block of %s", r.Table, b.table))
	}
	if len(r.Values) != len(b.ops) {
		return b.reject(fmt.Errorf("row of %s has %d values for %d columns", r.Table, len(r.Values), len(b.ops)))
	}
	for i, op := range b.ops {
		if !op.addBoxed(b.values[i], r.Values[i]) {
			// Undo the columns already appended, so that every column keeps Len() values.
			for j := 0; j < i; j++ {
				b.truncate(j)
			}
			return b.reject(fmt.Errorf("column %s of %s: value of type %T does not match the column", Columns(b.table)[i], b.table, r.Values[i]))
		}
	}
	b.rows++
	return nil
}

func (b *Block) reject(err error) error {
	if b.err == nil {
		b.err = err
	}
	return err
}

// truncate cuts column i back to the block's rows.
func (b *Block) truncate(i int) { b.ops[i].truncate(b.values[i], b.rows) }

// AddDecoded appends the row of d that belongs to the block's table, if any, and reports whether
// it did: the entity row for the entity's table, the change row for change_events.
func (b *Block) AddDecoded(d *Decoded) bool {
	switch {
	case b.table == TableChangeEvents:
		addRow(b, changeColumns, &d.change)
	case b.table == TableTasks && d.task != nil:
		addRow(b, taskColumns, d.task)
	case b.table == TableTickets && d.ticket != nil:
		addRow(b, ticketColumns, d.ticket)
	case b.table == TableTestSessions && d.testSession != nil:
		addRow(b, testSessionColumns, d.testSession)
	default:
		return false
	}
	return true
}

func addRow[R any](b *Block, cols []column[R], r *R) {
	for i := range cols {
		cols[i].add(b.values[i], r)
	}
	b.rows++
}

// Reset empties the block and its error, keeping the memory of its columns for reuse.
func (b *Block) Reset() {
	for i, op := range b.ops {
		op.reset(b.values[i])
	}
	b.rows = 0
	b.err = nil
}
