package natsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// ErrStoreLocked reports that another process runs an embedded server on the same store directory.
var ErrStoreLocked = errors.New("embedded NATS store is in use by another process")

// Conn is an open NATS connection with its JetStream context and, in embedded mode, the server.
type Conn struct {
	// NC is the core NATS connection.
	NC *nats.Conn
	// JS is the JetStream API on NC.
	JS jetstream.JetStream
	// Server is the embedded server, or nil when connected to an external one.
	Server *server.Server

	log  *zap.Logger
	lock *os.File
}

// Mode returns "embedded" or "external", for logs and status output.
func (c *Conn) Mode() string {
	if c.Server != nil {
		return "embedded"
	}
	return "external"
}

// Connect opens the connection that cfg selects. In embedded mode it starts the server first, with
// JetStream and its store in cfg.Embedded.StoreDir, and connects in-process. The log states which
// mode is in use. Close releases everything that Connect started.
func Connect(ctx context.Context, cfg Config, log *zap.Logger) (*Conn, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.IsEmbedded() {
		return startEmbedded(ctx, cfg, log)
	}
	return dialExternal(ctx, cfg, log)
}

// ConnectClient is Connect for short-lived commands such as `tisync checkpoint list`. In embedded
// mode it first dials the embedded server of a running daemon at cfg.Embedded.Listen, and starts its
// own embedded server only when none responds there.
func ConnectClient(ctx context.Context, cfg Config, log *zap.Logger) (*Conn, error) {
	if log == nil {
		log = zap.NewNop()
	}
	// A command's output is its result: the connection's lifecycle lines only matter on failure.
	log = log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	if !cfg.IsEmbedded() {
		return dialExternal(ctx, cfg, log)
	}
	if addr := cfg.Embedded.ListenAddr(); addr != "" && listening(addr) {
		ext := cfg
		ext.URL = "nats://" + addr
		ext.MaxReconnects = 0
		c, err := dialExternal(ctx, ext, log)
		if err == nil {
			return c, nil
		}
		log.Debug("dial running daemon's embedded NATS server", zap.String("address", addr), zap.Error(err))
	}
	return startEmbedded(ctx, cfg, log)
}

func listening(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func startEmbedded(ctx context.Context, cfg Config, log *zap.Logger) (*Conn, error) {
	e := cfg.Embedded
	if err := os.MkdirAll(e.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("create embedded NATS store: %w", err)
	}
	lock, err := lockStore(e.StoreDir)
	if err != nil {
		return nil, err
	}

	opts := &server.Options{
		ServerName:             e.ServerName,
		JetStream:              true,
		StoreDir:               e.StoreDir,
		JetStreamMaxStore:      e.MaxStoreBytes,
		JetStreamMaxMemory:     e.MaxMemoryBytes,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		SyncInterval:           e.SyncInterval,
		SyncAlways:             e.SyncAlways,
		MaxPayload:             8 << 20,
	}
	if addr := e.ListenAddr(); addr != "" {
		host, port, _ := net.SplitHostPort(addr)
		opts.Host = host
		opts.Port, err = strconv.Atoi(port)
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("embedded.listen %q: invalid port: %w", addr, err)
		}
		if listening(addr) {
			lock.Close()
			return nil, fmt.Errorf("embedded NATS server cannot listen on %s: the address is in use; set nats.embedded.listen to a free address or none, or set nats.url to use the server there", addr)
		}
	} else {
		opts.DontListen = true
	}

	srv, err := server.NewServer(opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("configure embedded NATS server: %w", err)
	}
	srv.SetLoggerV2(&serverLogger{log: log.Named("nats-server").Sugar()}, false, false, false)
	go srv.Start()

	timeout := e.ReadyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		lock.Close()
		return nil, fmt.Errorf("embedded NATS server not ready after %s; check that %s is writable", timeout, e.StoreDir)
	}

	opt := connectOptions(cfg, log)
	opt = append(opt, nats.InProcessServer(srv))
	nc, err := nats.Connect("", opt...)
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		lock.Close()
		return nil, fmt.Errorf("connect to embedded NATS server: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		lock.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	listen := e.ListenAddr()
	if listen == "" {
		listen = "none"
	}
	log.Info("NATS: embedded server started",
		zap.String("nats_mode", "embedded"),
		zap.String("store_dir", e.StoreDir),
		zap.String("listen", listen),
		zap.String("server_version", server.VERSION))
	return &Conn{NC: nc, JS: js, Server: srv, log: log, lock: lock}, nil
}

