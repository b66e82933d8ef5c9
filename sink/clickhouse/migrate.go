package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/tisync/tisync/schema"
)

// MigrationState is the state of one migration in a database.
type MigrationState struct {
	// Version, Name and File identify the migration (see schema.Migration). File is empty for a
	// version the database has applied but this build does not embed, which a newer build applied.
	Version uint32
	Name    string
	File    string
	// Checksum is the checksum of the embedded file.
	Checksum string
	// Applied reports whether the database records the migration as applied, at AppliedAt with
	// AppliedChecksum.
	Applied         bool
	AppliedAt       time.Time
	AppliedChecksum string
}

// Mismatch reports whether the migration was applied from a file whose content differs from the
// embedded one.
func (s MigrationState) Mismatch() bool {
	return s.Applied && s.File != "" && s.AppliedChecksum != s.Checksum
}

// MigrationStatus lists every embedded migration and every applied one, ordered by version. When an
// applied migration's checksum differs from its embedded file it returns the full list together
// with a *ChecksumMismatchError for the first such file. It works on a database that does not exist
// yet (every migration is pending) and does not change anything.
func (c *Client) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	migrations, err := schema.Migrations(c.cfg.renderOptions())
	if err != nil {
		return nil, err
	}
	applied, err := c.appliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	return mergeStates(migrations, applied)
}

func mergeStates(migrations []schema.Migration, applied map[uint32]MigrationState) ([]MigrationState, error) {
	var out []MigrationState
	var mismatch error
	for _, m := range migrations {
		s := MigrationState{Version: m.Version, Name: m.Name, File: m.File, Checksum: m.Checksum}
		if a, ok := applied[m.Version]; ok {
			s.Applied, s.AppliedAt, s.AppliedChecksum = true, a.AppliedAt, a.AppliedChecksum
			delete(applied, m.Version)
		}
		if s.Mismatch() && mismatch == nil {
			mismatch = &ChecksumMismatchError{Version: s.Version, File: s.File, Applied: s.AppliedChecksum, Embedded: s.Checksum}
		}
		out = append(out, s)
	}
	for _, a := range applied {
		out = append(out, a)
	}
	sortStates(out)
	return out, mismatch
}

func sortStates(s []MigrationState) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Version < s[j-1].Version; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// appliedMigrations reads schema_migrations, or returns nothing when the table does not exist yet.
func (c *Client) appliedMigrations(ctx context.Context) (map[uint32]MigrationState, error) {
	db := c.cfg.Database
	var exists uint64
	err := c.query(ctx, "SELECT count() FROM system.tables WHERE database = '"+db+"' AND name = 'schema_migrations'",
		func(r driver.Rows) error { return r.Scan(&exists) })
	if err != nil {
		return nil, fmt.Errorf("check for schema_migrations: %w", err)
	}
	applied := map[uint32]MigrationState{}
	if exists == 0 {
		return applied, nil
	}
	err = c.query(ctx, "SELECT version, name, checksum, applied_at FROM "+db+".schema_migrations FINAL ORDER BY version",
		func(r driver.Rows) error {
			var s MigrationState
			if err := r.Scan(&s.Version, &s.Name, &s.AppliedChecksum, &s.AppliedAt); err != nil {
				return err
			}
			s.Applied = true
			applied[s.Version] = s
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// Migrate creates the database when needed and applies the pending migrations in version order,
// recording each in schema_migrations. It returns the migrations it applied (none when the database
// is current). Several runners may call it at once, on one or several hosts: they serialize on a
// lock in schema_migrations_lock and each migration is applied once. It refuses to run when an
// applied migration's file has changed (*ChecksumMismatchError) and returns ErrLockTimeout when
// another runner keeps the lock longer than Config.MigrationLockTimeout. A migration that fails
// halfway leaves its earlier statements applied. Because the statements are idempotent (IF NOT
// EXISTS), Migrate can run again after the cause is fixed.
func (c *Client) Migrate(ctx context.Context) ([]MigrationState, error) {
	opts := c.cfg.renderOptions()
	migrations, err := schema.Migrations(opts)
	if err != nil {
		return nil, err
	}
	boot, err := schema.BootstrapStatements(opts)
	if err != nil {
		return nil, err
	}
	for _, stmt := range boot {
		if err := c.execIdempotent(ctx, stmt); err != nil {
			return nil, fmt.Errorf("create migration tables: %w", err)
		}
	}

	// Most starts find nothing to apply, so check without the lock first. A lock left by a runner
	// that died then delays no start that has nothing to apply.
	current, err := c.appliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	states, err := mergeStates(migrations, current)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(states, func(s MigrationState) bool { return !s.Applied }) {
		return nil, nil
	}

	lock, err := c.acquireLock(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		// The lock is released even when ctx is done; the lease ends it otherwise.
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := lock.write(releaseCtx, true); err != nil {
			c.log.Warn("releasing migration lock failed; it expires with its lease", zap.String("owner", lock.owner), zap.Error(err))
		}
	}()

	// Read the applied versions only under the lock: a runner that held it before may have applied
	// migrations since this one started.
	applied, err := c.appliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	states, err = mergeStates(migrations, applied)
	if err != nil {
		return nil, err
	}
	pending := map[uint32]bool{}
	for _, s := range states {
		if !s.Applied {
			pending[s.Version] = true
		}
	}

	var done []MigrationState
	for _, m := range migrations {
		if !pending[m.Version] {
			continue
		}
		if err := lock.write(ctx, false); err != nil {
			return done, fmt.Errorf("renew migration lock: %w", err)
		}
		start := time.Now()
		for i, stmt := range m.Statements {
			if err := c.exec(ctx, stmt); err != nil {
				return done, fmt.Errorf("migration %s statement %d: %w", m.File, i+1, err)
			}
		}
		appliedAt, err := c.record(ctx, m)
		if err != nil {
			return done, fmt.Errorf("record migration %s: %w", m.File, err)
		}
		c.log.Info("applied migration", zap.String("file", m.File), zap.Uint32("version", m.Version),
			zap.Int("statements", len(m.Statements)), zap.Duration("duration", time.Since(start)))
		done = append(done, MigrationState{
			Version: m.Version, Name: m.Name, File: m.File, Checksum: m.Checksum,
			Applied: true, AppliedAt: appliedAt, AppliedChecksum: m.Checksum,
		})
	}
	return done, nil
}

// execIdempotent runs a CREATE ... IF NOT EXISTS statement, accepting the "already exists" errors
// that two runners racing on the same statement can get from ClickHouse.
func (c *Client) execIdempotent(ctx context.Context, stmt string) error {
	err := c.exec(ctx, stmt)
	var ex *ch.Exception
	if errors.As(err, &ex) && (ex.Code == 57 || ex.Code == 82) { // TABLE_ALREADY_EXISTS, DATABASE_ALREADY_EXISTS
		return nil
	}
	return err
}

func (c *Client) record(ctx context.Context, m schema.Migration) (time.Time, error) {
	now := time.Now().UTC().Truncate(time.Second)
	err := c.insertRows(ctx, c.cfg.Database+".schema_migrations (version, name, checksum, applied_at)",
		[]any{m.Version, m.Name, m.Checksum, now})
	return now, err
}

// insertRows inserts a few rows through a batch, because ClickHouse 18.16 hangs on an
// INSERT ... VALUES sent through Exec.
func (c *Client) insertRows(ctx context.Context, target string, rows ...[]any) error {
	conn, err := c.connection()
	if err != nil {
		return err
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+target)
	if err != nil {
		c.discard(conn, err)
		return err
	}
	for _, r := range rows {
		if err := batch.Append(r...); err != nil {
			_ = batch.Abort()
			c.discard(conn, err)
			return err
		}
	}
	if err := batch.Send(); err != nil {
		_ = batch.Close()
		c.discard(conn, err)
		return err
	}
	return nil
}

// migrationLock is one runner's claim in schema_migrations_lock. ClickHouse has no transactions or
// compare-and-set, so the lock works by announcement: a runner appends a row for itself, then reads
// every live row, and holds the lock only when its own row is the only one. Two runners cannot both
// hold it, because a runner reads after its own insert: of two runners, the one that inserts second
// reads the first one's row. When runners see each other, each releases its row and retries after a
// random delay. A crashed holder blocks others until its lease ends.
//
// NOTE: the argument needs each runner to read its own and earlier inserts, which a single server
// guarantees. With replicated tables on a cluster, runners connected to different replicas may not
// see each other's rows in time; there every statement is still idempotent, but run the migrations
// from one place.
type migrationLock struct {
	c       *Client
	owner   string
	updated int64
}

func (c *Client) acquireLock(ctx context.Context) (*migrationLock, error) {
	owner, err := randomHex(8)
	if err != nil {
		return nil, err
	}
	l := &migrationLock{c: c, owner: owner}
	deadline := time.Now().Add(c.cfg.MigrationLockTimeout)
	for attempt := 1; ; attempt++ {
		if err := l.write(ctx, false); err != nil {
			return nil, fmt.Errorf("write migration lock: %w", err)
		}
		holders, err := c.lockHolders(ctx)
		if err != nil {
			return nil, fmt.Errorf("read migration lock: %w", err)
		}
		if len(holders) == 1 && holders[0] == owner {
			c.log.Debug("acquired migration lock", zap.String("owner", owner), zap.Int("attempt", attempt))
			return l, nil
		}
		if err := l.write(ctx, true); err != nil {
			return nil, fmt.Errorf("release migration lock: %w", err)
		}
		others := without(holders, owner)
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w after %s: held by %s", ErrLockTimeout, c.cfg.MigrationLockTimeout, strings.Join(others, ", "))
		}
		c.log.Info("waiting for migration lock", zap.Strings("holders", others), zap.Int("attempt", attempt))
		jitter, err := rand.Int(rand.Reader, big.NewInt(800))
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200*time.Millisecond + time.Duration(jitter.Int64())*time.Millisecond):
		}
	}
}