func dialExternal(ctx context.Context, cfg Config, log *zap.Logger) (*Conn, error) {
	opt := connectOptions(cfg, log)
	tlsOpt, err := tlsOption(cfg)
	if err != nil {
		return nil, err
	}
	if tlsOpt != nil {
		opt = append(opt, tlsOpt)
	}
	if cfg.CredsFile != "" {
		opt = append(opt, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.User != "" {
		opt = append(opt, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opt = append(opt, nats.Token(cfg.Token))
	}

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(cfg.URL, opt...)
		done <- result{nc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.URL, ctx.Err())
	}
	if r.err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.URL, r.err)
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		r.nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	log.Info("NATS: connected to external server",
		zap.String("nats_mode", "external"),
		zap.String("url", r.nc.ConnectedUrlRedacted()),
		zap.String("server_id", r.nc.ConnectedServerId()),
		zap.String("server_version", r.nc.ConnectedServerVersion()))
	return &Conn{NC: r.nc, JS: js, log: log}, nil
}

func connectOptions(cfg Config, log *zap.Logger) []nats.Option {
	return []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.MaxReconnects(cfg.MaxReconnects),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS: disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS: reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("NATS: asynchronous error", zap.String("subject", subject), zap.Error(err))
		}),
	}
}

func tlsOption(cfg Config) (nats.Option, error) {
	t := cfg.TLS
	useTLS := t.Enabled || strings.HasPrefix(strings.TrimSpace(cfg.URL), "tls://")
	if !useTLS {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in for tests
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats.tls.ca_file %s: no PEM certificates found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.tls cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return nats.Secure(tc), nil
}

// Close drains the connection, so that pending publishes and acks reach the server, and then stops
// the embedded server if there is one. It waits until ctx is done at the longest.
func (c *Conn) Close(ctx context.Context) error {
	var errs []error
	if c.NC != nil && !c.NC.IsClosed() {
		closed := make(chan struct{})
		c.NC.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := c.NC.Drain(); err != nil {
			c.NC.Close()
		} else {
			select {
			case <-closed:
			case <-ctx.Done():
				c.NC.Close()
				errs = append(errs, fmt.Errorf("drain NATS connection: %w", ctx.Err()))
			}
		}
	}
	if c.Server != nil {
		c.Server.Shutdown()
		c.Server.WaitForShutdown()
		c.log.Info("NATS: embedded server stopped")
	}
	if c.lock != nil {
		c.lock.Close()
	}
	return errors.Join(errs...)
}

// lockStore takes an exclusive advisory lock on a file in dir for as long as the returned file is
// open. NB: nats-server does not lock its store directory itself, and two servers writing one store
// corrupt it.
func lockStore(dir string) (*os.File, error) {
	path := filepath.Join(dir, "tisync.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open embedded NATS store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("%w: %s (held by PID %s); stop that process, or connect to its server with nats.url", ErrStoreLocked, dir, strings.TrimSpace(string(owner)))
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// serverLogger sends nats-server's log lines to zap.
type serverLogger struct{ log *zap.SugaredLogger }

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Debugf(format, v...) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warnf(format, v...) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Errorf(format, v...) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Errorf(format, v...) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debugf(format, v...) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.log.Debugf(format, v...) }