// write appends the lock's row: a claim with a lease from the server's clock, or a release.
func (l *migrationLock) write(ctx context.Context, release bool) error {
	var now time.Time
	err := l.c.query(ctx, "SELECT now()", func(r driver.Rows) error { return r.Scan(&now) })
	if err != nil {
		return err
	}
	// updated orders this owner's rows for ReplacingMergeTree; it must grow even when the clock
	// does not.
	l.updated = max(time.Now().UnixNano(), l.updated+1)
	var released uint8
	if release {
		released = 1
	}
	return l.c.insertRows(ctx, l.c.cfg.Database+".schema_migrations_lock (owner, lease_until, released, updated_at)",
		[]any{l.owner, now.Add(l.c.cfg.MigrationLockLease), released, uint64(l.updated)})
}

// lockHolders returns the owners of unreleased, unexpired lock rows.
func (c *Client) lockHolders(ctx context.Context) ([]string, error) {
	var owners []string
	q := "SELECT owner FROM (SELECT owner, lease_until, released FROM " + c.cfg.Database +
		".schema_migrations_lock FINAL) WHERE released = 0 AND lease_until > now() ORDER BY owner"
	err := c.query(ctx, q, func(r driver.Rows) error {
		var o string
		if err := r.Scan(&o); err != nil {
			return err
		}
		owners = append(owners, o)
		return nil
	})
	return owners, err
}

func without(list []string, s string) []string {
	var out []string
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random lock owner: %w", err)
	}
	return hex.EncodeToString(b), nil
}
